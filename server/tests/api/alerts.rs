//! Alerts, end to end: real HTTP receivers and an SMTP sink on 127.0.0.1 get what the
//! servers under test send, signed, once per condition, after retries and restarts, from
//! several instances at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use domain::accounts::Admin;
use domain::alerts::Rule;
use domain::integrations::{Actor, IntegrationKind};
use serde_json::Value;
use server::App;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{test_config, TestServer};

/// Servers that check the rules every second, retry after a second, and may send webhooks
/// to the receivers on the loopback address.
const ALERTING: &[(&str, &str)] = &[
    ("ALERT_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ("ALERT_CHECK_SECONDS", "1"),
    ("ALERT_RETRY_SECONDS", "1"),
];

/// The requests a receiver accepted: their headers and bodies.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver: what it was sent, and how it answers.
struct Receiver {
    url: String,
    received: Received,
    attempts: Arc<AtomicUsize>,
}

impl Receiver {
    /// Answers 500 to the first `failures` requests, 200 to the others after `delay`.
    async fn start(failures: usize, delay: Duration) -> Self {
        let received: Received = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let (kept, counted) = (received.clone(), attempts.clone());
        let hook = axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (kept, counted) = (kept.clone(), counted.clone());
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) < failures {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                tokio::time::sleep(delay).await;
                kept.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, axum::Router::new().route("/hook", hook))
                .await
                .unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            received,
            attempts,
        }
    }

    /// The alerts received so far, as JSON.
    fn alerts(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_slice(body).expect("a JSON body"))
            .collect()
    }

    /// Waits up to 15 s until `n` alerts have arrived; they are returned.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let alerts = self.alerts();
            if alerts.len() >= n {
                return alerts;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{n} alert(s) expected, {} arrived: {alerts:#?}",
                alerts.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn admin(s: &TestServer, email: &str) -> Admin {
    domain::accounts::login(&s.app.state.console.store, email, "correct horse battery")
        .await
        .expect("login")
}

/// Adds a webhook for `admin`'s organisation to `receiver`; its secret.
async fn add_webhook(s: &TestServer, admin: &Admin, receiver: &Receiver) -> String {
    let console = &s.app.state.console;
    let (_, secret) = domain::alerts::add_webhook(
        &console.store,
        admin,
        console.secret_key.as_ref(),
        console.webhooks,
        &receiver.url,
    )
    .await
    .expect("webhook");
    secret
}

/// `n` SCIM requests answered 400 (a filter that does not parse), written to the log.
async fn fail(s: &TestServer, n: usize) {
    for _ in 0..n {
        let reply = s
            .scim(Method::GET, "/Users?filter=userName%20zz%20%22x%22", None)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    let console = &s.app.state.console;
    console.activity.flush(&console.store).await;
}

async fn succeed(s: &TestServer, n: usize) {
    for _ in 0..n {
        assert_eq!(
            s.scim(Method::GET, "/Users", None).await.status,
            StatusCode::OK
        );
    }
    let console = &s.app.state.console;
    console.activity.flush(&console.store).await;
}

async fn audit_actions(s: &TestServer) -> Vec<String> {
    s.app
        .state
        .console
        .store
        .audit_events(&s.organisation_id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn a_failure_rate_past_the_threshold_sends_one_signed_alert_then_one_resolved() {
    let s = TestServer::start_with(ALERTING).await;
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let ada = admin(&s, "ada@example.com").await;
    let secret = add_webhook(&s, &ada, &receiver).await;
    let store = &s.app.state.console.store;
    domain::alerts::set_rule(store, &ada, Rule::FailureRate, true, Some(50))
        .await
        .unwrap();

    // 8 failures of 9 requests: too few requests to count yet; then 11 of 12.
    succeed(&s, 1).await;
    fail(&s, 8).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.alerts(), Vec::<Value>::new(), "under 10 requests");
    fail(&s, 3).await;

    let alerts = receiver.wait_for(1).await;
    let alert = &alerts[0];
    assert_eq!(alert["alert"], "failure_rate");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["integration"], "onelogin");
    assert_eq!(
        alert["console_url"],
        "https://console.example.com/settings/directory-integrations/onelogin"
    );
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.starts_with("Acme: 91 % of OneLogin's SCIM requests failed"),
        "{text}"
    );
    let (headers, body) = receiver.received.lock().unwrap()[0].clone();
    assert_eq!(
        headers["x-signature"].to_str().unwrap(),
        format!("sha256={}", server::alerts::signature(&secret, &body))
    );
    assert_ne!(
        headers["x-signature"].to_str().unwrap(),
        format!(
            "sha256={}",
            server::alerts::signature("another secret", &body)
        )
    );

    // Still holding: no second alert.
    fail(&s, 5).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(receiver.alerts().len(), 1, "{:#?}", receiver.alerts());

    // 16 failures of 37: under 50 %.
    succeed(&s, 20).await;
    let alerts = receiver.wait_for(2).await;
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(
        alerts[1]["text"],
        "Acme: OneLogin's SCIM failure rate is back under 50 %."
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.alerts().len(), 2);
    let sent = audit_actions(&s).await;
    assert_eq!(
        sent.iter().filter(|a| *a == "alert.sent").count(),
        2,
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt() {
    let s = TestServer::start_with(ALERTING).await;
    let receiver = Receiver::start(2, Duration::ZERO).await;
    let ada = admin(&s, "ada@example.com").await;
    add_webhook(&s, &ada, &receiver).await;
    let store = &s.app.state.console.store;
    let destination = &domain::alerts::destinations(store, &s.organisation_id)
        .await
        .unwrap()[0];
    domain::alerts::send_test(store, &ada, &destination.id)
        .await
        .unwrap();

    let alerts = receiver.wait_for(1).await;
    assert_eq!(alerts[0]["status"], "test");
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3);
    let actions = audit_actions(&s).await;
    assert_eq!(
        actions[..3],
        ["alert.sent", "alert.failed", "alert.failed"],
        "newest first: {actions:?}"
    );
    let events = store
        .audit_events(&s.organisation_id, None, 3)
        .await
        .unwrap();
    let detail = events[2].detail.as_deref().unwrap();
    assert!(
        detail.contains("(attempt 1, retried in 1 s): the receiver answered 500"),
        "{detail}"
    );
    assert!(
        !detail.contains("/hook"),
        "the URL's path is not shown: {detail}"
    );
}

#[tokio::test]
async fn a_restart_between_attempts_loses_nothing() {
    let vars = [
        ("ALERT_ALLOW_PRIVATE_WEBHOOKS", "true"),
        ("ALERT_CHECK_SECONDS", "1"),
        ("ALERT_RETRY_SECONDS", "3"),
    ];
    let s = TestServer::start_with(&vars).await;
    let receiver = Receiver::start(1, Duration::ZERO).await;
    let ada = admin(&s, "ada@example.com").await;
    add_webhook(&s, &ada, &receiver).await;
    let store = s.app.state.console.store.clone();
    let destination = domain::alerts::destinations(&store, &s.organisation_id)
        .await
        .unwrap()
        .remove(0);
    domain::alerts::send_test(&store, &ada, &destination.id)
        .await
        .unwrap();
    let started = Instant::now();
    while receiver.attempts.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no first attempt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first attempt failed; the server stops before the second.
    let TestServer {
        app,
        dir,
        database_url,
        ..
    } = s;
    app.shutdown().await;
    assert_eq!(receiver.alerts(), Vec::<Value>::new());

    let again = App::build(&test_config(&database_url, &vars))
        .await
        .unwrap();
    let alerts = receiver.wait_for(1).await;
    assert_eq!(alerts[0]["status"], "test");
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 2);
    again.shutdown().await;
    drop(dir);
}

#[tokio::test]
async fn two_instances_send_each_alert_once() {
    let s = TestServer::start_with(ALERTING).await;
    let other = App::build(&test_config(&s.database_url, ALERTING))
        .await
        .unwrap();
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let ada = admin(&s, "ada@example.com").await;
    add_webhook(&s, &ada, &receiver).await;

    // An event, queued once by the instance that records it.
    domain::integrations::reset_token(
        &other.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Admin {
            id: ada.id.clone(),
            email: ada.email.clone(),
        },
    )
    .await
    .unwrap();
    // A condition, which both instances check every second.
    let token = domain::integrations::reset_token(
        &s.app.state.console.store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .unwrap()
    .into_plaintext();
    let s = TestServer { token, ..s };
    fail(&s, 12).await;

    let alerts = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let mut kinds: Vec<String> = receiver
        .alerts()
        .iter()
        .map(|a| format!("{} {}", a["alert"], a["status"]))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "\"failure_rate\" \"firing\"",
            "\"token_changed\" \"event\"",
            "\"token_changed\" \"event\""
        ],
        "{alerts:#?}"
    );
    let texts: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["text"].as_str())
        .filter(|t| t.contains("reset"))
        .collect();
    assert!(
        texts.contains(&"Acme: ada@example.com reset the OneLogin provisioning token: the old one no longer works."),
        "{texts:?}"
    );
    other.shutdown().await;
}

