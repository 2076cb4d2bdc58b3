//! The change history of users and groups: what each SCIM write changed, as the console's
//! user and group pages show it, with no password or token in any entry.

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::common::TestServer;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

impl TestServer {
    /// The history the console shows on the page of the user (or group) `id`, newest
    /// first.
    async fn history_of(&self, group: bool, id: &str) -> Vec<Value> {
        let cookie = self.cookie_of("ada@example.com").await;
        let page = if group {
            self.page(
                app::groups::ConsoleGroup::PATH,
                &[("id", id), ("page", "1")],
                &cookie,
            )
            .await
        } else {
            self.page(app::users::ConsoleUser::PATH, &[("id", id)], &cookie)
                .await
        };
        page["history"].as_array().expect("a history").clone()
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let reply = self.scim(method, path, Some(body)).await;
        assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::CREATED,
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }
}

/// The change of an entry: `{"Changed": {...}}`, `"Created"`, `{"Left": {...}}`, ...
fn what(entry: &Value) -> &Value {
    &entry["what"]
}

fn changed(path: &str, old: Option<&str>, new: Option<&str>) -> Value {
    json!({"Changed": {"path": path, "old": old, "new": new}})
}

#[tokio::test]
async fn a_patch_records_each_attribute_it_changed_and_never_the_password() {
    let s = TestServer::start().await;
    let user = s
        .ok(
            Method::POST,
            "/Users",
            json!({"userName": "ada@acme.example", "title": "Engineer",
                   "password": "Sw0rdfish-on-create"}),
        )
        .await;
    let id = user["id"].as_str().expect("id");
    s.ok(
        Method::PATCH,
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Manager"},
            {"op": "replace", "path": "password", "value": "Sw0rdfish-on-patch"},
            {"op": "replace", "value": {"active": false}}]}),
    )
    .await;

    let history = s.history_of(false, id).await;
    let whats: Vec<&Value> = history.iter().map(what).collect();
    assert_eq!(
        whats,
        [
            &changed("title", Some("Engineer"), Some("Manager")),
            &changed("active", Some("true"), Some("false")),
            &json!("Created"),
        ],
        "{history:#?}"
    );
    for entry in &history {
        assert_eq!(entry["by"], "onelogin");
        assert!(entry["request_id"].is_string(), "{entry}");
    }

    // No password or token anywhere in the history, as stored.
    let bytes = crate::common::database_contents(&s.database_url, s.dir.path()).await;
    let stored = String::from_utf8_lossy(&bytes);
    assert!(stored.contains("Manager"), "the check sees the history");
    for secret in [
        "Sw0rdfish-on-create",
        "Sw0rdfish-on-patch",
        s.token.as_str(),
    ] {
        assert!(!stored.contains(secret), "{secret} is stored");
    }
}

