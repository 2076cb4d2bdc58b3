//! Request bodies as the activity log keeps them: passwords removed, size bounded.
//!
//! IdPs may send a user's `password` on create, replace or PATCH (OneLogin and Okta can sync
//! passwords). The activity log shows administrators what was sent, failed requests included,
//! so every password value is replaced by [`REDACTED`] before the body is stored. What names a
//! password is decided by the PATCH engine's own parsing and [`designates_password`], not by a
//! matcher of this module's, so every spelling by which the engine reaches `password` is caught:
//! - the value of every key, at any depth, that names `password` or anything under it, read as
//!   the key of a no-path PATCH value (`password`, `PASSWORD`, `password.value`, URN-qualified),
//!   which covers POST and PUT bodies too;
//! - the value of every object whose `path` designates it (`password`, `password.value`,
//!   `urn:...:User:password`, `password[value eq "x"]`).
//!
//! A key or path that cannot be parsed at all but mentions `password` in any case is treated
//! as one. Such a key or path that is more than a plain attribute name (a value filter, or one
//! that does not parse) is itself replaced too: a filter's literal could be a password. A body that is not JSON is not stored at all, since nothing in it can be recognised.

use serde_json::Value;

use scim_v2::filter::PatchPath;

use crate::patch::{self, designates_password, ValueKey};

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

/// Whether an object key names a password, read as the PATCH engine reads a key of a no-path
/// value (`None` when it does not), and if so whether it is a plain attribute name, which
/// holds no literal and is kept as sent.
fn key_names_password(key: &str) -> Option<Plain> {
    if !mentions_password(key) {
        return None;
    }
    match patch::parse_value_key(key) {
        Ok(ValueKey::Path(path)) => designates_password(&path).then(|| Plain::of(&path)),
        Ok(ValueKey::Extension) => None,
        Err(_) => Some(Plain(false)),
    }
}

/// Whether an operation's `path` designates a password, read as the PATCH engine reads it,
/// and if so whether it is a plain attribute name. The engine refuses a path that is not a
/// string; its value is hidden all the same.
fn path_names_password(path: &Value) -> Option<Plain> {
    match path {
        Value::Null => None,
        Value::String(p) if !mentions_password(p) => None,
        Value::String(p) => match patch::parse_path(p) {
            Ok(parsed) => parsed
                .filter(designates_password)
                .map(|path| Plain::of(&path)),
            Err(_) => Some(Plain(false)),
        },
        other => mentions_password(&other.to_string()).then_some(Plain(false)),
    }
}

/// Whether a path naming a password is a plain attribute name, without a value filter whose
/// literal could be a password.
#[derive(Clone, Copy)]
struct Plain(bool);

impl Plain {
    fn of(path: &PatchPath) -> Self {
        Plain(matches!(path, PatchPath::Attr(_)))
    }
}