#[tokio::test]
async fn a_slow_receiver_holds_up_only_its_own_organisation() {
    let s = TestServer::start_with(ALERTING).await;
    s.other_organisation_token().await;
    let slow = Receiver::start(0, Duration::from_secs(8)).await;
    let fast = Receiver::start(0, Duration::ZERO).await;
    let ada = admin(&s, "ada@example.com").await;
    let hank = admin(&s, "hank@example.com").await;
    add_webhook(&s, &ada, &slow).await;
    add_webhook(&s, &hank, &fast).await;
    let store = &s.app.state.console.store;
    let slow_hook = domain::alerts::destinations(store, &ada.organisation_id)
        .await
        .unwrap()
        .remove(0);
    for _ in 0..6 {
        domain::alerts::send_test(store, &ada, &slow_hook.id)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let fast_hook = domain::alerts::destinations(store, &hank.organisation_id)
        .await
        .unwrap()
        .remove(0);
    let asked = Instant::now();
    domain::alerts::send_test(store, &hank, &fast_hook.id)
        .await
        .unwrap();
    let alerts = fast.wait_for(1).await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "Globex waited {:?} behind Acme's slow receiver",
        asked.elapsed()
    );
    assert_eq!(alerts[0]["organisation"], "Globex");
    // Acme's receiver has at most two of its alerts at a time.
    assert!(slow.attempts.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn destinations_are_limited_and_private_to_their_organisation() {
    let s = TestServer::start_with(&[]).await;
    s.other_organisation_token().await;
    let console = &s.app.state.console;
    let ada = admin(&s, "ada@example.com").await;
    let hank = admin(&s, "hank@example.com").await;
    let add = |n: usize| {
        let url = format!("https://hooks.example.com/services/secret-{n}/tail");
        let (store, ada) = (console.store.clone(), ada.clone());
        let (key, policy) = (console.secret_key.clone(), console.webhooks);
        async move { domain::alerts::add_webhook(&store, &ada, key.as_ref(), policy, &url).await }
    };
    for n in 0..domain::alerts::MAX_DESTINATIONS {
        add(n).await.unwrap();
    }
    let refused = add(99).await.unwrap_err();
    assert!(matches!(refused, domain::Error::Refused(_)), "{refused:?}");
    // Without ALERT_ALLOW_PRIVATE_WEBHOOKS, no plain HTTP, no private address.
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
    ] {
        let refused = domain::alerts::add_webhook(
            &console.store,
            &hank,
            console.secret_key.as_ref(),
            console.webhooks,
            url,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(refused, domain::Error::Invalid { .. }),
            "{url}: {refused:?}"
        );
    }
    let acme = domain::alerts::destinations(&console.store, &ada.organisation_id)
        .await
        .unwrap();
    assert_eq!(acme[0].shown_as, "https://hooks.example.com/…tail");
    assert_eq!(
        domain::alerts::destinations(&console.store, &hank.organisation_id)
            .await
            .unwrap(),
        []
    );
    // Globex's admin can neither test nor remove Acme's destinations.
    for refused in [
        domain::alerts::send_test(&console.store, &hank, &acme[0].id).await,
        domain::alerts::remove_destination(&console.store, &hank, &acme[0].id).await,
    ] {
        assert!(
            matches!(refused, Err(domain::Error::NotFound)),
            "{refused:?}"
        );
    }
    // The webhook's URL is sealed: not in the database as text.
    let bytes = crate::common::database_contents(&s.database_url, s.dir.path()).await;
    let stored = String::from_utf8_lossy(&bytes);
    assert!(
        stored.contains("https://hooks.example.com/"),
        "the check sees them"
    );
    assert!(!stored.contains("secret-1"));
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message and keeps it.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = messages.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            write.write_all(b"354 end with .\r\n").await.unwrap();
                            let mut message = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                message.push_str(&line);
                                message.push('\n');
                            }
                            kept.lock().unwrap().push(message);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test]
