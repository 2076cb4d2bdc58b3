//! Nothing secret leaves the server in its logs or its activity log: a real server process
//! logging everything at trace level is driven through a login, a wrong password, a token
//! reset, SCIM requests carrying passwords and a bad token; then neither its log nor the
//! stored activity holds any token, token digest, password or password hash.

use std::process::Stdio;

use leptos::server_fn::ServerFn;
use serde_json::json;
use sqlx::Row;

use crate::crash::{prepare, Server};
use crate::instances::console_call;

const USER_PASSWORD: &str = "Sup3r-Secret-User-Pa55word";
const PATCHED_PASSWORD: &str = "An0ther-Secret-Pa55word";
const WRONG_PASSWORD: &str = "wrong-admin-guess-7781";
const BAD_TOKEN: &str = "dcpt_0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_the_activity_log_hold_no_token_password_or_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "secrets").await;
    let old_token = prepare(&db).await;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_logging(&db, "trace", Stdio::from(log)).await;

    let form = |password: &str| {
        serde_urlencoded::to_string([("email", "ada@example.com"), ("password", password)]).unwrap()
    };
    let (status, _, _) = console_call(
        server.port,
        app::auth::Login::PATH,
        &form(WRONG_PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, cookie, body) = console_call(
        server.port,
        app::auth::Login::PATH,
        &form(crate::console::PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.expect("a session cookie");
    let (status, _, body) = console_call(
        server.port,
        app::integrations::ResetToken::PATH,
        "kind=onelogin",
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token: String = serde_json::from_str(&body).unwrap();

    let (status, user) = server
        .request(
            "POST",
            "/scimapi/Users",
            Some(&token),
            Some(&json!({"userName": "kim@acme.example", "password": USER_PASSWORD})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{user}");
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "password", "value": PATCHED_PASSWORD}]
    });
    let path = format!("/scimapi/Users/{}", user["id"].as_str().unwrap());
    let (status, _) = server
        .request("PATCH", &path, Some(&token), Some(&patch))
        .await
        .unwrap();
    assert_eq!(status, 200);
    for bad in [BAD_TOKEN, old_token.as_str()] {
        let (status, _) = server
            .request("GET", "/scimapi/Users", Some(bad), None)
            .await
            .unwrap();
        assert_eq!(status, 401);
    }
    server.stop();

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let mut plaintext = vec![
        crate::console::PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        USER_PASSWORD.to_owned(),
        PATCHED_PASSWORD.to_owned(),
    ];
    for t in [token.as_str(), old_token.as_str(), BAD_TOKEN] {
        plaintext.push(t[domain::token::PREFIX.len()..].to_owned());
    }
    let mut secrets = vec![
        crate::console::PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        USER_PASSWORD.to_owned(),
        PATCHED_PASSWORD.to_owned(),
        cookie.strip_prefix("console_session=").unwrap().to_owned(),
    ];
    for t in [token.as_str(), old_token.as_str(), BAD_TOKEN] {
        // The token, its secret part alone, and the digest it is stored under.
        secrets.push(t.to_owned());
        secrets.push(t[domain::token::PREFIX.len()..].to_owned());
        secrets.push(domain::token::TokenHash::of(t).as_str().to_owned());
    }
    let hash = sqlx::query("SELECT password_hash FROM admins")
        .fetch_one(&pool)
        .await
        .unwrap();
    let hash: String = hash.get(0);
    // The whole PHC string, and its salt and digest parts.
    secrets.extend(hash.rsplit('$').take(2).map(str::to_owned));
    secrets.push(hash);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("TRACE") && log.contains("DEBUG"),
        "the server logged at trace level"
    );
    assert!(
        log.lines().count() > 50,
        "too little was logged to prove anything"
    );
    let mut activity = String::new();
    for row in sqlx::query("SELECT path, error, request_body FROM scim_requests")
        .fetch_all(&pool)
        .await
        .unwrap()
    {
        for i in 0..3 {
            activity.push_str(&row.get::<Option<String>, _>(i).unwrap_or_default());
            activity.push('\n');
        }
    }
    pool.close().await;
    assert!(activity.contains("kim@acme.example"), "{activity}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log holds {secret:?}");
        assert!(
            !activity.contains(secret.as_str()),
            "the activity log holds {secret:?}"
        );
    }
    // The database as a whole (SQLite file and WAL, or every PostgreSQL row) holds no
    // plaintext token or password either; digests, hashes and session ids belong there.
    let contents =
        String::from_utf8_lossy(&crate::common::database_contents(&db, dir.path()).await)
            .into_owned();
    assert!(contents.contains("kim@acme.example"));
    for secret in &plaintext {
        assert!(
            !contents.contains(secret.as_str()),
            "the database holds {secret:?}"
        );
    }
}