/// Whether `text` holds `password` in any case. A path or key that does not cannot
/// designate it (the attribute name a path parses to is part of its text), so only the few
/// that do are parsed: a body's keys are many, and most are plain attribute names.
pub(crate) fn mentions_password(text: &str) -> bool {
    text.as_bytes()
        .windows("password".len())
        .any(|w| w.eq_ignore_ascii_case(b"password"))
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // The engine reads one `path` and one `value` key, matched in any case; every
            // candidate counts here, so duplicates in other cases cannot hide one.
            let of_password = map
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("path"))
                .any(|(_, p)| path_names_password(p).is_some());
            for (key, inner) in std::mem::take(map) {
                let mut inner = inner;
                let named = key_names_password(&key);
                let is_value = key.eq_ignore_ascii_case("value");
                let is_path = key.eq_ignore_ascii_case("path");
                let hidden = named.is_some()
                    || (of_password && is_value)
                    || (is_path && matches!(path_names_password(&inner), Some(Plain(false))));
                if hidden {
                    inner = Value::String(REDACTED.into());
                } else {
                    redact(&mut inner);
                }
                let key = match named {
                    Some(Plain(false)) => REDACTED.to_owned(),
                    _ => key,
                };
                map.insert(key, inner);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

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

    const SECRET: &str = "Pa55-w0rd-n0t-t0-st0re";

    /// Every way a path or key can name the password: those the PATCH engine accepts, those
    /// it refuses as invalid paths, and some it cannot parse at all.
    const PASSWORD_PATHS: &[&str] = &[
        "password",
        "PASSWORD",
        "Password",
        " password ",
        "urn:ietf:params:scim:schemas:core:2.0:User:password",
        "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:PASSWORD",
        "password.value",
        "PassWord.Value",
        "urn:ietf:params:scim:schemas:core:2.0:User:password.value",
        "password[value eq \"x\"]",
        "password[value eq \"x\"].value",
        "PASSWORD[type pr]",
        "urn:ietf:params:scim:schemas:core:2.0:User:password[value pr]",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:password",
        "urn:example:password",
        "password.value.extra",
        "password[value eq",
        "x:password",
        "my password",
    ];

    fn assert_hidden(body: &Value) {
        let text = request_body(body.to_string().as_bytes()).unwrap();
        assert!(!text.contains(SECRET), "{body} was stored as {text}");
        assert!(text.contains(REDACTED), "{text}");
    }

    #[test]
    fn every_spelling_of_a_password_is_redacted() {
        for &name in PASSWORD_PATHS {
            for (path, value) in [("path", "value"), ("Path", "Value"), ("PATH", "VALUE")] {
                let mut operation = Map::new();
                operation.insert("op".into(), json!("replace"));
                operation.insert(path.into(), json!(name));
                operation.insert(value.into(), json!(SECRET));
                assert_hidden(&json!({"Operations": [operation]}));
            }
            let mut attrs = Map::new();
            attrs.insert(name.into(), json!(SECRET));
            attrs.insert("title".into(), json!("Boss"));
            let attrs = Value::Object(attrs);
            // A no-path PATCH value, nested in the extension object, and a POST or PUT body
            // with the key at the top and nested.
            assert_hidden(&json!({"Operations": [{"op": "add", "value": attrs}]}));
            assert_hidden(&json!({"Operations": [{"op": "add", "value":
                {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": attrs}}]}));
            assert_hidden(&attrs);
            assert_hidden(&json!({"userName": "ada", "name": attrs, "emails": [attrs]}));
            let stored = stored(json!({"Operations": [{"op": "add", "value": attrs}]}));
            assert_eq!(stored["Operations"][0]["value"]["title"], "Boss");
        }
        for value in [
            json!({"value": SECRET}),
            json!([SECRET]),
            json!([{"value": SECRET}]),
        ] {
            assert_hidden(&json!({"Operations": [
                {"op": "add", "path": "password", "value": value}]}));
        }
        // The engine refuses a path that is not a string, and a value with a removal.
        assert_hidden(&json!({"Operations": [
            {"op": "replace", "path": ["password"], "value": SECRET}]}));
        assert_hidden(&json!({"Operations": [
            {"op": "remove", "path": "password", "value": SECRET}]}));
    }

    #[test]
    fn a_password_in_a_filter_literal_is_hidden_with_the_path_or_key_that_holds_it() {
        for name in [
            format!("password[value eq \"{SECRET}\"]"),
            format!("PASSWORD[value eq \"{SECRET}\"].value"),
            format!("password[value eq \"{SECRET}\""),
        ] {
            assert_hidden(&json!({"Operations": [{"op": "replace", "path": name, "value": "x"}]}));
            let mut attrs = Map::new();
            attrs.insert(name.clone(), json!("x"));
            assert_hidden(&json!({"Operations": [{"op": "add", "value": attrs}]}));
        }
        // A plain name holds no literal and is kept as sent.
        let op = stored(
            json!({"Operations": [{"op": "replace", "path": "password.value", "value": SECRET}]}),
        );
        assert_eq!(op["Operations"][0]["path"], "password.value");
    }

    #[test]
    fn other_values_are_kept() {
        for path in [
            "title",
            "name.givenName",
            "emails[value eq \"password\"]",
            "emails[type eq \"work\"].value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "",
        ] {
            let op = stored(json!({"Operations": [{"op": "add", "path": path, "value": "kept"}]}));
            assert_eq!(op["Operations"][0]["value"], "kept", "{path}");
        }
        let op = stored(json!({"Operations": [{"op": "add", "value": {
            "title": "kept", "name.givenName": "kept", "$ref": "kept",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "kept"},
        }}]}));
        let value = &op["Operations"][0]["value"];
        for key in ["title", "name.givenName", "$ref"] {
            assert_eq!(value[key], "kept", "{key}");
        }
        assert_eq!(
            value["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "kept"
        );
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
