//! DELETE means gone for SCIM (RFC 7644 §3.6), whatever the console keeps: every later
//! operation on the resource is 404, no filter, list, total, search or membership finds it,
//! and its userName is free for a new user. The integration's setting decides only what the
//! console keeps: a read-only record, or nothing (and the activity log's request lines).
//! Each test runs on SQLite, and on PostgreSQL when `TEST_POSTGRES_URL` is set.

use axum::http::{Method, StatusCode};
use domain::activity::{RequestDetail, RequestEntry, RequestQuery, RequestRow};
use domain::integrations::{Actor, DeleteMode, IntegrationKind};
use domain::store::{DeletedQuery, Store};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::common::{database_migrated_to, q, TestServer};

const MODES: [DeleteMode; 2] = [DeleteMode::Keep, DeleteMode::Erase];
const HOST: &str = "https://console.example.com";

/// A server whose OneLogin integration's deletes are set to `mode`.
async fn server_set_to(mode: DeleteMode) -> TestServer {
    let s = TestServer::start().await;
    domain::integrations::set_delete_mode(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        mode,
        &Actor::Operator,
    )
    .await
    .unwrap();
    s
}

fn id_of(reply: &Value) -> String {
    reply["id"].as_str().expect("an id").to_owned()
}

/// Every page of `GET {path}` (a list, with or without a filter) at `count=37`: the ids in
/// order. Each page must agree on `totalResults` and hold `itemsPerPage` resources.
async fn walk(s: &TestServer, path: &str) -> (Vec<String>, u64) {
    let joiner = if path.contains('?') { '&' } else { '?' };
    let (mut ids, mut total, mut start) = (Vec::new(), None, 1);
    loop {
        let page = s
            .scim(
                Method::GET,
                &format!("{path}{joiner}count=37&startIndex={start}"),
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let resources = page.body["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(page.body["itemsPerPage"], resources.len());
        let this_total = page.body["totalResults"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(this_total), this_total, "{path}");
        if resources.is_empty() {
            return (ids, this_total);
        }
        ids.extend(resources.iter().map(id_of));
        start += 37;
    }
}

/// The organisation's recorded requests on `resource_id`, each with what it opens to, once
/// the log is written.
async fn history(s: &TestServer, resource_id: &str) -> Vec<(RequestRow, RequestDetail)> {
    let console = &s.app.state.console;
    console.activity.flush(&console.store).await;
    let rows = console
        .store
        .requests(
            &s.organisation_id,
            &RequestQuery {
                resource_id: Some(resource_id),
                limit: 100,
                ..RequestQuery::default()
            },
        )
        .await
        .unwrap();
    let mut history = Vec::new();
    for row in rows {
        let detail = console
            .store
            .request_detail(&s.organisation_id, row.id)
            .await
            .unwrap()
            .expect("the row's detail");
        history.push((row, detail));
    }
    history
}

#[tokio::test]
async fn a_deleted_user_is_gone_for_scim_whatever_the_console_keeps() {
    for mode in MODES {
        let s = server_set_to(mode).await;
        let mut ids = Vec::new();
        for i in 0..100 {
            let user = json!({
                "userName": format!("user-{i:03}@acme.example"),
                "externalId": format!("ext-{i:03}"),
                "emails": [{"value": format!("u{i:03}@mail.example"), "type": "work", "primary": true}],
            });
            let reply = s.scim(Method::POST, "/Users", Some(user)).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            ids.push(id_of(&reply.body));
        }
        // User 40 is suspended, then deleted, as OneLogin does.
        let (target, path) = (ids[40].clone(), format!("/Users/{}", ids[40]));
        let suspend = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]});
        assert_eq!(
            s.scim(Method::PATCH, &path, Some(suspend.clone()))
                .await
                .status,
            StatusCode::OK
        );
        let group = s
            .scim(
                Method::POST,
                "/Groups",
                Some(json!({"displayName": "Staff", "members": [{"value": target}, {"value": ids[41]}]})),
            )
            .await;
        assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
        let group = id_of(&group.body);

        // A DELETE on a version the client no longer has changes nothing.
        let auth = format!("Bearer {}", s.token);
        let stale = s
            .raw(
                Method::DELETE,
                &format!("/scimapi{path}"),
                &[("authorization", &auth), ("if-match", "W/\"1\"")],
                None,
            )
            .await;
        stale.assert_error(412, None);
        assert_eq!(
            s.scim(Method::GET, &path, None).await.status,
            StatusCode::OK
        );

        assert_eq!(
            s.scim(Method::DELETE, &path, None).await.status,
            StatusCode::NO_CONTENT,
            "{mode:?}"
        );
        for (method, body) in [
            (Method::GET, None),
            (
                Method::PUT,
                Some(json!({"userName": "user-040@acme.example", "active": true})),
            ),
            (Method::PATCH, Some(suspend.clone())),
            (Method::DELETE, None),
        ] {
            s.scim(method, &path, body).await.assert_error(404, None);
        }

        for filter in [
            r#"userName eq "user-040@acme.example""#,
            r#"externalId eq "ext-040""#,
            r#"emails.value eq "u040@mail.example""#,
            r#"emails[type eq "work"].value eq "u040@mail.example""#,
            r#"userName sw "user-" and active eq false"#,
        ] {
            let found = s
                .scim(Method::GET, &format!("/Users?filter={}", q(filter)), None)
                .await;
            assert_eq!(found.body["totalResults"], 0, "{mode:?} {filter}");
            let searched = s
                .scim(
                    Method::POST,
                    "/Users/.search",
                    Some(
                        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": filter}),
                    ),
                )
                .await;
            assert_eq!(searched.body["totalResults"], 0, "{mode:?} {filter}");
        }
        for list in [
            "/Users".to_owned(),
            format!("/Users?filter={}", q(r#"userName sw "user-""#)),
            "/Users?sortBy=userName&sortOrder=descending".to_owned(),
        ] {
            let (listed, total) = walk(&s, &list).await;
            assert_eq!(total, 99, "{mode:?} {list}");
            assert_eq!(listed.len(), 99, "{mode:?} {list}");
            assert!(!listed.contains(&target), "{mode:?} {list}");
        }

        // Its group no longer lists it, and says so in a new version.
        let staff = s.scim(Method::GET, &format!("/Groups/{group}"), None).await;
        let members: Vec<&str> = staff.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        assert_eq!(members, [ids[41].as_str()], "{mode:?}");
        assert_eq!(staff.body["meta"]["version"], "W/\"2\"", "{mode:?}");

        // The userName and externalId are free: the same user is created anew.
        let again = s
            .scim(
                Method::POST,
                "/Users",
                Some(json!({"userName": "USER-040@acme.example", "externalId": "ext-040"})),
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{mode:?} {}", again.body);
        assert_ne!(id_of(&again.body), target);
        let found = s
            .scim(
                Method::GET,
                &format!("/Users?filter={}", q(r#"externalId eq "ext-040""#)),
                None,
            )
            .await;
        assert_eq!(found.body["Resources"][0]["id"], again.body["id"]);

        // What the console keeps.
        let store = &s.app.state.console.store;
        let record = store
            .deleted_user(&s.organisation_id, &target)
            .await
            .unwrap();
        let history = history(&s, &target).await;
        assert!(history
            .iter()
            .any(|(r, _)| r.method == "DELETE" && r.status == 204));
        let (_, created) = history.iter().find(|(r, _)| r.method == "POST").unwrap();
        match mode {
            DeleteMode::Keep => {
                let record = record.expect("a record of the deleted user");
                assert_eq!(record.deleted_by.as_deref(), Some("onelogin"));
                assert_eq!(record.created_by.as_deref(), Some("onelogin"));
                assert_eq!(record.external_id.as_deref(), Some("ext-040"));
                assert!(record.attributes.contains("u040@mail.example"));
                let groups: Vec<(String, String)> = serde_json::from_str(&record.groups).unwrap();
                assert_eq!(groups, [(group.clone(), "Staff".to_owned())]);
                assert!(created
                    .request_body
                    .as_deref()
                    .unwrap()
                    .contains("u040@mail.example"));
            }
            DeleteMode::Erase => {
                assert_eq!(record, None);
                assert!(
                    history
                        .iter()
                        .all(|(_, d)| d.error.is_none() && d.request_body.is_none()),
                    "{history:?}"
                );
                let (total, _) = store
                    .deleted_users(&s.organisation_id, DeletedQuery::default())
                    .await
                    .unwrap();
                assert_eq!(total, 0);
            }
        }
    }
}

#[tokio::test]
async fn a_deleted_group_is_gone_for_scim_and_its_members_stay() {
    for mode in MODES {
        let s = server_set_to(mode).await;
        let (ann, bob) = (
            id_of(&s.create_user("ann@acme.example").await),
            id_of(&s.create_user("bob@acme.example").await),
        );
        let created = s
            .scim(
                Method::POST,
                "/Groups",
                Some(json!({"displayName": "Finance", "externalId": "g-1",
                    "members": [{"value": ann}, {"value": bob}]})),
            )
            .await;
        let (group, path) = (
            id_of(&created.body),
            format!("/Groups/{}", id_of(&created.body)),
        );
        assert_eq!(
            s.scim(Method::DELETE, &path, None).await.status,
            StatusCode::NO_CONTENT
        );
        let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]});
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(json!({"displayName": "Finance"}))),
            (Method::PATCH, Some(rename)),
            (Method::DELETE, None),
        ] {
            s.scim(method, &path, body).await.assert_error(404, None);
        }
        for filter in [r#"displayName eq "Finance""#, r#"externalId eq "g-1""#] {
            let found = s
                .scim(Method::GET, &format!("/Groups?filter={}", q(filter)), None)
                .await;
            assert_eq!(found.body["totalResults"], 0, "{mode:?} {filter}");
        }
        assert_eq!(
            s.scim(Method::GET, "/Groups", None).await.body["totalResults"],
            0
        );
        let ann_now = s.scim(Method::GET, &format!("/Users/{ann}"), None).await;
        assert_eq!(ann_now.status, StatusCode::OK);
        assert_eq!(ann_now.body.get("groups"), None, "{}", ann_now.body);
        let again = s
            .scim(
                Method::POST,
                "/Groups",
                Some(json!({"displayName": "Finance", "externalId": "g-1"})),
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_ne!(id_of(&again.body), group);

        let record = s
            .app
            .state
            .console
            .store
            .deleted_group(&s.organisation_id, &group)
            .await
            .unwrap();
        match mode {
            DeleteMode::Keep => {
                let record = record.expect("a record of the deleted group");
                assert_eq!(record.display_name, "Finance");
                assert_eq!(record.member_count, 2);
                assert_eq!(record.external_id.as_deref(), Some("g-1"));
                let members: Vec<(String, String, Option<String>, i64)> =
                    serde_json::from_str(&record.members).unwrap();
                assert_eq!(
                    members,
                    [
                        (ann.clone(), "ann@acme.example".into(), None, 1),
                        (bob.clone(), "bob@acme.example".into(), None, 1)
                    ]
                );
            }
            DeleteMode::Erase => assert_eq!(record, None),
        }
    }
}

