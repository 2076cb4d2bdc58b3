//! What an operator scrapes and reads, from a real server process (SQLite, or PostgreSQL
//! under `TEST_POSTGRES_URL`): `/metrics` in Prometheus' text format, whose SCIM counters
//! (and login counters) move by exactly the requests sent and whose labels never hold a token, an id or a raw
//! path; and request ids, echoed, quoted in SCIM errors, on the JSON log line of the request
//! and in its activity log entry.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::crash::{prepare, raw_request, Server};

/// Every sample of a scrape: (name, labels) to value. Histogram buckets, sums and counts are
/// samples like any other.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// Parses `text` as Prometheus' text exposition format, strictly: every line is a comment, or
/// `name{label="value",...} value` with a valid name, quoted label values and a number; every
/// family has a `# TYPE`; counters end in `_total`. `prometheus-parse` reads it too, as a
/// scraper would.
fn parse(text: &str) -> Samples {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("prometheus-parse reads it");
    assert!(!scrape.samples.is_empty(), "{text}");
    let mut types = HashMap::new();
    let mut samples = Samples::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.split(' ');
            if words.next() == Some("TYPE") {
                let name = words.next().expect("a TYPE names its metric");
                let kind = words.next().expect("a TYPE gives its type");
                assert!(
                    ["counter", "gauge", "histogram", "summary"].contains(&kind),
                    "{line}"
                );
                if kind == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "a counter is named *_total: {line}"
                    );
                }
                types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels close")),
            None => (series, ""),
        };
        assert!(
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        let mut pairs = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
            let end = after.find('"').expect("a closing quote");
            pairs.push((key.to_owned(), after[..end].to_owned()));
            rest = after[end + 1..].trim_start_matches(',');
        }
        pairs.sort();
        samples.insert((name.to_owned(), pairs), value);
    }
    samples
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0)
}

