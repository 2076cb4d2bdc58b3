//! The operator command line: the exact forms operators and scripts rely on.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use axum::http::{Method, StatusCode};

use crate::common::TestServer;

fn server(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server binary");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn admin_create_then_token_reset_prints_only_a_working_token() {
    let s = TestServer::start().await;
    let db = s.database_url.clone();

    let created = server(
        &db,
        &[
            "admin",
            "create",
            "--org",
            "Initech",
            "--email",
            "Peter@Initech.example",
        ],
        Some("a long passphrase\n"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("peter@initech.example"));
    let store = &s.app.state.console.store;
    let admin = domain::accounts::login(store, "peter@initech.example", "a long passphrase")
        .await
        .expect("can log in");

    let reset = server(
        &db,
        &[
            "token",
            "reset",
            "--org",
            "Initech",
            "--integration",
            "onelogin",
        ],
        None,
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let stdout = text(&reset.stdout);
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        !token.contains('\n'),
        "stdout holds the token and only it: {stdout:?}"
    );
    assert!(
        token.starts_with(domain::token::PREFIX) && token.len() == 69,
        "{token:?}"
    );
    // Nothing secret in the logs, even at debug level.
    assert!(!text(&reset.stderr).contains(&token[domain::token::PREFIX.len()..]));

    // The token belongs to Initech, not to Acme.
    let listed = s
        .scim_with(
            token,
            Method::POST,
            "/Users",
            Some(serde_json::json!({"userName": "x@initech.example"})),
        )
        .await;
    assert_eq!(listed.status, StatusCode::CREATED);
    let owner = domain::integrations::authenticate(store, token)
        .await
        .unwrap()
        .expect("owner");
    assert_eq!(owner.organisation_id, admin.organisation_id);
    assert_ne!(owner.organisation_id, s.organisation_id);

    // A second reset replaces it.
    let again = server(
        &db,
        &[
            "token",
            "reset",
            "--org",
            "Initech",
            "--integration",
            "onelogin",
        ],
        None,
    );
    assert!(again.status.success());
    assert_ne!(text(&again.stdout).trim(), token);
    s.scim_with(token, Method::GET, "/Users", None)
        .await
        .assert_error(401, None);
}

#[tokio::test]
async fn mistakes_are_explained_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "cli").await;
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (
            &[
                "admin",
                "create",
                "--org",
                "Acme",
                "--email",
                "a@acme.example",
            ],
            Some("short\n"),
            "at least 12",
        ),
        (
            &[
                "admin",
                "create",
                "--org",
                "Acme",
                "--email",
                "not-an-email",
            ],
            Some("a long passphrase\n"),
            "not an email",
        ),
        (
            &[
                "admin",
                "create",
                "--org",
                "Acme",
                "--email",
                "a@acme.example",
            ],
            Some(""),
            "no password",
        ),
        (
            &[
                "token",
                "reset",
                "--org",
                "Nobody",
                "--integration",
                "onelogin",
            ],
            None,
            "no organisation",
        ),
        (
            &[
                "token",
                "reset",
                "--org",
                "Acme",
                "--integration",
                "myspace",
            ],
            None,
            "unknown integration",
        ),
        (
            &["admin", "create", "--email", "a@acme.example"],
            None,
            "--org",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = server(&db, args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed on stdout: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
