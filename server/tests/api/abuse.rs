//! Abuse resistance through the real router and database: throttled failed logins and bad
//! SCIM tokens (429 with Retry-After, the valid token unharmed), and the limits on what one
//! request may ask for (body size, filter depth and terms, values per user attribute, members
//! per group request, time).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::StreamExt;
use leptos::server_fn::ServerFn;
use scim::filter::MAX_FILTER_TERMS;
use scim::group::MAX_MEMBERS_PER_REQUEST;
use scim::user::MAX_VALUES_PER_ATTRIBUTE;
use serde_json::{json, Value};

use crate::common::{q, Reply, TestServer};
use crate::console::PASSWORD;

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

impl TestServer {
    async fn users_from(&self, peer: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.raw_from(
            addr(peer),
            Method::GET,
            "/scimapi/Users",
            &[("authorization", &auth)],
            None,
        )
        .await
    }

    async fn login_from(&self, peer: &str, email: &str, password: &str) -> Reply {
        let body = serde_urlencoded::to_string([("email", email), ("password", password)]).unwrap();
        self.raw_from(
            addr(peer),
            Method::POST,
            app::auth::Login::PATH,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "console.example.com"),
                ("origin", "https://console.example.com"),
            ],
            Some(&body),
        )
        .await
    }
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn bad_scim_tokens_are_throttled_per_address_and_the_valid_token_is_not() {
    let s = TestServer::start().await;
    for _ in 0..20 {
        let reply = s.users_from("203.0.113.7", "dcpt_guess").await;
        reply.assert_error(401, None);
    }
    let throttled = s.users_from("203.0.113.7", "dcpt_guess").await;
    throttled.assert_error(429, None);
    assert!((1..=5).contains(&retry_after(&throttled)));
    // No token at all is just as bad.
    let anonymous = s
        .raw_from(
            addr("203.0.113.7"),
            Method::GET,
            "/scimapi/Users",
            &[],
            None,
        )
        .await;
    anonymous.assert_error(429, None);
    // The organisation's IdP behind the same address keeps working ...
    let valid = s.users_from("203.0.113.7", &s.token).await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.body);
    // ... and other addresses are unaffected.
    s.users_from("198.51.100.1", "dcpt_guess")
        .await
        .assert_error(401, None);
}

#[tokio::test]
async fn failed_logins_lock_out_the_address_that_failed_not_the_admin() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        let reply = s
            .login_from("203.0.113.9", "ada@example.com", "not the password")
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    // The address that guessed now waits, even with the right password.
    let locked = s
        .login_from("203.0.113.9", "ada@example.com", PASSWORD)
        .await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!((55..=60).contains(&retry_after(&locked)));
    let message = locked.body.to_string();
    assert!(
        message.contains("Too many failed attempts. Try again in"),
        "{message}"
    );
    assert!(locked.headers.get("set-cookie").is_none());
    // Ada, from her own address, logs in.
    let ada = s
        .login_from("198.51.100.2", "ada@example.com", PASSWORD)
        .await;
    assert_eq!(ada.status, StatusCode::OK, "{}", ada.body);
    // An address that guesses many accounts is stopped after twenty failures.
    for i in 0..15 {
        let email = format!("nobody{i}@example.com");
        let reply = s
            .login_from("203.0.113.9", &email, "guess guess guess")
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let hank = s
        .login_from("203.0.113.9", "hank@example.com", "guess guess guess")
        .await;
    assert_eq!(hank.status, StatusCode::TOO_MANY_REQUESTS, "{}", hank.body);
}

