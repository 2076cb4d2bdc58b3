//! Connections through the real accept loop (`server::listen::serve`) on a real socket in front
//! of the real router: clients that send no complete header are dropped after the header
//! timeout, clients past the connection cap wait until a slot frees, and keep-alive clients are
//! served with their address known. Every wait is bounded, so a regression fails, never hangs.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use server::listen::{serve, ConnectionLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::common::TestServer;

/// The bound on anything expected to happen: reaching it is a failure, not a slow pass.
const SOON: Duration = Duration::from_secs(5);

/// The router of a fresh test server, served on 127.0.0.1 by the accept loop.
struct Listening {
    server: TestServer,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<()>,
}

async fn listen(header_read_timeout: Duration, max_connections: usize) -> Listening {
    let server = TestServer::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let limits = ConnectionLimits {
        header_read_timeout,
        max_connections,
    };
    let served = tokio::spawn(serve(listener, server.app.router.clone(), limits, async {
        let _ = stopped.await;
    }));
    Listening {
        server,
        addr,
        stop,
        served,
    }
}

/// An HTTP/1.1 client on a connection of its own, open while the returned task runs.
async fn client(addr: SocketAddr) -> (SendRequest<Empty<Bytes>>, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driver)
}

/// `GET /scimapi/Users` with `token` on the client's connection; the status once the whole
/// answer is read (so the connection is ready for the next request).
async fn list_users(sender: &mut SendRequest<Empty<Bytes>>, token: &str) -> StatusCode {
    let request = Request::get("/scimapi/Users")
        .header("host", "console.example.com")
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .expect("request");
    let answered = async {
        sender.ready().await.expect("connection open");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        response.into_body().collect().await.expect("body");
        status
    };
    timeout(SOON, answered).await.expect("answered in time")
}

/// Everything the server sent before it closed the connection, which it must do soon.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    // A reset counts as closed as much as an orderly end does.
    let _ = timeout(SOON, stream.read_to_end(&mut received))
        .await
        .expect("the server closed the connection");
    received
}

#[tokio::test]
async fn a_client_that_stops_mid_header_is_disconnected() {
    let l = listen(Duration::from_secs(1), 16).await;
    let mut stream = TcpStream::connect(l.addr).await.expect("connect");
    stream
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send");
    read_until_closed(&mut stream).await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_disconnected() {
    let l = listen(Duration::from_secs(1), 16).await;
    let mut stream = TcpStream::connect(l.addr).await.expect("connect");
    read_until_closed(&mut stream).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_disconnected() {
    let l = listen(Duration::from_secs(1), 16).await;
    let mut stream = TcpStream::connect(l.addr).await.expect("connect");
    let request = format!(
        "GET /scimapi/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        l.server.token
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    // The answer, then the end of the connection no next request arrived on.
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn past_the_cap_a_connection_waits_until_another_closes() {
    // A header timeout far beyond the test, so only closing a connection frees a slot.
    let l = listen(Duration::from_secs(300), 2).await;
    let token = l.server.token.clone();
    let (mut first, first_connection) = client(l.addr).await;
    assert_eq!(list_users(&mut first, &token).await, StatusCode::OK);
    let (mut second, _second_connection) = client(l.addr).await;
    assert_eq!(list_users(&mut second, &token).await, StatusCode::OK);

    // Both stay open (keep-alive). The kernel completes a third connection, but the server
    // does not take it yet.
    let (mut third, _third_connection) = client(l.addr).await;
    let answer = tokio::spawn({
        let token = token.clone();
        async move { list_users(&mut third, &token).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !answer.is_finished(),
        "a third connection was served while two were open"
    );

    first_connection.abort();
    drop(first);
    let status = timeout(SOON, answer)
        .await
        .expect("served once a connection closed")
        .expect("the third client");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_keep_alive_client_is_served_and_known_by_its_address() {
    let l = listen(Duration::from_secs(10), 16).await;
    let (mut idp, connection) = client(l.addr).await;
    assert_eq!(list_users(&mut idp, &l.server.token).await, StatusCode::OK);
    // Bad tokens are throttled per client address, which only the connection knows: without
    // it every answer would be 401. All 22 requests travel on the one connection.
    for _ in 0..20 {
        assert_eq!(
            list_users(&mut idp, "dcpt_guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        list_users(&mut idp, "dcpt_guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Shutting down closes the idle connection and returns.
    let _ = l.stop.send(());
    timeout(SOON, l.served)
        .await
        .expect("serve returned")
        .expect("serve");
    timeout(SOON, connection)
        .await
        .expect("the connection was closed")
        .expect("client connection");
}
