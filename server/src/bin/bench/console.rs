//! `bench console`: the console's server-rendered pages, logged in, as the organisation
//! grows. Each size gets a throw-away SQLite file seeded through the domain functions the
//! SCIM API calls (so every kept count is kept as in production), many writers at once so
//! that SQLite's writer groups them into shared transactions, and an activity log written
//! by the log's own writer, with large request bodies on its newest entries.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use domain::activity::RequestEntry;
use domain::groups::Group;
use domain::integrations::TokenOwner;
use domain::provisioning::User;
use domain::scim_resource::{ScimResource, Scope};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::scale::{timed, Bench};

const HOST: &str = "127.0.0.1:3000";
const BASE_URL: &str = "http://127.0.0.1:3000/scimapi";
/// Writers seeding at once: enough to fill the SQLite writer's shared transactions.
const WRITERS: usize = 16;
/// Activity log entries written at a time.
const LOG_BATCH: usize = 20_000;
const HOUR_MS: i64 = 60 * 60 * 1000;

/// What a seeded organisation holds.
struct Seeded {
    ids: Vec<String>,
    deleted: usize,
    groups: usize,
    requests: usize,
}

pub async fn console_pages(sizes: &[usize], samples: usize, large_bodies: usize) {
    for &users in sizes {
        let bench = Bench::start(&format!("console{users}")).await;
        let started = Instant::now();
        let seeded = seed(&bench, users, large_bodies).await;
        println!(
            "{users} users ({} deactivated, {} deleted and kept as records), {} groups, {} requests \
             in the last 23 hours ({large_bodies} newest with a large body); seeded in {:.1?}; \
             {samples} requests per page",
            users / 10,
            seeded.deleted,
            seeded.groups,
            seeded.requests,
            started.elapsed()
        );
        let cookie = login(&bench).await;
        let user_page = format!("/users/{}", seeded.ids[seeded.ids.len() / 2]);
        for (path, marker) in [
            ("/", "Dashboard"),
            ("/activity", "Sync activity"),
            ("/users", "user0@bench.example"),
            (user_page.as_str(), "SCIM attributes"),
            ("/groups", "Groups"),
        ] {
            let bytes = std::cell::Cell::new(0);
            let (bench, cookie, size) = (&bench, &cookie, &bytes);
            let figures = timed(samples, |_| async move {
                let html = page(bench, path, cookie).await;
                assert!(
                    String::from_utf8_lossy(&html).contains(marker),
                    "{path} lacks {marker}"
                );
                size.set(html.len());
            })
            .await;
            figures.print(&format!("GET {path} ({} bytes of HTML)", bytes.get()));
        }
        open_newest_row(&bench, &cookie, samples).await;
        bench.finish().await;
    }
}

