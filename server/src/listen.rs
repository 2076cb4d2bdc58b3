//! The accept loop: HTTP/1.1 with keep-alive, a deadline for request headers and a cap on open
//! connections. It replaces `axum::serve`, which gives hyper no timer, so hyper's header
//! timeout is off there and a client sending half a request holds its connection, and a file
//! descriptor, for ever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use crate::collapse_slashes;

/// How long a client may be slow and how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The longest a client may take to send a request's headers, counted from connecting or
    /// from the end of the previous response; the connection is closed after it. hyper counts
    /// an idle keep-alive connection as one whose next header is late, so this also bounds
    /// how long such a connection stays open.
    pub header_read_timeout: Duration,
    /// Connections served at once, at least 1. Clients past it wait in the kernel's listen
    /// backlog until one closes.
    pub max_connections: usize,
}

/// The pause after `accept` failed for want of resources (`EMFILE`, `ENFILE`, `ENOMEM`):
/// retrying at once would spin on the same error until something is freed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish (idle keep-alive connections are closed at once) and returns.
/// Requests reach the router with the peer's `ConnectInfo<SocketAddr>` and their path's
/// repeated slashes collapsed. A failing connection is logged and never stops the loop.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (permit, stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            next = next_connection(&listener, &open) => next,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router
                .clone()
                .oneshot(collapse_slashes(request.map(Body::new)))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The next connection and the permit it holds while open. The permit is taken before
/// `accept`, so past the cap connections stay in the kernel's backlog, costing us nothing.
async fn next_connection(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, TcpStream, SocketAddr) {
    let permit = Arc::clone(open)
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (permit, stream, peer),
            // That client gave up before we got to it; the next one is unaffected.
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(error = %e, "a connection closed before it was accepted");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept connections; retrying shortly");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
