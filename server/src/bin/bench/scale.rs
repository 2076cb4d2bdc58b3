//! `bench scale`: lookup and paging latency as the organisation grows, with the query plans,
//! and the cost of membership changes in large groups. Drives the real router in-process (no
//! sockets) on a temporary SQLite file.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use domain::integrations::{Actor, IntegrationKind};
use scim::filter::{parse_filter, Resource};
use serde_json::{json, Value};
use server::{App, Config};
use tower::ServiceExt;

use crate::{encode, XorShift};

/// A server on a throw-away database with one organisation and its token.
pub(crate) struct Bench {
    pub(crate) app: App,
    pub(crate) token: String,
    /// The organisation the bench's admin and token belong to.
    pub(crate) organisation_id: String,
    dir: std::path::PathBuf,
}

impl Bench {
    pub(crate) async fn start(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scim-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let database = format!("sqlite://{}/bench.db", dir.display());
        let config = Config::from_lookup(|name| (name == "DATABASE_URL").then(|| database.clone()))
            .expect("config");
        let app = App::build(&config).await.expect("app");
        let store = &app.state.console.store;
        let (org, _) = domain::accounts::create_admin(
            store,
            "Bench",
            "bench@example.com",
            "a long benchmark password",
        )
        .await
        .expect("admin");
        let token = domain::integrations::create_token(
            store,
            &org.id,
            IntegrationKind::OneLogin,
            &Actor::Operator,
        )
        .await
        .expect("token")
        .into_plaintext();
        Self {
            app,
            token,
            organisation_id: org.id,
            dir,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/scimapi{path}"))
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header("content-type", "application/scim+json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let response = self
            .app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn expect(
        &self,
        status: StatusCode,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let (got, body) = self.call(method, path, body).await;
        assert_eq!(got, status, "{path}: {body}");
        body
    }

    async fn create_users(&self, n: usize) -> (Vec<String>, Duration) {
        let started = Instant::now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let user = json!({"userName": format!("user{i}@bench.example"), "name": {"givenName": "Bench", "familyName": format!("User {i}")},
                              "emails": [{"value": format!("user{i}@bench.example"), "type": "work", "primary": true}], "active": true});
            let body = self
                .expect(StatusCode::CREATED, Method::POST, "/Users", Some(&user))
                .await;
            ids.push(body["id"].as_str().expect("id").to_owned());
        }
        (ids, started.elapsed())
    }

    pub(crate) async fn finish(self) {
        self.app.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) struct Figures(pub(crate) Vec<Duration>);

impl Figures {
    pub(crate) fn print(mut self, what: &str) {
        self.0.sort();
        let at = |q: f64| self.0[((self.0.len() as f64 - 1.0) * q).round() as usize];
        let mean = self.0.iter().sum::<Duration>() / self.0.len() as u32;
        println!(
            "  {what:<52} n={:<5} mean {:>9.3?}  p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
            self.0.len(),
            mean,
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

pub(crate) async fn timed<F, Fut>(samples: usize, mut request: F) -> Figures
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        request(i).await;
        times.push(started.elapsed());
    }
    Figures(times)
}

pub async fn scale(users: &[usize], samples: usize, group_size: usize) {
    for &n in users {
        let owned = Bench::start(&format!("users{n}")).await;
        let bench = &owned;
        let (_, took) = bench.create_users(n).await;
        println!(
            "{n} users (created one POST at a time in {took:.2?}, {:.0}/s)",
            n as f64 / took.as_secs_f64()
        );
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        timed(samples, |_| {
            let i = rng.below(n);
            async move {
                let path = format!(
                    "/Users?filter={}",
                    encode(&format!("userName eq \"USER{i}@bench.example\""))
                );
                let body = bench.expect(StatusCode::OK, Method::GET, &path, None).await;
                assert_eq!(body["totalResults"], 1);
            }
        })
        .await
        .print("GET /Users?filter=userName eq \"...\"");
        timed(samples, |_| {
            let i = rng.below(n);
            async move {
                let path = format!(
                    "/Users?filter={}",
                    encode(&format!(
                        "emails[type eq \"work\"].value eq \"user{i}@bench.example\""
                    ))
                );
                let body = bench.expect(StatusCode::OK, Method::GET, &path, None).await;
                assert_eq!(body["totalResults"], 1);
            }
        })
        .await
        .print("GET /Users?filter=emails[type eq \"work\"].value eq");
        timed(samples / 4, |_| async move {
            let body = bench
                .expect(
                    StatusCode::OK,
                    Method::GET,
                    "/Users?startIndex=1&count=100",
                    None,
                )
                .await;
            assert_eq!(body["itemsPerPage"], 100);
        })
        .await
        .print("GET /Users?startIndex=1&count=100 (first page)");
        timed(samples / 10, |_| async move {
            let path = format!("/Users?startIndex={}&count=100", n / 2);
            let body = bench.expect(StatusCode::OK, Method::GET, &path, None).await;
            assert_eq!(body["itemsPerPage"], 100);
        })
        .await
        .print("GET /Users?startIndex=n/2&count=100 (middle page)");

        let store = &bench.app.state.console.store;
        let organisation_id = &bench.organisation_id;
        for filter in [
            r#"userName eq "user1@bench.example""#,
            r#"emails[type eq "work"].value eq "user1@bench.example""#,
        ] {
            let condition = parse_filter(Resource::User, filter).expect("filter");
            let query = domain::store::ListQuery {
                filter: Some(condition),
                limit: 100,
                ..Default::default()
            };
            let [count, page] = store
                .explain_list_users(organisation_id, query)
                .await
                .expect("plan");
            println!(
                "  plan for {filter}:\n    count: {}\n    page:  {}",
                count.join(" / "),
                page.join(" / ")
            );
        }
        let query = domain::store::ListQuery {
            limit: 100,
            ..Default::default()
        };
        let [count, page] = store
            .explain_list_users(organisation_id, query)
            .await
            .expect("plan");
        println!(
            "  plan for a page without filter:\n    count: {}\n    page:  {}",
            count.join(" / "),
            page.join(" / ")
        );
        owned.finish().await;
    }

    let owned = Bench::start("groups").await;
    let (ids, _) = owned.create_users(group_size).await;
    let patch = |op: &str, members: &[String]| {
        let value: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": op, "path": "members", "value": value}]})
    };
    println!("groups (an organisation of {group_size} users)");
    let bench = &owned;
    let ids = &ids;
    let add_thousand = timed(10, |round| async move {
        let group = bench
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/Groups",
                Some(&json!({"displayName": format!("G{round}")})),
            )
            .await;
        let path = format!(
            "/Groups/{}?excludedAttributes=members",
            group["id"].as_str().expect("id")
        );
        bench
            .expect(
                StatusCode::OK,
                Method::PATCH,
                &path,
                Some(&patch("add", &ids[..1000.min(ids.len())])),
            )
            .await;
    })
    .await;
    add_thousand.print("POST /Groups, then PATCH adding 1,000 members");

    let big = bench
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/Groups",
            Some(&json!({"displayName": "Everyone"})),
        )
        .await;
    let big = format!(
        "/Groups/{}?excludedAttributes=members",
        big["id"].as_str().expect("id")
    );
    for chunk in ids.chunks(1000) {
        bench
            .expect(
                StatusCode::OK,
                Method::PATCH,
                &big,
                Some(&patch("add", chunk)),
            )
            .await;
    }
    let big = &big;
    timed(samples / 10, |i| async move {
        let member = &ids[i % ids.len()];
        let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]});
        bench.expect(StatusCode::OK, Method::PATCH, big, Some(&remove)).await;
        // Put it back, untimed in spirit but cheap: one row.
        bench.expect(StatusCode::OK, Method::PATCH, big, Some(&patch("add", std::slice::from_ref(member)))).await;
    })
    .await
    .print(&format!("PATCH remove 1 member of {group_size} (+ add it back)"));
    let full = bench
        .expect(
            StatusCode::OK,
            Method::GET,
            &big.replace("?excludedAttributes=members", ""),
            None,
        )
        .await;
    assert_eq!(full["members"].as_array().map(Vec::len), Some(ids.len()));
    owned.finish().await;
}

/// The per-request token check: the digest alone, then digest and lookup for a valid and
/// an unknown token, as the SCIM middleware does it.
pub async fn token_check(samples: usize) {
    let bench = Bench::start("token").await;
    let store = bench.app.state.console.store.clone();
    println!("token check, {samples} sequential checks each (SQLite)");
    timed(samples, |_| async {
        std::hint::black_box(domain::token::TokenHash::of(std::hint::black_box(
            &bench.token,
        )));
    })
    .await
    .print("SHA-256 digest of the token, hex");
    for (what, token) in [
        ("digest + lookup, valid token", bench.token.clone()),
        (
            "digest + lookup, unknown token",
            format!("{}x", bench.token),
        ),
    ] {
        let expect_valid = token == bench.token;
        timed(samples, |_| {
            let (store, token) = (&store, &token);
            async move {
                let owner = domain::integrations::authenticate(store, token)
                    .await
                    .expect("lookup");
                assert_eq!(owner.is_some(), expect_valid);
            }
        })
        .await
        .print(what);
    }
    bench.finish().await;
}
