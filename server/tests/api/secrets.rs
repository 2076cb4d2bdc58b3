//! Nothing secret leaves the server in its logs or its activity log: a real server process
//! logging everything at trace level is driven through a login, a wrong password, a token
//! reset, SCIM requests carrying passwords and a bad token; then neither its log nor the
//! stored activity holds any token, token digest, password or password hash. And every
//! spelling of a password a client can send stays out of the database, the log and the
//! responses, whether the request succeeds or is refused.

use std::process::Stdio;

use leptos::server_fn::ServerFn;
use serde_json::{json, Value};
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

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// One request carrying a password: its method (a POST creates a user, the others go to
/// one), its body given the password, and the status and `scimType` it must get.
struct Spelling {
    method: &'static str,
    body: fn(&str) -> Value,
    status: u16,
    scim_type: Option<&'static str>,
}

fn patch(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// A PATCH setting `path` to the password with `op`.
fn patch_path(op: &str, path: &str, secret: &str) -> Value {
    patch(json!([{"op": op, "path": path, "value": secret}]))
}

/// A PATCH without a path whose value sets `key` to the password.
fn patch_key(key: &str, secret: &str) -> Value {
    let mut value = serde_json::Map::new();
    value.insert(key.into(), json!(secret));
    patch(json!([{"op": "replace", "value": value}]))
}

/// A POST or PUT body setting `key` to the password.
fn body_key(key: &str, secret: &str) -> Value {
    let mut body = serde_json::Map::new();
    body.insert(key.into(), json!(secret));
    Value::Object(body)
}

fn spellings() -> Vec<Spelling> {
    let ok = |method: &'static str, body: fn(&str) -> Value| Spelling {
        method,
        body,
        status: if method == "POST" { 201 } else { 200 },
        scim_type: None,
    };
    let invalid_path = |body: fn(&str) -> Value| Spelling {
        method: "PATCH",
        body,
        status: 400,
        scim_type: Some("invalidPath"),
    };
    vec![
        // The write-only attribute itself: accepted, stored nowhere.
        ok("PATCH", |s| patch_path("replace", "password", s)),
        ok("PATCH", |s| patch_path("Replace", "PASSWORD", s)),
        ok("PATCH", |s| patch_path("add", "Password", s)),
        ok("PATCH", |s| {
            patch_path("replace", &format!("{CORE_USER}:password"), s)
        }),
        ok("PATCH", |s| {
            patch_path("add", &format!("{}:PASSWORD", CORE_USER.to_uppercase()), s)
        }),
        ok("PATCH", |s| {
            patch(json!([{"op": "replace", "Path": "password", "Value": s}]))
        }),
        ok("PATCH", |s| patch_path("remove", "password", s)),
        ok("PATCH", |s| patch_key("password", s)),
        ok("PATCH", |s| patch_key("PassWord", s)),
        ok("PATCH", |s| patch_key(&format!("{CORE_USER}:password"), s)),
        ok("PATCH", |s| patch_key(&format!("{CORE_USER}:PASSWORD"), s)),
        // Nested where no password belongs: the unknown sub-attribute is dropped.
        ok("PATCH", |s| {
            patch(
                json!([{"op": "replace", "path": "name", "value": {"givenName": "Kim", "password": s}}]),
            )
        }),
        ok("PATCH", |s| {
            patch(
                json!([{"op": "replace", "value": {"name": {"givenName": "Kim", "PASSWORD": s}}}]),
            )
        }),
        // Paths under password, or password where the schema has none: nothing to set.
        invalid_path(|s| patch_path("replace", "password.value", s)),
        invalid_path(|s| patch_path("Add", "Password.Value", s)),
        invalid_path(|s| patch_path("replace", &format!("{CORE_USER}:password.value"), s)),
        invalid_path(|s| patch_path("replace", "password[value eq \"x\"]", s)),
        invalid_path(|s| patch_path("add", "PASSWORD[value eq \"x\"].value", s)),
        invalid_path(|s| patch_path("replace", &format!("{CORE_USER}:password[value pr]"), s)),
        invalid_path(|s| patch_path("replace", &format!("{ENTERPRISE_USER}:password"), s)),
        invalid_path(|s| patch_path("remove", "password.value", s)),
        // Paths the engine cannot parse at all.
        invalid_path(|s| patch_path("replace", "password[value eq", s)),
        invalid_path(|s| patch_path("replace", "password.value.extra", s)),
        // The same as keys of a no-path value, and password inside the extension object.
        invalid_path(|s| patch_key("password.value", s)),
        invalid_path(|s| patch_key("PASSWORD.Value", s)),
        invalid_path(|s| patch_key(&format!("{CORE_USER}:password.value"), s)),
        invalid_path(|s| patch_key("password[value eq \"x\"]", s)),
        invalid_path(|s| patch_key(&format!("{ENTERPRISE_USER}:password"), s)),
        // The password as a filter's literal, in a path or a key, parsed or not.
        invalid_path(|s| patch_path("replace", &format!("password[value eq \"{s}\"]"), "x")),
        invalid_path(|s| patch_path("replace", &format!("password[value eq \"{s}\""), "x")),
        invalid_path(|s| patch_key(&format!("password[value eq \"{s}\"]"), "x")),
        invalid_path(|s| {
            patch(json!([{"op": "add", "value": {ENTERPRISE_USER: {"password": s}}}]))
        }),
        invalid_path(|s| {
            patch(json!([{"op": "add", "path": ENTERPRISE_USER, "value": {"Password": s}}]))
        }),
        // One bad operation refuses the whole request: the title stays unchanged.
        invalid_path(|s| {
            patch(json!([
                {"op": "replace", "path": "title", "value": "Changed"},
                {"op": "replace", "path": "password.value", "value": s},
            ]))
        }),
        // Bodies of POST and PUT: attributes outside the schema are not stored.
        ok("POST", |s| body_key("password", s)),
        ok("POST", |s| body_key("PASSWORD", s)),
        ok("POST", |s| body_key(&format!("{CORE_USER}:Password"), s)),
        ok("POST", |s| body_key("password.value", s)),
        ok("POST", |s| {
            body_key(&format!("{CORE_USER}:password.value"), s)
        }),
        ok(
            "POST",
            |s| json!({"name": {"password": s}, "emails": [{"value": "k@x.example", "PASSWORD": s}]}),
        ),
        ok("POST", |s| json!({ENTERPRISE_USER: {"password": s}})),
        ok("PUT", |s| body_key("Password", s)),
        ok("PUT", |s| body_key("password.value", s)),
        ok("PUT", |s| body_key(&format!("{CORE_USER}:password"), s)),
        // A create that fails is logged with its body too.
        Spelling {
            method: "POST",
            body: |s| json!({"displayName": "No userName", "password": s}),
            status: 400,
            scim_type: Some("invalidValue"),
        },
    ]
}

