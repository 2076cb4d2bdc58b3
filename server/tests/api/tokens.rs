//! Provisioning tokens: only their SHA-256 digest is ever stored, and a reset kills the old
//! token at once.

use crate::common::TestServer;
use axum::http::{Method, StatusCode};
use domain::integrations::{Actor, IntegrationKind};
use serde_json::json;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_database_holds_no_plaintext_token_after_create_and_reset() {
    let s = TestServer::start().await;
    let store = &s.app.state.console.store;
    let created = s.token.clone();
    let reset = domain::integrations::reset_token(
        store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .unwrap()
    .into_plaintext();
    // Use both so every code path that touches them has run.
    s.scim_with(&created, Method::GET, "/Users", None).await;
    s.scim_with(&reset, Method::GET, "/Users", None).await;

    let bytes = crate::common::database_contents(&s.database_url, s.dir.path()).await;
    // The check can see stored data: the current digest is there.
    let digest = domain::token::TokenHash::of(&reset);
    assert!(
        contains(&bytes, digest.as_str()),
        "the token digest should be stored"
    );
    for token in [&created, &reset] {
        let secret = token.strip_prefix(domain::token::PREFIX).unwrap();
        assert!(
            !contains(&bytes, secret),
            "plaintext token found in the database"
        );
    }
}

#[tokio::test]
async fn reset_refuses_the_old_token_from_that_moment() {
    let s = TestServer::start().await;
    let old = s.token.clone();
    assert_eq!(
        s.scim_with(&old, Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    let new = domain::integrations::reset_token(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .unwrap()
    .into_plaintext();
    assert_ne!(old, new);
    s.scim_with(
        &old,
        Method::POST,
        "/Users",
        Some(json!({"userName": "a@acme.example"})),
    )
    .await
    .assert_error(401, None);
    let created = s
        .scim_with(
            &new,
            Method::POST,
            "/Users",
            Some(json!({"userName": "a@acme.example"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
}

#[tokio::test]
async fn create_refuses_to_replace_an_existing_token_and_both_are_audited() {
    let s = TestServer::start().await;
    let store = &s.app.state.console.store;
    let again = domain::integrations::create_token(
        store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await;
    assert!(matches!(again, Err(domain::Error::Conflict(_))));
    // The original token still works.
    assert_eq!(
        s.scim(Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );

    let admin_row = store
        .admin_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let admin = Actor::Admin {
        id: admin_row.id.clone(),
        email: admin_row.email.clone(),
    };
    domain::integrations::reset_token(store, &s.organisation_id, IntegrationKind::OneLogin, &admin)
        .await
        .unwrap();
    let audit = store
        .audit_events(&s.organisation_id, None, 100)
        .await
        .unwrap();
    let summary: Vec<(&str, &str, Option<&str>, Option<&str>)> = audit
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.actor.as_str(),
                a.admin_id.as_deref(),
                a.integration_kind.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "token.reset",
                "ada@example.com",
                Some(admin_row.id.as_str()),
                Some("onelogin")
            ),
            (
                "token.created",
                "operator (command line)",
                None,
                Some("onelogin")
            ),
            ("admin.created", "operator (command line)", None, None),
        ],
        "newest first"
    );
}

#[tokio::test]
async fn a_reset_token_is_refused_even_by_a_request_that_reaches_no_store_job() {
    let s = TestServer::start().await;
    let old = s.token.clone();
    // The token's integration is now known without a lookup; reset it behind the server's
    // back, as another process or instance would.
    assert_eq!(
        s.scim_with(&old, Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    domain::integrations::reset_token(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .unwrap();
    // A bad filter is refused before any store job would check the token: still 401.
    let reply = s
        .scim_with(&old, Method::GET, "/Users?filter=bogus", None)
        .await;
    reply.assert_error(401, None);
    assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"SCIM\"");
    let reply = s
        .scim_with(&old, Method::GET, "/ServiceProviderConfig", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "discovery needs no token");
}

#[tokio::test]
async fn delete_follows_the_setting_as_it_is_now_not_as_it_was_when_the_token_was_first_seen() {
    let s = TestServer::start().await;
    let id = s.create_user("kim@acme.example").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token is cached by now, with the integration's setting then (keep a record).
    domain::integrations::set_delete_mode(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        domain::integrations::DeleteMode::Erase,
        &Actor::Operator,
    )
    .await
    .unwrap();
    let path = format!("/Users/{id}");
    assert_eq!(
        s.scim(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    s.scim(Method::GET, &path, None)
        .await
        .assert_error(404, None);
    let record = s
        .app
        .state
        .console
        .store
        .deleted_user(&s.organisation_id, &id)
        .await
        .unwrap();
    assert_eq!(record, None, "erased, as set when the DELETE came");
}
