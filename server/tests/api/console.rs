//! The console's server functions over HTTP, as the browser calls them: login and sessions,
//! logged-out access, cross-site requests, and the token shown once.

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;

use crate::common::{Reply, TestServer};

pub(crate) const PASSWORD: &str = "correct horse battery";
const HOST: &str = "console.example.com";

/// The `console_session` cookie a response sets, if any.
pub(crate) fn session_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("console_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

impl TestServer {
    /// Calls a server function the way the hydrated console does (same-origin POST).
    pub(crate) async fn call(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        origin: &str,
    ) -> Reply {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", HOST),
            ("origin", origin),
        ];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        self.raw(Method::POST, path, &headers, Some(&body)).await
    }

    pub(crate) async fn login(&self, email: &str, password: &str, cookie: Option<&str>) -> Reply {
        self.call(
            app::auth::Login::PATH,
            &[("email", email), ("password", password)],
            cookie,
            "https://console.example.com",
        )
        .await
    }

    pub(crate) async fn logged_in_cookie(&self) -> String {
        let reply = self.login("ada@example.com", PASSWORD, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        session_cookie(&reply).expect("a session cookie")
    }

    async fn create_token_call(&self, cookie: Option<&str>) -> Reply {
        self.call(
            app::integrations::CreateToken::PATH,
            &[("kind", "onelogin")],
            cookie,
            "https://console.example.com",
        )
        .await
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let s = TestServer::start().await;
    let wrong = s.login("ada@example.com", "not the password", None).await;
    let unknown = s.login("nobody@example.com", PASSWORD, None).await;
    for reply in [&wrong, &unknown] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(
            reply.body.to_string().contains("Wrong email or password."),
            "{}",
            reply.body
        );
        assert!(session_cookie(reply).is_none());
    }
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn login_sets_a_hardened_cookie_with_a_fresh_id_and_logout_ends_it() {
    let s = TestServer::start().await;
    let reply = s.login("ADA@example.com", PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let raw = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(raw.contains(attribute), "{attribute} missing in {raw}");
    }
    let first = session_cookie(&reply).unwrap();

    // Logging in again from a session rotates its id; the old id is worthless.
    let again = s.login("ada@example.com", PASSWORD, Some(&first)).await;
    let second = session_cookie(&again).expect("rotated cookie");
    assert_ne!(first, second);
    let stale = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "onelogin")],
            Some(&first),
            "https://console.example.com",
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let fresh = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "onelogin")],
            Some(&second),
            "https://console.example.com",
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);

    // After logout the cookie no longer opens anything.
    let out = s
        .call(
            app::auth::Logout::PATH,
            &[],
            Some(&second),
            "https://console.example.com",
        )
        .await;
    assert_eq!(out.status, StatusCode::OK);
    let after = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "onelogin")],
            Some(&second),
            "https://console.example.com",
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logged_out_calls_get_401_and_no_data() {
    let s = TestServer::start().await;
    for (path, form) in [
        (
            app::integrations::Integration::PATH,
            vec![("kind", "onelogin")],
        ),
        (
            app::integrations::CreateToken::PATH,
            vec![("kind", "onelogin")],
        ),
        (
            app::integrations::ResetToken::PATH,
            vec![("kind", "onelogin")],
        ),
    ] {
        for cookie in [None, Some("console_session=forged-session-id")] {
            let reply = s
                .call(path, &form, cookie, "https://console.example.com")
                .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
            let body = reply.body.to_string();
            assert!(body.contains("Log in again"), "{body}");
            assert!(
                !body.contains("scimapi") && !body.contains(domain::token::PREFIX),
                "{body}"
            );
        }
    }
    // Nothing was reset behind the refusals: the fixture's token still works.
    assert_eq!(
        s.scim(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let s = TestServer::start().await;
    let cookie = s.logged_in_cookie().await;
    let evil = s
        .call(
            app::integrations::ResetToken::PATH,
            &[("kind", "onelogin")],
            Some(&cookie),
            "https://evil.example",
        )
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    let body = serde_urlencoded::to_string([("kind", "onelogin")]).unwrap();
    let marked = s
        .raw(
            Method::POST,
            app::integrations::ResetToken::PATH,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", HOST),
                ("sec-fetch-site", "cross-site"),
                ("cookie", &cookie),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(marked.status, StatusCode::FORBIDDEN);
    // The original token still works: nothing was reset.
    assert_eq!(
        s.scim(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_from_the_console_are_shown_once_and_never_cached() {
    let s = TestServer::start().await;
    let cookie = s.logged_in_cookie().await;
    // The fixture already created Acme's token: creating again is refused, not a silent reset.
    let again = s.create_token_call(Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.body.to_string().contains("reset it"),
        "{}",
        again.body
    );
    assert_eq!(
        s.scim(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );

    let reset = s
        .call(
            app::integrations::ResetToken::PATH,
            &[("kind", "onelogin")],
            Some(&cookie),
            "https://console.example.com",
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(reset.headers["cache-control"], "no-store");
    let token = reset
        .body
        .as_str()
        .expect("the token as a JSON string")
        .to_owned();
    assert!(token.starts_with(domain::token::PREFIX));
    assert_eq!(
        s.scim_with(&token, Method::GET, "/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    s.scim(Method::GET, "/Users", None)
        .await
        .assert_error(401, None);

    // The tab's data never carries it again.
    let view = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "onelogin")],
            Some(&cookie),
            "https://console.example.com",
        )
        .await;
    assert_eq!(view.body["has_token"], true);
    assert_eq!(
        view.body["scim_url"],
        "https://console.example.com/scimapi/"
    );
    assert!(!view.body.to_string().contains(&token));
}

#[tokio::test]
async fn what_the_console_keeps_of_a_deletion_is_a_per_integration_setting() {
    let s = TestServer::start().await;
    let cookie = s.logged_in_cookie().await;
    let store = &s.app.state.console.store;
    let delete = |user_name: &'static str| {
        let s = &s;
        async move {
            let id = s.create_user(user_name).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let path = format!("/Users/{id}");
            assert_eq!(
                s.scim(Method::DELETE, &path, None).await.status,
                StatusCode::NO_CONTENT
            );
            s.scim(Method::GET, &path, None)
                .await
                .assert_error(404, None);
            id
        }
    };
    // By default the console keeps a record.
    let kept = delete("kept@acme.example").await;
    assert!(store
        .deleted_user(&s.organisation_id, &kept)
        .await
        .unwrap()
        .is_some());

    let set = |mode: &'static str| {
        let cookie = cookie.clone();
        let s = &s;
        async move {
            s.call(
                app::integrations::SetDeleteMode::PATH,
                &[("kind", "onelogin"), ("mode", mode)],
                Some(&cookie),
                "https://console.example.com",
            )
            .await
        }
    };
    for bad in ["shred", "remove", "deactivate"] {
        let reply = set(bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(
            reply.body.to_string().contains("keep or erase"),
            "{}",
            reply.body
        );
    }
    assert_eq!(set("erase").await.status, StatusCode::OK);
    let view = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "onelogin")],
            Some(&cookie),
            "https://console.example.com",
        )
        .await;
    assert_eq!(view.body["delete_erases"], true);
    let erased = delete("erased@acme.example").await;
    assert_eq!(
        store
            .deleted_user(&s.organisation_id, &erased)
            .await
            .unwrap(),
        None
    );
    // The record kept earlier stays.
    assert!(store
        .deleted_user(&s.organisation_id, &kept)
        .await
        .unwrap()
        .is_some());

    assert_eq!(set("keep").await.status, StatusCode::OK);
    let audit = store
        .audit_events(&s.organisation_id, None, 2)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("settings.delete_keeps_record", "ada@example.com"),
            ("settings.delete_erases", "ada@example.com")
        ],
        "newest first"
    );
}

#[tokio::test]
async fn pages_carry_no_store_and_a_content_security_policy_whose_nonce_only_their_scripts_have() {
    let s = TestServer::start().await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let reply = s.raw(Method::GET, "/login", &[("host", HOST)], None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["cache-control"], "no-store");
        let policy = reply.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(policy.contains(directive), "{policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce")
            .to_owned();
        assert!(nonce.len() >= 16, "{nonce}");
        let html = reply.body.as_str().expect("HTML").to_owned();
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{html}");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "every script carries the nonce: {html}"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per page");
}
