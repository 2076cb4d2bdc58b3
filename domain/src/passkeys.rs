//! Passkeys (WebAuthn, through webauthn-rs): registered from the Account page, then proved
//! at login in place of a code, or instead of the password altogether.
//!
//! The relying party is the console's public URL: its host is the passkeys' RP ID, so every
//! instance behind one URL accepts them, and changing the URL's host invalidates them. A
//! passkey's credential is sealed like every factor's secret (see [`crate::factors`]). A
//! ceremony's state (the challenge and what it expects) waits in the admin's session between
//! its two requests; sessions are kept server-side, so the browser never holds it.

use std::sync::Arc;

use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::accounts::Admin;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::factors::SecretKey;
use crate::store::{FactorRow, Store};
use crate::time;

/// A passkey ceremony's state between its two requests (kept in the session).
pub type Registration = PasskeyRegistration;
pub type Authentication = PasskeyAuthentication;

/// The console as a WebAuthn relying party, or why it cannot be one.
#[derive(Clone)]
pub struct Passkeys(Result<Arc<Webauthn>, String>);

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passkeys")
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what}: {e}"))
}

fn admin_uuid(admin: &Admin) -> Result<Uuid> {
    Uuid::parse_str(&admin.id).map_err(|e| failed("an admin's id is not a UUID", e))
}

impl Passkeys {
    /// The relying party of the console at `public_url` (its origin, and its host as RP ID).
    /// Browsers accept passkeys only for a domain name, so a console reached by an IP
    /// address (the default `http://127.0.0.1:3000`) has none: asking for one says why.
    pub fn new(public_url: &str) -> Self {
        let relying_party = Url::parse(public_url)
            .map_err(|e| e.to_string())
            .and_then(|origin| match origin.domain() {
                Some(host) => Ok((host.to_owned(), origin.clone())),
                None => Err("browsers accept passkeys only for a domain name".to_owned()),
            })
            .and_then(|(host, origin)| {
                WebauthnBuilder::new(&host, &origin)
                    .and_then(|b| b.rp_name(crate::factors::ISSUER).build())
                    .map_err(|e| e.to_string())
            });
        Self(relying_party.map(Arc::new).map_err(|why| {
            format!(
                "Passkeys are not available at this console's address ({public_url}: {why}); \
                 the operator sets PUBLIC_URL to its domain name."
            )
        }))
    }

    fn webauthn(&self) -> Result<&Webauthn> {
        self.0
            .as_deref()
            .map_err(|why| Error::Forbidden(why.clone()))
    }

    /// Starts registering a new passkey for `admin` (none of theirs twice): the challenge
    /// for the browser, and the state to keep until [`Passkeys::finish_registration`].
    pub async fn start_registration(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        admin: &Admin,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration)> {
        let existing = self.passkeys_of(store, key, admin).await?;
        let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
        self.webauthn()?
            .start_passkey_registration(
                admin_uuid(admin)?,
                &admin.email,
                &admin.email,
                Some(exclude),
            )
            .map_err(|e| failed("the passkey could not be registered", e))
    }

    /// Verifies the browser's new credential and stores it as `admin`'s passkey `name`. The
    /// admin's first factor comes with recovery codes, returned here and never again.
    pub async fn finish_registration(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        admin: &Admin,
        name: &str,
        credential: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Option<Vec<String>>> {
        let key = crate::factors::key(key)?;
        let name = crate::factors::factor_name(name)?;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(credential, state)
            .map_err(|e| failed("the passkey was not accepted", e))?;
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = key.seal(&admin.id, &serialise(&passkey)?)?;
        store
            .insert_factor(FactorRow {
                id: id.clone(),
                admin_id: admin.id.clone(),
                kind: "passkey".into(),
                name: name.clone(),
                sealed_secret: sealed,
                confirmed: false,
                last_step: None,
                created_at: time::now_ms(),
                last_used_at: None,
            })
            .await?;
        let audit = AuditEntry::by(admin, "factor.enrolled", Some(format!("passkey {name:?}")));
        crate::factors::confirm_first(store, admin, &id, None, &audit).await
    }

    /// Starts proving one of `admin`'s passkeys: the challenge for the browser, and the
    /// state to keep until [`Passkeys::finish_authentication`]. `NotFound` when they have
    /// none.
    pub async fn start_authentication(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        admin: &Admin,
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
        let passkeys: Vec<Passkey> = self
            .passkeys_of(store, key, admin)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if passkeys.is_empty() {
            return Err(Error::NotFound);
        }
        self.webauthn()?
            .start_passkey_authentication(&passkeys)
            .map_err(|e| failed("a passkey could not be asked for", e))
    }

    /// Verifies the browser's signature with one of `admin`'s passkeys, and stores what the
    /// passkey now counts. `InvalidCredentials` when it does not verify.
    pub async fn finish_authentication(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        admin: &Admin,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<()> {
        let secret_key = crate::factors::key(key)?;
        let result = self
            .webauthn()?
            .finish_passkey_authentication(credential, state)
            .map_err(|e| {
                tracing::debug!(error = %e, "a passkey did not verify");
                Error::InvalidCredentials
            })?;
        for (factor_id, mut passkey) in self.passkeys_of(store, key, admin).await? {
            if passkey.cred_id() != result.cred_id() {
                continue;
            }
            passkey.update_credential(&result);
            let sealed = secret_key.seal(&admin.id, &serialise(&passkey)?)?;
            store
                .update_factor_secret(&factor_id, &sealed, time::now_ms())
                .await?;
            return Ok(());
        }
        Err(Error::InvalidCredentials)
    }

    /// The admin's confirmed passkeys, opened: (factor id, passkey).
    async fn passkeys_of(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        admin: &Admin,
    ) -> Result<Vec<(String, Passkey)>> {
        let factors: Vec<FactorRow> = store
            .factors_of(&admin.id, true)
            .await?
            .into_iter()
            .filter(|f| f.kind == "passkey")
            .collect();
        if factors.is_empty() {
            return Ok(Vec::new());
        }
        let key = crate::factors::key(key)?;
        factors
            .into_iter()
            .map(|f| {
                let opened = key.open(&admin.id, &f.sealed_secret)?;
                let passkey = serde_json::from_slice(&opened)
                    .map_err(|e| failed("a stored passkey does not read", e))?;
                Ok((f.id, passkey))
            })
            .collect()
    }
}

fn serialise(passkey: &Passkey) -> Result<Vec<u8>> {
    serde_json::to_vec(passkey).map_err(|e| failed("a passkey could not be stored", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_reached_by_ip_address_has_no_passkeys_and_says_why() {
        assert!(Passkeys::new("https://console.example.com")
            .webauthn()
            .is_ok());
        assert!(Passkeys::new("http://localhost:3000").webauthn().is_ok());
        match Passkeys::new("http://127.0.0.1:3000").webauthn() {
            Err(Error::Forbidden(why)) => assert!(why.contains("PUBLIC_URL"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
