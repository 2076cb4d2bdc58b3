//! Health and readiness, for load balancers and orchestrators. Neither needs a credential,
//! and neither says more than a word about why.
//! - `GET /healthz`: the process answers (no I/O).
//! - `GET /readyz`: this instance can serve: it is not draining (503 from the moment SIGTERM
//!   arrives, for `SHUTDOWN_DRAIN_SECONDS` before it stops accepting connections), and its
//!   database answers within a second with every migration applied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::Store;

/// How long readiness waits for the database.
const DATABASE_DEADLINE: Duration = Duration::from_secs(1);

/// Whether the instance is draining: shutting down, so that a load balancer stops sending
/// it requests before it stops accepting them.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Health {
    store: Store,
    draining: Draining,
}

pub fn router(store: Store, draining: Draining) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Health { store, draining })
}

async fn healthz() -> Response {
    answer(StatusCode::OK, "ok")
}

async fn readyz(State(health): State<Health>) -> Response {
    if health.draining.is_set() {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    match tokio::time::timeout(DATABASE_DEADLINE, health.store.ready()).await {
        Ok(Ok(true)) => answer(StatusCode::OK, "ready"),
        Ok(Ok(false)) => answer(StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Ok(Err(e)) => {
            tracing::warn!(error = %domain::error::chain(&e), "not ready: the database does not answer");
            answer(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
        Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

fn answer(status: StatusCode, word: &'static str) -> Response {
    let mut response = (status, format!("{word}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
