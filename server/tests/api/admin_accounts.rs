//! Admin accounts: step-up before the most sensitive actions, changing one's password,
//! listing and ending sessions, disabling and removing admins, all audited. On SQLite, and
//! on PostgreSQL when `TEST_POSTGRES_URL` is set.

use axum::http::StatusCode;
use leptos::server_fn::ServerFn;
use serde_json::Value;

use crate::common::{Reply, TestServer};
use crate::console::{session_cookie, PASSWORD};
use crate::crash::{prepare, Server};
use crate::instances::console_call;

const ORIGIN: &str = "https://console.example.com";
const BOB_PASSWORD: &str = "bob's long password";

impl TestServer {
    async fn as_admin(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        self.call(path, form, Some(cookie), ORIGIN).await
    }

    /// Logs in as `email`; the session cookie.
    async fn cookie_for(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        session_cookie(&reply).expect("a session cookie")
    }

    /// Adds Bob as a second admin (Ada, just logged in, needs no step-up); Ada's cookie.
    async fn with_bob(&self) -> String {
        let ada = self.cookie_for("ada@example.com", PASSWORD).await;
        let added = self
            .as_admin(
                &ada,
                app::admins::AddAdmin::PATH,
                &[("email", "bob@example.com"), ("password", BOB_PASSWORD)],
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        ada
    }

    /// Makes every session's last login an hour old, as if the admin had been away.
    async fn age_sessions(&self) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.database_url).await.unwrap();
        let table = if self.database_url.starts_with("sqlite:") {
            "tower_sessions"
        } else {
            "tower_sessions.session"
        };
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&format!("SELECT id, data FROM {table}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        for (id, data) in rows {
            // Edited as text: the record's id is a 128-bit number, which a JSON value would
            // round.
            let text = String::from_utf8(data).unwrap();
            // Sessions still waiting for a second factor have no login yet.
            let Some((before, rest)) = text.split_once("\"authenticated_at\":") else {
                continue;
            };
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap();
            let aged = format!(
                "{before}\"authenticated_at\":{}{}",
                domain::time::now_ms() - 3_600_000,
                &rest[digits..]
            );
            sqlx::query(&format!("UPDATE {table} SET data = $1 WHERE id = $2"))
                .bind(aged.into_bytes())
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.app
            .state
            .console
            .store
            .audit_events(&self.organisation_id, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    async fn admin_id(&self, email: &str) -> String {
        self.app
            .state
            .console
            .store
            .admin_by_email(email)
            .await
            .unwrap()
            .expect("admin")
            .id
    }
}

async fn reset(s: &TestServer, cookie: &str) -> Reply {
    s.as_admin(
        cookie,
        app::integrations::ResetToken::PATH,
        &[("kind", "onelogin")],
    )
    .await
}

#[tokio::test]
async fn resetting_a_token_needs_a_recent_login() {
    let s = TestServer::start().await;
    let ada = s.cookie_for("ada@example.com", PASSWORD).await;
    assert_eq!(reset(&s, &ada).await.status, StatusCode::OK);
    s.age_sessions().await;
    let refused = reset(&s, &ada).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.to_string().contains(app::STEP_UP),
        "{}",
        refused.body
    );
    let wrong = s
        .as_admin(
            &ada,
            app::auth::ConfirmIdentity::PATH,
            &[("password", "not my password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(wrong.body.to_string().contains("That is not your password"));
    assert_eq!(
        reset(&s, &ada).await.status,
        StatusCode::FORBIDDEN,
        "a wrong password confirms nothing"
    );
    let confirmed = s
        .as_admin(
            &ada,
            app::auth::ConfirmIdentity::PATH,
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(reset(&s, &ada).await.status, StatusCode::OK);
    let actions = s.audit_actions().await;
    assert_eq!(
        actions[..2],
        ["token.reset", "login.step_up"],
        "{actions:?}"
    );
}

#[tokio::test]
async fn changing_ones_password_ends_ones_other_sessions() {
    let s = TestServer::start().await;
    let here = s.cookie_for("ada@example.com", PASSWORD).await;
    let there = s.cookie_for("ada@example.com", PASSWORD).await;
    let sessions = s.as_admin(&here, app::account::Account::PATH, &[]).await;
    assert_eq!(
        sessions.body["sessions"].as_array().unwrap().len(),
        2,
        "{}",
        sessions.body
    );
    let wrong = s
        .as_admin(
            &here,
            app::account::ChangePassword::PATH,
            &[
                ("current", "not the password"),
                ("new_password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let changed = s
        .as_admin(
            &here,
            app::account::ChangePassword::PATH,
            &[
                ("current", PASSWORD),
                ("new_password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        s.as_admin(&there, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the other session ended"
    );
    let still = s.as_admin(&here, app::account::Account::PATH, &[]).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(still.body["sessions"][0]["current"], true);
    assert_eq!(
        s.login("ada@example.com", PASSWORD, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.cookie_for("ada@example.com", "a new long password").await;
    assert!(s
        .audit_actions()
        .await
        .contains(&"password.changed".to_owned()));
}

#[tokio::test]
async fn an_admin_lists_their_sessions_and_ends_them() {
    let s = TestServer::start().await;
    let here = s.cookie_for("ada@example.com", PASSWORD).await;
    let phone = s.cookie_for("ada@example.com", PASSWORD).await;
    let laptop = s.cookie_for("ada@example.com", PASSWORD).await;
    let view = s.as_admin(&here, app::account::Account::PATH, &[]).await;
    let sessions = view.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3);
    let handle = |s: &Value| s["handle"].as_str().unwrap().to_owned();
    let others: Vec<String> = sessions
        .iter()
        .filter(|s| s["current"] == false)
        .map(handle)
        .collect();
    assert_eq!(others.len(), 2);
    for session in &sessions {
        assert!(session["created"]["at_ms"].as_i64().unwrap() > 0);
        // A handle names a session without being its id.
        assert!(!here.contains(&handle(session)) && !phone.contains(&handle(session)));
    }
    // Ending one ends exactly one (which one, the admin told by its details).
    let ended = s
        .as_admin(
            &here,
            app::account::EndSession::PATH,
            &[("handle", &others[0])],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    let mut alive = 0;
    for cookie in [&phone, &laptop] {
        if s.as_admin(cookie, app::account::Account::PATH, &[])
            .await
            .status
            == StatusCode::OK
        {
            alive += 1;
        }
    }
    assert_eq!(alive, 1);
    let again = s
        .as_admin(
            &here,
            app::account::EndSession::PATH,
            &[("handle", &others[0])],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let rest = s
        .as_admin(&here, app::account::EndOtherSessions::PATH, &[])
        .await;
    assert_eq!(rest.body, 1);
    for cookie in [&phone, &laptop] {
        assert_eq!(
            s.as_admin(cookie, app::account::Account::PATH, &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.as_admin(&here, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::OK
    );
    let actions = s.audit_actions().await;
    assert!(actions.contains(&"session.ended".to_owned()));
    assert!(actions.contains(&"sessions.ended".to_owned()));
}

#[tokio::test]
async fn admins_are_disabled_enabled_and_removed_but_never_the_last_one() {
    let s = TestServer::start().await;
    let ada = s.with_bob().await;
    let bob = s.cookie_for("bob@example.com", BOB_PASSWORD).await;
    let (ada_id, bob_id) = (
        s.admin_id("ada@example.com").await,
        s.admin_id("bob@example.com").await,
    );
    let change = |cookie: &str, id: &str, what: &str| {
        let (cookie, id, what) = (cookie.to_owned(), id.to_owned(), what.to_owned());
        let s = &s;
        async move {
            s.as_admin(
                &cookie,
                app::admins::ChangeAdmin::PATH,
                &[("id", &id), ("change", &what)],
            )
            .await
        }
    };
    // Nobody acts on themselves.
    let own = change(&ada, &ada_id, "disable").await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST, "{}", own.body);
    assert_eq!(
        change(&ada, &bob_id, "disable").await.status,
        StatusCode::OK
    );
    // Bob's session ends at his next request, and he cannot log in.
    assert_eq!(
        s.as_admin(&bob, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let refused = s.login("bob@example.com", BOB_PASSWORD, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.to_string().contains("disabled"));
    let wrong = s.login("bob@example.com", "not bob's password", None).await;
    assert_eq!(
        wrong.status,
        StatusCode::UNAUTHORIZED,
        "only the right password learns it"
    );
    let listed = s.as_admin(&ada, app::admins::ListAdmins::PATH, &[]).await;
    let bob_entry = listed.body["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "bob@example.com")
        .unwrap()
        .clone();
    assert_eq!(bob_entry["disabled"], true);
    assert_eq!(change(&ada, &bob_id, "enable").await.status, StatusCode::OK);
    let bob = s.cookie_for("bob@example.com", BOB_PASSWORD).await;
    // Removing needs a recent login.
    s.age_sessions().await;
    let stale = change(&bob, &ada_id, "remove").await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.body);
    let confirmed = s
        .as_admin(
            &bob,
            app::auth::ConfirmIdentity::PATH,
            &[("password", BOB_PASSWORD)],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(change(&bob, &ada_id, "remove").await.status, StatusCode::OK);
    assert_eq!(
        s.as_admin(&ada, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login("ada@example.com", PASSWORD, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Bob is now the only admin: nobody can disable or remove him.
    let unknown = change(&bob, "no-such-admin", "remove").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let actions = s.audit_actions().await;
    for action in [
        "admin.added",
        "admin.disabled",
        "admin.enabled",
        "admin.removed",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
}

/// A disabled admin's sessions end on every instance at their next request: sessions and
/// admins live in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_admins_sessions_stop_on_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "disable").await;
    prepare(&db).await;
    let store = domain::Store::connect(&db).await.unwrap();
    let ada: domain::accounts::Admin = store
        .admin_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .into();
    domain::accounts::add_admin(&store, &ada, "bob@example.com", BOB_PASSWORD)
        .await
        .unwrap();
    store.close().await;
    let servers = [Server::start(&db).await, Server::start(&db).await];
    let login = |n: usize, email: &str, password: &str| {
        let form = serde_urlencoded::to_string([("email", email), ("password", password)]).unwrap();
        let port = servers[n].port;
        async move {
            let (status, cookie, body) =
                console_call(port, app::auth::Login::PATH, &form, None).await;
            assert_eq!(status, 200, "{body}");
            cookie.expect("a session cookie")
        }
    };
    let ada_cookie = login(0, "ada@example.com", PASSWORD).await;
    let bob_on = [
        login(0, "bob@example.com", BOB_PASSWORD).await,
        login(1, "bob@example.com", BOB_PASSWORD).await,
    ];
    for (n, cookie) in bob_on.iter().enumerate() {
        let (status, _, _) = console_call(
            servers[n].port,
            app::account::Account::PATH,
            "",
            Some(cookie),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, _, admins) = console_call(
        servers[0].port,
        app::admins::ListAdmins::PATH,
        "",
        Some(&ada_cookie),
    )
    .await;
    let admins: Value = serde_json::from_str(&admins).unwrap();
    let bob_id = admins["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "bob@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let form =
        serde_urlencoded::to_string([("id", bob_id.as_str()), ("change", "disable")]).unwrap();
    let (status, _, body) = console_call(
        servers[0].port,
        app::admins::ChangeAdmin::PATH,
        &form,
        Some(&ada_cookie),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for n in [1, 0] {
        for cookie in &bob_on {
            let (status, _, _) = console_call(
                servers[n].port,
                app::account::Account::PATH,
                "",
                Some(cookie),
            )
            .await;
            assert_eq!(status, 401, "instance {n}");
        }
    }
}

/// The codes of an authenticator app set up with `secret` (Base32, as the console shows it).
fn authenticator(secret: &str) -> impl Fn(i64) -> String {
    let app = totp_rs::Builder::new()
        .with_secret(
            data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap();
    move |offset_steps: i64| {
        let at = u64::try_from(domain::time::now_ms() / 1000 + offset_steps * 30).unwrap();
        app.generate(at).to_string()
    }
}

impl TestServer {
    /// Sets up an authenticator app for the admin of `cookie`; its code maker and the
    /// recovery codes.
    async fn enrol(&self, cookie: &str) -> (impl Fn(i64) -> String, Vec<String>) {
        let started = self
            .as_admin(cookie, app::account::StartTotp::PATH, &[("name", "Phone")])
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        assert!(started.body["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
        let code = authenticator(started.body["secret"].as_str().unwrap());
        let confirmed = self
            .as_admin(
                cookie,
                app::account::ConfirmTotp::PATH,
                &[
                    ("factor_id", started.body["factor_id"].as_str().unwrap()),
                    ("code", &code(0)),
                ],
            )
            .await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        let codes = serde_json::from_value(confirmed.body).unwrap();
        (code, codes)
    }

    /// Logs in with a second factor: the cookie, after the password and then `code`.
    async fn login_with(&self, email: &str, password: &str, code: &str) -> (Reply, Option<String>) {
        let first = self.login(email, password, None).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        assert_eq!(first.body, "SecondFactor");
        let pending = session_cookie(&first).expect("a session for the second step");
        let second = self
            .as_admin(
                &pending,
                app::auth::LoginSecondFactor::PATH,
                &[("code", code)],
            )
            .await;
        let cookie = session_cookie(&second).or(Some(pending));
        (second, cookie)
    }
}

#[tokio::test]
async fn a_second_factor_guards_logins_and_step_ups() {
    let s = TestServer::start().await;
    let ada = s.cookie_for("ada@example.com", PASSWORD).await;
    let (code, recovery) = s.enrol(&ada).await;
    assert_eq!(recovery.len(), 10);

    // The password alone no longer logs in: the session waits for a code.
    let first = s.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(first.body, "SecondFactor");
    let waiting = session_cookie(&first).unwrap();
    assert_eq!(
        s.as_admin(&waiting, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = s
        .as_admin(
            &waiting,
            app::auth::LoginSecondFactor::PATH,
            &[("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let next = code(1);
    let done = s
        .as_admin(
            &waiting,
            app::auth::LoginSecondFactor::PATH,
            &[("code", &next)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let ada = session_cookie(&done).unwrap_or(waiting);
    assert_eq!(
        s.as_admin(&ada, app::account::Account::PATH, &[])
            .await
            .status,
        StatusCode::OK
    );
    // The same code does not log in twice.
    let (replayed, _) = s.login_with("ada@example.com", PASSWORD, &next).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.body
    );
    // A recovery code logs in, once.
    let (recovered, _) = s
        .login_with("ada@example.com", PASSWORD, &recovery[0])
        .await;
    assert_eq!(recovered.status, StatusCode::OK, "{}", recovered.body);
    let (again, _) = s
        .login_with("ada@example.com", PASSWORD, &recovery[0])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // Five wrong codes, and the login starts over.
    let first = s.login("ada@example.com", PASSWORD, None).await;
    let waiting = session_cookie(&first).unwrap();
    for _ in 0..5 {
        s.as_admin(
            &waiting,
            app::auth::LoginSecondFactor::PATH,
            &[("code", "111111")],
        )
        .await;
    }
    let late = s
        .as_admin(
            &waiting,
            app::auth::LoginSecondFactor::PATH,
            &[("code", &code(0))],
        )
        .await;
    assert!(late.body.to_string().contains("expired"), "{}", late.body);

    // A step-up needs a code too (here a recovery code: the app's next code is good only
    // once its time comes).
    s.age_sessions().await;
    let password_only = s
        .as_admin(
            &ada,
            app::auth::ConfirmIdentity::PATH,
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        password_only.status,
        StatusCode::BAD_REQUEST,
        "{}",
        password_only.body
    );
    let confirmed = s
        .as_admin(
            &ada,
            app::auth::ConfirmIdentity::PATH,
            &[("password", PASSWORD), ("code", &recovery[1])],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(reset(&s, &ada).await.status, StatusCode::OK);

    let actions = s.audit_actions().await;
    for action in [
        "factor.enrolled",
        "recovery_code.used",
        "login.step_up",
        "login",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
    // Nothing of the secret in the database but sealed.
    let contents = String::from_utf8_lossy(
        &crate::common::database_contents(&s.database_url, s.dir.path()).await,
    )
    .into_owned();
    for code in &recovery {
        assert!(!contents.contains(code.as_str()));
    }
}

#[tokio::test]
async fn an_organisation_can_require_a_second_factor() {
    let s = TestServer::start().await;
    let ada = s.with_bob().await;
    let require = |cookie: &str, required: &str| {
        let (cookie, required) = (cookie.to_owned(), required.to_owned());
        let s = &s;
        async move {
            s.as_admin(
                &cookie,
                app::admins::SetFactorPolicy::PATH,
                &[("required", &required)],
            )
            .await
        }
    };
    // Not before one has a factor oneself.
    let refused = require(&ada, "true").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let _ = s.enrol(&ada).await;
    assert_eq!(require(&ada, "true").await.status, StatusCode::OK);
    // Bob has none: logged in, he may only set one up.
    let bob = s.cookie_for("bob@example.com", BOB_PASSWORD).await;
    let dashboard = s.as_admin(&bob, app::dashboard::Dashboard::PATH, &[]).await;
    assert_eq!(
        dashboard.status,
        StatusCode::FORBIDDEN,
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.to_string().contains(app::ENROL));
    let account = s.as_admin(&bob, app::account::Account::PATH, &[]).await;
    assert_eq!(account.body["must_enrol"], true);
    let _ = s.enrol(&bob).await;
    assert_eq!(
        s.as_admin(&bob, app::dashboard::Dashboard::PATH, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert!(s
        .audit_actions()
        .await
        .contains(&"policy.second_factor_required".to_owned()));
}

/// `server admin reset-factors --email` lets an admin who lost their factors in with their
/// password; a server whose database holds factors refuses to start without the key they
/// are sealed with.
#[tokio::test]
async fn the_operator_resets_factors_and_the_key_is_required() {
    let s = TestServer::start().await;
    let ada = s.cookie_for("ada@example.com", PASSWORD).await;
    let _ = s.enrol(&ada).await;
    let without_key = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("DATABASE_URL", &s.database_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:1")
        .output()
        .expect("server binary");
    assert!(!without_key.status.success());
    assert!(String::from_utf8_lossy(&without_key.stderr).contains("SECRET_KEY"));
    let reset = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["admin", "reset-factors", "--email", "ADA@example.com"])
        .env("DATABASE_URL", &s.database_url)
        .output()
        .expect("server binary");
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert!(String::from_utf8_lossy(&reset.stdout).contains("Removed 1 second factor"));
    let login = s.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_ne!(login.body, "SecondFactor");
    assert!(s
        .audit_actions()
        .await
        .contains(&"factors.reset".to_owned()));
}

/// A factor added from a stolen session would outlive it (a passkey logs in without the
/// password): setting one up needs a recent login too.
#[tokio::test]
async fn setting_up_a_factor_needs_a_recent_login() {
    let s = TestServer::start().await;
    let ada = s.cookie_for("ada@example.com", PASSWORD).await;
    s.age_sessions().await;
    for path in [
        app::account::StartTotp::PATH,
        app::account::StartPasskeyRegistration::PATH,
    ] {
        let refused = s.as_admin(&ada, path, &[("name", "Phone")]).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert!(refused.body.to_string().contains(app::STEP_UP));
    }
    let confirmed = s
        .as_admin(
            &ada,
            app::auth::ConfirmIdentity::PATH,
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let _ = s.enrol(&ada).await;
    let passkey = s
        .as_admin(&ada, app::account::StartPasskeyRegistration::PATH, &[])
        .await;
    assert_eq!(passkey.status, StatusCode::OK, "{}", passkey.body);
    assert!(
        passkey.body["publicKey"]["challenge"].is_string(),
        "{}",
        passkey.body
    );
}