/// Every spelling of a password a client can send, as a PATCH path, a no-path key, nested,
/// in a POST or PUT body, with requests that succeed and requests that fail: plain `password`
/// is accepted and stored nowhere, anything under it is an invalid path, and no password
/// reaches the database (the users, the activity log, any table), the log or a response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_password_is_stored_logged_or_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "spellings").await;
    let token = prepare(&db).await;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_logging(&db, "trace", Stdio::from(log)).await;
    let (status, user) = server
        .request(
            "POST",
            "/scimapi/Users",
            Some(&token),
            Some(&json!({"userName": "kim@acme.example", "title": "Original"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{user}");
    let user_path = format!("/scimapi/Users/{}", user["id"].as_str().unwrap());

    let spellings = spellings();
    // A password of its own for each request, so that a leak names its spelling.
    let secrets: Vec<String> = (0..spellings.len())
        .map(|i| format!("Spelling-{i:02}-Pa55w0rd-q7"))
        .collect();
    let mut responses = String::new();
    let mut before = user;
    for (i, (spelling, secret)) in spellings.iter().zip(&secrets).enumerate() {
        let mut body = (spelling.body)(secret);
        let path = match spelling.method {
            "POST" => {
                if spelling.status == 201 {
                    body["userName"] = json!(format!("user{i}@acme.example"));
                }
                "/scimapi/Users"
            }
            "PUT" => {
                body["userName"] = json!("kim@acme.example");
                user_path.as_str()
            }
            _ => user_path.as_str(),
        };
        let (status, answer) = server
            .request(spelling.method, path, Some(&token), Some(&body))
            .await
            .unwrap();
        assert_eq!(status, spelling.status, "{i}: {body} answered {answer}");
        if let Some(scim_type) = spelling.scim_type {
            assert_eq!(
                answer["scimType"], scim_type,
                "{i}: {body} answered {answer}"
            );
        }
        let (status, after) = server
            .request("GET", &user_path, Some(&token), None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{after}");
        assert!(
            !after.to_string().to_ascii_lowercase().contains("password"),
            "{i}: {after}"
        );
        if spelling.status >= 400 {
            assert_eq!(after, before, "{i}: a refused request changed the user");
        }
        for answer in [&answer, &after] {
            responses.push_str(&answer.to_string());
            responses.push('\n');
        }
        before = after;
    }
    server.stop();

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let bodies: Vec<String> =
        sqlx::query("SELECT request_body FROM scim_requests WHERE method <> 'GET' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<Option<String>, _>(0).unwrap_or_default())
            .collect();
    pool.close().await;
    // The first creates kim; every other request was logged with its body, redacted.
    assert_eq!(bodies.len(), spellings.len() + 1, "{bodies:#?}");
    for body in &bodies[1..] {
        assert!(body.contains(scim::redact::REDACTED), "{body}");
    }

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("TRACE"), "the server logged at trace level");
    let contents =
        String::from_utf8_lossy(&crate::common::database_contents(&db, dir.path()).await)
            .into_owned();
    assert!(contents.contains("kim@acme.example"));
    for secret in &secrets {
        assert!(
            !contents.contains(secret.as_str()),
            "the database holds {secret:?}"
        );
        assert!(!log.contains(secret.as_str()), "the log holds {secret:?}");
        assert!(
            !responses.contains(secret.as_str()),
            "a response holds {secret:?}"
        );
    }
}