#[tokio::test]
async fn a_put_records_what_differs_from_the_user_it_replaces() {
    let s = TestServer::start().await;
    let user = s
        .ok(
            Method::POST,
            "/Users",
            json!({"userName": "ada@acme.example", "displayName": "Ada",
                   "emails": [{"value": "ada@acme.example", "type": "work", "primary": true}]}),
        )
        .await;
    let id = user["id"].as_str().expect("id");
    s.ok(
        Method::PUT,
        &format!("/Users/{id}"),
        json!({"userName": "ada@acme.example", "displayName": "Ada Lovelace",
               "emails": [{"value": "ada@acme.example", "type": "work", "primary": true},
                          {"value": "ada@home.example", "type": "home"}]}),
    )
    .await;
    let history = s.history_of(false, id).await;
    let whats: Vec<&Value> = history.iter().map(what).collect();
    assert_eq!(
        whats,
        [
            &changed(r#"emails[type eq "home"]"#, None, Some("ada@home.example")),
            &changed("displayName", Some("Ada"), Some("Ada Lovelace")),
            &json!("Created"),
        ],
        "{history:#?}"
    );
}

#[tokio::test]
async fn a_member_removal_is_in_the_group_history_and_the_member_history() {
    let s = TestServer::start().await;
    let ada = s.create_user("ada@acme.example").await;
    let bob = s.create_user("bob@acme.example").await;
    let (ada, bob) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let group = s
        .ok(
            Method::POST,
            "/Groups",
            json!({"displayName": "Sales", "members": [{"value": ada}, {"value": bob}]}),
        )
        .await;
    let group = group["id"].as_str().expect("id");
    s.ok(
        Method::PATCH,
        &format!("/Groups/{group}"),
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
            {"op": "replace", "path": "displayName", "value": "Sales EMEA"}]}),
    )
    .await;
    // A PUT naming the same members changes no membership.
    s.ok(
        Method::PUT,
        &format!("/Groups/{group}"),
        json!({"displayName": "Sales EMEA", "members": [{"value": ada}]}),
    )
    .await;

    let history = s.history_of(true, group).await;
    let whats: Vec<&Value> = history.iter().map(what).collect();
    let member = |kind: &str, id: &str, name: &str| json!({kind: {"user_id": id, "user": name}});
    assert_eq!(whats.len(), 5, "{history:#?}");
    assert_eq!(
        whats[..2],
        [
            &member("Removed", bob, "bob@acme.example"),
            &changed("displayName", Some("Sales"), Some("Sales EMEA")),
        ],
        "the PATCH's changes, newest first: {history:#?}"
    );
    let mut created: Vec<&Value> = whats[2..].to_vec();
    created.sort_by_key(|v| v.to_string());
    assert_eq!(
        created,
        [
            &json!("Created"),
            &member("Added", ada, "ada@acme.example"),
            &member("Added", bob, "bob@acme.example"),
        ]
    );

    let bobs = s.history_of(false, bob).await;
    let whats: Vec<&Value> = bobs.iter().map(what).collect();
    assert_eq!(
        whats,
        [
            &json!({"Left": {"group_id": group, "group": "Sales EMEA"}}),
            &json!({"Joined": {"group_id": group, "group": "Sales"}}),
            &json!("Created"),
        ],
        "{bobs:#?}"
    );
    assert_eq!(bobs[0]["by"], "onelogin");
}

#[tokio::test]
async fn an_erased_user_leaves_no_history_and_a_kept_one_a_deletion() {
    use domain::integrations::{Actor, DeleteMode, IntegrationKind};
    let s = TestServer::start().await;
    let store = &s.app.state.console.store;
    let kept = s.create_user("kept@acme.example").await;
    let kept = kept["id"].as_str().unwrap();
    let reply = s
        .scim(Method::DELETE, &format!("/Users/{kept}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let history = s.history_of(false, kept).await;
    let whats: Vec<&Value> = history.iter().map(what).collect();
    assert_eq!(whats, [&json!("Deleted"), &json!("Created")]);

    domain::integrations::set_delete_mode(
        store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        DeleteMode::Erase,
        &Actor::Operator,
    )
    .await
    .unwrap();
    let erased = s.create_user("erased@acme.example").await;
    let erased = erased["id"].as_str().unwrap();
    let group = s
        .ok(
            Method::POST,
            "/Groups",
            json!({"displayName": "Sales", "members": [{"value": erased}]}),
        )
        .await;
    let group = group["id"].as_str().unwrap();
    let reply = s
        .scim(Method::DELETE, &format!("/Users/{erased}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        domain::history::user_history(store, &s.organisation_id, erased)
            .await
            .unwrap(),
        []
    );
    let group_history = s.history_of(true, group).await;
    assert_eq!(
        group_history.iter().map(what).collect::<Vec<_>>(),
        [&json!("Created")],
        "the erased member's name goes from the group's history too"
    );
}

#[tokio::test]
async fn no_history_is_kept_while_the_activity_log_is_off() {
    let s = TestServer::start_with(&[("ACTIVITY_RETENTION_DAYS", "0")]).await;
    let user = s.create_user("ada@acme.example").await;
    let id = user["id"].as_str().unwrap();
    s.ok(
        Method::PATCH,
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Manager"}]}),
    )
    .await;
    assert_eq!(s.history_of(false, id).await, Vec::<Value>::new());
}