/// `/metrics` of the server listening on `port`.
async fn scrape(port: u16) -> Samples {
    let reply = raw_request(port, "GET", "/metrics", &[], "")
        .await
        .expect("scrape");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.header("content-type")
    );
    parse(&reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_scim_counters_move_by_exactly_the_requests_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "metrics").await;
    let token = prepare(&db).await;
    let server = Server::start(&db).await;
    let before = scrape(server.port).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let body = json!({"userName": format!("metric{n}@acme.example")});
        let (status, user) = server
            .request("POST", "/scimapi/Users", Some(&token), Some(&body))
            .await
            .unwrap();
        assert_eq!(status, 201, "{user}");
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let (status, _) = server
        .request(
            "GET",
            &format!("/scimapi/Users/{}", ids[0]),
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    for body in [
        json!({"userName": ""}),
        json!({"userName": "metric0@acme.example"}),
    ] {
        let (status, _) = server
            .request("POST", "/scimapi/Users", Some(&token), Some(&body))
            .await
            .unwrap();
        assert!(status == 400 || status == 409, "{status}");
    }
    let (status, _) = server
        .request(
            "GET",
            "/scimapi/Users?filter=userName%20eq%20%22x%22",
            Some("not-a-token"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 401);
    let (status, _) = server
        .request("GET", "/scimapi/Groups", None, None)
        .await
        .unwrap();
    assert_eq!(status, 401);

    // Wrong passwords, until the lockout refuses the sixth attempt.
    let form =
        serde_urlencoded::to_string([("email", "ada@example.com"), ("password", "wrong")]).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _, _) =
            crate::instances::console_call(server.port, app::auth::Login::PATH, &form, None).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);

    let after = scrape(server.port).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let onelogin = |outcome| [("integration", "onelogin"), ("outcome", outcome)];
    assert_eq!(moved("scim_requests_total", &onelogin("success")), 4.0);
    assert_eq!(moved("scim_requests_total", &onelogin("client_error")), 2.0);
    assert_eq!(moved("scim_requests_total", &onelogin("server_error")), 0.0);
    assert_eq!(
        moved("scim_token_failures_total", &[("reason", "unknown")]),
        1.0
    );
    assert_eq!(
        moved("scim_token_failures_total", &[("reason", "missing")]),
        1.0
    );
    assert_eq!(moved("console_login_failures_total", &[]), 5.0);
    assert_eq!(moved("console_login_throttled_total", &[]), 1.0);
    let created = [
        ("method", "POST"),
        ("route", "/scimapi/Users"),
        ("status", "201"),
    ];
    assert_eq!(moved("http_requests_total", &created), 3.0);
    assert_eq!(moved("http_request_duration_seconds_count", &created), 3.0);
    let read = [
        ("method", "GET"),
        ("route", "/scimapi/Users/{id}"),
        ("status", "200"),
    ];
    assert_eq!(moved("http_requests_total", &read), 1.0);
    assert!(sample(&after, "store_job_run_seconds_count", &[("kind", "write")]) >= 3.0);
    assert!(
        sample(
            &after,
            "store_connections",
            &[(
                "queue",
                if db.starts_with("sqlite:") {
                    "write"
                } else {
                    "pool"
                }
            )]
        ) >= 1.0
    );

    // No label value is a token, an id, a name that was sent, or a path as sent.
    for (name, labels) in after.keys() {
        for (key, value) in labels {
            let sent = ids.iter().any(|id| value.contains(id.as_str()))
                || value.contains(&token)
                || value.contains("not-a-token")
                || value.contains("acme.example")
                || value.contains('?');
            assert!(!sent, "{name}{{{key}={value:?}}}");
            if key == "route" {
                assert!(value == "fallback" || value.starts_with('/'), "{value}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_serves_metrics_apart_from_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "metrics_addr").await;
    prepare(&db).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start_with(&db, "warn", Stdio::null(), &[("METRICS_ADDR", &addr)]).await;
    let main = server.raw("GET", "/metrics", &[], "").await.unwrap();
    assert_eq!(main.status, 404, "{}", main.body);
    let samples = scrape(port).await;
    assert!(samples.keys().any(|(name, _)| name == "store_connections"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_echoed_quoted_in_errors_logged_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "request_ids").await;
    let token = prepare(&db).await;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_with(&db, "info", log.into(), &[("LOG_FORMAT", "json")]).await;
    let auth = format!("Bearer {token}");
    let headers = |id: &'static str| {
        vec![
            ("Authorization", auth.clone()),
            ("Content-Type", "application/scim+json".to_owned()),
            ("X-Request-Id", id.to_owned()),
        ]
    };
    let send = |id: &'static str, body: Value| {
        let headers = headers(id);
        let server = &server;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server
                .raw("POST", "/scimapi/Users", &headers, &body.to_string())
                .await
                .unwrap()
        }
    };

    // Accepted: echoed, and recorded with the user it created.
    let created = send("idp-7f3c.1", json!({"userName": "ada@acme.example"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("x-request-id"), Some("idp-7f3c.1"));
    // Refused: the error's detail quotes it, as the IdP will show it.
    let refused = send("idp-7f3c.2", json!({"userName": "ada@acme.example"})).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.header("x-request-id"), Some("idp-7f3c.2"));
    let error: Value = serde_json::from_str(&refused.body).unwrap();
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.ends_with(" (request id: idp-7f3c.2)"), "{detail}");
    // One that does not belong in a log line is replaced with a new one.
    let replaced = send("two words", json!({"userName": "bo@acme.example"})).await;
    assert_eq!(replaced.status, 201);
    let new_id = replaced.header("x-request-id").unwrap().to_owned();
    assert_eq!(new_id.len(), 36, "{new_id}");
    // Every response carries one, even a health check.
    let health = server.raw("GET", "/healthz", &[], "").await.unwrap();
    assert_eq!(health.header("x-request-id").map(str::len), Some(36));

    // The activity log records each request's id.
    let store = domain::Store::connect(&db).await.unwrap();
    let org = store.organisation_by_name("Acme").await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = store
            .requests(
                &org.id,
                &domain::activity::RequestQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if rows.len() >= 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut recorded = Vec::new();
    for row in &rows {
        let detail = store
            .request_detail(&org.id, row.id)
            .await
            .unwrap()
            .unwrap();
        recorded.push((detail.request_id, row.status));
    }
    assert_eq!(
        recorded,
        [
            (Some(new_id), 201),
            (Some("idp-7f3c.2".to_owned()), 409),
            (Some("idp-7f3c.1".to_owned()), 201)
        ]
    );
    store.close().await;

    // The log is JSON lines, and the refused request's line carries its id.
    server.stop();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "idp-7f3c.2")
        .unwrap_or_else(|| panic!("no line of the refused request in:\n{log}"));
    assert_eq!(line["fields"]["status"], 409, "{line}");
    assert_eq!(line["span"]["route"], "/scimapi/Users", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
}
