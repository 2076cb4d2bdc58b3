//! Request bodies as the activity log keeps them: passwords removed, size bounded.
//!
//! IdPs may send a user's `password` on create, replace or PATCH (OneLogin and Okta can sync
//! passwords). The activity log shows administrators what was sent, so every password value is
//! replaced by [`REDACTED`] before the body is stored: an attribute named `password` in any case
//! or URN-qualified, at any depth, and the value of a PATCH operation whose path is `password`.
//! A body that is not JSON is not stored at all, since nothing in it can be recognised.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Stored bodies are cut at this many bytes.
pub const MAX_STORED_BODY: usize = 8 * 1024;

/// The body to store for `raw`, or `None` for an empty one.
pub fn request_body(raw: &[u8]) -> Option<String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(raw) else {
        return Some(format!("(not JSON: {} bytes, not stored)", raw.len()));
    };
    redact(&mut value);
    let mut text = value.to_string();
    if text.len() > MAX_STORED_BODY {
        let mut cut = MAX_STORED_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("… (cut at 8 KiB)");
    }
    Some(text)
}

fn is_password(name: &str) -> bool {
    let last = name.rsplit(':').next().unwrap_or(name);
    last.eq_ignore_ascii_case("password")
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let patch_of_password = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str())
                .is_some_and(|p| is_password(p.trim()));
            for (key, inner) in map.iter_mut() {
                let is_value = key.eq_ignore_ascii_case("value");
                if is_password(key) || (patch_of_password && is_value) {
                    *inner = Value::String(REDACTED.into());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(body: Value) -> Value {
        serde_json::from_str(&request_body(body.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn passwords_are_removed_wherever_they_are() {
        let user = stored(
            json!({"userName": "ada", "password": "s3cret", "PASSWORD": "x",
            "urn:ietf:params:scim:schemas:core:2.0:User:password": "y"}),
        );
        assert_eq!(user["userName"], "ada");
        for key in [
            "password",
            "PASSWORD",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
        ] {
            assert_eq!(user[key], REDACTED);
        }
        let patch = stored(json!({"Operations": [
            {"op": "replace", "path": "password", "value": "s3cret"},
            {"op": "Replace", "Path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "Value": "s3cret"},
            {"op": "replace", "value": {"password": "s3cret", "title": "Boss"}},
            {"op": "replace", "path": "title", "value": "Boss"}
        ]}));
        let ops = patch["Operations"].as_array().unwrap();
        assert_eq!(ops[0]["value"], REDACTED);
        assert_eq!(ops[1]["Value"], REDACTED);
        assert_eq!(ops[2]["value"]["password"], REDACTED);
        assert_eq!(ops[2]["value"]["title"], "Boss");
        assert_eq!(ops[3]["value"], "Boss");
        assert!(!request_body(br#"{"a":[{"password":"s3cret"}]}"#)
            .unwrap()
            .contains("s3cret"));
    }

    #[test]
    fn empty_unreadable_and_large_bodies() {
        assert_eq!(request_body(b""), None);
        assert_eq!(request_body(b" \n"), None);
        let text = request_body(b"password=s3cret").unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let large = json!({"displayName": "é".repeat(10_000)}).to_string();
        let text = request_body(large.as_bytes()).unwrap();
        assert!(text.len() < MAX_STORED_BODY + 32);
        assert!(text.ends_with("(cut at 8 KiB)"));
    }
}
