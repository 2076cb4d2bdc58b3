//! The dashboard's counts, kept where what they count is written (migration 0011): a
//! database from before it shows the right numbers once upgraded, and keeps them after. Runs
//! on SQLite, and on PostgreSQL when `TEST_POSTGRES_URL` is set. (That the counts stay exact
//! through every kind of write is the store's test `kept_counts_stay_exact_*`.)

use domain::store::{IntegrationFigures, Store};
use serde_json::json;

use crate::common::database_migrated_to;

const HOUR: i64 = 60 * 60 * 1000;

#[tokio::test]
async fn an_upgraded_database_counts_what_it_held_before() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pool) = database_migrated_to(dir.path(), "legacy", 10).await;
    let now = domain::time::now_ms();
    let mut statements = vec![
        "INSERT INTO organisations (id, name, created_at) VALUES ('o', 'Acme', 1), ('g', 'Globex', 1)"
            .to_owned(),
        "INSERT INTO directory_integrations (id, organisation_id, kind, token_hash, created_at) \
         VALUES ('one', 'o', 'onelogin', 'digest-1', 1), ('okt', 'o', 'okta', NULL, 1), \
         ('glx', 'g', 'onelogin', 'digest-2', 1)"
            .to_owned(),
        "INSERT INTO scim_groups (id, organisation_id, integration_id, display_name, display_name_key, \
         version, created_at, updated_at) VALUES ('staff', 'o', 'one', 'Staff', 'staff', 1, 1, 1)"
            .to_owned(),
    ];
    for (id, org, integration, active) in [
        ("ada", "o", "one", true),
        ("bob", "o", "one", true),
        ("cy", "o", "one", false),
        ("dee", "o", "okt", false),
        ("hank", "g", "glx", false),
    ] {
        let attributes = json!({"userName": id, "active": active});
        statements.push(format!(
            "INSERT INTO scim_users (id, organisation_id, integration_id, user_name, user_name_key, \
             active, attributes, version, created_at, updated_at) \
             VALUES ('{id}', '{org}', '{integration}', '{id}', '{id}', {active}, '{attributes}', 1, 1, 1)"
        ));
    }
    for (id, org, deleted_by) in [
        ("eve", "o", "'one'"),
        ("fay", "o", "'one'"),
        ("gus", "o", "NULL"),
        ("ike", "g", "'glx'"),
    ] {
        statements.push(format!(
            "INSERT INTO deleted_users (id, organisation_id, integration_id, deleted_by, user_name, \
             user_name_key, active, attributes, groups, search_key, created_at, updated_at, deleted_at) \
             VALUES ('{id}', '{org}', 'one', {deleted_by}, '{id}', '{id}', TRUE, '{{}}', '[]', '{id}', 1, 1, 2)"
        ));
    }
    // (integration, when, status), oldest first.
    for (n, (org, integration, at, status)) in [
        ("o", "one", now - 40 * 24 * HOUR, 500),
        ("o", "okt", now - 30 * HOUR, 404),
        ("o", "one", now - 3 * HOUR, 201),
        ("o", "one", now - 2 * HOUR, 409),
        ("o", "one", now - HOUR, 200),
        ("g", "glx", now - HOUR, 200),
    ]
    .into_iter()
    .enumerate()
    {
        let error = if status >= 400 {
            format!("'failure {n}'")
        } else {
            "NULL".to_owned()
        };
        statements.push(format!(
            "INSERT INTO scim_requests (organisation_id, integration_id, at, method, path, status, \
             duration_us, error) VALUES ('{org}', '{integration}', {at}, 'POST', '/scimapi/Users', \
             {status}, 1, {error})"
        ));
    }
    for sql in statements {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::connect(&url).await.unwrap();
    let acme = store.dashboard_figures("o", now).await.unwrap();
    assert_eq!((acme.users, acme.groups, acme.deleted_users), (4, 1, 3));
    let figures = |i: &IntegrationFigures| {
        (
            i.kind.clone(),
            i.has_token,
            (i.users_active, i.users_deactivated, i.users_deleted),
            (i.requests, i.failures),
            i.last_error.clone(),
        )
    };
    assert_eq!(
        acme.integrations.iter().map(figures).collect::<Vec<_>>(),
        [
            (
                "okta".to_owned(),
                false,
                (0, 1, 0),
                (0, 0),
                Some((now - 30 * HOUR, "failure 1".to_owned()))
            ),
            (
                "onelogin".to_owned(),
                true,
                (2, 1, 2),
                (3, 1),
                Some((now - 2 * HOUR, "failure 3".to_owned()))
            ),
        ]
    );
    let globex = store.dashboard_figures("g", now).await.unwrap();
    assert_eq!(
        (globex.users, globex.groups, globex.deleted_users),
        (1, 0, 1)
    );
    assert_eq!(
        globex.integrations.iter().map(figures).collect::<Vec<_>>(),
        [("onelogin".to_owned(), true, (0, 1, 1), (1, 0), None)]
    );

    // The counts go on from what was backfilled.
    let doc =
        scim::user::UserDoc::from_request(&json!({"userName": "new", "active": false})).unwrap();
    store
        .insert_user("o", "one", "new", &doc, now)
        .await
        .unwrap();
    let acme = store.dashboard_figures("o", now).await.unwrap();
    assert_eq!(acme.users, 5);
    let onelogin = acme.integrations.iter().find(|i| i.kind == "onelogin");
    assert_eq!(
        onelogin.map(|i| (i.users_active, i.users_deactivated)),
        Some((2, 2))
    );
}
