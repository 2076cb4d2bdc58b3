//! Discovery endpoints, projections, sorting and POST searches.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn discovery_is_served_without_a_token() {
    let s = TestServer::start().await;
    let spc = s
        .raw(Method::GET, "/scimapi/ServiceProviderConfig", &[], None)
        .await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.headers["content-type"], "application/scim+json");
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);

    let types = s
        .raw(Method::GET, "/scimapi/ResourceTypes", &[], None)
        .await
        .body;
    assert_eq!(types["totalResults"], 2);
    let user_type = s
        .raw(Method::GET, "/scimapi/ResourceTypes/User", &[], None)
        .await
        .body;
    assert_eq!(user_type["endpoint"], "/Users");

    let schemas = s.raw(Method::GET, "/scimapi/Schemas", &[], None).await.body;
    assert_eq!(schemas["totalResults"], 3);
    let group = s
        .raw(
            Method::GET,
            "/scimapi/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
            &[],
            None,
        )
        .await
        .body;
    assert_eq!(group["name"], "Group");
    s.raw(Method::GET, "/scimapi/Schemas/urn:nope", &[], None)
        .await
        .assert_error(404, None);
    s.raw(Method::GET, "/scimapi/ResourceTypes/Device", &[], None)
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn attributes_and_excluded_attributes_on_reads_and_writes() {
    let s = TestServer::start().await;
    let created = s
        .scim(Method::POST, "/Users?attributes=userName", Some(json!({
            "userName": "p@acme.example", "displayName": "P", "name": {"givenName": "G", "familyName": "F"}
        })))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["id", "schemas", "userName"]
    );
    let id = created.body["id"].as_str().unwrap();
    let got = s
        .scim(
            Method::GET,
            &format!("/Users/{id}?attributes=name.givenName,displayName"),
            None,
        )
        .await
        .body;
    assert_eq!(got["name"], json!({"givenName": "G"}));
    assert!(got.get("userName").is_none());
    let got = s
        .scim(
            Method::GET,
            &format!("/Users/{id}?excludedAttributes=name,meta"),
            None,
        )
        .await
        .body;
    assert!(got.get("name").is_none() && got.get("meta").is_none());
    assert_eq!(got["userName"], "p@acme.example");
    let list = s
        .scim(Method::GET, "/Users?attributes=userName", None)
        .await
        .body;
    assert!(list["Resources"][0].get("displayName").is_none());
    s.scim(
        Method::GET,
        "/Users?attributes=a&excludedAttributes=b",
        None,
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn sort_by_and_sort_order() {
    let s = TestServer::start().await;
    for name in ["bravo", "Alpha", "charlie"] {
        s.create_user(&format!("{name}@acme.example")).await;
    }
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let asc = s
        .scim(Method::GET, "/Users?sortBy=userName", None)
        .await
        .body;
    assert_eq!(
        names(&asc),
        [
            "Alpha@acme.example",
            "bravo@acme.example",
            "charlie@acme.example"
        ]
    );
    let desc = s
        .scim(
            Method::GET,
            "/Users?sortBy=userName&sortOrder=descending&count=2",
            None,
        )
        .await
        .body;
    assert_eq!(names(&desc), ["charlie@acme.example", "bravo@acme.example"]);
    assert_eq!(desc["totalResults"], 3);
    // externalId is per integration: it sorts too, users without one last.
    let ext = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "delta@acme.example", "externalId": "a-1"})),
        )
        .await;
    assert_eq!(ext.status, StatusCode::CREATED);
    let by_external = s
        .scim(
            Method::GET,
            "/Users?sortBy=externalId&sortOrder=descending",
            None,
        )
        .await;
    assert_eq!(by_external.status, StatusCode::OK, "{}", by_external.body);
    assert_eq!(names(&by_external.body)[0], "delta@acme.example");
    let groups = s.scim(Method::GET, "/Groups?sortBy=externalId", None).await;
    assert_eq!(groups.status, StatusCode::OK, "{}", groups.body);
    s.scim(Method::GET, "/Users?sortBy=title", None)
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn post_search_on_users_groups_and_root() {
    let s = TestServer::start().await;
    let user = s.create_user("findme@acme.example").await;
    s.create_user("other@acme.example").await;
    s.scim(
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "Findme Group"})),
    )
    .await;
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"FINDME@acme.example\"",
        "attributes": ["userName"],
        "startIndex": 1, "count": 10
    });
    let found = s.scim(Method::POST, "/Users/.search", Some(search)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], user["id"]);
    assert!(found.body["Resources"][0].get("meta").is_none());

    let groups = s
        .scim(
            Method::POST,
            "/Groups/.search",
            Some(json!({"filter": "displayName sw \"findme\""})),
        )
        .await;
    assert_eq!(groups.body["totalResults"], 1);

    let all = s
        .scim(
            Method::POST,
            "/.search",
            Some(json!({"filter": "id pr", "count": 2})),
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["totalResults"], 3);
    assert_eq!(all.body["itemsPerPage"], 2);
    let rest = s
        .scim(
            Method::POST,
            "/.search",
            Some(json!({"filter": "id pr", "startIndex": 3})),
        )
        .await;
    assert_eq!(rest.body["Resources"][0]["displayName"], "Findme Group");

    s.scim(
        Method::POST,
        "/Users/.search",
        Some(json!({"schemas": ["urn:wrong"]})),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    s.scim(
        Method::POST,
        "/Users/.search",
        Some(json!({"filter": "nosuch eq \"x\""})),
    )
    .await
    .assert_error(400, Some("invalidFilter"));
}
