//! Logging in and out.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

/// Checks the email and password, starts a session with a fresh id and goes to the
/// dashboard.
#[server]
pub async fn login(email: String, password: String) -> Result<(), ServerFnError> {
    use crate::ssr::{client_addr, console_error, new_session_info, session, state, ADMIN_ID};
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
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    session
        .insert(ADMIN_ID, &admin.id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    session
        .insert(domain::sessions::INFO, new_session_info())
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    tracing::info!(admin = %admin.id, "admin logged in");
    leptos_axum::redirect("/");
    Ok(())
}

/// Confirms the logged-in admin's password (a step-up), so that the most sensitive actions
/// are allowed for `STEP_UP_MINUTES` from now. Wrong passwords count as failed logins.
#[server]
pub async fn confirm_identity(password: String) -> Result<(), ServerFnError> {
    use crate::ssr::{client_addr, console_error, require_admin, session};
    use domain::sessions::{SessionInfo, INFO};
    let (state, admin) = require_admin().await?;
    domain::accounts::check_password(
        &state.store,
        &state.throttles.logins,
        client_addr(),
        &admin,
        &password,
    )
    .await
    .map_err(|e| match e {
        domain::Error::InvalidCredentials => {
            console_error(domain::Error::Invalid("That is not your password.".into()))
        }
        other => console_error(other),
    })?;
    let session = session().await?;
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
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    domain::accounts::record_step_up(&state.store, &admin)
        .await
        .map_err(console_error)
}

#[server]
pub async fn logout() -> Result<(), ServerFnError> {
    let session = crate::ssr::session().await?;
    session
        .flush()
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
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
    let already = Resource::new(|| (), |_| logged_in());
    let error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| crate::error_message(&e))
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
            <ActionForm action=login attr:class="card login-form">
                <h2>"Log in"</h2>
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="username" required/>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || login.pending().get()>
                    "Log in"
                </button>
            </ActionForm>
            <p class="hint">
                "No account yet? The operator creates the first admin with "
                <code>"server admin create --org NAME --email EMAIL"</code>"."
            </p>
        </main>
    }
}