/// The scenario: 300 wrong passwords for an admin's email from one address (behind
/// the trusted proxy, as `X-Forwarded-For` says) do not stop the correct password from
/// another address, nor slow it: the flood was refused before it counted against the
/// account. Wrong passwords from many addresses slow the account's answers, up to the cap,
/// and never refuse the correct one. The counts are in the database, as every instance
/// sees them.
#[tokio::test]
async fn a_flood_of_wrong_passwords_does_not_lock_the_admin_out() {
    let s = TestServer::start_with(&[("TRUSTED_PROXY_HOPS", "1")]).await;
    let from = |client: &str, password: &str| {
        let body =
            serde_urlencoded::to_string([("email", "ada@example.com"), ("password", password)])
                .unwrap();
        let client = client.to_owned();
        let s = &s;
        async move {
            s.raw_from(
                addr("10.0.0.1"),
                Method::POST,
                app::auth::Login::PATH,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("host", "console.example.com"),
                    ("origin", "https://console.example.com"),
                    ("x-forwarded-for", &client),
                ],
                Some(&body),
            )
            .await
        }
    };
    let mut refused = 0;
    for _ in 0..300 {
        match from("203.0.113.66", "a wrong guess").await.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        refused, 295,
        "five wrong passwords counted, the rest refused"
    );
    let started = std::time::Instant::now();
    let ada = from("198.51.100.7", PASSWORD).await;
    assert_eq!(ada.status, StatusCode::OK, "{}", ada.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Now the account has failed 40 times in the last minutes, from as many addresses (set
    // in the database: sending them would take two minutes of ever slower answers): past
    // its allowance, so its answers slow down, to at most four seconds.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    sqlx::query(&format!(
        "UPDATE login_failures SET paid_off = {} WHERE account = 'ada@example.com' AND address = ''",
        domain::time::now_ms() + 40 * 60_000
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let started = std::time::Instant::now();
    let ada = from("198.51.100.8", PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(ada.status, StatusCode::OK, "{}", ada.body);
    assert!(
        (std::time::Duration::from_secs(3)..std::time::Duration::from_secs(6)).contains(&took),
        "{took:?}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_with_a_scim_error() {
    let s = TestServer::start().await;
    let big = json!({"userName": "big", "title": "x".repeat(3 << 20)});
    let reply = s.scim(Method::POST, "/Users", Some(big)).await;
    reply.assert_error(413, None);
    // Nothing was created.
    let list = s.scim(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
}

#[tokio::test]
async fn deep_or_wide_filters_are_refused_and_the_largest_allowed_work() {
    let s = TestServer::start().await;
    s.create_user("ada@example.com").await;
    let deep = format!("{}userName eq \"x\"{}", "(".repeat(17), ")".repeat(17));
    s.scim(Method::GET, &format!("/Users?filter={}", q(&deep)), None)
        .await
        .assert_error(400, Some("invalidFilter"));
    // The widest filter allowed becomes one query the database takes.
    let terms: Vec<String> = (1..MAX_FILTER_TERMS)
        .map(|i| format!("userName eq \"u{i}\""))
        .chain(std::iter::once("userName eq \"ada@example.com\"".into()))
        .collect();
    let widest = terms.join(" or ");
    let reply = s
        .scim(Method::GET, &format!("/Users?filter={}", q(&widest)), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 1);
    let wider = format!("{widest} or userName eq \"u0\"");
    let reply = s
        .scim(Method::GET, &format!("/Users?filter={}", q(&wider)), None)
        .await;
    reply.assert_error(400, Some("invalidFilter"));
    assert_eq!(
        reply.detail(),
        "the filter has 51 comparisons; at most 50 are accepted"
    );
    // The reviewer's query: within the length limit, but a scan of every email per term.
    let scan = (0..195)
        .map(|i| format!("emails co \"q{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(scan.len() <= scim::filter::MAX_FILTER_LEN);
    s.scim(Method::GET, &format!("/Users?filter={}", q(&scan)), None)
        .await
        .assert_error(400, Some("invalidFilter"));
    s.scim(
        Method::POST,
        "/Users/.search",
        Some(json!({"filter": scan})),
    )
    .await
    .assert_error(400, Some("invalidFilter"));
    let nested = format!(
        "{}userName eq \"ada@example.com\"{}",
        "(".repeat(16),
        ")".repeat(16)
    );
    let reply = s
        .scim(Method::GET, &format!("/Users?filter={}", q(&nested)), None)
        .await;
    assert_eq!(reply.body["totalResults"], 1, "{}", reply.body);
}

#[tokio::test]
async fn too_many_emails_are_400_and_change_nothing() {
    let s = TestServer::start().await;
    let emails = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"value": format!("ada{i}@example.com"), "type": "work"}))
            .collect()
    };
    let over = s
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "ada@example.com", "emails": emails(MAX_VALUES_PER_ATTRIBUTE + 1)})),
        )
        .await;
    over.assert_error(400, Some("invalidValue"));
    assert_eq!(
        over.detail(),
        "emails has 101 values; at most 100 are accepted"
    );
    let list = s.scim(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
    let created = s
        .scim(
            Method::POST,
            "/Users",
            Some(
                json!({"userName": "ada@example.com", "emails": emails(MAX_VALUES_PER_ATTRIBUTE)}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "title", "value": "Countess"},
            {"op": "add", "path": "emails", "value": [{"value": "one.more@example.com"}]}
        ]
    });
    s.scim(Method::PATCH, &path, Some(patch))
        .await
        .assert_error(400, Some("invalidValue"));
    let after = s.scim(Method::GET, &path, None).await;
    assert!(after.body.get("title").is_none(), "{}", after.body);
    assert_eq!(
        after.body["emails"].as_array().map(Vec::len),
        Some(MAX_VALUES_PER_ATTRIBUTE)
    );
}

