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
    let new = reset(&s).await;
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
    assert!(matches!(again, Err(domain::Error::Refused(_))));
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
    reset(&s).await;
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

/// Sends a request with `token` from `peer` as an IdP with `user_agent` would.
async fn from_idp(
    s: &TestServer,
    token: &str,
    peer: std::net::IpAddr,
    user_agent: &str,
) -> crate::common::Reply {
    let auth = format!("Bearer {token}");
    s.raw_from(
        peer,
        Method::GET,
        "/scimapi/Users?count=1",
        &[("authorization", &auth), ("user-agent", user_agent)],
        None,
    )
    .await
}

/// Resets the organisation's OneLogin token, as an operator would; the new token.
async fn reset(s: &TestServer) -> String {
    domain::integrations::reset_token(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .unwrap()
    .into_plaintext()
}

/// The OneLogin integration's status, once the requests counted in memory are written.
async fn onelogin_status(s: &TestServer) -> domain::integrations::IntegrationStatus {
    let console = &s.app.state.console;
    console.retired_uses.flush(&console.store).await;
    console.last_sync.flush(&console.store).await;
    domain::integrations::status(
        &console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_old_token_still_sent_after_a_reset_is_refused_but_counted_for_its_integration() {
    let s = TestServer::start().await;
    let console = &s.app.state.console;
    let store = &console.store;
    let old = s.token.clone();
    let idp: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    assert_eq!(
        from_idp(&s, &old, idp, "OneLogin-SCIM/1.0").await.status,
        StatusCode::OK
    );
    let reset = reset(&s).await;
    console.last_sync.flush(store).await;
    let before = domain::time::now_ms();

    // Refused exactly as before, and the old token is never stored in plain.
    for _ in 0..2 {
        from_idp(&s, &old, idp, "OneLogin-SCIM/1.0")
            .await
            .assert_error(401, None);
    }
    let later: std::net::IpAddr = "198.51.100.20".parse().unwrap();
    from_idp(&s, &old, later, "OneLogin-SCIM/1.1")
        .await
        .assert_error(401, None);
    // A token no integration ever had is not attributed to anyone.
    from_idp(&s, "scim_unknown-token-from-nowhere", idp, "Scanner/1.0")
        .await
        .assert_error(401, None);
    console.retired_uses.flush(store).await;

    let status = domain::integrations::status(store, &s.organisation_id, IntegrationKind::OneLogin)
        .await
        .unwrap();
    let stale = status
        .stale_token
        .expect("the old token's requests are shown");
    assert_eq!(stale.requests, 3);
    assert!(stale.last_at >= before);
    assert_eq!(stale.last_address.as_deref(), Some("198.51.100.20"));
    assert_eq!(stale.last_user_agent.as_deref(), Some("OneLogin-SCIM/1.1"));
    // Another integration of the organisation, and another organisation, see nothing.
    let okta = domain::integrations::status(store, &s.organisation_id, IntegrationKind::Okta)
        .await
        .unwrap();
    assert_eq!(okta.stale_token, None);

    // The organisation's activity log lists them, without a body.
    console.activity.flush(store).await;
    let rows = store
        .requests(
            &s.organisation_id,
            &domain::activity::RequestQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refused: Vec<_> = rows.iter().filter(|r| r.status == 401).collect();
    assert_eq!(refused.len(), 3, "{rows:?}");
    for row in refused {
        assert_eq!(row.integration_kind.as_deref(), Some("onelogin"));
        assert_eq!(row.path, "/scimapi/Users?count=1");
        let detail = store
            .request_detail(&s.organisation_id, row.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            detail.error.as_deref(),
            Some(domain::activity::RETIRED_TOKEN)
        );
        assert_eq!(detail.request_body, None);
    }

    // The activity log's "Retired token" filter lists them alone.
    let retired = store
        .requests(
            &s.organisation_id,
            &domain::activity::RequestQuery {
                status: domain::activity::StatusFilter::RetiredToken,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        retired.iter().map(|r| r.id).collect::<Vec<_>>(),
        rows.iter()
            .filter(|r| r.status == 401)
            .map(|r| r.id)
            .collect::<Vec<_>>()
    );

    // Once the IdP has the new token, the warning is gone.
    assert_eq!(
        from_idp(&s, &reset, idp, "OneLogin-SCIM/1.1").await.status,
        StatusCode::OK
    );
    assert_eq!(onelogin_status(&s).await.stale_token, None);
}

#[tokio::test]
async fn retired_tokens_are_forgotten_after_their_retention() {
    let s = TestServer::start().await;
    let console = &s.app.state.console;
    let store = &console.store;
    let old = s.token.clone();
    let old_hash = domain::token::TokenHash::of(&old);
    reset(&s).await;
    assert!(domain::integrations::retired(store, old_hash.as_str())
        .await
        .unwrap()
        .is_some());
    let pruned = store
        .prune_retired_tokens(domain::time::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(
        domain::integrations::retired(store, old_hash.as_str())
            .await
            .unwrap(),
        None
    );
    s.scim_with(&old, Method::GET, "/Users", None)
        .await
        .assert_error(401, None);
    assert_eq!(onelogin_status(&s).await.stale_token, None);
}

#[tokio::test]
async fn an_old_token_is_throttled_like_any_bad_token_and_a_throttled_request_costs_no_lookup() {
    let s = TestServer::start().await;
    let old = s.token.clone();
    reset(&s).await;
    let idp: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..23 {
        statuses.push(from_idp(&s, &old, idp, "OneLogin-SCIM/1.0").await.status);
    }
    let refused = statuses.iter().filter(|&&s| s == StatusCode::UNAUTHORIZED);
    let throttled = statuses
        .iter()
        .filter(|&&s| s == StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (refused.count(), throttled.count()),
        (20, 3),
        "{statuses:?}"
    );
    assert_eq!(
        onelogin_status(&s)
            .await
            .stale_token
            .map(|stale| stale.requests),
        Some(20)
    );
}
