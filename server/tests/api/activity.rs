//! The sync activity log: what each SCIM request sent and was answered, per organisation.

use axum::http::Method;
use domain::activity::{RequestDetail, RequestQuery, RequestRow};
use serde_json::json;

use crate::common::TestServer;

async fn recorded(server: &TestServer, organisation_id: &str) -> Vec<RequestRow> {
    let console = &server.app.state.console;
    console.activity.flush(&console.store).await;
    console
        .store
        .requests(
            organisation_id,
            &RequestQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("activity")
}

/// What a recorded request's row opens to.
async fn detail(server: &TestServer, row: &RequestRow) -> RequestDetail {
    server
        .app
        .state
        .console
        .store
        .request_detail(&server.organisation_id, row.id)
        .await
        .expect("detail")
        .expect("the organisation's request")
}

#[tokio::test]
async fn every_request_is_recorded_with_its_outcome_and_without_passwords() {
    let server = TestServer::start().await;
    let created = server
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "ada@acme.example", "password": "Sup3r-secret"})),
        )
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    server
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "ADA@acme.example"})),
        )
        .await
        .assert_error(409, Some("uniqueness"));
    server
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "password", "value": "Other-secret"}]}),
            ),
        )
        .await;
    let auth = format!("Bearer {}", server.token);
    server
        .raw(
            Method::POST,
            "/scimapi/Users",
            &[
                ("authorization", &auth),
                ("content-type", "application/scim+json"),
            ],
            Some("{not json"),
        )
        .await
        .assert_error(400, Some("invalidSyntax"));
    server
        .scim(
            Method::GET,
            "/Users?filter=userName%20eq%20%22ada%40acme.example%22",
            None,
        )
        .await;

    let rows = recorded(&server, &server.organisation_id).await;
    let outline: Vec<(&str, i64)> = rows.iter().map(|r| (r.method.as_str(), r.status)).collect();
    assert_eq!(
        outline,
        [
            ("GET", 200),
            ("POST", 400),
            ("PATCH", 200),
            ("POST", 409),
            ("POST", 201)
        ],
        "newest first"
    );
    let [list, bad, patch, duplicate, create] = &rows[..] else {
        unreachable!()
    };
    assert_eq!(create.path, "/scimapi/Users");
    assert_eq!(create.resource_type.as_deref(), Some("User"));
    assert_eq!(
        create.resource_id.as_deref(),
        Some(id.as_str()),
        "from Location"
    );
    assert_eq!(create.integration_kind.as_deref(), Some("onelogin"));
    assert_eq!(patch.resource_id.as_deref(), Some(id.as_str()));
    assert!(detail(&server, duplicate)
        .await
        .error
        .unwrap_or_default()
        .starts_with("uniqueness: "));
    let bad_detail = detail(&server, bad).await;
    assert!(bad_detail
        .error
        .as_deref()
        .unwrap_or_default()
        .starts_with("invalidSyntax: "));
    assert_eq!(
        bad_detail.request_body.as_deref(),
        Some("(not JSON: 9 bytes, not stored)")
    );
    assert!(list.path.contains("filter=userName"), "{}", list.path);
    // A read has no error or body to show, only its request id.
    assert!(list.has_detail);
    let read = detail(&server, list).await;
    assert_eq!((read.error, read.request_body), (None, None));
    assert_eq!(read.request_id.map(|id| id.len()), Some(36));
    assert!(create.has_detail);
    assert!(detail(&server, create)
        .await
        .request_body
        .unwrap_or_default()
        .contains("ada@acme.example"));
    let mut details = Vec::new();
    for row in &rows {
        details.push(detail(&server, row).await);
    }
    let everything = format!("{rows:?} {details:?}");
    assert!(!everything.contains("Sup3r-secret") && !everything.contains("Other-secret"));
    assert!(rows.iter().all(|r| r.duration_us > 0));

    // Another organisation's log is its own.
    let other = server.other_organisation_token().await;
    server.scim_with(&other, Method::GET, "/Users", None).await;
    let globex = server
        .app
        .state
        .console
        .store
        .organisation_by_name("Globex")
        .await
        .unwrap()
        .unwrap();
    let theirs = recorded(&server, &globex.id).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(recorded(&server, &server.organisation_id).await.len(), 5);
    let store = &server.app.state.console.store;
    for row in &rows {
        assert_eq!(
            store.request_detail(&globex.id, row.id).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .request_detail(&server.organisation_id, theirs[0].id)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_bad_token_is_not_attributed_to_any_organisation() {
    let server = TestServer::start().await;
    server
        .scim_with("dcpt_wrong", Method::GET, "/Users", None)
        .await
        .assert_error(401, None);
    assert!(recorded(&server, &server.organisation_id).await.is_empty());
}

#[tokio::test]
async fn failed_requests_and_deletions_name_the_resource_their_route_named() {
    let server = TestServer::start().await;
    let id = server.create_user("ada@acme.example").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Bearer {}", server.token);
    // Refused by the body's extractor, before any handler ran.
    server
        .raw(
            Method::PATCH,
            &format!("/scimapi/Users/{id}"),
            &[
                ("authorization", &auth),
                ("content-type", "application/scim+json"),
            ],
            Some("{not json"),
        )
        .await
        .assert_error(400, Some("invalidSyntax"));
    server
        .scim(Method::GET, "/Groups/no-such-group", None)
        .await
        .assert_error(404, None);
    let deleted = server
        .scim(Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(deleted.status.as_u16(), 204);
    server
        .scim(Method::GET, "/Nothing/here", None)
        .await
        .assert_error(404, None);

    let rows = recorded(&server, &server.organisation_id).await;
    let touched: Vec<(i64, Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.status,
                r.resource_type.as_deref(),
                r.resource_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        touched,
        [
            (404, None, None),
            (204, Some("User"), Some(id.as_str())),
            (404, Some("Group"), Some("no-such-group")),
            (400, Some("User"), Some(id.as_str())),
            (201, Some("User"), Some(id.as_str())),
        ],
        "newest first"
    );
}
