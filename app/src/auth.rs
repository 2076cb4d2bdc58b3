//! Logging in and out.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use serde::{Deserialize, Serialize};

use crate::components::page_data;

/// Where a login stands after the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginStep {
    /// Logged in: on to the dashboard.
    Done,
    /// The admin has a second factor: a code from it (or a recovery code) comes next.
    SecondFactor,
}

/// The session key of a login waiting for its second factor.
#[cfg(feature = "ssr")]
const PENDING: &str = "pending_login";
/// How long a login may wait for its second factor, and how many wrong codes it may send.
#[cfg(feature = "ssr")]
const PENDING_MS: i64 = 5 * 60 * 1000;
#[cfg(feature = "ssr")]
const PENDING_TRIES: u32 = 5;

/// A login whose password was right, waiting for its second factor.
#[cfg(feature = "ssr")]
#[derive(Serialize, Deserialize)]
struct Pending {
    admin_id: String,
    at: i64,
    failures: u32,
}

/// Checks the email and password and starts a session with a fresh id. An admin without a
/// second factor is logged in and goes to the dashboard; one with a factor is asked for a
/// code next ([`login_second_factor`]).
#[server]
pub async fn login(email: String, password: String) -> Result<LoginStep, ServerFnError> {
    use crate::ssr::{client_addr, console_error, session, state};
    let state = state()?;
    let admin = domain::accounts::login_throttled(
        &state.store,
        &state.throttles.logins,
        client_addr(),
        &email,
        &password,
    )
    .await
    .map_err(console_error)?;
    let session = session().await?;
    // A new id at login, so a session id planted before login is worthless.
    session
        .cycle_id()
        .await
        .map_err(crate::ssr::session_error)?;
    if admin.second_factor {
        let pending = Pending {
            admin_id: admin.id,
            at: domain::time::now_ms(),
            failures: 0,
        };
        session
            .insert(PENDING, pending)
            .await
            .map_err(crate::ssr::session_error)?;
        return Ok(LoginStep::SecondFactor);
    }
    start_session(&session, &admin.id).await?;
    leptos_axum::redirect("/");
    Ok(LoginStep::Done)
}

/// Completes a login waiting for its second factor with a code from the admin's
/// authenticator app, or one of their recovery codes. Five wrong codes, or five minutes, and
/// the login starts over. Others' failed logins play no part here: a client that passed the
/// password step is not blocked by them.
#[server]
pub async fn login_second_factor(code: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, session, state};
    let state = state()?;
    let session = session().await?;
    let start_over = || {
        console_error(domain::Error::invalid(
            "Your login has expired. Enter your email and password again.",
        ))
    };
    let mut pending: Pending = session
        .get(PENDING)
        .await
        .ok()
        .flatten()
        .ok_or_else(start_over)?;
    if domain::time::now_ms() - pending.at > PENDING_MS || pending.failures >= PENDING_TRIES {
        session
            .remove::<Pending>(PENDING)
            .await
            .map_err(crate::ssr::session_error)?;
        return Err(start_over());
    }
    let admin = domain::accounts::admin(&state.store, &pending.admin_id)
        .await
        .map_err(console_error)?
        .ok_or_else(start_over)?;
    match domain::factors::verify(&state.store, state.secret_key.as_ref(), &admin, &code).await {
        Ok(proof) => {
            session
                .remove::<Pending>(PENDING)
                .await
                .map_err(crate::ssr::session_error)?;
            session
                .cycle_id()
                .await
                .map_err(crate::ssr::session_error)?;
            start_session(&session, &admin.id).await?;
            let how = match proof {
                domain::factors::Proof::Totp => "with an authenticator app",
                domain::factors::Proof::RecoveryCode => "with a recovery code",
            };
            domain::accounts::record_login(&state.store, &admin, how)
                .await
                .map_err(console_error)?;
            leptos_axum::redirect("/");
            Ok(())
        }
        Err(domain::Error::InvalidCredentials) => {
            pending.failures += 1;
            session
                .insert(PENDING, pending)
                .await
                .map_err(crate::ssr::session_error)?;
            Err(console_error(domain::Error::invalid(
                "That code is not right.",
            )))
        }
        Err(e) => Err(console_error(e)),
    }
}

