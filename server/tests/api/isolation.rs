//! No organisation can stall another, and no flood of logins can stall provisioning: one
//! organisation saturating the store with the most expensive filters the limits allow, or
//! 200 concurrent wrong-password logins, while another organisation's SCIM requests and
//! console pages keep being answered. Latencies are printed, not asserted; what is asserted
//! is the order in which things end.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;
use serde_json::json;

use crate::common::{q, request_from, scim_request, send_through, TestServer};
use crate::console::{session_cookie, PASSWORD};

const ORIGIN: &str = "https://console.example.com";

/// Users of the attacking organisation, each with the most emails a user may have.
const ATTACKER_USERS: usize = 2_000;

impl TestServer {
    /// Creates `n` users with `scim::user::MAX_VALUES_PER_ATTRIBUTE` emails each, eight
    /// requests at a time.
    async fn users_with_many_emails(&self, n: usize) {
        let mut created = 0;
        while created < n {
            let batch: Vec<_> = (created..n.min(created + 8))
                .map(|i| {
                    let emails: Vec<_> = (0..scim::user::MAX_VALUES_PER_ATTRIBUTE)
                        .map(|e| json!({"value": format!("u{i}.e{e}@example.com")}))
                        .collect();
                    self.scim(
                        Method::POST,
                        "/Users",
                        Some(json!({"userName": format!("u{i}"), "emails": emails})),
                    )
                })
                .collect();
            for reply in futures::future::join_all(batch).await {
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            }
            created = n.min(created + 8);
        }
    }
}

/// The costliest filter the limits allow: every comparison a substring search of every
/// email, none of which matches.
fn expensive_filter() -> String {
    (0..scim::filter::MAX_FILTER_TERMS)
        .map(|i| format!("emails co \"zz{i}\""))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_saturating_the_store_does_not_stall_another() {
    let s = TestServer::start_with(&[("REQUEST_TIMEOUT_SECONDS", "1")]).await;
    let seeding = Instant::now();
    s.users_with_many_emails(ATTACKER_USERS).await;
    println!("seeded {ATTACKER_USERS} users in {:?}", seeding.elapsed());
    let victim_token = s.other_organisation_token().await;
    let victim = s
        .scim_with(
            &victim_token,
            Method::POST,
            "/Users",
            Some(json!({"userName": "victim@globex.example"})),
        )
        .await;
    assert_eq!(victim.status, StatusCode::CREATED, "{}", victim.body);
    let victim_path = format!("/Users/{}", victim.body["id"].as_str().unwrap());
    let login = s.login("hank@example.com", PASSWORD, None).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let cookie = session_cookie(&login).expect("a session cookie");

    // Four concurrent filters of the attacker, as in the report.
    let path = format!("/Users?filter={}", q(&expensive_filter()));
    let attack = Instant::now();
    let attacks: Vec<_> = (0..4)
        .map(|_| {
            let (router, token, path) = (s.app.router.clone(), s.token.clone(), path.clone());
            tokio::spawn(async move {
                let request = scim_request(&token, Method::GET, &path);
                let reply = send_through(router, request).await;
                (reply, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut scim = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let reply = s
            .scim_with(&victim_token, Method::GET, &victim_path, None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        scim.push(started.elapsed());
        let started = Instant::now();
        let reply = s
            .call(app::dashboard::Dashboard::PATH, &[], Some(&cookie), ORIGIN)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages.push(started.elapsed());
    }
    let victim_done = Instant::now();
    println!("victim GET /Users/{{id}}: {scim:?}");
    println!("victim console dashboard: {pages:?}");

    for attack_request in attacks {
        let (reply, ended) = attack_request.await.unwrap();
        println!(
            "attacker's filter: {} after {:?}",
            reply.status,
            ended - attack
        );
        // Cut at the deadline (408), or refused for want of a turn (503): a SCIM error
        // either way, never a result computed for as long as the query would take.
        assert!(
            [408, 503].contains(&reply.status.as_u16()),
            "{}: {}",
            reply.status,
            reply.body
        );
        reply.assert_error(reply.status.as_u16(), None);
        assert!(
            ended > victim_done,
            "the victim was answered while the attacker's requests were still running"
        );
    }
    // The attacker's store still answers, and nothing of it changed.
    let list = s.scim(Method::GET, "/Users?count=1", None).await;
    assert_eq!(list.body["totalResults"], ATTACKER_USERS, "{}", list.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_password_logins_waits_for_hashing_while_scim_goes_on() {
    let s = TestServer::start().await;
    let user = s.create_user("kim@acme.example").await;
    let user_path = format!("/Users/{}", user["id"].as_str().unwrap());
    // 200 wrong-password logins, each from its own address and for its own unknown email,
    // so that no throttle refuses them before their password is hashed.
    let logins: Vec<_> = (0..200u32)
        .map(|i| {
            let router = s.app.router.clone();
            tokio::spawn(async move {
                let peer = IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8 + 1]);
                let form = serde_urlencoded::to_string([
                    ("email", format!("nobody{i}@example.com")),
                    ("password", "a wrong password".to_owned()),
                ])
                .unwrap();
                let request = request_from(
                    peer,
                    Method::POST,
                    app::auth::Login::PATH,
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("host", "console.example.com"),
                        ("origin", ORIGIN),
                    ],
                    Some(&form),
                );
                let reply = send_through(router, request).await;
                (reply.status, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut scim = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let reply = s.scim(Method::GET, &user_path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        scim.push(started.elapsed());
    }
    let scim_done = Instant::now();
    println!(
        "SCIM GET while 200 logins queue for {} hashing slot(s): {scim:?}",
        domain::password::hashing_slots()
    );
    let mut after = 0;
    for login in logins {
        let (status, ended) = login.await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        if ended > scim_done {
            after += 1;
        }
    }
    // The hashing slots take the logins a few at a time, so most of them end after the
    // SCIM requests, which never wait for a slot.
    assert!(
        after >= 100,
        "only {after} of 200 logins were still waiting when SCIM was done"
    );
}
