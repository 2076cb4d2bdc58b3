//! The server: configuration, the SCIM 2.0 API, the one Axum router that serves it beside the
//! Leptos console, and the accept loop in front of it. `main.rs` adds the command line.

pub mod alerts;
pub mod assets;
pub mod config;
pub mod health;
pub mod listen;
pub mod scim_api;
pub mod telemetry;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use app::ssr::ConsoleState;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use domain::activity::ActivityLog;
use domain::integrations::{RetiredTokenUses, TokenCache};
use domain::last_sync::LastSync;
use domain::store::AdminSessions;
use domain::throttle::{ClientAddr, Throttles};
use domain::Store;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use config::Config;

/// An admin session ends after this long without a request.
const SESSION_IDLE: tower_sessions::cookie::time::Duration =
    tower_sessions::cookie::time::Duration::hours(8);

/// Shared state of every request.
#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub console: ConsoleState,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The running application: its router and the background work it needs.
pub struct App {
    pub router: Router,
    pub state: AppState,
    /// Set when the process starts shutting down: `/readyz` answers 503 from then on.
    pub draining: health::Draining,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The activity log's writer, stopped between two of its flushes.
    activity_writer: tokio::task::JoinHandle<()>,
}

impl App {
    /// Connects to the database (applying migrations) and builds the router.
    pub async fn build(config: &Config) -> Result<Self, domain::Error> {
        let store = Store::open(&config.database_url, &config.store_options()).await?;
        if config.secret_key.is_none() {
            let factors = store.count_confirmed_factors().await?;
            if factors > 0 {
                return Err(domain::Error::invalid(format!(
                    "{factors} second factor(s) are sealed with a SECRET_KEY, and none is set: set \
                     SECRET_KEY or SECRET_KEY_FILE to the key they were set up with"
                )));
            }
        }
        let leptos_options = LeptosOptions::builder()
            .output_name("console")
            .site_root(config.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(config.site_addr)
            .build();
        let state = AppState {
            leptos_options,
            console: ConsoleState {
                store: store.clone(),
                last_sync: LastSync::default(),
                activity: ActivityLog::new(config.activity_retention_days),
                throttles: Throttles::default(),
                tokens: TokenCache::default(),
                retired_uses: RetiredTokenUses::default(),
                step_up: config.step_up,
                secret_key: config.secret_key.clone(),
                scim_base_url: config.scim_base_url(),
                passkeys: domain::passkeys::Passkeys::new(&config.public_url),
                smtp: config.smtp_url.is_some(),
                webhooks: config.alert_settings().webhooks,
            },
        };
        let last_sync = state
            .console
            .last_sync
            .spawn_flusher(store.clone(), Duration::from_secs(1));
        let retired_uses = state
            .console
            .retired_uses
            .spawn_flusher(store.clone(), Duration::from_secs(1));
        let activity_writer = state
            .console
            .activity
            .spawn_writer(store.clone(), Duration::from_millis(250));
        // Sessions live in the same database, so any instance serves any admin. Their table
        // is created by the migrations (0002_sessions).
        let draining = health::Draining::default();
        let (router, sessions) = with_sessions(
            state.clone(),
            config,
            AdminSessions::new(store.clone()),
            draining.clone(),
        );
        let pruning = prune(store.clone(), config.retired_token_days);
        let mut background = vec![last_sync, retired_uses, sessions, pruning];
        background.extend(
            alerts::spawn(store.clone(), config.alert_settings())
                .map_err(domain::Error::invalid)?,
        );
        Ok(Self {
            router,
            state,
            draining,
            background,
            activity_writer,
        })
    }

    /// Stops background work and writes what is still pending (last sync, activity log).
    pub async fn shutdown(self) {
        let console = &self.state.console;
        console.activity.stop_writer(self.activity_writer).await;
        for task in &self.background {
            task.abort();
        }
        console.last_sync.flush(&console.store).await;
        console.retired_uses.flush(&console.store).await;
        console.activity.flush(&console.store).await;
        console.store.close().await;
    }
}

/// Deletes, every ten minutes, the counts of failed logins that are paid off (see
/// `domain::lockout`): they no longer count, so the table holds only current attacks; the
/// digests of tokens retired more than `retired_token_days` ago; and alert deliveries done
/// more than a week ago (their attempts stay in the audit log).
fn prune(store: Store, retired_token_days: u32) -> tokio::task::JoinHandle<()> {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let now = domain::time::now_ms();
            if let Err(e) = store.prune_login_failures(now).await {
                tracing::warn!(error = %domain::error::chain(&e), "could not prune failed logins");
            }
            let cutoff = now - i64::from(retired_token_days) * DAY_MS;
            if let Err(e) = store.prune_retired_tokens(cutoff).await {
                tracing::warn!(error = %domain::error::chain(&e), "could not prune retired tokens");
            }
            if let Err(e) = store.prune_alert_deliveries(now - 7 * DAY_MS).await {
                tracing::warn!(error = %domain::error::chain(&e), "could not prune alert deliveries");
            }
        }
    })
}

/// The router with admin sessions in `sessions`, and the task that deletes expired ones.
fn with_sessions<S>(
    state: AppState,
    config: &Config,
    sessions: S,
    draining: health::Draining,
) -> (Router, tokio::task::JoinHandle<()>)
where
    S: ExpiredDeletion + Clone + Send + Sync + 'static,
{
    let layer = SessionManagerLayer::new(sessions.clone())
        .with_name("console_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));
    let cleanup = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!(error = %domain::error::chain(&e), "could not delete expired sessions");
            }
        }
    });
    (router(state, config, layer, draining), cleanup)
}