/// The session key of a passkey login in progress: the admin and the ceremony's state.
#[cfg(feature = "ssr")]
const PASSKEY_LOGIN: &str = "passkey_login";

/// Starts logging in with a passkey: the challenge for the browser. After the password (a
/// login waiting for its second factor) it is that admin's; otherwise `email`'s, without a
/// password. An unknown email, a disabled admin and one without a passkey get the same
/// answer, which says only that the password is needed.
#[server]
pub async fn start_passkey_login(
    email: String,
) -> Result<webauthn_rs_proto::RequestChallengeResponse, ServerFnError> {
    use crate::ssr::{console_error, session, state};
    let state = state()?;
    let session = session().await?;
    let pending: Option<Pending> = session.get(PENDING).await.ok().flatten();
    let admin = match pending {
        Some(p) => domain::accounts::admin(&state.store, &p.admin_id)
            .await
            .map_err(console_error)?,
        None => match domain::accounts::normalise_email(&email) {
            Ok(email) => state
                .store
                .admin_by_email(&email)
                .await
                .map_err(console_error)?
                .map(domain::accounts::Admin::from)
                .filter(|a| !a.disabled),
            Err(_) => None,
        },
    };
    let no_passkey = || {
        console_error(domain::Error::invalid(
            "No passkey is set up for this email. Log in with your password.",
        ))
    };
    let admin = admin.ok_or_else(no_passkey)?;
    let (challenge, authentication) = state
        .passkeys
        .start_authentication(&state.store, state.secret_key.as_ref(), &admin)
        .await
        .map_err(|e| match e {
            domain::Error::NotFound => no_passkey(),
            other => console_error(other),
        })?;
    session
        .insert(PASSKEY_LOGIN, (admin.id, authentication))
        .await
        .map_err(crate::ssr::session_error)?;
    Ok(challenge)
}

/// Completes a passkey login with the browser's signature; the session is then logged in.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn finish_passkey_login(
    credential: webauthn_rs_proto::PublicKeyCredential,
) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, session, state};
    let state = state()?;
    let session = session().await?;
    let (admin_id, authentication): (String, domain::passkeys::Authentication) = session
        .remove(PASSKEY_LOGIN)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            console_error(domain::Error::invalid(
                "No passkey login is in progress; start again.",
            ))
        })?;
    let admin = domain::accounts::admin(&state.store, &admin_id)
        .await
        .map_err(console_error)?
        .ok_or_else(|| console_error(domain::Error::InvalidCredentials))?;
    prove_passkey(&state, &admin, &credential, &authentication).await?;
    session
        .remove::<Pending>(PENDING)
        .await
        .map_err(crate::ssr::session_error)?;
    session
        .cycle_id()
        .await
        .map_err(crate::ssr::session_error)?;
    start_session(&session, &admin.id).await?;
    domain::accounts::record_login(&state.store, &admin, "with a passkey")
        .await
        .map_err(console_error)
}

/// Logs `admin_id` in on `session`, recording when and from where.
#[cfg(feature = "ssr")]
async fn start_session(
    session: &tower_sessions::Session,
    admin_id: &str,
) -> Result<(), ServerFnError> {
    session
        .insert(crate::ssr::ADMIN_ID, admin_id)
        .await
        .map_err(crate::ssr::session_error)?;
    session
        .insert(domain::sessions::INFO, crate::ssr::new_session_info())
        .await
        .map_err(crate::ssr::session_error)?;
    tracing::info!(admin = %admin_id, "admin logged in");
    Ok(())
}

/// Confirms the logged-in admin's password, and a code of their second factor if they have
/// one (a step-up), so that the most sensitive actions are allowed for `STEP_UP_MINUTES`
/// from now. Wrong passwords count as failed logins.
#[server]
pub async fn confirm_identity(password: String, code: Option<String>) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_admin, session};
    let (state, admin) = require_admin().await?;
    check_own_password(&state, &admin, &password).await?;
    if admin.second_factor {
        let code = code.unwrap_or_default();
        if code.trim().is_empty() {
            return Err(console_error(domain::Error::invalid(
                "Enter a code from your authenticator app (or a recovery code).",
            )));
        }
        domain::factors::verify(&state.store, state.secret_key.as_ref(), &admin, &code)
            .await
            .map_err(|e| match e {
                domain::Error::InvalidCredentials => {
                    console_error(domain::Error::invalid("That code is not right."))
                }
                other => console_error(other),
            })?;
    }
    let session = session().await?;
    stepped_up(&state, &admin, &session).await
}