/// Users (a tenth deactivated, a hundredth deleted), groups of 100 members, and the
/// activity log of the last 23 hours: one request per user (a hundredth failed), then
/// `large_bodies` requests each sending more than the 8 KiB the log keeps.
async fn seed(bench: &Bench, users: usize, large_bodies: usize) -> Seeded {
    let store = &bench.app.state.console.store;
    let owner = domain::integrations::authenticate(store, &bench.token)
        .await
        .expect("token lookup")
        .expect("the bench's token");
    let mut ids = vec![String::new(); users];
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (store, owner) = (store.clone(), owner.clone());
        writers.spawn(async move {
            let mut created = Vec::new();
            for i in (writer..users).step_by(WRITERS) {
                let scope = Scope {
                    store: &store,
                    owner: &owner,
                    base_url: BASE_URL,
                };
                let user = User::create(scope, &user(i), false)
                    .await
                    .expect("create a user");
                created.push((i, user.meta.id));
            }
            created
        });
    }
    while let Some(created) = writers.join_next().await {
        for (i, id) in created.expect("a seeding writer") {
            ids[i] = id;
        }
    }
    let deleted: Vec<String> = ids.iter().skip(50).step_by(100).cloned().collect();
    let groups = (users / 1000).max(1);
    let members: Vec<Value> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 50)
        .take(groups * 100)
        .map(|(_, id)| json!({"value": id}))
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (store, owner) = (store.clone(), owner.clone());
        let deleted: Vec<String> = deleted
            .iter()
            .skip(writer)
            .step_by(WRITERS)
            .cloned()
            .collect();
        let members = members.clone();
        writers.spawn(async move {
            let scope = Scope {
                store: &store,
                owner: &owner,
                base_url: BASE_URL,
            };
            for id in deleted {
                User::delete(scope, &id, None).await.expect("delete a user");
            }
            for g in (writer..groups).step_by(WRITERS) {
                let chunk = members.chunks(100).nth(g).unwrap_or_default();
                let body = json!({"displayName": format!("Group {g}"), "members": chunk});
                Group::create(scope, &body, false)
                    .await
                    .expect("create a group");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a seeding writer");
    }
    let requests = users + large_bodies;
    log_requests(bench, &owner, &ids, large_bodies).await;
    Seeded {
        deleted: deleted.len(),
        ids,
        groups,
        requests,
    }
}

fn user(i: usize) -> Value {
    json!({"userName": format!("user{i}@bench.example"),
           "name": {"givenName": "Bench", "familyName": format!("User {i}")},
           "emails": [{"value": format!("user{i}@bench.example"), "type": "work", "primary": true}],
           "active": i % 10 != 9})
}

/// The activity log as the SCIM API records it, oldest first, spread over the last 23
/// hours: bodies redacted and cut as the log's writer does, then written by the store
/// function it calls. Written here rather than through the log's buffer, which the server's
/// own writer flushes too: two flushes at once may interleave their batches, and the newest
/// rows would not always be the large ones.
async fn log_requests(bench: &Bench, owner: &TokenOwner, ids: &[String], large_bodies: usize) {
    let store = &bench.app.state.console.store;
    let total = ids.len() + large_bodies;
    let start = domain::time::now_ms() - 23 * HOUR_MS;
    let step = 23 * HOUR_MS / i64::try_from(total).expect("request count");
    let large = large_body();
    let mut batch = Vec::with_capacity(LOG_BATCH);
    for n in 0..total {
        let at = start + step * i64::try_from(n).expect("request number");
        let (method, path, status, id, body) = match ids.get(n) {
            Some(id) => (
                "POST",
                "/scimapi/Users".to_owned(),
                201,
                id,
                user(n).to_string(),
            ),
            None => {
                let id = &ids[n % ids.len()];
                (
                    "PUT",
                    format!("/scimapi/Users/{id}"),
                    200,
                    id,
                    large.clone(),
                )
            }
        };
        let failed = n % 100 == 99 && n < ids.len();
        batch.push(RequestEntry {
            organisation_id: owner.organisation_id.clone(),
            integration_id: owner.integration_id.clone(),
            at,
            method: method.to_owned(),
            path,
            status: if failed { 409 } else { status },
            resource_type: Some("User"),
            resource_id: Some(id.clone()),
            duration_us: 850,
            error: failed.then(|| "uniqueness: userName is already taken".to_owned()),
            request_body: scim::redact::request_body(body.as_bytes()),
            request_id: Some(format!("{n:08x}-bench-request")),
        });
        if batch.len() == LOG_BATCH || n + 1 == total {
            store
                .insert_requests(std::mem::take(&mut batch))
                .await
                .expect("write the activity log");
        }
    }
}

/// A user as an IdP sends it with every group and a long description: over 10 KiB.
fn large_body() -> String {
    let groups: Vec<Value> = (0..120)
        .map(|g| json!({"value": format!("group-{g:04}"), "display": format!("Department {g} <all staff>")}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": "large@bench.example", "active": true,
           "title": "x".repeat(500), "groups": groups})
    .to_string()
}

async fn login(bench: &Bench) -> String {
    let login = Request::builder()
        .method(Method::POST)
        .uri(app::auth::Login::PATH)
        .header("host", HOST)
        .header("origin", format!("http://{HOST}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "email=bench%40example.com&password=a+long+benchmark+password",
        ))
        .expect("request");
    let response = bench
        .app
        .router
        .clone()
        .oneshot(login)
        .await
        .expect("login");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("console_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// Opening the newest row of Sync activity (a large body): the browser's call of the server
/// function that loads its error and body.
async fn open_newest_row(bench: &Bench, cookie: &str, samples: usize) {
    let newest = bench
        .app
        .state
        .console
        .store
        .requests(
            &bench.organisation_id,
            &domain::activity::RequestQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .expect("the activity log")
        .pop()
        .expect("a request");
    let form = format!("id={}", newest.id);
    let bytes = std::cell::Cell::new(0);
    let (form, size) = (&form, &bytes);
    timed(samples, |_| async move {
        let request = Request::builder()
            .method(Method::POST)
            .uri(app::activity::RequestDetail::PATH)
            .header("host", HOST)
            .header("origin", format!("http://{HOST}"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.clone()))
            .expect("request");
        size.set(body_of(bench, request).await.len());
    })
    .await
    .print(&format!(
        "request_detail: a row opened ({} bytes of JSON)",
        bytes.get()
    ));
}

/// A page's HTML, server-rendered whole (every resource resolved).
async fn page(bench: &Bench, path: &str, cookie: &str) -> Bytes {
    let request = Request::builder()
        .uri(path)
        .header("host", HOST)
        .header("cookie", cookie)
        .body(Body::empty())
        .expect("request");
    body_of(bench, request).await
}

/// The body of the answer to `request`, which must be 200 OK.
async fn body_of(bench: &Bench, request: Request<Body>) -> Bytes {
    let what = request.uri().to_string();
    let response = bench
        .app
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
}
