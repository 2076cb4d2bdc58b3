//! Server-side support for the server functions: the state they reach through context, the
//! session check, and the one place a domain error becomes a console message.

use domain::accounts::Admin;
use domain::activity::ActivityLog;
use domain::integrations::TokenCache;
use domain::last_sync::LastSync;
use domain::throttle::{retry_after_secs, ClientAddr, Throttles};
use domain::{Error, Store};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use tower_sessions::Session;

use domain::sessions::{SessionInfo, INFO};
/// The session key holding the logged-in admin's id.
pub use domain::store::ADMIN_ID;

/// What server functions need from the server, provided as context.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub store: Store,
    pub last_sync: LastSync,
    pub activity: ActivityLog,
    /// Failed logins and bad SCIM tokens, counted per account and client address.
    pub throttles: Throttles,
    /// The integrations of recently presented SCIM tokens.
    pub tokens: TokenCache,
    /// Requests that presented reset tokens, waiting to be counted.
    pub retired_uses: domain::integrations::RetiredTokenUses,
    /// The SCIM base URL IdPs are given, e.g. `https://console.example.com/scimapi/`.
    pub scim_base_url: String,
    /// How recent a login must be for the most sensitive actions (`STEP_UP_MINUTES`).
    pub step_up: std::time::Duration,
    /// The key second factors' secrets are sealed with (`SECRET_KEY`), if the operator set
    /// one.
    pub secret_key: Option<domain::factors::SecretKey>,
    /// The console as a WebAuthn relying party (passkeys), from `PUBLIC_URL`.
    pub passkeys: domain::passkeys::Passkeys,
    /// Whether the operator set up SMTP (`SMTP_URL`): email alert destinations need it.
    pub smtp: bool,
    /// Where alert webhooks may go (`ALERT_ALLOW_PRIVATE_WEBHOOKS`).
    pub webhooks: domain::alerts::WebhookPolicy,
}

impl ConsoleState {
    /// This state with its store bound to the request running now (see
    /// `Store::for_current_request`).
    pub fn for_current_request(&self) -> Self {
        Self {
            store: self.store.for_current_request(),
            ..self.clone()
        }
    }
}

pub fn state() -> Result<ConsoleState, ServerFnError> {
    use_context::<ConsoleState>().ok_or_else(|| ServerFnError::new("server state is missing"))
}

/// The address the request came from, as the server determined it.
pub fn client_addr() -> Option<ClientAddr> {
    use_context::<http::request::Parts>()?
        .extensions
        .get::<ClientAddr>()
        .copied()
}

pub async fn session() -> Result<Session, ServerFnError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| ServerFnError::new("sessions are not available"))
}

/// The logged-in admin, or a 401 "log in again" error. Notes the session as seen now (at
/// most once a minute: each note is a write).
pub async fn require_admin() -> Result<(ConsoleState, Admin), ServerFnError> {
    let (state, admin, _) = admin_session().await?;
    if admin.must_enrol {
        return Err(console_error(Error::Forbidden(crate::ENROL.to_owned())));
    }
    Ok((state, admin))
}

/// [`require_admin`] for the Account page, which an admin whose organisation requires a
/// second factor may use before they have one: it is where they set it up.
pub async fn require_admin_enrolling() -> Result<(ConsoleState, Admin), ServerFnError> {
    let (state, admin, _) = admin_session().await?;
    Ok((state, admin))
}

/// [`require_admin`] for the most sensitive actions: the admin must have logged in, or
/// confirmed their password, within `STEP_UP_MINUTES`; otherwise a 403 whose message is
/// [`crate::STEP_UP`], which the console answers by asking for the password and trying again.
pub async fn require_recent_login() -> Result<(ConsoleState, Admin), ServerFnError> {
    let (state, admin) = require_recent_login_enrolling().await?;
    if admin.must_enrol {
        return Err(console_error(Error::Forbidden(crate::ENROL.to_owned())));
    }
    Ok((state, admin))
}

/// [`require_recent_login`] for setting up a second factor, which an admin who must set one
/// up may do: a factor added from a stolen session would outlive it (a passkey logs in
/// without the password).
pub async fn require_recent_login_enrolling() -> Result<(ConsoleState, Admin), ServerFnError> {
    let (state, admin, info) = admin_session().await?;
    if info.is_fresh(state.step_up) {
        Ok((state, admin))
    } else {
        Err(console_error(Error::StepUpRequired))
    }
}

/// The logged-in admin and their session's record.
async fn admin_session() -> Result<(ConsoleState, Admin, SessionInfo), ServerFnError> {
    let state = state()?;
    let session = session().await?;
    let id: Option<String> = session.get(ADMIN_ID).await.map_err(session_error)?;
    let admin = match id {
        Some(id) => domain::accounts::admin(&state.store, &id)
            .await
            .map_err(console_error)?,
        None => None,
    };
    let Some(admin) = admin else {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.set_status(http::StatusCode::UNAUTHORIZED);
        }
        return Err(ServerFnError::new("Your session has ended. Log in again."));
    };
    // The rest of the request works for the admin's organisation: its store jobs take that
    // organisation's share.
    state.store.work_for(&admin.organisation_id);
    let now = domain::time::now_ms();
    let info = match session.get::<SessionInfo>(INFO).await.ok().flatten() {
        Some(info) if now - info.last_seen_at < 60_000 => info,
        Some(info) => SessionInfo {
            last_seen_at: now,
            ..info
        },
        // A session from before sessions recorded anything: known from now on, and not
        // recent enough for a step-up.
        None => SessionInfo {
            authenticated_at: 0,
            ..new_session_info()
        },
    };
    session.insert(INFO, &info).await.map_err(session_error)?;
    Ok((state, admin, info))
}

