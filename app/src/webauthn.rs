//! Passkeys in the browser: the WebAuthn ceremonies the server functions start and finish,
//! carried out by `navigator.credentials` (webauthn-rs-proto converts the messages).

use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Creates a passkey for the server's challenge, as the browser and authenticator do.
#[cfg(feature = "hydrate")]
pub async fn create(
    challenge: CreationChallengeResponse,
) -> Result<RegisterPublicKeyCredential, String> {
    let options: web_sys::CredentialCreationOptions = challenge.into();
    let promise = credentials()?.create_with_options(&options);
    Ok(settle(promise).await?.into())
}

/// Signs the server's challenge with one of the admin's passkeys.
#[cfg(feature = "hydrate")]
pub async fn get(challenge: RequestChallengeResponse) -> Result<PublicKeyCredential, String> {
    let options: web_sys::CredentialRequestOptions = challenge.into();
    let promise = credentials()?.get_with_options(&options);
    Ok(settle(promise).await?.into())
}

#[cfg(feature = "hydrate")]
fn credentials() -> Result<web_sys::CredentialsContainer, String> {
    Ok(web_sys::window()
        .ok_or("no browser window")?
        .navigator()
        .credentials())
}

/// The credential a `navigator.credentials` call settles with.
#[cfg(feature = "hydrate")]
async fn settle(
    promise: Result<js_sys::Promise, wasm_bindgen::JsValue>,
) -> Result<web_sys::PublicKeyCredential, String> {
    let credential = wasm_bindgen_futures::JsFuture::from(promise.map_err(refused)?)
        .await
        .map_err(refused)?;
    Ok(web_sys::PublicKeyCredential::from(credential))
}

/// What the admin reads when the browser or authenticator refused (or they cancelled).
#[cfg(feature = "hydrate")]
fn refused(e: wasm_bindgen::JsValue) -> String {
    let detail = js_sys::Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_default();
    format!("The passkey was not used: {detail}")
}

/// Without a browser there is nothing to do (the server never runs a ceremony itself).
#[cfg(not(feature = "hydrate"))]
pub async fn create(_: CreationChallengeResponse) -> Result<RegisterPublicKeyCredential, String> {
    Err("passkeys need the browser".into())
}

#[cfg(not(feature = "hydrate"))]
pub async fn get(_: RequestChallengeResponse) -> Result<PublicKeyCredential, String> {
    Err("passkeys need the browser".into())
}
