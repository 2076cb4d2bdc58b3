//! The SCIM Users API through the real router on a real SQLite database, driven the way
//! OneLogin, Okta and Microsoft Entra ID drive it.

use crate::common::{q, TestServer};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" user template, with the
/// shapes its templates produce: string boolean, emails as one object, a null id, managerId.
fn onelogin_user(user_name: &str, active: &str, title: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "id": null,
        "userName": user_name,
        "externalId": "ol-4711",
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "displayName": "Jane Doe",
        "title": title,
        "active": active,
        "emails": {"value": user_name, "type": "work", "primary": true},
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield",
                       "region": "OR", "postalCode": "97403", "country": "US", "primary": true}],
        ENTERPRISE: {"department": "Engineering", "organization": "Acme",
                     "employeeNumber": "1001", "manager": {"managerId": "boss-1"}}
    })
}

#[tokio::test]
async fn onelogin_enable_create_update_suspend() {
    let s = TestServer::start().await;

    // "Enable": a probe with a random userName expects an empty list.
    let probe = s
        .scim(
            Method::GET,
            &format!("/Users?filter={}", q(r#"userName eq "f7c2a0c4-probe""#)),
            None,
        )
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_eq!(probe.headers["content-type"], "application/scim+json");
    assert_eq!(probe.body["totalResults"], 0);
    assert_eq!(probe.body["itemsPerPage"], 0);
    assert_eq!(probe.body["Resources"], json!([]));

    // Per user: look up by userName, then POST since absent.
    let lookup = s
        .scim(
            Method::GET,
            &format!(
                "/Users?filter={}",
                q(r#"userName eq "jane.doe@acme.example""#)
            ),
            None,
        )
        .await;
    assert_eq!(lookup.body["totalResults"], 0);
    let created = s
        .scim(
            Method::POST,
            "/Users",
            Some(onelogin_user("jane.doe@acme.example", "true", "Engineer")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let location = created.headers["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("https://console.example.com/scimapi/Users/{id}")
    );
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(
        created.headers["etag"],
        created.body["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(
        created.body["emails"],
        json!([{"value": "jane.doe@acme.example", "type": "work", "primary": true}])
    );
    assert_eq!(
        created.body[ENTERPRISE]["manager"],
        json!({"value": "boss-1"})
    );
    assert_eq!(created.body["addresses"][0]["locality"], "Springfield");
    assert_eq!(created.body["schemas"], json!([USER, ENTERPRISE]));

    // The next sync finds the user (whatever the case of the userName).
    let found = s
        .scim(
            Method::GET,
            &format!(
                "/Users?filter={}",
                q(r#"userName eq "JANE.DOE@acme.example""#)
            ),
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // Update: a full PUT of the template with changed attributes.
    let updated = s
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(onelogin_user(
                "jane.doe@acme.example",
                "true",
                "Staff Engineer",
            )),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["title"], "Staff Engineer");
    assert_eq!(updated.body["meta"]["version"], "W/\"2\"");
    assert_eq!(
        updated.body["meta"]["created"],
        created.body["meta"]["created"]
    );

    // Suspend: the same PUT with active false.
    let suspended = s
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(onelogin_user(
                "jane.doe@acme.example",
                "false",
                "Staff Engineer",
            )),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK);
    let got = s.scim(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["active"], false);
    assert_eq!(got.body["title"], "Staff Engineer");
    assert_eq!(got.body["externalId"], "ol-4711");

    // A suspended user is still found by filter, and can be reactivated.
    let still = s
        .scim(
            Method::GET,
            &format!("/Users?filter={}", q("active eq false")),
            None,
        )
        .await;
    assert_eq!(still.body["totalResults"], 1);
    let back = s
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(onelogin_user(
                "jane.doe@acme.example",
                "true",
                "Staff Engineer",
            )),
        )
        .await;
    assert_eq!(back.body["active"], true);
}

#[tokio::test]
async fn okta_create_import_and_deactivate() {
    let s = TestServer::start().await;
    // Connection test.
    let test = s
        .scim(Method::GET, "/Users?startIndex=1&count=2", None)
        .await;
    assert_eq!(test.status, StatusCode::OK);
    assert_eq!(test.body["startIndex"], 1);

    let lookup = s
        .scim(
            Method::GET,
            &format!(
                "/Users?filter={}&startIndex=1&count=100",
                q(r#"userName eq "okta.user@acme.example""#)
            ),
            None,
        )
        .await;
    assert_eq!(lookup.body["totalResults"], 0);
    let created = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [USER],
                "userName": "okta.user@acme.example",
                "name": {"givenName": "Okta", "familyName": "User"},
                "emails": [{"primary": true, "value": "okta.user@acme.example", "type": "work"}],
                "displayName": "Okta User",
                "locale": "en-US",
                "externalId": "00u1abcd",
                "groups": [],
                "password": "tempP@ss123",
                "active": true
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(
        created.body.get("password").is_none(),
        "password must never be returned"
    );
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Deactivate: PATCH without a path.
    let patched = s
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["active"], false);
    assert_eq!(
        s.scim(Method::GET, &format!("/Users/{id}"), None)
            .await
            .body["active"],
        false
    );

    // Reactivate the same way.
    let patched = s
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": true}}]
            })),
        )
        .await;
    assert_eq!(patched.body["active"], true);
    assert_eq!(patched.body["displayName"], "Okta User");
}

#[tokio::test]
async fn entra_capitalised_ops_and_string_booleans() {
    let s = TestServer::start().await;
    let created = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [USER, ENTERPRISE],
                "externalId": "8c5e2b4a",
                "userName": "entra.user@acme.example",
                "active": true,
                "displayName": "Entra User",
                "emails": [{"primary": true, "type": "work", "value": "entra.user@acme.example"}],
                "name": {"formatted": "Entra User", "familyName": "User", "givenName": "Entra"},
                ENTERPRISE: {"department": "Sales"}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let by_external = s
        .scim(
            Method::GET,
            &format!("/Users?filter={}", q(r#"externalId eq "8c5e2b4a""#)),
            None,
        )
        .await;
    assert_eq!(by_external.body["totalResults"], 1);

    let patched = s
        .scim(Method::PATCH, &format!("/Users/{id}"), Some(json!({
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Marketing"}
            ]
        })))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let got = s
        .scim(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    assert_eq!(got["active"], false);
    assert_eq!(
        got["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    assert_eq!(got[ENTERPRISE]["department"], "Marketing");
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_a_scim_body() {
    let s = TestServer::start().await;
    let bad = format!("{}x", s.token);
    for headers in [
        vec![],
        vec![(
            "authorization",
            "Bearer dcpt_0000000000000000000000000000000000000000000000000000000000000000",
        )],
        vec![("authorization", bad.as_str())],
        vec![("authorization", "Basic YWRhOnB3")],
        vec![("authorization", "Bearer")],
    ] {
        for (method, path) in [
            (Method::GET, "/scimapi/Users"),
            (Method::GET, "/scimapi/Users/x"),
            (Method::GET, "/scimapi/Nope"),
        ] {
            let reply = s.raw(method, path, &headers, None).await;
            reply.assert_error(401, None);
            assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"SCIM\"");
        }
    }
}

#[tokio::test]
async fn case_variant_duplicate_user_name_is_409_uniqueness() {
    let s = TestServer::start().await;
    s.create_user("jane@acme.example").await;
    let dup = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "JANE@Acme.Example"})),
        )
        .await;
    dup.assert_error(409, Some("uniqueness"));

    // Renaming another user onto a taken name is refused too, and changes nothing.
    let other = s.create_user("john@acme.example").await;
    let id = other["id"].as_str().unwrap();
    let put = s
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({"userName": "Jane@acme.example"})),
        )
        .await;
    put.assert_error(409, Some("uniqueness"));
    assert_eq!(
        s.scim(Method::GET, &format!("/Users/{id}"), None)
            .await
            .body["userName"],
        "john@acme.example"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let s = TestServer::start().await;
    let auth = format!("Bearer {}", s.token);
    let user = s.create_user("u@acme.example").await;
    let user_path = format!("/scimapi/Users/{}", user["id"].as_str().unwrap());
    for (method, path) in [
        (Method::POST, "/scimapi/Users"),
        (Method::PUT, user_path.as_str()),
        (Method::PATCH, user_path.as_str()),
    ] {
        for body in ["{", "{\"userName\": }", "not json", "", "   ", "\u{0}"] {
            let reply = s
                .raw(
                    method.clone(),
                    path,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    Some(body),
                )
                .await;
            reply.assert_error(400, Some("invalidSyntax"));
        }
    }
    // Well-formed JSON that is not a User.
    for body in [
        json!([]),
        json!("x"),
        json!({"userName": ""}),
        json!({"active": true}),
        json!({"userName": "x", "active": "yes"}),
    ] {
        let reply = s.scim(Method::POST, "/Users", Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        reply.assert_error(400, None);
    }
    // An unsupported media type.
    let reply = s
        .raw(
            Method::POST,
            "/scimapi/Users",
            &[("authorization", &auth), ("content-type", "text/plain")],
            Some("{\"userName\":\"t\"}"),
        )
        .await;
    reply.assert_error(415, None);
}

#[tokio::test]
async fn content_types_accepted_and_answered() {
    let s = TestServer::start().await;
    let auth = format!("Bearer {}", s.token);
    for (i, content_type) in [
        "application/json",
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "Application/JSON",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"userName": format!("ct{i}@acme.example")}).to_string();
        let reply = s
            .raw(
                Method::POST,
                "/scimapi/Users",
                &[("authorization", &auth), ("content-type", content_type)],
                Some(&body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{content_type}");
        assert_eq!(reply.headers["content-type"], "application/scim+json");
    }
    // A GET with no Content-Type and an Accept of either JSON type.
    for accept in ["application/scim+json", "application/json", "*/*"] {
        let reply = s
            .raw(
                Method::GET,
                "/scimapi/Users",
                &[("authorization", &auth), ("accept", accept)],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{accept}");
        assert_eq!(reply.headers["content-type"], "application/scim+json");
    }
}

#[tokio::test]
async fn bad_filters_are_400_invalid_filter_not_everyone() {
    let s = TestServer::start().await;
    s.create_user("a@acme.example").await;
    for filter in [
        r#"userName eq"#,
        r#"nosuch eq "x""#,
        r#"userName zz "a""#,
        "((((",
        r#"addresses.locality eq "a""#,
    ] {
        let reply = s
            .scim(Method::GET, &format!("/Users?filter={}", q(filter)), None)
            .await;
        reply.assert_error(400, Some("invalidFilter"));
    }
    for query in ["startIndex=abc", "count=1.5"] {
        s.scim(Method::GET, &format!("/Users?{query}"), None)
            .await
            .assert_error(400, Some("invalidValue"));
    }
}

#[tokio::test]
async fn paging_is_one_based_stable_and_counts_right() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            s.create_user(&format!("user{i}@acme.example")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = s
        .scim(Method::GET, "/Users?startIndex=2&count=2", None)
        .await
        .body;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["startIndex"], 2);
    let got: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);

    let last = s
        .scim(Method::GET, "/Users?startIndex=5&count=10", None)
        .await
        .body;
    assert_eq!(last["itemsPerPage"], 1);
    let beyond = s.scim(Method::GET, "/Users?startIndex=99", None).await.body;
    assert_eq!(
        (
            beyond["totalResults"].as_u64(),
            beyond["itemsPerPage"].as_u64()
        ),
        (Some(5), Some(0))
    );
    let zero = s.scim(Method::GET, "/Users?count=0", None).await.body;
    assert_eq!(
        (zero["totalResults"].as_u64(), zero["itemsPerPage"].as_u64()),
        (Some(5), Some(0))
    );
    // startIndex below 1 is read as 1.
    assert_eq!(
        s.scim(Method::GET, "/Users?startIndex=0&count=1", None)
            .await
            .body["Resources"][0]["id"],
        ids[0].as_str()
    );
}

