//! The console's pages through their server functions, as the browser calls them: what an
//! admin sees of users, groups, activity, audit and admins, and that one organisation never
//! sees or changes another's.

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::common::TestServer;
use crate::console::{session_cookie, PASSWORD};

pub(crate) const ORIGIN: &str = "https://console.example.com";

impl TestServer {
    pub(crate) async fn cookie_of(&self, email: &str) -> String {
        let reply = self.login(email, PASSWORD, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{email}: {}", reply.body);
        session_cookie(&reply).expect("a session cookie")
    }

    /// A server function call that must succeed; its JSON result.
    pub(crate) async fn page(&self, path: &str, form: &[(&str, &str)], cookie: &str) -> Value {
        let reply = self.call(path, form, Some(cookie), ORIGIN).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        reply.body
    }

    /// Writes the activity the SCIM requests so far recorded (the server does it every
    /// 250 ms).
    async fn flush_activity(&self) {
        let console = &self.app.state.console;
        console.activity.flush(&console.store).await;
    }

    async fn patch_active(&self, id: &str, active: bool) {
        let reply = self
            .scim(
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": active}]}),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

fn users_form<'a>(
    search: &'a str,
    status: &'a str,
    sort: &'a str,
    page: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("search", search),
        ("status", status),
        ("source", ""),
        ("sort", sort),
        ("page", page),
    ]
}

fn user_names(view: &Value) -> Vec<String> {
    view["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["user_name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn logged_out_callers_get_401_and_no_data_from_every_page() {
    let s = TestServer::start().await;
    let user = s.create_user("ada@acme.example").await;
    let id = user["id"].as_str().unwrap();
    let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (app::dashboard::Dashboard::PATH, vec![]),
        (
            app::users::ListConsoleUsers::PATH,
            users_form("", "all", "created", "1"),
        ),
        (app::users::ConsoleUser::PATH, vec![("id", id)]),
        (
            app::groups::ListConsoleGroups::PATH,
            vec![
                ("search", ""),
                ("status", "current"),
                ("sort", "display"),
                ("page", "1"),
            ],
        ),
        (
            app::groups::ConsoleGroup::PATH,
            vec![("id", "x"), ("page", "1")],
        ),
        (
            app::activity::ActivityLog::PATH,
            vec![("status", "all"), ("integration", "")],
        ),
        (app::activity::RequestDetail::PATH, vec![("id", "1")]),
        (app::audit::AuditLog::PATH, vec![]),
        (app::admins::ListAdmins::PATH, vec![]),
        (
            app::admins::AddAdmin::PATH,
            vec![
                ("email", "eve@example.com"),
                ("password", "a long password!"),
            ],
        ),
    ];
    for (path, form) in calls {
        for cookie in [None, Some("console_session=forged-session-id")] {
            let reply = s.call(path, &form, cookie, ORIGIN).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
            let body = reply.body.to_string();
            assert!(body.contains("Log in again"), "{path}: {body}");
            assert!(!body.contains("ada@acme.example"), "{path}: {body}");
        }
    }
    let admins = s
        .app
        .state
        .console
        .store
        .admins_of(&s.organisation_id)
        .await
        .unwrap();
    assert_eq!(admins.len(), 1, "no admin was added");
}

#[tokio::test]
async fn an_admin_sees_and_changes_only_their_own_organisation() {
    let s = TestServer::start().await;
    let acme_user = s.create_user("ada@acme.example").await;
    let acme_user = acme_user["id"].as_str().unwrap().to_owned();
    let acme_group = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Acme staff", "members": [{"value": acme_user}]})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex_token = s.other_organisation_token().await;
    let globex_user = s
        .scim_with(
            &globex_token,
            Method::POST,
            "/Users",
            Some(json!({"userName": "hank@globex.example"})),
        )
        .await;
    assert_eq!(globex_user.status, StatusCode::CREATED);

    s.flush_activity().await;
    let hank = s.cookie_of("hank@example.com").await;
    let users = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "all", "created", "1"),
            &hank,
        )
        .await;
    assert_eq!(user_names(&users), ["hank@globex.example"]);
    assert_eq!(users["total"], 1);
    for (path, form) in [
        (
            app::users::ConsoleUser::PATH,
            vec![("id", acme_user.as_str())],
        ),
        (
            app::groups::ConsoleGroup::PATH,
            vec![("id", acme_group.as_str()), ("page", "1")],
        ),
    ] {
        let reply = s.call(path, &form, Some(&hank), ORIGIN).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert!(!reply.body.to_string().contains("ada@acme.example"));
    }
    let groups = s
        .page(
            app::groups::ListConsoleGroups::PATH,
            &[
                ("search", ""),
                ("status", "current"),
                ("sort", "display"),
                ("page", "1"),
            ],
            &hank,
        )
        .await;
    assert_eq!(groups["total"], 0);
    let activity = s
        .page(
            app::activity::ActivityLog::PATH,
            &[("status", "all"), ("integration", "")],
            &hank,
        )
        .await;
    let paths: Vec<&str> = activity["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["POST"], "only Globex's one request: {activity}");
    // A row opens to its body for its own organisation only.
    let own = activity["entries"][0]["id"].to_string();
    let opened = s
        .page(app::activity::RequestDetail::PATH, &[("id", &own)], &hank)
        .await;
    assert!(
        opened["request_body"]
            .as_str()
            .unwrap_or_default()
            .contains("hank@globex.example"),
        "{opened}"
    );
    let acme_rows = s
        .app
        .state
        .console
        .store
        .requests(
            &s.organisation_id,
            &domain::activity::RequestQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(acme_rows.len(), 2);
    for id in acme_rows
        .iter()
        .map(|r| r.id.to_string())
        .chain([i64::MAX.to_string()])
    {
        let reply = s
            .call(
                app::activity::RequestDetail::PATH,
                &[("id", &id)],
                Some(&hank),
                ORIGIN,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{id}: {}", reply.body);
        assert!(reply.body.to_string().contains("Not found."));
        assert!(!reply.body.to_string().contains("acme.example"));
    }
    let audit = s
        .page(app::audit::AuditLog::PATH, &[], &hank)
        .await
        .to_string();
    assert!(
        audit.contains("hank@example.com") && !audit.contains("ada@example.com"),
        "{audit}"
    );
    // Each organisation's dashboard counts its own.
    let onelogin = |dashboard: &Value| {
        let i = dashboard["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "onelogin")
            .unwrap()
            .clone();
        (i["users_active"].as_i64(), i["requests_24h"].as_i64())
    };
    let dashboard = s.page(app::dashboard::Dashboard::PATH, &[], &hank).await;
    assert_eq!(
        (dashboard["users"].as_i64(), dashboard["groups"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(onelogin(&dashboard), (Some(1), Some(1)));
    let ada = s.cookie_of("ada@example.com").await;
    let dashboard = s.page(app::dashboard::Dashboard::PATH, &[], &ada).await;
    assert_eq!(
        (dashboard["users"].as_i64(), dashboard["groups"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(onelogin(&dashboard), (Some(1), Some(2)));

    // An admin added by Hank belongs to Globex alone.
    let added = s
        .page(
            app::admins::AddAdmin::PATH,
            &[("email", "Iris@Globex.example"), ("password", PASSWORD)],
            &hank,
        )
        .await;
    assert_eq!(added, "iris@globex.example");
    let emails = |admins: Value| -> Vec<String> {
        admins["admins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let admins = s.page(app::admins::ListAdmins::PATH, &[], &hank).await;
    assert_eq!(emails(admins), ["hank@example.com", "iris@globex.example"]);
    let admins = s.page(app::admins::ListAdmins::PATH, &[], &ada).await;
    assert_eq!(emails(admins), ["ada@example.com"]);
    let iris = s.cookie_of("iris@globex.example").await;
    let users = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "all", "created", "1"),
            &iris,
        )
        .await;
    assert_eq!(user_names(&users), ["hank@globex.example"]);
    // The same email cannot be added twice, anywhere.
    let again = s
        .call(
            app::admins::AddAdmin::PATH,
            &[
                ("email", "ada@example.com"),
                ("password", "another long password"),
            ],
            Some(&hank),
            ORIGIN,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let short = s
        .call(
            app::admins::AddAdmin::PATH,
            &[("email", "joe@globex.example"), ("password", "short")],
            Some(&hank),
            ORIGIN,
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    assert!(short.body.to_string().contains("at least 12 characters"));
}

#[tokio::test]
async fn users_groups_activity_audit_and_dashboard_show_what_provisioning_did() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let user = s
            .scim(
                Method::POST,
                "/Users",
                Some(json!({"userName": format!("user{i:02}@acme.example"),
                    "displayName": format!("Person {i:02}"),
                    "emails": [{"value": format!("mail{i:02}@acme.example"), "primary": true}]})),
            )
            .await;
        assert_eq!(user.status, StatusCode::CREATED);
        ids.push(user.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..5] {
        s.patch_active(id, false).await;
    }
    let members: Vec<Value> = ids[..55].iter().map(|id| json!({"value": id})).collect();
    let group = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Everyone", "members": members})),
        )
        .await;
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    s.scim(
        Method::POST,
        "/Users",
        Some(json!({"userName": "USER01@acme.example"})),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    s.flush_activity().await;
    let ada = s.cookie_of("ada@example.com").await;
    let failed_login = s.login("ada@example.com", "not the password", None).await;
    assert_eq!(failed_login.status, StatusCode::UNAUTHORIZED);

    // Users: pages of 50, search, status, sort.
    let first = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "all", "created", "1"),
            &ada,
        )
        .await;
    assert_eq!(first["total"], 60);
    assert_eq!(user_names(&first).len(), 50);
    assert_eq!(user_names(&first)[0], "user00@acme.example");
    let second = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "all", "created", "2"),
            &ada,
        )
        .await;
    assert_eq!(user_names(&second).len(), 10);
    let by_mail = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("MAIL07", "all", "created", "1"),
            &ada,
        )
        .await;
    assert_eq!(user_names(&by_mail), ["user07@acme.example"]);
    let by_name = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("person 1", "all", "name-desc", "1"),
            &ada,
        )
        .await;
    assert_eq!(user_names(&by_name).len(), 10);
    assert_eq!(user_names(&by_name)[0], "user19@acme.example");
    let deactivated = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "deactivated", "created", "1"),
            &ada,
        )
        .await;
    assert_eq!(deactivated["total"], 5);
    let quoted = s
        .page(
            app::users::ListConsoleUsers::PATH,
            &users_form("\" or userName pr or \"", "all", "created", "1"),
            &ada,
        )
        .await;
    assert_eq!(
        quoted["total"], 0,
        "search text is a value, never filter syntax"
    );
    let mut onelogin = users_form("", "all", "created", "1");
    onelogin[2] = ("source", "onelogin");
    let from_onelogin = s
        .page(app::users::ListConsoleUsers::PATH, &onelogin, &ada)
        .await;
    assert_eq!(from_onelogin["total"], 60);
    onelogin[2] = ("source", "okta");
    let from_okta = s
        .page(app::users::ListConsoleUsers::PATH, &onelogin, &ada)
        .await;
    assert_eq!(from_okta["total"], 0);
    let bad = s
        .call(
            app::users::ListConsoleUsers::PATH,
            &users_form("", "sleeping", "created", "1"),
            Some(&ada),
            ORIGIN,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.to_string().contains("unknown status"),
        "{}",
        bad.body
    );

    // One user: attributes, groups, activity.
    let detail = s
        .page(
            app::users::ConsoleUser::PATH,
            &[("id", ids[10].as_str())],
            &ada,
        )
        .await;
    assert_eq!(detail["user"]["user_name"], "user10@acme.example");
    assert!(detail["attributes"]
        .as_str()
        .unwrap()
        .contains("mail10@acme.example"));
    assert_eq!(detail["source"], "onelogin");
    assert_eq!(detail["groups"], json!([[group_id, "Everyone"]]));
    let activity = detail["activity"].as_array().unwrap();
    assert_eq!(activity.len(), 1, "its create: {activity:?}");
    assert_eq!(activity[0]["status"], 201);
    assert_eq!(activity[0]["has_detail"], true);
    assert!(
        !detail["activity"]
            .to_string()
            .contains("mail10@acme.example"),
        "no body in the list: {activity:?}"
    );

    // Groups: member counts, search, paged members.
    let groups = s
        .page(
            app::groups::ListConsoleGroups::PATH,
            &[
                ("search", "every"),
                ("status", "current"),
                ("sort", "display"),
                ("page", "1"),
            ],
            &ada,
        )
        .await;
    assert_eq!(groups["groups"][0]["members"], 55);
    let page2 = s
        .page(
            app::groups::ConsoleGroup::PATH,
            &[("id", group_id.as_str()), ("page", "2")],
            &ada,
        )
        .await;
    assert_eq!(page2["group"]["members"], 55);
    assert_eq!(page2["members"].as_array().unwrap().len(), 5);

    // Activity: failures only, with the error.
    let failures = s
        .page(
            app::activity::ActivityLog::PATH,
            &[("status", "failures"), ("integration", "onelogin")],
            &ada,
        )
        .await;
    let entries = failures["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], 409);
    assert_eq!(entries[0]["has_detail"], true);
    assert!(entries[0].get("error").is_none() && entries[0].get("request_body").is_none());
    let opened = s
        .page(
            app::activity::RequestDetail::PATH,
            &[("id", &entries[0]["id"].to_string())],
            &ada,
        )
        .await;
    assert!(opened["error"]
        .as_str()
        .unwrap()
        .starts_with("uniqueness: "));
    assert!(opened["request_body"]
        .as_str()
        .unwrap()
        .contains("USER01@acme.example"));
    let all = s
        .page(
            app::activity::ActivityLog::PATH,
            &[("status", "all"), ("integration", "")],
            &ada,
        )
        .await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 50, "a page");
    assert!(
        !all.to_string().contains("@acme.example"),
        "the list carries no bodies: {all}"
    );
    let older = all["older"].as_i64().expect("more pages");
    let rest = s
        .page(
            app::activity::ActivityLog::PATH,
            &[
                ("status", "all"),
                ("integration", ""),
                ("before", &older.to_string()),
            ],
            &ada,
        )
        .await;
    assert_eq!(
        rest["entries"].as_array().unwrap().len(),
        60 + 5 + 1 + 1 - 50
    );
    assert_eq!(rest["older"], Value::Null);

    // Audit: logins, the failed one too (recorded just after its answer).
    let mut actions = Vec::new();
    for _ in 0..50 {
        let audit = s.page(app::audit::AuditLog::PATH, &[], &ada).await;
        actions = audit["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["action"].as_str().unwrap_or_default().to_owned())
            .collect();
        if actions.first().map(String::as_str) == Some("login.failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(actions[..2], ["login.failed", "login"]);
    assert!(actions.iter().any(|a| a == "token.created"));
    assert!(actions.iter().any(|a| a == "admin.created"));

    // Dashboard: OneLogin's health over 24 hours.
    let dashboard = s.page(app::dashboard::Dashboard::PATH, &[], &ada).await;
    let onelogin = dashboard["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "onelogin")
        .unwrap();
    assert_eq!(onelogin["requests_24h"], 67);
    assert_eq!(onelogin["failures_24h"], 1);
    assert!(onelogin["last_error"][1]
        .as_str()
        .unwrap()
        .starts_with("uniqueness: "));
    assert_eq!(
        (
            onelogin["users_active"].as_i64(),
            onelogin["users_deactivated"].as_i64()
        ),
        (Some(55), Some(5))
    );
}
