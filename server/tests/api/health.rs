//! Health and readiness for load balancers: `/healthz` answers while the process lives;
//! `/readyz` answers 503 while the database is unavailable and from the moment SIGTERM
//! arrives, through the drain period, until the process exits.

use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};

use crate::common::TestServer;
use crate::crash::{prepare, Server};

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_credential_and_readyz_follows_the_database() {
    let s = TestServer::start().await;
    for (path, word) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let reply = s.raw(Method::GET, path, &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.body, format!("{word}\n"), "{path}");
        assert_eq!(reply.headers["cache-control"], "no-store");
    }
    // The database goes away: the instance is not ready, and says no more than that.
    if s.database_url.starts_with("sqlite:") {
        for entry in std::fs::read_dir(s.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("test.db") {
                std::fs::remove_file(path).unwrap();
            }
        }
    } else {
        let (server, database) = s.database_url.rsplit_once('/').unwrap();
        let mut admin =
            <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
        sqlx::Executor::execute(
            &mut admin,
            format!("DROP DATABASE {database} WITH (FORCE)").as_str(),
        )
        .await
        .unwrap();
    }
    let started = Instant::now();
    let reply = s.raw(Method::GET, "/readyz", &[], None).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body, "database unavailable\n");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        s.raw(Method::GET, "/healthz", &[], None).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_readyz_answers_503_while_the_instance_drains_then_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "drain").await;
    let token = prepare(&db).await;
    let mut server = Server::start_with(
        &db,
        "warn",
        Stdio::null(),
        &[("SHUTDOWN_DRAIN_SECONDS", "3")],
    )
    .await;
    assert_eq!(
        server
            .request("GET", "/readyz", None, None)
            .await
            .unwrap()
            .0,
        200
    );
    server.terminate();
    let drained = Instant::now();
    // Still serving, but not ready.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server
            .request("GET", "/readyz", None, None)
            .await
            .unwrap()
            .0,
        503
    );
    assert_eq!(
        server
            .request("GET", "/healthz", None, None)
            .await
            .unwrap()
            .0,
        200
    );
    let (status, _) = server
        .request("GET", "/scimapi/Users", Some(&token), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "requests are still served while draining");
    assert!(server.exits_within(Duration::from_secs(10)));
    assert!(drained.elapsed() >= Duration::from_millis(2_500));
}
