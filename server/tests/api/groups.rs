//! SCIM Groups: CRUD, membership PATCH in every IdP's dialect, the derived `groups` of a user.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{q, TestServer};

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn users(s: &TestServer, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            s.create_user(&format!("member{i}@acme.example")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    v.sort();
    v
}

async fn patch(s: &TestServer, id: &str, ops: Value) -> crate::common::Reply {
    s.scim(
        Method::PATCH,
        &format!("/Groups/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
    )
    .await
}

#[tokio::test]
async fn create_read_list_replace_delete() {
    let s = TestServer::start().await;
    let u = users(&s, 3).await;
    let created = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": [GROUP], "displayName": "Engineering", "externalId": "okta-00g1",
                "members": [{"value": u[0]}, {"value": u[1], "display": "ignored"}]
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("https://console.example.com/scimapi/Groups/{id}")
    );
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    assert_eq!(member_ids(&created.body), sorted(&[&u[0], &u[1]]));
    assert_eq!(
        created.body["members"][0]["$ref"],
        format!(
            "https://console.example.com/scimapi/Users/{}",
            created.body["members"][0]["value"].as_str().unwrap()
        )
    );

    let got = s
        .scim(
            Method::GET,
            &format!("/Groups/{id}?excludedAttributes=members"),
            None,
        )
        .await;
    assert_eq!(got.body["displayName"], "Engineering");
    assert!(got.body.get("members").is_none());

    let by_name = s
        .scim(
            Method::GET,
            &format!("/Groups?filter={}", q(r#"displayName eq "ENGINEERING""#)),
            None,
        )
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    let by_member = s
        .scim(
            Method::GET,
            &format!(
                "/Groups?filter={}&excludedAttributes=members",
                q(&format!(r#"id eq "{id}" and members eq "{}""#, u[1]))
            ),
            None,
        )
        .await;
    assert_eq!(by_member.body["totalResults"], 1);
    assert!(by_member.body["Resources"][0].get("members").is_none());

    // The user's groups attribute is derived from membership.
    let user = s
        .scim(Method::GET, &format!("/Users/{}", u[0]), None)
        .await
        .body;
    assert_eq!(
        user["groups"],
        json!([{"value": id, "display": "Engineering", "type": "direct",
        "$ref": format!("https://console.example.com/scimapi/Groups/{id}")}])
    );

    let put = s
        .scim(
            Method::PUT,
            &format!("/Groups/{id}"),
            Some(json!({"displayName": "Eng", "members": [{"value": u[2]}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(member_ids(&put.body), vec![u[2].clone()]);
    assert!(
        put.body.get("externalId").is_none(),
        "PUT replaces every attribute"
    );

    assert_eq!(
        s.scim(Method::DELETE, &format!("/Groups/{id}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    s.scim(Method::GET, &format!("/Groups/{id}"), None)
        .await
        .assert_error(404, None);
    s.scim(Method::DELETE, &format!("/Groups/{id}"), None)
        .await
        .assert_error(404, None);
    // The users stay, without the group.
    let user = s
        .scim(Method::GET, &format!("/Users/{}", u[2]), None)
        .await
        .body;
    assert!(user.get("groups").is_none(), "{user}");
}

#[tokio::test]
async fn okta_push_groups_rename_and_membership() {
    let s = TestServer::start().await;
    let u = users(&s, 3).await;
    let created = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "Okta Group", "members": []})),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let reply = patch(&s, &id, json!([
        {"op": "replace", "value": {"id": id, "displayName": "Okta Group Renamed"}},
        {"op": "add", "path": "members", "value": [{"value": u[0], "display": "a"}, {"value": u[1], "display": "b"}]}
    ]))
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Okta Group Renamed");
    assert_eq!(member_ids(&reply.body), sorted(&[&u[0], &u[1]]));

    let reply = patch(
        &s,
        &id,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", u[0])},
            {"op": "add", "path": "members", "value": [{"value": u[2]}]}
        ]),
    )
    .await;
    assert_eq!(member_ids(&reply.body), sorted(&[&u[1], &u[2]]));
    assert_eq!(reply.body["meta"]["version"], "W/\"3\"");
}

#[tokio::test]
async fn entra_remove_with_a_value_array_removes_only_those_members() {
    let s = TestServer::start().await;
    let u = users(&s, 4).await;
    let members: Vec<Value> = u.iter().map(|id| json!({"value": id})).collect();
    let id = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Entra", "members": members})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = patch(
        &s,
        &id,
        json!([{"op": "Remove", "path": "members", "value": [{"value": u[1]}, {"value": u[3]}]}]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(member_ids(&reply.body), sorted(&[&u[0], &u[2]]));
    let reply = patch(
        &s,
        &id,
        json!([{"op": "Replace", "path": "members", "value": [{"value": u[3]}]}]),
    )
    .await;
    assert_eq!(member_ids(&reply.body), vec![u[3].clone()]);
    let reply = patch(&s, &id, json!([{"op": "Remove", "path": "members"}])).await;
    assert!(member_ids(&reply.body).is_empty());
}

#[tokio::test]
async fn a_bad_member_or_operation_changes_nothing() {
    let s = TestServer::start().await;
    let u = users(&s, 2).await;
    let id = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Atomic", "members": [{"value": u[0]}]})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for ops in [
        json!([{"op": "add", "path": "members", "value": [{"value": u[1]}]}, {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]),
        json!([{"op": "replace", "path": "displayName", "value": "X"}, {"op": "replace", "path": "id", "value": "y"}]),
    ] {
        let reply = patch(&s, &id, ops).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    let got = s
        .scim(Method::GET, &format!("/Groups/{id}"), None)
        .await
        .body;
    assert_eq!(got["displayName"], "Atomic");
    assert_eq!(member_ids(&got), vec![u[0].clone()]);
    assert_eq!(got["meta"]["version"], "W/\"1\"");
    // A member of another organisation is not a member candidate here.
    let other = s.other_organisation_token().await;
    let foreign = s
        .scim_with(
            &other,
            Method::POST,
            "/Users",
            Some(json!({"userName": "f@globex.example"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(
        &s,
        &id,
        json!([{"op": "add", "path": "members", "value": [{"value": foreign}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.scim(
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "x", "members": [{"value": foreign}]})),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.scim_with(&other, Method::GET, &format!("/Groups/{id}"), None)
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn if_match_and_if_none_match() {
    let s = TestServer::start().await;
    let user = s.create_user("etag@acme.example").await;
    let path = format!("/scimapi/Users/{}", user["id"].as_str().unwrap());
    let auth = format!("Bearer {}", s.token);
    let body = json!({"userName": "etag@acme.example", "title": "x"}).to_string();
    let stale = s
        .raw(
            Method::PUT,
            &path,
            &[
                ("authorization", &auth),
                ("content-type", "application/scim+json"),
                ("if-match", "W/\"7\""),
            ],
            Some(&body),
        )
        .await;
    stale.assert_error(412, None);
    let fresh = s
        .raw(
            Method::PUT,
            &path,
            &[
                ("authorization", &auth),
                ("content-type", "application/scim+json"),
                ("if-match", "W/\"1\""),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.headers["etag"], "W/\"2\"");
    let unchanged = s
        .raw(
            Method::GET,
            &path,
            &[("authorization", &auth), ("if-none-match", "W/\"2\"")],
            None,
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers["etag"], "W/\"2\"");
    let changed = s
        .raw(
            Method::GET,
            &path,
            &[("authorization", &auth), ("if-none-match", "W/\"1\"")],
            None,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);

    // A tag that is not one of ours matches nothing.
    s.raw(
        Method::PATCH,
        &path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("if-match", "\"not-a-version\""),
        ],
        Some(
            &json!({"Operations": [{"op": "replace", "path": "title", "value": "y"}]}).to_string(),
        ),
    )
    .await
    .assert_error(412, None);
    let any = s
        .raw(
            Method::DELETE,
            &path,
            &[("authorization", &auth), ("if-match", "*")],
            None,
        )
        .await;
    assert_eq!(any.status, StatusCode::NO_CONTENT);
    s.raw(Method::GET, &path, &[("authorization", &auth)], None)
        .await
        .assert_error(404, None);

    let group = s
        .scim(Method::POST, "/Groups", Some(json!({"displayName": "G"})))
        .await
        .body;
    let gpath = format!("/scimapi/Groups/{}", group["id"].as_str().unwrap());
    let patch_body =
        json!({"Operations": [{"op": "replace", "path": "displayName", "value": "H"}]}).to_string();
    s.raw(
        Method::PATCH,
        &gpath,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("if-match", "W/\"5\""),
        ],
        Some(&patch_body),
    )
    .await
    .assert_error(412, None);
    s.raw(
        Method::DELETE,
        &gpath,
        &[("authorization", &auth), ("if-match", "\"9\"")],
        None,
    )
    .await
    .assert_error(412, None);
    assert_eq!(
        s.raw(
            Method::DELETE,
            &gpath,
            &[("authorization", &auth), ("if-match", "W/\"1\"")],
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_list_gives_each_group_its_own_members() {
    let s = TestServer::start().await;
    let u = users(&s, 3).await;
    for (name, members) in [("A", vec![&u[0], &u[1]]), ("B", vec![&u[2]]), ("C", vec![])] {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        s.scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": name, "members": members})),
        )
        .await;
    }
    let list = s
        .scim(Method::GET, "/Groups?sortBy=displayName", None)
        .await
        .body;
    let groups = list["Resources"].as_array().unwrap();
    assert_eq!(member_ids(&groups[0]), sorted(&[&u[0], &u[1]]));
    assert_eq!(member_ids(&groups[1]), vec![u[2].clone()]);
    assert_eq!(groups[2]["members"], json!([]));
}