/// The session key of a passkey step-up in progress.
#[cfg(feature = "ssr")]
const PASSKEY_STEP_UP: &str = "passkey_step_up";

/// Starts a step-up with one of the logged-in admin's passkeys: the challenge.
#[server]
pub async fn start_passkey_step_up(
) -> Result<webauthn_rs_proto::RequestChallengeResponse, ServerFnError> {
    use crate::ssr::{console_error, require_admin, session};
    let (state, admin) = require_admin().await?;
    let (challenge, authentication) = state
        .passkeys
        .start_authentication(&state.store, state.secret_key.as_ref(), &admin)
        .await
        .map_err(|e| match e {
            domain::Error::NotFound => console_error(domain::Error::invalid(
                "You have no passkey; use a code instead.",
            )),
            other => console_error(other),
        })?;
    session()
        .await?
        .insert(PASSKEY_STEP_UP, authentication)
        .await
        .map_err(crate::ssr::session_error)?;
    Ok(challenge)
}

/// [`confirm_identity`] with the password and a passkey's signature instead of a code.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn confirm_identity_with_passkey(
    password: String,
    credential: webauthn_rs_proto::PublicKeyCredential,
) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_admin, session};
    let (state, admin) = require_admin().await?;
    let session = session().await?;
    let authentication = session
        .remove(PASSKEY_STEP_UP)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            console_error(domain::Error::invalid(
                "No passkey confirmation is in progress; start again.",
            ))
        })?;
    check_own_password(&state, &admin, &password).await?;
    prove_passkey(&state, &admin, &credential, &authentication).await?;
    stepped_up(&state, &admin, &session).await
}

/// Checks the logged-in admin's own password (a wrong one counts as a failed login).
#[cfg(feature = "ssr")]
async fn check_own_password(
    state: &crate::ssr::ConsoleState,
    admin: &domain::accounts::Admin,
    password: &str,
) -> Result<(), ServerFnError> {
    use crate::ssr::console_error;
    domain::accounts::check_password(
        &state.store,
        &state.throttles.logins,
        crate::ssr::client_addr(),
        admin,
        password,
    )
    .await
    .map_err(|e| match e {
        domain::Error::InvalidCredentials => {
            console_error(domain::Error::invalid("That is not your password."))
        }
        other => console_error(other),
    })
}

/// Verifies a passkey's signature for `admin` against the ceremony's state.
#[cfg(feature = "ssr")]
async fn prove_passkey(
    state: &crate::ssr::ConsoleState,
    admin: &domain::accounts::Admin,
    credential: &webauthn_rs_proto::PublicKeyCredential,
    authentication: &domain::passkeys::Authentication,
) -> Result<(), ServerFnError> {
    use crate::ssr::console_error;
    state
        .passkeys
        .finish_authentication(
            &state.store,
            state.secret_key.as_ref(),
            admin,
            credential,
            authentication,
        )
        .await
        .map_err(|e| match e {
            domain::Error::InvalidCredentials => {
                console_error(domain::Error::invalid("The passkey was not accepted."))
            }
            other => console_error(other),
        })
}

/// Notes in the session that its admin proved their identity now, and audits it.
#[cfg(feature = "ssr")]
async fn stepped_up(
    state: &crate::ssr::ConsoleState,
    admin: &domain::accounts::Admin,
    session: &tower_sessions::Session,
) -> Result<(), ServerFnError> {
    use domain::sessions::{SessionInfo, INFO};
    let info = session
        .get::<SessionInfo>(INFO)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(crate::ssr::new_session_info);
    session
        .insert(
            INFO,
            SessionInfo {
                authenticated_at: domain::time::now_ms(),
                ..info
            },
        )
        .await
        .map_err(crate::ssr::session_error)?;
    domain::accounts::record_step_up(&state.store, admin)
        .await
        .map_err(crate::ssr::console_error)
}

