//! What a write changed on a user, attribute by attribute, as the console's change history
//! keeps it: the attribute's path, its value before and after, as text.
//!
//! Both sides are canonical [`UserDoc`]s, which never hold a password (it is write-only and
//! not stored), so no change can carry one. Values are cut at [`MAX_VALUE_CHARS`]: the
//! history says what changed, the user's page shows the whole of what is there now.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::schema::ENTERPRISE_USER;
use crate::user::UserDoc;

/// The longest value a change keeps, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// One attribute a write changed. `old` is `None` when it was added, `new` when removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeChange {
    /// A SCIM attribute path: `title`, `name.givenName`, `emails[type eq "work"]`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The attributes that differ between `before` and `after`, in path order.
pub fn user_changes(before: &UserDoc, after: &UserDoc) -> Vec<AttributeChange> {
    let (old, mut new) = (flatten(before.attributes()), flatten(after.attributes()));
    let mut changes = Vec::new();
    for (path, old) in old {
        match new.remove(&path) {
            Some(new) if new == old => {}
            new => changes.push(AttributeChange {
                path,
                old: Some(old),
                new,
            }),
        }
    }
    changes.extend(new.into_iter().map(|(path, new)| AttributeChange {
        path,
        old: None,
        new: Some(new),
    }));
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// Every value of a user by its path, as text.
fn flatten(attributes: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in attributes {
        match value {
            Value::Object(extension) if name == ENTERPRISE_USER => {
                for (sub, value) in extension {
                    put(&mut out, format!("{ENTERPRISE_USER}:{sub}"), value);
                }
            }
            value => put(&mut out, name.clone(), value),
        }
    }
    out
}

fn put(out: &mut BTreeMap<String, String>, path: String, value: &Value) {
    match value {
        Value::Object(subs) => {
            for (sub, value) in subs {
                put(out, format!("{path}.{sub}"), value);
            }
        }
        Value::Array(elements) => multi_valued(out, &path, elements),
        scalar => {
            out.insert(path, shown(scalar_text(scalar)));
        }
    }
}

/// The elements of a multi-valued attribute, each at `name[type eq "..."]` when their types
/// tell them apart (as IdPs send emails and phone numbers), else all of them as one value
/// (an order or index would make every change look like many).
fn multi_valued(out: &mut BTreeMap<String, String>, name: &str, elements: &[Value]) {
    let types: Vec<Option<&str>> = elements
        .iter()
        .map(|e| e.get("type").and_then(Value::as_str))
        .collect();
    let mut distinct: Vec<&str> = types.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == elements.len() {
        for (element, kind) in elements.iter().zip(types.into_iter().flatten()) {
            out.insert(
                format!("{name}[type eq {}]", Value::String(kind.to_owned())),
                shown(element_text(element)),
            );
        }
    } else {
        let all: Vec<String> = elements.iter().map(element_text).collect();
        out.insert(name.to_owned(), shown(all.join(", ")));
    }
}

/// An element as a person reads it: its `value` (or an address's `formatted`), marked when
/// primary; else its sub-attributes.
fn element_text(element: &Value) -> String {
    let Value::Object(subs) = element else {
        return scalar_text(element);
    };
    let main = ["value", "formatted"]
        .iter()
        .find_map(|k| subs.get(*k).filter(|v| !v.is_object() && !v.is_array()))
        .map(scalar_text)
        .unwrap_or_else(|| {
            subs.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "primary"))
                .map(|(k, v)| format!("{k}={}", scalar_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        });
    if subs.get("primary") == Some(&Value::Bool(true)) {
        format!("{main} (primary)")
    } else {
        main
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text`, cut at [`MAX_VALUE_CHARS`].
pub fn shown(text: String) -> String {
    match text.char_indices().nth(MAX_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> UserDoc {
        UserDoc::from_request(&v).expect("valid user")
    }

    fn change(path: &str, old: Option<&str>, new: Option<&str>) -> AttributeChange {
        AttributeChange {
            path: path.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        }
    }

    #[test]
    fn changes_name_each_attribute_by_its_path() {
        let cases: &[(Value, Value, Vec<AttributeChange>)] = &[
            (
                json!({"userName": "ada", "title": "Engineer"}),
                json!({"userName": "ada", "title": "Manager"}),
                vec![change("title", Some("Engineer"), Some("Manager"))],
            ),
            (
                json!({"userName": "ada"}),
                json!({"userName": "ada", "active": false}),
                vec![change("active", Some("true"), Some("false"))],
            ),
            (
                json!({"userName": "ada", "name": {"givenName": "Ada", "familyName": "L"}}),
                json!({"userName": "ada", "name": {"givenName": "Ada"}}),
                vec![change("name.familyName", Some("L"), None)],
            ),
            (
                json!({"userName": "ada", "emails": [{"value": "a@x.org", "type": "work", "primary": true}]}),
                json!({"userName": "ada", "emails": [
                    {"value": "a@y.org", "type": "work", "primary": true},
                    {"value": "a@home.org", "type": "home"}]}),
                vec![
                    change(r#"emails[type eq "home"]"#, None, Some("a@home.org")),
                    change(
                        r#"emails[type eq "work"]"#,
                        Some("a@x.org (primary)"),
                        Some("a@y.org (primary)"),
                    ),
                ],
            ),
            (
                json!({"userName": "ada", "phoneNumbers": [{"value": "1"}, {"value": "2"}]}),
                json!({"userName": "ada", "phoneNumbers": [{"value": "1"}]}),
                vec![change("phoneNumbers", Some("1, 2"), Some("1"))],
            ),
            (
                json!({"userName": "ada", ENTERPRISE_USER: {"department": "R&D", "manager": {"value": "m1"}}}),
                json!({"userName": "ada", ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "m1"}}}),
                vec![change(
                    &format!("{ENTERPRISE_USER}:department"),
                    Some("R&D"),
                    Some("Sales"),
                )],
            ),
            (
                json!({"userName": "ada", "addresses": [{"type": "work", "locality": "Paris"}]}),
                json!({"userName": "ada", "addresses": [{"type": "work", "locality": "Lyon"}]}),
                vec![change(
                    r#"addresses[type eq "work"]"#,
                    Some("locality=Paris"),
                    Some("locality=Lyon"),
                )],
            ),
            (
                json!({"userName": "ada", "title": "same"}),
                json!({"userName": "ada", "title": "same"}),
                vec![],
            ),
        ];
        for (before, after, expected) in cases {
            assert_eq!(
                &user_changes(&doc(before.clone()), &doc(after.clone())),
                expected,
                "{before} -> {after}"
            );
        }
    }

    #[test]
    fn no_change_carries_a_password() {
        let before = doc(json!({"userName": "ada", "password": "old secret"}));
        let after = doc(json!({"userName": "ada", "password": "new secret", "title": "x"}));
        let changes = format!("{:?}", user_changes(&before, &after));
        assert!(!changes.contains("secret"), "{changes}");
        assert!(changes.contains("title"));
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE_CHARS + 5);
        let cut = shown(long);
        assert_eq!(cut.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(shown("short".into()), "short");
    }
}