fn router<S: tower_sessions::SessionStore + Clone>(
    state: AppState,
    config: &Config,
    sessions: SessionManagerLayer<S>,
    draining: health::Draining,
) -> Router {
    let routes = generate_route_list(app::App);
    let console_state = state.console.clone();
    let console = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            // Bound to the request, so that the page's store jobs keep its deadline and its
            // organisation's lane even where Leptos renders in another task.
            move || provide_context(console_state.for_current_request()),
            {
                let options = state.leptos_options.clone();
                move || app::shell(assets::current_build(&options))
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            |options| app::shell(assets::current_build(&options)),
        ))
        .layer(axum::middleware::from_fn(same_origin_writes))
        .layer(axum::middleware::from_fn(refused_arguments))
        .layer(sessions)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ));
    let health = health::router(state.console.store.clone(), draining);
    let routes = Router::new()
        .nest("/scimapi", scim_api::router(state.clone()))
        .merge(assets::router(&state.leptos_options))
        .merge(console)
        .layer(axum::middleware::from_fn({
            let timeout = config.request_timeout;
            move |req, next| time_limit(timeout, req, next)
        }))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn({
            let hops = config.trusted_proxy_hops;
            move |mut req: Request, next: Next| {
                if let Some(addr) = client_addr(&req, hops) {
                    req.extensions_mut().insert(ClientAddr(addr));
                }
                next.run(req)
            }
        }))
        .with_state(state)
        .merge(health);
    telemetry::observed(routes)
}

/// The client's address: the TCP peer, or behind `hops` trusted proxies the `hops`-th
/// address from the right of `X-Forwarded-For` (each proxy appends the address it was
/// reached from, so entries further left are whatever the client claimed).
fn client_addr(req: &Request, hops: usize) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    forwarded
        .len()
        .checked_sub(hops)
        .and_then(|i| {
            let entry = forwarded[i];
            entry
                .parse::<IpAddr>()
                .ok()
                .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        })
        .or(peer)
}

/// Gives every request a deadline `timeout` away, body upload included: its store jobs
/// carry it (a statement still running then is interrupted and its work rolled back), and a
/// request still running then is answered 408, unless a write of it has started, which then
/// answers itself (see `domain::deadline::run`). So a client trickling a body cannot hold a
/// connection for ever, and a 408 always means that nothing of the request was written.
async fn time_limit(timeout: Duration, req: Request, next: Next) -> Response {
    // Both clones share the request's buffers: nothing is copied on the way through.
    let method = req.method().clone();
    let uri = req.uri().clone();
    match domain::deadline::run(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(domain::deadline::TimedOut) => {
            let path = uri.path();
            tracing::warn!(%method, path, "request timed out");
            if path.starts_with("/scimapi/") {
                scim_api::ApiError::from(scim_api::timed_out()).into_response()
            } else {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    "The request took too long; try again.",
                )
                    .into_response()
            }
        }
    }
}

/// CSRF defence for the console's server functions: a state-changing request that a browser
/// marks as coming from another site, or whose `Origin` is not this host, is refused. Session
/// cookies are also `SameSite=Lax`, so this is the second of two locks.
async fn same_origin_writes(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let headers = req.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let foreign_origin = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or_default();
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            !origin_host.eq_ignore_ascii_case(host.to_str().unwrap_or_default())
        }
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cross_site || foreign_origin {
        return (
            StatusCode::FORBIDDEN,
            Body::from("cross-site request refused"),
        )
            .into_response();
    }
    next.run(req).await
}

/// A server function whose arguments do not deserialize (an unknown integration kind, a
/// page that is not a number) was sent something no console page sends: the client's
/// mistake, answered 400 with a message an admin can read, where Leptos answers 500.
async fn refused_arguments(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let server_fn_error = leptos::server_fn::error::SERVER_FN_ERROR_HEADER;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(server_fn_error)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Leptos's error encoding: the variant, `|`, its text. Small, as Leptos writes it.
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let refused = ["Args|", "MissingArg|"]
        .iter()
        .find_map(|variant| bytes.strip_prefix(variant.as_bytes()));
    let Some(why) = refused else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.status = StatusCode::BAD_REQUEST;
    parts.headers.remove(header::CONTENT_LENGTH);
    // serde quotes names in backticks, which read as noise in the console.
    let message = format!(
        "ServerError|This request was not understood: {}",
        String::from_utf8_lossy(why).replace('`', "")
    );
    Response::from_parts(parts, Body::from(message))
}

/// Collapses repeated slashes in the path before routing: IdPs append `/Users` to a base URL
/// that already ends in `/`, and `//Users` must reach the same endpoint.
pub fn collapse_slashes(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut builder = Request::builder().uri("/");
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut req = builder.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_client_is_the_peer_unless_proxies_are_trusted() {
        let spoofed = request("10.0.0.1:5000", &["1.2.3.4"]);
        assert_eq!(client_addr(&spoofed, 0), ip("10.0.0.1"));
        // One trusted proxy: the address it appended, whatever the client put before it.
        let one = request("10.0.0.1:5000", &["1.2.3.4, 203.0.113.5"]);
        assert_eq!(client_addr(&one, 1), ip("203.0.113.5"));
        // Two proxies, headers split over lines, ports and IPv6.
        let two = request("10.0.0.1:5000", &["1.2.3.4", "[2001:db8::7]:443, 10.0.0.9"]);
        assert_eq!(client_addr(&two, 2), ip("2001:db8::7"));
        // Fewer entries than proxies, or garbage: the peer.
        assert_eq!(client_addr(&one, 3), ip("10.0.0.1"));
        let garbage = request("10.0.0.1:5000", &["not an address"]);
        assert_eq!(client_addr(&garbage, 1), ip("10.0.0.1"));
        let unknown = Request::builder().uri("/").body(Body::empty()).unwrap();
        assert_eq!(client_addr(&unknown, 0), None);
    }
}
