//! Replays recorded IdP conversations (`server/tests/fixtures/*.json`) against a real
//! database and checks every answer.
//!
//! A fixture is `{"idp": ..., "steps": [...]}`. Each step is a request (`method`, `path`
//! under the SCIM base, optional `body` and `headers`) with the `status` expected, an optional
//! `expect` (a JSON subset the response body must contain: objects by key, arrays element by
//! element) and `capture` (`{"name": "/json/pointer"}`) whose values later steps use as
//! `{{name}}` in paths and bodies. `repeat: N` sends the step N times with `{{i}}` = 0..N-1.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;
use serde_json::Value;

use crate::common::TestServer;

fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(!out.contains("{{"), "unbound placeholder in {out}");
    out
}

fn substitute_json(value: &Value, vars: &HashMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(substitute(s, vars)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_json(v, vars)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (substitute(k, vars), substitute_json(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `actual` contains everything in `expected`.
fn contains(actual: &Value, expected: &Value) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a.get(k).ok_or_else(|| format!("missing key {k:?}"))?;
                contains(av, ev).map_err(|m| format!("{k}: {m}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!(
                    "expected {} elements, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                contains(av, ev).map_err(|m| format!("[{i}]: {m}"))?;
            }
            Ok(())
        }
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("expected {e}, got {a}")),
    }
}

/// Replays the fixture `name` on a new server; the server and the values captured.
async fn replay(name: &str) -> (TestServer, HashMap<String, String>) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture file"))
            .expect("fixture JSON");
    let s = TestServer::start().await;
    let auth = format!("Bearer {}", s.token);
    let mut vars: HashMap<String, String> = HashMap::new();
    let steps = fixture["steps"].as_array().expect("steps");
    for (n, step) in steps.iter().enumerate() {
        let repeat = step["repeat"].as_u64().unwrap_or(1);
        for i in 0..repeat {
            vars.insert("i".into(), i.to_string());
            let label = format!(
                "{name} step {n} ({})",
                step["note"].as_str().unwrap_or_default()
            );
            let method: Method = step["method"]
                .as_str()
                .expect("method")
                .parse()
                .expect("HTTP method");
            let target = format!(
                "/scimapi{}",
                substitute(step["path"].as_str().expect("path"), &vars)
            );
            let body = step
                .get("body")
                .map(|b| substitute_json(b, &vars).to_string());
            let mut headers: Vec<(String, String)> = vec![("authorization".into(), auth.clone())];
            if body.is_some() {
                headers.push(("content-type".into(), "application/scim+json".into()));
            }
            if let Some(Value::Object(extra)) = step.get("headers") {
                for (k, v) in extra {
                    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
                    headers.push((
                        k.to_ascii_lowercase(),
                        substitute(v.as_str().expect("header value"), &vars),
                    ));
                }
            }
            let header_refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let reply = s.raw(method, &target, &header_refs, body.as_deref()).await;
            let status = step["status"].as_u64().expect("status");
            assert_eq!(
                u64::from(reply.status.as_u16()),
                status,
                "{label}: {}",
                reply.body
            );
            if let Some(expected) = step.get("expect") {
                let expected = substitute_json(expected, &vars);
                if let Err(m) = contains(&reply.body, &expected) {
                    panic!("{label}: {m}\nbody: {}", reply.body);
                }
            }
            if let Some(Value::Object(captures)) = step.get("capture") {
                for (var, pointer) in captures {
                    let value = reply
                        .body
                        .pointer(pointer.as_str().expect("pointer"))
                        .unwrap_or_else(|| panic!("{label}: nothing at {pointer}"));
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    vars.insert(var.clone(), text);
                }
            }
        }
    }
    (s, vars)
}

/// OneLogin creates, suspends, deletes and creates Kim again; the console's user pages link
/// the record of the deleted Kim and the new one.
#[tokio::test]
async fn onelogin_v2_enterprise() {
    let (s, vars) = replay("onelogin-v2-enterprise.json").await;
    let (old, new) = (&vars["kim"], &vars["kim_again"]);
    assert_ne!(old, new);
    let console = &s.app.state.console;
    console.activity.flush(&console.store).await;
    let cookie = s.logged_in_cookie().await;
    let page = |id: &str| {
        let (s, cookie, id) = (&s, cookie.clone(), id.to_owned());
        async move {
            let reply = s
                .call(
                    app::users::ConsoleUser::PATH,
                    &[("id", id.as_str())],
                    Some(&cookie),
                    "https://console.example.com",
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body
        }
    };
    let record = page(old).await;
    assert_eq!(record["user"]["user_name"], "kjohnson@acme.example");
    assert_eq!(record["user"]["deleted"]["by"], "onelogin");
    assert_eq!(
        record["user"]["active"], false,
        "suspended before the delete"
    );
    assert_eq!(record["groups"][0][1], "Finance", "its groups at deletion");
    assert_eq!(record["recreated_as"][0], new.as_str());
    // Its SCIM history, newest first: what was tried after the delete, the delete, the
    // suspension.
    let history: Vec<(&str, i64)> = record["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["method"].as_str().unwrap(), a["status"].as_i64().unwrap()))
        .collect();
    assert!(
        history.starts_with(&[
            ("DELETE", 404),
            ("PATCH", 404),
            ("PUT", 404),
            ("GET", 404),
            ("DELETE", 204),
            ("PUT", 200),
        ]),
        "{history:?}"
    );
    let current = page(new).await;
    assert_eq!(current["user"]["deleted"], Value::Null);
    assert_eq!(current["deleted_before"][0][0], old.as_str());
    assert_eq!(current["recreated_as"], Value::Null);
}

#[tokio::test]
async fn okta_scim2() {
    replay("okta-scim2.json").await;
}

#[tokio::test]
async fn entra_id() {
    replay("entra-id.json").await;
}

#[tokio::test]
async fn entra_id_aadoptscim062020() {
    replay("entra-id-aadoptscim062020.json").await;
}
