//! What an operator sees of a running server: its log (text, or JSON lines with
//! `LOG_FORMAT=json`), an id on every request, quoted in its response, its log lines and its
//! activity log entry, and metrics in Prometheus' text format at `/metrics`.
//!
//! Metric names follow Prometheus' conventions (base units, `_total` counters) and every label
//! comes from a closed set: a route is its template (`/scimapi/Users/{id}`), never the path
//! a client sent, and no label holds an organisation, an id or a token.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, Response, StatusCode};
use axum::middleware::Next;
use axum::routing::get;
use axum::Router;
use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::scim_api::ScimFailure;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id kept from a client or a proxy; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line per event, span fields inline (the default).
    Text,
    /// For log collectors: one JSON object per line, with the request's span.
    Json,
}

impl LogFormat {
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT") {
            Err(_) => Ok(Self::Text),
            Ok(format) => match format.trim().to_ascii_lowercase().as_str() {
                "" | "text" => Ok(Self::Text),
                "json" => Ok(Self::Json),
                _ => Err(format!("LOG_FORMAT {format:?} must be text or json")),
            },
        }
    }
}

/// Logs to standard error at the levels `RUST_LOG` sets (default `info`, sqlx at `warn`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Bucket bounds of the latency histograms, in seconds: from a cached read to the longest
/// request the server allows.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds of the write group sizes, in jobs (a group holds at most 100).
const JOBS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// Installs the process's metrics recorder; the handle renders what it has recorded. Once per
/// process: the binary calls it, and the in-process tests record nothing.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("store_write_group_jobs".into()), JOBS)
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot set up metrics: {e}"))?;
    describe();
    domain::metrics::describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to its response head), by method, route and status"
    );
    describe_counter!(
        "scim_requests_total",
        "Authenticated SCIM requests, by integration kind and outcome (success, \
         client_error, timeout, busy, server_error)"
    );
    describe_counter!(
        "scim_token_failures_total",
        "SCIM requests refused for their bearer token, by reason (missing, unknown, revoked)"
    );
}

/// `GET /metrics`, rendering `handle`; it also folds recent samples into the histograms
/// every few seconds, as the recorder needs.
pub fn metrics_router(handle: PrometheusHandle) -> (Router, tokio::task::JoinHandle<()>) {
    let upkeep = tokio::spawn({
        let handle = handle.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        }
    });
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    handle.render(),
                )
            }
        }),
    );
    (router, upkeep)
}

/// Wraps every route of `router`: a request id (the one received, if usable, else a new
/// UUID) on the request and its response, a span carrying it around everything the request
/// does, a log line for its answer, and its HTTP metrics.
pub fn observed(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(record_http))
        .layer(axum::middleware::from_fn(quote_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(drop_unusable_request_id))
}

/// Whether a request id sent in can go into logs, error messages and the activity log as it
/// is: 1 to 128 characters that need no quoting anywhere.
fn usable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

/// Removes an `X-Request-Id` that is not [`usable`] (or sent twice), so that the request gets
/// a new one.
async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response<Body> {
    let ids = req.headers().get_all(&REQUEST_ID);
    let mut ids = ids.iter();
    let keep = matches!((ids.next(), ids.next()), (Some(id), None) if usable(id.as_bytes()));
    if !keep {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// The request's id, as the layers above have set it.
pub fn request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned)
}

/// The route a request matched, as its template; `fallback` for those no route matched (the
/// console's files, and pages that do not exist).
fn route(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "fallback".to_owned(), |p| p.as_str().to_owned())
}

fn request_span(req: &Request) -> Span {
    tracing::info_span!(
        "request",
        request_id = request_id(req).as_deref().unwrap_or("-"),
        method = %req.method(),
        route = route(req),
    )
}

/// One line per answer: errors of the server at `error`, refusals (4xx) at `info`, the rest
/// at `debug`. The span gives the request's id, method and route.
fn log_response(response: &Response<Body>, latency: Duration, _: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(status, latency_ms, "answered with a server error");
    } else if status >= 400 {
        tracing::info!(status, latency_ms, "refused");
    } else {
        tracing::debug!(status, latency_ms, "answered");
    }
}

/// A closed set of methods for the metrics' labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn record_http(req: Request, next: Next) -> Response<Body> {
    let method = method_label(req.method());
    let route = route(&req);
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone())
        .increment(1);
    histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(started.elapsed());
    response
}

/// Ends the `detail` of every SCIM error with the request's id, so that an administrator can
/// quote it from their identity provider's report and find the request in the activity log
/// and the server's log. The error is the one the response was made from
/// ([`ScimFailure`]); its body is written again with the id.
async fn quote_request_id(req: Request, next: Next) -> Response<Body> {
    let id = request_id(&req);
    let response = next.run(req).await;
    let (Some(id), Some(ScimFailure(error))) = (id, response.extensions().get::<ScimFailure>())
    else {
        return response;
    };
    let mut quoted = error.clone();
    quoted.detail = format!("{} (request id: {id})", quoted.detail);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(quoted.body().to_string()))
}

/// An authenticated SCIM request's answer, by its integration's kind.
pub fn scim_request(integration: &'static str, status: StatusCode) {
    let outcome = match status.as_u16() {
        408 => "timeout",
        429 | 503 => "busy",
        500.. => "server_error",
        400.. => "client_error",
        _ => "success",
    };
    counter!("scim_requests_total", "integration" => integration, "outcome" => outcome)
        .increment(1);
}

/// Why a SCIM request's bearer token was refused.
#[derive(Debug, Clone, Copy)]
pub enum TokenFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token no integration has.
    Unknown,
    /// A token that was reset while its request ran.
    Revoked,
    /// A token that a reset retired, still presented.
    Retired,
}

pub fn token_failure(reason: TokenFailure) {
    let reason = match reason {
        TokenFailure::Missing => "missing",
        TokenFailure::Unknown => "unknown",
        TokenFailure::Revoked => "revoked",
        TokenFailure::Retired => "retired",
    };
    counter!("scim_token_failures_total", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_that_need_no_quoting_are_kept() {
        for id in [
            "a",
            "7f3c-11",
            "Root=1-67891233-abcdef;",
            "x".repeat(128).as_str(),
        ] {
            assert_eq!(usable(id.as_bytes()), !id.contains(';'), "{id}");
        }
        for id in [
            "",
            "two words",
            "line\nbreak",
            "quote\"",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!usable(id.as_bytes()), "{id:?}");
        }
    }
}