async fn an_email_destination_gets_alerts_through_smtp() {
    let (port, messages) = smtp_sink().await;
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let s = TestServer::start_with(&[
        ("SMTP_URL", smtp_url.as_str()),
        ("ALERT_CHECK_SECONDS", "1"),
        ("ALERT_RETRY_SECONDS", "1"),
    ])
    .await;
    let store = &s.app.state.console.store;
    let ada = admin(&s, "ada@example.com").await;
    let added =
        domain::alerts::add_email(store, &ada, s.app.state.console.smtp, "ops@acme.example")
            .await
            .unwrap();
    domain::integrations::reset_token(
        store,
        &s.organisation_id,
        IntegrationKind::OneLogin,
        &Actor::Admin {
            id: ada.id.clone(),
            email: ada.email.clone(),
        },
    )
    .await
    .unwrap();
    domain::alerts::send_test(store, &ada, &added.id)
        .await
        .unwrap();
    let started = Instant::now();
    while messages.lock().unwrap().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no email arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Unfolded: quoted-printable soft line breaks, folded header lines.
    let all = messages
        .lock()
        .unwrap()
        .join("\n----\n")
        .replace("=\n", "")
        .replace("\n ", " ");
    assert!(all.contains("To: ops@acme.example"), "{all}");
    assert!(
        all.contains("From: \"SCIM console\" <alerts@console.example.com>"),
        "{all}"
    );
    assert!(
        all.contains("Subject: Acme: ada@example.com reset the OneLogin provisioning token"),
        "{all}"
    );
    assert!(
        all.contains("a test alert, sent by ada@example.com"),
        "{all}"
    );
    assert!(
        all.contains("https://console.example.com/settings/directory-integrations/onelogin"),
        "{all}"
    );
}