/// What a session logging in now records: when, and the client's address and user agent.
pub fn new_session_info() -> SessionInfo {
    let parts = use_context::<http::request::Parts>();
    let user_agent = parts
        .as_ref()
        .and_then(|p| p.headers.get(http::header::USER_AGENT))
        .and_then(|v| v.to_str().ok());
    SessionInfo::new(client_addr().map(|a| a.0.to_string()), user_agent)
}

/// The handle of the session this request runs in (see `domain::store::session_handle`).
pub async fn current_session_handle() -> Result<String, ServerFnError> {
    let session = session().await?;
    session
        .id()
        .map(|id| domain::store::session_handle(&id))
        .ok_or_else(|| ServerFnError::new("Your session has ended. Log in again."))
}

/// Gives this page a fresh nonce and a Content-Security-Policy that lets only scripts
/// carrying it run (Leptos puts it on its hydration and resource scripts), plus the wasm
/// they load; everything else comes from this origin, and no other site may frame the
/// console.
pub fn content_security_policy() {
    leptos::nonce::provide_nonce();
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        &*nonce,
        watch_reload_source()
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Under `cargo leptos watch` (which sets `LEPTOS_WATCH`), pages reload when a build
/// finishes, told over a WebSocket on cargo-leptos' reload port (`LEPTOS_RELOAD_PORT`,
/// 3001): the page may connect there. Nothing otherwise.
fn watch_reload_source() -> String {
    if std::env::var_os("LEPTOS_WATCH").is_none() {
        return String::new();
    }
    let port = std::env::var("LEPTOS_RELOAD_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(3001);
    format!(" ws://*:{port}")
}

/// Cuts `rows`, fetched newest first with one row more than `page`, to one page; the id
/// to read the next, older page before, or `None` on the last page.
pub fn newest_first_page<T>(rows: &mut Vec<T>, page: i64, id: impl Fn(&T) -> i64) -> Option<i64> {
    let page = usize::try_from(page).unwrap_or(0);
    let more = rows.len() > page;
    rows.truncate(page);
    more.then(|| rows.last().map(id)).flatten()
}

/// Marks a response as never to be stored by a browser or proxy, nor kept in the
/// back/forward cache (it carries, or may come to show, a secret).
pub fn no_store() {
    if let Some(response) = use_context::<ResponseOptions>() {
        response.insert_header(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
    }
}

/// A request the console should not have sent (an unknown filter value): 400 with `message`.
/// An integration kind as stored (`None`: the integration is gone or the kind unknown).
pub fn kind_of(stored: Option<String>) -> Option<model::IntegrationKind> {
    stored.and_then(|k| k.parse().ok())
}

pub fn invalid(message: impl Into<String>) -> ServerFnError {
    console_error(Error::invalid(message))
}

/// A failure of the admin session store: internal, so the admin reads nothing of it.
pub fn session_error(e: tower_sessions::session::Error) -> ServerFnError {
    console_error(Error::internal(
        "the admin session could not be read or written",
        e,
    ))
}

/// Turns a domain error into what the admin reads. Internal failures are logged and shown
/// as a generic message, never with their details.
pub fn console_error(e: Error) -> ServerFnError {
    let status = match &e {
        Error::InvalidCredentials => http::StatusCode::UNAUTHORIZED,
        Error::TooManyAttempts(_) => http::StatusCode::TOO_MANY_REQUESTS,
        Error::Conflict { .. } | Error::Refused(_) => http::StatusCode::CONFLICT,
        Error::NotFound => http::StatusCode::NOT_FOUND,
        Error::Forbidden(_) | Error::StepUpRequired => http::StatusCode::FORBIDDEN,
        Error::Invalid { .. } | Error::Scim(_) | Error::PreconditionFailed => {
            http::StatusCode::BAD_REQUEST
        }
        Error::Timeout => http::StatusCode::REQUEST_TIMEOUT,
        Error::Busy(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        Error::Database(_) | Error::Migration(_) | Error::Internal { .. } => {
            tracing::error!(error = %domain::error::chain(&e), "console request failed");
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(status);
        if let Error::TooManyAttempts(wait) | Error::Busy(wait) = &e {
            response.insert_header(http::header::RETRY_AFTER, retry_after_secs(*wait).into());
        }
    }
    let message = match e {
        Error::InvalidCredentials => "Wrong email or password.".to_owned(),
        Error::TooManyAttempts(wait) => format!(
            "Too many failed attempts. Try again in {} seconds.",
            retry_after_secs(wait)
        ),
        ref e @ Error::Conflict { .. } => e.to_string(),
        Error::Refused(m) | Error::Invalid { detail: m } | Error::Forbidden(m) => m,
        Error::StepUpRequired => crate::STEP_UP.to_owned(),
        Error::NotFound => "Not found.".to_owned(),
        Error::Scim(e) => e.detail,
        Error::PreconditionFailed => "It changed meanwhile; reload and try again.".to_owned(),
        Error::Timeout => {
            "This took too long and was stopped; nothing was changed. Try again.".to_owned()
        }
        Error::Busy(wait) => format!(
            "The service is busy. Try again in {} seconds.",
            retry_after_secs(wait)
        ),
        Error::Database(_) | Error::Migration(_) | Error::Internal { .. } => {
            "Something went wrong on the server. Try again in a moment.".to_owned()
        }
    };
    ServerFnError::new(message)
}
