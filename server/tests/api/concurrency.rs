//! Concurrent writers: one winner for a userName, no lost group members, no lost updates.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

#[tokio::test]
async fn concurrent_creates_of_one_user_name_give_exactly_one_201() {
    let s = TestServer::start().await;
    let s = &s;
    let names = [
        "race@acme.example",
        "RACE@acme.example",
        "Race@Acme.Example",
    ];
    let replies = futures_join(24, |i| async move {
        s.scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": names[i % names.len()]})),
        )
        .await
        .status
    })
    .await;
    let created = replies
        .iter()
        .filter(|r| **r == StatusCode::CREATED)
        .count();
    let conflicts = replies
        .iter()
        .filter(|r| **r == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 23), "{replies:?}");
}

#[tokio::test]
async fn concurrent_group_patches_lose_no_member() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            s.create_user(&format!("m{i}@acme.example")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let group = s
        .scim(Method::POST, "/Groups", Some(json!({"displayName": "G"})))
        .await
        .body;
    let path = format!(
        "/Groups/{}?excludedAttributes=members",
        group["id"].as_str().unwrap()
    );
    let (s, ids, path) = (&s, &ids, &path);
    let replies = futures_join(16, |i| async move {
        let patch =
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": ids[i]}]}]});
        s.scim(Method::PATCH, path, Some(patch)).await.status
    })
    .await;
    assert!(replies.iter().all(|r| *r == StatusCode::OK), "{replies:?}");
    let full = s
        .scim(
            Method::GET,
            &path.replace("?excludedAttributes=members", ""),
            None,
        )
        .await
        .body;
    assert_eq!(full["members"].as_array().unwrap().len(), 16);
    assert_eq!(full["meta"]["version"], "W/\"17\"");
}

#[tokio::test]
async fn concurrent_patches_of_one_user_lose_no_update() {
    let s = TestServer::start().await;
    let id = s.create_user("busy@acme.example").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, id) = (&s, &id);
    let attributes = [
        "title",
        "nickName",
        "userType",
        "locale",
        "timezone",
        "preferredLanguage",
        "profileUrl",
        "displayName",
    ];
    let replies = futures_join(attributes.len(), |i| async move {
        let patch = json!({"Operations": [{"op": "replace", "path": attributes[i], "value": format!("v{i}")}]});
        s.scim(Method::PATCH, &format!("/Users/{id}"), Some(patch)).await.status
    })
    .await;
    assert!(replies.iter().all(|r| *r == StatusCode::OK), "{replies:?}");
    let user: Value = s
        .scim(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    for (i, attribute) in attributes.iter().enumerate() {
        assert_eq!(user[attribute], format!("v{i}"), "{attribute} lost: {user}");
    }
    assert_eq!(
        user["meta"]["version"],
        format!("W/\"{}\"", attributes.len() + 1)
    );
}

/// Runs `n` requests at once and collects their results in order.
async fn futures_join<F, Fut, T>(n: usize, request: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    futures::future::join_all((0..n).map(request)).await
}