/// A request on a resource that reaches the activity log after the resource was erased (it
/// raced with the DELETE, or another instance recorded it) is stored without its body.
#[tokio::test]
async fn requests_on_an_erased_user_that_reach_the_log_late_keep_no_body() {
    let s = server_set_to(DeleteMode::Erase).await;
    let (gone, kept) = (
        id_of(&s.create_user("gone@acme.example").await),
        id_of(&s.create_user("kept@acme.example").await),
    );
    assert_eq!(
        s.scim(Method::DELETE, &format!("/Users/{gone}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let console = &s.app.state.console;
    let integration_id = console
        .store
        .integration(&s.organisation_id, "onelogin")
        .await
        .unwrap()
        .unwrap()
        .id;
    for id in [&gone, &kept] {
        console.activity.record(
            RequestEntry {
                organisation_id: s.organisation_id.clone(),
                integration_id: integration_id.clone(),
                at: domain::time::now_ms(),
                method: "PUT".into(),
                path: format!("/scimapi/Users/{id}"),
                status: 200,
                resource_type: Some("User"),
                resource_id: Some(id.clone()),
                duration_us: 1,
                error: None,
                request_body: None,
                request_id: None,
            },
            Some(r#"{"userName": "late@acme.example", "title": "Late"}"#.into()),
        );
    }
    let late = |history: &[(RequestRow, RequestDetail)]| {
        history
            .iter()
            .find(|(r, _)| r.method == "PUT")
            .expect("the late entry")
            .1
            .request_body
            .clone()
    };
    assert_eq!(late(&history(&s, &gone).await), None);
    assert!(late(&history(&s, &kept).await).unwrap().contains("Late"));
}

#[tokio::test]
async fn the_console_lists_deleted_users_and_groups_apart_and_counts_them() {
    let s = server_set_to(DeleteMode::Keep).await;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let user = json!({"userName": format!("{name}@acme.example"),
            "name": {"givenName": name.to_uppercase(), "familyName": "Example"}});
        ids.push(id_of(
            &s.scim(Method::POST, "/Users", Some(user)).await.body,
        ));
    }
    let group = id_of(
        &s.scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Ops", "members": [{"value": ids[0]}]})),
        )
        .await
        .body,
    );
    for path in [
        format!("/Groups/{group}"),
        format!("/Users/{}", ids[0]),
        format!("/Users/{}", ids[1]),
    ] {
        assert_eq!(
            s.scim(Method::DELETE, &path, None).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let cookie = s.logged_in_cookie().await;
    let call = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (s, cookie) = (&s, cookie.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = s.call(path, &form, Some(&cookie), HOST).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            reply.body
        }
    };
    let users = |status: &str, search: &str| {
        call(
            app::users::ListConsoleUsers::PATH,
            vec![
                ("search", search.to_owned()),
                ("status", status.to_owned()),
                ("source", String::new()),
                ("sort", "newest".to_owned()),
                ("page", "1".to_owned()),
            ],
        )
    };
    let deleted = users("deleted", "").await;
    assert_eq!(deleted["total"], 2);
    let names: Vec<&str> = deleted["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bob@acme.example", "ann@acme.example"],
        "newest deletion first"
    );
    assert_eq!(deleted["users"][0]["deleted"]["by"], "onelogin");
    assert_eq!(users("all", "").await["total"], 1);
    // The search looks where it looks for current users: here, the given name.
    let found = users("deleted", "BOB").await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["id"], ids[1].as_str());
    assert_eq!(users("deleted", "cy").await["total"], 0);

    let groups = call(
        app::groups::ListConsoleGroups::PATH,
        vec![
            ("search", String::new()),
            ("status", "deleted".to_owned()),
            ("sort", "display".to_owned()),
            ("page", "1".to_owned()),
        ],
    )
    .await;
    assert_eq!(groups["total"], 1);
    assert_eq!(groups["groups"][0]["members"], 1);
    let record = call(
        app::groups::ConsoleGroup::PATH,
        vec![("id", group.clone()), ("page", "1".to_owned())],
    )
    .await;
    assert_eq!(record["group"]["deleted"]["by"], "onelogin");
    assert_eq!(record["members"][0]["user_name"], "ann@acme.example");

    let dashboard = call(app::dashboard::Dashboard::PATH, vec![]).await;
    assert_eq!(dashboard["users"], 1);
    assert_eq!(dashboard["deleted_users"], 2);
    let onelogin = dashboard["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "onelogin")
        .unwrap();
    assert_eq!(onelogin["users_deleted"], 2);
    assert_eq!(onelogin["users_active"], 1);

    // Another organisation sees none of it.
    s.other_organisation_token().await;
    let login = s
        .login("hank@example.com", "correct horse battery", None)
        .await;
    let other_cookie = crate::console::session_cookie(&login).unwrap();
    let theirs = s
        .call(
            app::users::ConsoleUser::PATH,
            &[("id", ids[0].as_str())],
            Some(&other_cookie),
            HOST,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
}

/// Users deleted before deletes removed them from SCIM (then: deactivated, with a DELETE in
/// the activity log) become console records when the database is upgraded; every other user
/// stays as it was.
#[tokio::test]
async fn users_deleted_before_the_upgrade_become_console_records() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pool) = database_migrated_to(dir.path(), "legacy", 6).await;
    let statements = [
        "INSERT INTO organisations (id, name, created_at) VALUES ('o', 'Acme', 1)".to_owned(),
        "INSERT INTO directory_integrations (id, organisation_id, kind, delete_mode, created_at) \
         VALUES ('one', 'o', 'onelogin', 'deactivate', 1), ('okt', 'o', 'okta', 'remove', 1)"
            .to_owned(),
    ]
    .into_iter()
    .chain(
        // (id, active, the requests that changed it: method and status, oldest first)
        [
            ("gone", false, vec![("POST", 201), ("DELETE", 204)]),
            ("back", false, vec![("POST", 201), ("DELETE", 204), ("PATCH", 200)]),
            ("paused", false, vec![("POST", 201), ("PATCH", 200)]),
            ("refused", false, vec![("PATCH", 200), ("DELETE", 412)]),
            ("live", true, vec![("POST", 201), ("DELETE", 204), ("PUT", 200)]),
        ]
        .into_iter()
        .enumerate()
        .flat_map(|(n, (id, active, requests))| {
            let attributes = json!({"userName": id, "active": active,
                "emails": [{"value": format!("{id}@acme.example")}]});
            let mut sql = vec![
                format!(
                    "INSERT INTO scim_users (id, organisation_id, integration_id, user_name, user_name_key, \
                     display_name, display_name_key, active, attributes, version, created_at, updated_at) \
                     VALUES ('{id}', 'o', 'one', '{id}', '{id}', 'Name {id}', 'name {id}', {active}, '{attributes}', 2, {n}, 5)"
                ),
                format!(
                    "INSERT INTO scim_user_values (organisation_id, user_id, attribute, element, value_key, is_primary) \
                     VALUES ('o', '{id}', 'emails', 0, '{id}@acme.example', FALSE)"
                ),
                format!(
                    "INSERT INTO scim_user_external_ids (resource_id, integration_id, external_id) \
                     VALUES ('{id}', 'one', 'ext-{id}')"
                ),
            ];
            for (i, (method, status)) in requests.into_iter().enumerate() {
                sql.push(format!(
                    "INSERT INTO scim_requests (organisation_id, integration_id, at, method, path, status, \
                     resource_type, resource_id, duration_us) \
                     VALUES ('o', 'one', {}, '{method}', '/scimapi/Users/{id}', {status}, 'User', '{id}', 1)",
                    100 + i
                ));
            }
            sql
        }),
    )
    .chain([
        "INSERT INTO scim_groups (id, organisation_id, integration_id, display_name, display_name_key, \
         version, created_at, updated_at) VALUES ('staff', 'o', 'one', 'Staff', 'staff', 1, 1, 1)"
            .to_owned(),
        "INSERT INTO scim_group_members (organisation_id, group_id, user_id) \
         VALUES ('o', 'staff', 'gone'), ('o', 'staff', 'paused')"
            .to_owned(),
    ]);
    for sql in statements {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::connect(&url).await.unwrap();
    let record = store.deleted_user("o", "gone").await.unwrap().unwrap();
    assert_eq!(record.deleted_by.as_deref(), Some("onelogin"));
    assert_eq!(record.deleted_at, 101, "the time of its DELETE");
    assert_eq!(record.external_id.as_deref(), Some("ext-gone"));
    let groups: Vec<(String, String)> = serde_json::from_str(&record.groups).unwrap();
    assert_eq!(groups, [("staff".to_owned(), "Staff".to_owned())]);
    assert_eq!(store.user("o", "gone", None, false).await.unwrap(), None);
    for stays in ["back", "paused", "refused", "live"] {
        assert!(
            store.user("o", stays, None, false).await.unwrap().is_some(),
            "{stays}"
        );
        assert_eq!(
            store.deleted_user("o", stays).await.unwrap(),
            None,
            "{stays}"
        );
    }
    assert_eq!(store.count_users("o").await.unwrap(), 4);
    let (_, found) = store
        .deleted_users(
            "o",
            DeletedQuery {
                search: "gone@acme".into(),
                limit: 10,
                ..DeletedQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let staff = store
        .group("o", "staff", None, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        staff.related.unwrap(),
        [("paused".to_owned(), "Name paused".to_owned())]
    );
    // The setting keeps its meaning: deactivate kept the user, remove kept nothing.
    let mode = |kind: &'static str| {
        let store = store.clone();
        async move {
            store
                .integration("o", kind)
                .await
                .unwrap()
                .unwrap()
                .on_delete
        }
    };
    assert_eq!(mode("onelogin").await, DeleteMode::Keep);
    assert_eq!(mode("okta").await, DeleteMode::Erase);
}