/// `n` member references. None needs to exist: the count is refused before any is looked up.
fn members(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"value": format!("u{i}")})).collect()
}

fn assert_too_many_members(reply: &Reply) {
    reply.assert_error(400, Some("invalidValue"));
    assert_eq!(
        reply.detail(),
        format!(
            "a request may name at most {MAX_MEMBERS_PER_REQUEST} members; this one names {}",
            MAX_MEMBERS_PER_REQUEST + 1
        )
    );
}

#[tokio::test]
async fn too_many_members_in_one_patch_are_400_and_change_nothing() {
    let s = TestServer::start().await;
    let group = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Everyone"})),
        )
        .await;
    let path = format!("/Groups/{}", group.body["id"].as_str().unwrap());
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": members(MAX_MEMBERS_PER_REQUEST + 1)}
        ]
    });
    let reply = s.scim(Method::PATCH, &path, Some(patch)).await;
    assert_too_many_members(&reply);
    let after = s.scim(Method::GET, &path, None).await;
    assert_eq!(after.body["displayName"], "Everyone", "{}", after.body);
}

#[tokio::test]
async fn too_many_members_in_a_group_body_are_400_and_change_nothing() {
    let s = TestServer::start().await;
    let ada = s.create_user("ada@example.com").await;
    let crowd = json!({"displayName": "Crowd", "members": members(MAX_MEMBERS_PER_REQUEST + 1)});
    let reply = s.scim(Method::POST, "/Groups", Some(crowd)).await;
    assert_too_many_members(&reply);
    let list = s.scim(Method::GET, "/Groups", None).await;
    assert_eq!(list.body["totalResults"], 0);

    let team = s
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Team", "members": [{"value": ada["id"]}]})),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let path = format!("/Groups/{}", team.body["id"].as_str().unwrap());
    let crowd = json!({"displayName": "Renamed", "members": members(MAX_MEMBERS_PER_REQUEST + 1)});
    let reply = s.scim(Method::PUT, &path, Some(crowd)).await;
    assert_too_many_members(&reply);
    let after = s.scim(Method::GET, &path, None).await;
    assert_eq!(after.body["displayName"], "Team", "{}", after.body);
    let kept: Vec<&Value> = after.body["members"]
        .as_array()
        .map(|m| m.iter().map(|m| &m["value"]).collect())
        .unwrap_or_default();
    assert_eq!(kept, vec![&ada["id"]]);
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_408() {
    let s = TestServer::start_with(&[("REQUEST_TIMEOUT_SECONDS", "1")]).await;
    // A client that sends the start of its body and then nothing more.
    let start = futures::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"userName\":"))
    });
    let body = Body::from_stream(start.chain(futures::stream::pending()));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/scimapi/Users")
        .header("authorization", format!("Bearer {}", s.token))
        .header("content-type", "application/scim+json")
        .body(body)
        .unwrap();
    let started = Instant::now();
    // Without a time limit the request would never end: fail instead of hanging.
    let reply = tokio::time::timeout(Duration::from_secs(10), s.send(request))
        .await
        .expect("an answer within 10 s");
    reply.assert_error(408, None);
    assert!(started.elapsed() < Duration::from_secs(5));
    let list = s.scim(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
}