#[server]
pub async fn logout() -> Result<(), ServerFnError> {
    let session = crate::ssr::session().await?;
    session.flush().await.map_err(crate::ssr::session_error)?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// Whether anyone is logged in, for the login page to skip itself.
#[server]
pub async fn logged_in() -> Result<bool, ServerFnError> {
    use crate::ssr::{session, ADMIN_ID};
    let session = session().await?;
    Ok(session
        .get::<String>(ADMIN_ID)
        .await
        .ok()
        .flatten()
        .is_some())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let second = ServerAction::<LoginSecondFactor>::new();
    let already = page_data(|| (), |_| logged_in());
    let error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| crate::error_message(&e))
    };
    let second_error = move || {
        second
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| crate::error_message(&e))
    };
    let wants_code = move || matches!(login.value().get(), Some(Ok(LoginStep::SecondFactor)));
    // Logging in with a passkey: after the password, or instead of it (by the email typed).
    let email_input = NodeRef::<leptos::html::Input>::new();
    let passkey_error = RwSignal::new(None::<String>);
    let passkey_busy = RwSignal::new(false);
    let navigate = leptos_router::hooks::use_navigate();
    let use_passkey = Callback::new(move |()| {
        let email = email_input.get().map(|i| i.value()).unwrap_or_default();
        let navigate = navigate.clone();
        passkey_busy.set(true);
        passkey_error.set(None);
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge = start_passkey_login(email)
                    .await
                    .map_err(|e| crate::error_message(&e))?;
                let credential = crate::webauthn::get(challenge).await?;
                finish_passkey_login(credential)
                    .await
                    .map_err(|e| crate::error_message(&e))
            }
            .await;
            passkey_busy.set(false);
            match outcome {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => passkey_error.set(Some(e)),
            }
        });
    });
    let passkey_error_view = move || {
        passkey_error
            .get()
            .map(|e| view! { <p class="error" role="alert">{e}</p> })
    };
    view! {
        <Title text="Log in"/>
        <Suspense>
            {move || Suspend::new(async move {
                matches!(already.await, Ok(true)).then(|| view! { <Redirect path="/"/> })
            })}
        </Suspense>
        <main class="login">
            <h1>"Directory Console"</h1>
            <Show
                when=wants_code
                fallback=move || view! {
                    <ActionForm action=login attr:class="card login-form">
                        <h2>"Log in"</h2>
                        <label>
                            "Email"
                            <input type="email" name="email" autocomplete="username webauthn" required
                                node_ref=email_input/>
                        </label>
                        <label>
                            "Password"
                            <input type="password" name="password" autocomplete="current-password" required/>
                        </label>
                        {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                        <button type="submit" class="primary" disabled=move || login.pending().get()>
                            "Log in"
                        </button>
                        <button type="button" class="link" disabled=move || passkey_busy.get()
                            on:click=move |_| use_passkey.run(())>
                            "Log in with a passkey instead"
                        </button>
                        {passkey_error_view}
                    </ActionForm>
                }
            >
                <ActionForm action=second attr:class="card login-form">
                    <h2>"Second factor"</h2>
                    <label>
                        "Code from your authenticator app"
                        <input type="text" name="code" autocomplete="one-time-code" inputmode="numeric"
                            required autofocus/>
                    </label>
                    <p class="hint">"No phone at hand? Enter one of your recovery codes instead."</p>
                    {move || second_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    <button type="submit" class="primary" disabled=move || second.pending().get()>
                        "Continue"
                    </button>
                    <button type="button" class="link" disabled=move || passkey_busy.get()
                        on:click=move |_| use_passkey.run(())>
                        "Use a passkey instead"
                    </button>
                    {passkey_error_view}
                </ActionForm>
            </Show>
            <p class="hint">
                "No account yet? The operator creates the first admin with "
                <code>"server admin create --org NAME --email EMAIL"</code>"."
            </p>
        </main>
    }
}