#[tokio::test]
async fn unknown_users_and_endpoints_are_404_scim_errors() {
    let s = TestServer::start().await;
    for method in [Method::GET, Method::DELETE] {
        s.scim(method, "/Users/does-not-exist", None)
            .await
            .assert_error(404, None);
    }
    s.scim(
        Method::PUT,
        "/Users/does-not-exist",
        Some(json!({"userName": "x"})),
    )
    .await
    .assert_error(404, None);
    s.scim(Method::GET, "/NoSuchResource", None)
        .await
        .assert_error(404, None);
    s.scim(Method::POST, "/Users/abc", Some(json!({})))
        .await
        .assert_error(405, None);
}

#[tokio::test]
async fn organisations_never_see_each_other() {
    let s = TestServer::start().await;
    let id = s.create_user("mine@acme.example").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = s.other_organisation_token().await;
    s.scim_with(&other, Method::GET, &format!("/Users/{id}"), None)
        .await
        .assert_error(404, None);
    s.scim_with(
        &other,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(json!({"userName": "stolen"})),
    )
    .await
    .assert_error(404, None);
    s.scim_with(&other, Method::DELETE, &format!("/Users/{id}"), None)
        .await
        .assert_error(404, None);
    let list = s.scim_with(&other, Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
    // The same userName is free in the other organisation.
    let created = s
        .scim_with(
            &other,
            Method::POST,
            "/Users",
            Some(json!({"userName": "mine@acme.example"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        s.scim(Method::GET, &format!("/Users/{id}"), None)
            .await
            .body["active"],
        true
    );
}

#[tokio::test]
async fn a_patch_with_one_bad_operation_changes_nothing() {
    let s = TestServer::start().await;
    let id = s.create_user("atomic@acme.example").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "replace", "path": "active", "value": false},
                    {"op": "replace", "path": "displayName", "value": "Changed"},
                    {"op": "replace", "path": "id", "value": "hijack"}
                ]
            })),
        )
        .await;
    reply.assert_error(400, Some("mutability"));
    let got = s
        .scim(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    assert_eq!(got["active"], true);
    assert!(got.get("displayName").is_none());
    assert_eq!(got["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn successful_requests_set_last_sync_and_failures_do_not() {
    let s = TestServer::start().await;
    let console = &s.app.state.console;
    let status = || {
        domain::integrations::status(
            &console.store,
            &s.organisation_id,
            domain::integrations::IntegrationKind::OneLogin,
        )
    };
    let integration_id = status().await.unwrap().integration_id.unwrap();

    s.scim(Method::GET, "/Users/missing", None)
        .await
        .assert_error(404, None);
    assert_eq!(console.last_sync.pending(&integration_id), None);

    let before = domain::time::now_ms();
    s.scim(Method::GET, "/Users", None).await;
    let pending = console
        .last_sync
        .pending(&integration_id)
        .expect("recorded in memory");
    assert!(pending >= before);
    // Not written per request: the database learns it when the recorder flushes.
    console.last_sync.flush(&console.store).await;
    assert_eq!(status().await.unwrap().last_sync_at, Some(pending));
    // Never backwards.
    console.last_sync.record(&integration_id, pending - 60_000);
    console.last_sync.flush(&console.store).await;
    assert_eq!(status().await.unwrap().last_sync_at, Some(pending));
}

#[tokio::test]
async fn filters_on_every_stored_attribute() {
    let s = TestServer::start().await;
    let jane = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({
                "userName": "jane@acme.example", "title": "CTO", "externalId": "E-1",
                "name": {"givenName": "Jane", "familyName": "Doe"},
                "emails": [{"value": "Jane@Work.example", "type": "work", "primary": true},
                           {"value": "jane@home.example", "type": "home"}],
                ENTERPRISE: {"department": "R&D", "manager": {"value": "boss"}}
            })),
        )
        .await
        .body;
    let john = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({
                "userName": "john@acme.example", "title": "Engineer",
                "emails": [{"value": "john@home.example", "type": "work"}],
                "active": false
            })),
        )
        .await
        .body;
    let (jane, john) = (jane["id"].as_str().unwrap(), john["id"].as_str().unwrap());
    let cases: [(&str, &[&str]); 16] = [
        (
            r#"emails[type eq "work"].value eq "jane@work.example""#,
            &[jane],
        ),
        (r#"emails[type eq "work" and value co "@home"]"#, &[john]),
        (r#"emails.value eq "JANE@HOME.EXAMPLE""#, &[jane]),
        (r#"emails ew "home.example""#, &[jane, john]),
        (r#"emails[primary eq true]"#, &[jane]),
        (r#"emails[type eq "home"]"#, &[jane]),
        (r#"not (emails[type eq "home"])"#, &[john]),
        (r#"title eq "cto""#, &[jane]),
        (r#"title ne "cto""#, &[john]),
        (r#"name.givenName sw "ja""#, &[jane]),
        (r#"name.givenName pr"#, &[jane]),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#,
            &[jane],
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "boss""#,
            &[jane],
        ),
        (r#"externalId eq "E-1" or active eq false"#, &[jane, john]),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z" and title pr"#,
            &[jane, john],
        ),
        (r#"meta.lastModified lt "2000-01-01T00:00:00Z""#, &[]),
    ];
    for (filter, expected) in cases {
        let reply = s
            .scim(Method::GET, &format!("/Users?filter={}", q(filter)), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
        let mut got: Vec<&str> = reply.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        got.sort();
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(got, want, "{filter}");
        assert_eq!(reply.body["totalResults"], expected.len(), "{filter}");
    }
    // A PUT replaces what filters see.
    s.scim(
        Method::PUT,
        &format!("/Users/{jane}"),
        Some(json!({"userName": "jane@acme.example", "title": "CEO"})),
    )
    .await;
    for (filter, count) in [
        (r#"title eq "ceo""#, 1),
        (r#"title eq "cto""#, 0),
        (r#"emails pr"#, 1),
    ] {
        let reply = s
            .scim(Method::GET, &format!("/Users?filter={}", q(filter)), None)
            .await;
        assert_eq!(reply.body["totalResults"], count, "{filter}");
    }
}

#[tokio::test]
async fn external_ids_are_scoped_to_the_integration_that_sent_them() {
    let s = TestServer::start().await;
    let store = &s.app.state.console.store;
    let okta = domain::integrations::create_token(
        store,
        &s.organisation_id,
        domain::integrations::IntegrationKind::Okta,
        &domain::integrations::Actor::Operator,
    )
    .await
    .unwrap()
    .into_plaintext();
    let created = s
        .scim_with(
            &okta,
            Method::POST,
            "/Users",
            Some(json!({"userName": "shared@acme.example", "externalId": "00u-okta"})),
        )
        .await;
    assert_eq!(created.body["externalId"], "00u-okta");
    let id = created.body["id"].as_str().unwrap().to_owned();

    // OneLogin sees the user, without Okta's externalId, and sets its own.
    let seen = s
        .scim(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    assert!(seen.get("externalId").is_none(), "{seen}");
    let put = s
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({"userName": "shared@acme.example", "externalId": "ol-42"})),
        )
        .await;
    assert_eq!(put.body["externalId"], "ol-42");

    // Each integration finds the user by its own externalId only.
    for (token, mine, theirs) in [
        (&s.token, "ol-42", "00u-okta"),
        (&okta, "00u-okta", "ol-42"),
    ] {
        let found = s
            .scim_with(
                token,
                Method::GET,
                &format!("/Users?filter={}", q(&format!(r#"externalId eq "{mine}""#))),
                None,
            )
            .await;
        assert_eq!(found.body["totalResults"], 1, "{mine}");
        assert_eq!(found.body["Resources"][0]["externalId"], mine);
        let other = s
            .scim_with(
                token,
                Method::GET,
                &format!(
                    "/Users?filter={}",
                    q(&format!(r#"externalId eq "{theirs}""#))
                ),
                None,
            )
            .await;
        assert_eq!(other.body["totalResults"], 0, "{theirs}");
    }
    assert_eq!(
        s.scim_with(&okta, Method::GET, &format!("/Users/{id}"), None)
            .await
            .body["externalId"],
        "00u-okta"
    );

    // A PATCH of another attribute keeps the integration's externalId.
    let patched = s
        .scim_with(
            &okta,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "replace", "path": "title", "value": "CFO"}]})),
        )
        .await;
    assert_eq!(patched.body["externalId"], "00u-okta");
    assert_eq!(
        s.scim(Method::GET, &format!("/Users/{id}"), None)
            .await
            .body["externalId"],
        "ol-42"
    );

    // Groups likewise; removing one integration's externalId leaves the other's.
    let group = s
        .scim_with(
            &okta,
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "G", "externalId": "00g-okta"})),
        )
        .await
        .body;
    let gid = group["id"].as_str().unwrap();
    assert!(s
        .scim(Method::GET, &format!("/Groups/{gid}"), None)
        .await
        .body
        .get("externalId")
        .is_none());
    let patched = s
        .scim(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(json!({"Operations": [{"op": "add", "path": "externalId", "value": "ol-g"}]})),
        )
        .await;
    assert_eq!(patched.body["externalId"], "ol-g");
    s.scim(
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"Operations": [{"op": "remove", "path": "externalId"}]})),
    )
    .await;
    assert!(s
        .scim(Method::GET, &format!("/Groups/{gid}"), None)
        .await
        .body
        .get("externalId")
        .is_none());
    assert_eq!(
        s.scim_with(&okta, Method::GET, &format!("/Groups/{gid}"), None)
            .await
            .body["externalId"],
        "00g-okta"
    );
}
