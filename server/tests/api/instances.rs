//! Two server processes on one database (PostgreSQL under `TEST_POSTGRES_URL`, otherwise one
//! SQLite file): any instance serves any admin and any IdP, and a token reset on one is
//! refused by the other from its next request.

use leptos::server_fn::ServerFn;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::crash::{prepare, Server};

/// A console call as a browser on `port` makes it: same-origin form POST, with a cookie.
/// Returns the status, the session cookie it sets (if any) and the body.
pub(crate) async fn console_call(
    port: u16,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n{cookie}\
         Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let session = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, value)| {
            value
                .trim()
                .split(';')
                .next()
                .filter(|c| c.starts_with("console_session="))
                .map(str::to_owned)
        });
    (status, session, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_token_resets_and_uniqueness() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "shared").await;
    let old_token = prepare(&db).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;

    // Log in through A; the session works on B.
    let (status, cookie, body) = console_call(
        a.port,
        app::auth::Login::PATH,
        "email=ada%40example.com&password=correct+horse+battery",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.expect("a session cookie");
    let (status, _, body) = console_call(
        b.port,
        app::integrations::Integration::PATH,
        "kind=onelogin",
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "B does not know A's session: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["has_token"],
        true
    );

    // Both instances accept the token; a reset on A is refused by B at its next request.
    for server in [&a, &b] {
        let (status, _) = server
            .request("GET", "/scimapi/Users", Some(&old_token), None)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let (status, _, body) = console_call(
        a.port,
        app::integrations::ResetToken::PATH,
        "kind=onelogin",
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new_token: String = serde_json::from_str(&body).expect("the new token");
    let (status, _) = b
        .request("GET", "/scimapi/Users", Some(&old_token), None)
        .await
        .unwrap();
    assert_eq!(status, 401, "B still accepts the old token");
    let (status, _) = b
        .request("GET", "/scimapi/Users", Some(&new_token), None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    // Concurrent creates of one userName, spread over both instances: exactly one wins.
    let names = [
        "both@acme.example",
        "BOTH@acme.example",
        "Both@Acme.Example",
    ];
    let (a, b, new_token) = (&a, &b, &new_token);
    let replies = futures::future::join_all((0..16).map(|i| async move {
        let server = if i % 2 == 0 { a } else { b };
        let body = json!({"userName": names[i % names.len()]});
        server
            .request("POST", "/scimapi/Users", Some(new_token), Some(&body))
            .await
            .unwrap()
            .0
    }))
    .await;
    let created = replies.iter().filter(|s| **s == 201).count();
    let conflicts = replies.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (1, 15), "{replies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_an_empty_database_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "empty").await;
    // Four processes race to create the schema (and the session store's table).
    let servers = futures::future::join_all((0..4).map(|_| Server::start(&db))).await;
    let token = prepare(&db).await;
    for server in &servers {
        let (status, body) = server
            .request("GET", "/scimapi/Users", Some(&token), None)
            .await
            .unwrap();
        assert_eq!((status, &body["totalResults"]), (200, &json!(0)), "{body}");
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.expect("database");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("migrations");
    let files = std::fs::read_dir(if db.starts_with("sqlite:") {
        "../migrations/sqlite"
    } else {
        "../migrations/postgres"
    })
    .expect("migrations directory")
    .count();
    assert_eq!(applied, files as i64, "each migration is recorded once");
}

/// Failed logins are counted in the database: wrong passwords spread over two instances
/// lock the address out on both, as one instance would, and the operator's
/// `server admin unlock --email` lets the admin in again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_one_instance_count_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "lockout").await;
    prepare(&db).await;
    let servers = [Server::start(&db).await, Server::start(&db).await];
    let form = |password: &str| {
        serde_urlencoded::to_string([("email", "ada@example.com"), ("password", password)]).unwrap()
    };
    let login = |n: usize, password: &str| {
        let (port, form) = (servers[n % 2].port, form(password));
        async move {
            console_call(port, app::auth::Login::PATH, &form, None)
                .await
                .0
        }
    };
    for n in 0..5 {
        assert_eq!(login(n, "a wrong guess").await, 401, "attempt {n}");
    }
    for n in 0..2 {
        assert_eq!(
            login(n, crate::console::PASSWORD).await,
            429,
            "instance {n}"
        );
    }
    let unlocked = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["admin", "unlock", "--email", "Ada@Example.com"])
        .env("DATABASE_URL", &db)
        .output()
        .expect("server binary");
    assert!(
        unlocked.status.success(),
        "{}",
        String::from_utf8_lossy(&unlocked.stderr)
    );
    assert!(String::from_utf8_lossy(&unlocked.stdout).contains("Unlocked Ada@Example.com"));
    assert_eq!(login(1, crate::console::PASSWORD).await, 200);
}
