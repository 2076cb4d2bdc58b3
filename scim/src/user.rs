//! The User resource in canonical form.
//!
//! Every body an IdP sends for a User (POST, PUT, and the result of a PATCH) goes through
//! [`normalise`], which absorbs the dialects seen in the field: attribute names in any case,
//! `"active": "False"`, `emails` as one object instead of an array, `"id": null`, `manager` as
//! `{managerId}`, enterprise attributes URN-qualified at the top level. What comes out is what
//! is stored: known attributes in schema spelling, the read-only ones (`id`, `meta`, `groups`)
//! and the write-only `password` removed.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{self, Attr, Kind, SubAttr, ENTERPRISE_ATTRS, ENTERPRISE_USER, USER_ATTRS};

/// The most values one multi-valued attribute of a User (`emails`, `phoneNumbers`, ...) may
/// be given. Every value is a row of the index that filters search, and an IdP that sent
/// 30,000 emails per user made each `emails co` filter a scan of millions of rows. Enforced
/// on input only: users stored before the limit existed stay readable.
pub const MAX_VALUES_PER_ATTRIBUTE: usize = 100;

/// A User's stored attributes, canonical and validated: `userName` present, `active` a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDoc(Map<String, Value>);

/// One filterable value of a user, as storage indexes it (see `filter`): a single-valued
/// string by its path, or one element of a multi-valued attribute. Text is case-folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedValue {
    pub attribute: String,
    pub element: i64,
    pub value: Option<String>,
    pub kind: Option<String>,
    pub display: Option<String>,
    pub primary: bool,
}

/// What the server knows about a resource beyond its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    /// RFC 3339 timestamps.
    pub created: String,
    pub last_modified: String,
    pub location: String,
    pub version: i64,
}

impl Meta {
    /// The weak entity tag of this version, used as `meta.version` and the `ETag` header.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

impl UserDoc {
    /// Parses the body of a POST or PUT. A user sent without `active` is active.
    pub fn from_request(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax(
                "the request body must be a JSON object",
            ));
        };
        let mut doc = Self::from_map(map)?;
        doc.limit_values(None)?;
        doc.0.entry("active").or_insert(Value::Bool(true));
        Ok(doc)
    }

    /// Reads attributes as stored. They were canonical when written, so this only fails on a
    /// corrupted row. Limits on input are not applied: a user stored before a limit existed
    /// must still read.
    pub fn from_stored(json: &str) -> Result<Self, ScimError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ScimError::new(500, None, format!("stored user is not JSON: {e}")))?;
        match value {
            Value::Object(map) => Self::from_map(&map),
            _ => Err(ScimError::new(
                500,
                None,
                "stored user is not a JSON object",
            )),
        }
    }

    /// Canonicalises and validates attributes, adding nothing: a PATCH that removes `active`
    /// leaves it unassigned (read as active, the default a new user gets).
    pub(crate) fn from_map(map: &Map<String, Value>) -> Result<Self, ScimError> {
        let attrs = normalise(map)?;
        match attrs.get("userName") {
            Some(Value::String(name)) if !name.trim().is_empty() => {}
            _ => {
                return Err(ScimError::invalid_value(
                    "userName is required and must be a non-empty string",
                ))
            }
        }
        Ok(Self(attrs))
    }

    /// Refuses a multi-valued attribute with more than [`MAX_VALUES_PER_ATTRIBUTE`] values.
    /// After a PATCH, `before` is the user it was applied to: an attribute that already had
    /// more (stored before the limit existed) may keep as many, so such a user can still be
    /// deactivated or renamed, but not grow.
    pub(crate) fn limit_values(&self, before: Option<&UserDoc>) -> Result<(), ScimError> {
        for attr in USER_ATTRS {
            if !matches!(attr.kind, Kind::MultiComplex(_)) {
                continue;
            }
            let count = self.value_count(attr.name);
            let allowed = before.map_or(0, |b| b.value_count(attr.name));
            if count > MAX_VALUES_PER_ATTRIBUTE.max(allowed) {
                return Err(ScimError::invalid_value(format!(
                    "{} has {count} values; at most {MAX_VALUES_PER_ATTRIBUTE} are accepted",
                    attr.name
                )));
            }
        }
        Ok(())
    }

    /// How many values a multi-valued attribute holds; canonical form keeps them in an array.
    fn value_count(&self, name: &str) -> usize {
        self.0
            .get(name)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    pub fn attributes(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn user_name(&self) -> &str {
        self.0
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The key under which userName is unique: SCIM compares userName case-insensitively.
    pub fn user_name_key(&self) -> String {
        fold_case(self.user_name())
    }

    pub fn external_id(&self) -> Option<&str> {
        self.0.get("externalId").and_then(Value::as_str)
    }

    pub fn display_name(&self) -> Option<&str> {
        self.0.get("displayName").and_then(Value::as_str)
    }

    /// The primary email, or the first one.
    pub fn primary_email(&self) -> Option<&str> {
        let emails = self.0.get("emails")?.as_array()?;
        let primary = emails
            .iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| emails.first())?;
        primary.get("value").and_then(Value::as_str)
    }

    pub fn active(&self) -> bool {
        self.0
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// The values storage indexes for filters, beyond userName, externalId, displayName and
    /// active, which have columns of their own.
    pub fn indexed_values(&self) -> Vec<IndexedValue> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            if key == ENTERPRISE_USER {
                if let Value::Object(ext) = value {
                    for (k, v) in ext {
                        index_single(&format!("{ENTERPRISE_USER}:{k}"), v, &mut out);
                    }
                }
                continue;
            }
            if ["userName", "externalId", "displayName", "active"].contains(&key.as_str()) {
                continue;
            }
            match value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let text =
                            |name: &str| item.get(name).and_then(Value::as_str).map(fold_case);
                        let main = if key == "addresses" {
                            "formatted"
                        } else {
                            "value"
                        };
                        out.push(IndexedValue {
                            attribute: key.clone(),
                            element: i as i64,
                            value: text(main),
                            kind: text("type"),
                            display: text("display"),
                            primary: item.get("primary").and_then(Value::as_bool) == Some(true),
                        });
                    }
                }
                other => index_single(key, other, &mut out),
            }
        }
        out
    }

    /// Sets `active`, as DELETE does when it deactivates.
    pub fn set_active(&mut self, active: bool) {
        self.0.insert("active".into(), Value::Bool(active));
    }

    /// The attributes as stored, serialised. `externalId` is not among them: it belongs to
    /// the integration that sent it and is stored with that integration.
    pub fn to_json(&self) -> String {
        let mut shared = self.0.clone();
        shared.remove("externalId");
        Value::Object(shared).to_string()
    }

    /// Puts back the `externalId` the reading integration stored for this user.
    pub fn with_external_id(mut self, external_id: Option<String>) -> Self {
        match external_id {
            Some(e) => self.0.insert("externalId".into(), Value::String(e)),
            None => self.0.remove("externalId"),
        };
        self
    }

    /// The full SCIM representation returned to clients.
    pub fn to_resource(&self, meta: &Meta) -> Value {
        let mut schemas = vec![Value::from(schema::USER)];
        if self.0.contains_key(ENTERPRISE_USER) {
            schemas.push(Value::from(ENTERPRISE_USER));
        }
        let mut out = Map::new();
        out.insert("schemas".into(), Value::Array(schemas));
        out.insert("id".into(), Value::from(meta.id.clone()));
        for (k, v) in &self.0 {
            out.insert(k.clone(), v.clone());
        }
        out.insert(
            "meta".into(),
            serde_json::json!({
                "resourceType": "User",
                "created": meta.created,
                "lastModified": meta.last_modified,
                "location": meta.location,
                "version": meta.etag(),
            }),
        );
        Value::Object(out)
    }
}

/// Indexes a string, or each string sub-attribute of a complex value as `path.sub`.
fn index_single(path: &str, value: &Value, out: &mut Vec<IndexedValue>) {
    let mut push = |attribute: String, text: &str| {
        out.push(IndexedValue {
            attribute,
            element: 0,
            value: Some(fold_case(text)),
            kind: None,
            display: None,
            primary: false,
        })
    };
    match value {
        Value::String(s) => push(path.to_owned(), s),
        Value::Object(map) => {
            for (sub, v) in map {
                if let Value::String(s) = v {
                    push(format!("{path}.{sub}"), s);
                }
            }
        }
        _ => {}
    }
}

/// The case-folded form under which case-insensitive attributes (userName, displayName) are
/// stored, compared for uniqueness and matched by filters.
pub fn fold_case(value: &str) -> String {
    value.to_lowercase()
}

/// Canonicalises a User body's attributes (see the module documentation).
pub(crate) fn normalise(input: &Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    let mut enterprise = Map::new();
    for (key, value) in input {
        match classify(key) {
            Key::Ignored => {}
            Key::Core(attr) => put(&mut out, attr, value)?,
            Key::Enterprise(attr) => put(&mut enterprise, attr, value)?,
            Key::EnterpriseObject => match value {
                Value::Null => {}
                Value::Object(ext) => {
                    for (k, v) in ext {
                        if let Some(attr) = schema::find(ENTERPRISE_ATTRS, k) {
                            put(&mut enterprise, attr, v)?;
                        }
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{ENTERPRISE_USER} must be an object"
                    )))
                }
            },
        }
    }
    if !enterprise.is_empty() {
        out.insert(ENTERPRISE_USER.into(), Value::Object(enterprise));
    }
    Ok(out)
}

/// Where a top-level key of a User body belongs.
#[derive(Debug, PartialEq)]
pub(crate) enum Key {
    /// Read-only (`id`, `meta`, `groups`, `schemas`), write-only (`password`) or not part of
    /// the schema: accepted and not stored.
    Ignored,
    Core(&'static Attr),
    Enterprise(&'static Attr),
    EnterpriseObject,
}

pub(crate) fn classify(key: &str) -> Key {
    if key.eq_ignore_ascii_case(ENTERPRISE_USER) {
        return Key::EnterpriseObject;
    }
    if let Some(rest) = strip_prefix_ci(key, ENTERPRISE_USER).and_then(|r| r.strip_prefix(':')) {
        return schema::find(ENTERPRISE_ATTRS, rest).map_or(Key::Ignored, Key::Enterprise);
    }
    let name = strip_prefix_ci(key, schema::USER)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or(key);
    schema::find(USER_ATTRS, name).map_or(Key::Ignored, Key::Core)
}

pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn put(out: &mut Map<String, Value>, attr: &Attr, value: &Value) -> Result<(), ScimError> {
    match normalise_value(attr, value)? {
        Some(v) => {
            out.insert(attr.name.into(), v);
        }
        None => {
            out.remove(attr.name);
        }
    }
    Ok(())
}

/// Canonicalises one attribute's value; `None` means "no value" (null, empty list or object).
pub(crate) fn normalise_value(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    match attr.kind {
        Kind::String => string(attr.name, value).map(|s| Some(Value::String(s))),
        Kind::Boolean => boolean(attr.name, value).map(|b| Some(Value::Bool(b))),
        Kind::Complex(subs) => complex(attr.name, subs, value),
        Kind::MultiComplex(subs) => {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                // OneLogin templates send a single email as an object.
                other => vec![other],
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = complex(attr.name, subs, item)? {
                    out.push(v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
    }
}

fn complex(
    name: &str,
    subs: &'static [SubAttr],
    value: &Value,
) -> Result<Option<Value>, ScimError> {
    let map = match value {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        // A bare string for a complex attribute is its `value` (e.g. "manager": "123").
        Value::String(_) | Value::Number(_) if schema::find_sub(subs, "value").is_some() => {
            return normalise_sub(name, subs, "value", value).map(|v| {
                v.map(|v| {
                    let mut m = Map::new();
                    m.insert("value".into(), v);
                    Value::Object(m)
                })
            })
        }
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{name} must be an object"
            )))
        }
    };
    let mut out = Map::new();
    for (key, v) in map {
        // The enterprise manager is sent as {"managerId": ...} by some OneLogin templates.
        let key = if name == "manager" && key.eq_ignore_ascii_case("managerId") {
            "value"
        } else {
            key.as_str()
        };
        if let Some(sub) = schema::find_sub(subs, key) {
            if let Some(v) = normalise_sub(name, subs, sub.name, v)? {
                out.insert(sub.name.into(), v);
            }
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn normalise_sub(
    parent: &str,
    subs: &'static [SubAttr],
    sub_name: &str,
    value: &Value,
) -> Result<Option<Value>, ScimError> {
    let Some(sub) = schema::find_sub(subs, sub_name) else {
        return Ok(None);
    };
    if value.is_null() {
        return Ok(None);
    }
    let label = format!("{parent}.{}", sub.name);
    if sub.boolean {
        boolean(&label, value).map(|b| Some(Value::Bool(b)))
    } else {
        string(&label, value).map(|s| Some(Value::String(s)))
    }
}

/// A string attribute; numbers are accepted as their decimal text (employeeNumber: 42).
fn string(name: &str, value: &Value) -> Result<String, ScimError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(ScimError::invalid_value(format!("{name} must be a string"))),
    }
}

/// A boolean attribute; `"true"` / `"False"` strings are accepted in any case.
pub fn boolean(name: &str, value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "{name} must be a boolean"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Result<UserDoc, ScimError> {
        UserDoc::from_request(&v)
    }

    #[test]
    fn onelogin_template_quirks_are_absorbed() {
        let d = doc(json!({
            "schemas": [schema::USER, ENTERPRISE_USER],
            "id": null,
            "userName": "Jane@Example.com",
            "active": "true",
            "emails": {"value": "jane@example.com", "type": "work", "primary": "True"},
            "name": {"givenName": "Jane", "familyName": "Doe"},
            ENTERPRISE_USER: {"department": "Ops", "manager": {"managerId": "42"}}
        }))
        .unwrap();
        let a = d.attributes();
        assert_eq!(a["active"], json!(true));
        assert_eq!(
            a["emails"],
            json!([{"value": "jane@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(a[ENTERPRISE_USER]["manager"], json!({"value": "42"}));
        assert!(!a.contains_key("id") && !a.contains_key("schemas"));
        assert_eq!(d.user_name_key(), "jane@example.com");
    }

    #[test]
    fn attribute_names_are_case_insensitive_and_canonicalised() {
        let d = doc(json!({"USERNAME": "a", "DisplayName": "A", "Active": false,
                           "NAME": {"GIVENNAME": "x"}}))
        .unwrap();
        assert_eq!(d.user_name(), "a");
        assert_eq!(d.display_name(), Some("A"));
        assert!(!d.active());
        assert_eq!(d.attributes()["name"], json!({"givenName": "x"}));
    }

    #[test]
    fn urn_qualified_top_level_keys() {
        let d = doc(json!({
            "urn:ietf:params:scim:schemas:core:2.0:User:userName": "u",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D",
        }))
        .unwrap();
        assert_eq!(d.user_name(), "u");
        assert_eq!(d.attributes()[ENTERPRISE_USER]["department"], "R&D");
    }

    #[test]
    fn password_groups_and_meta_are_not_stored() {
        let d = doc(json!({"userName": "u", "password": "hunter2", "groups": [],
                           "meta": {"version": "x"}, "unknownThing": 1}))
        .unwrap();
        assert_eq!(
            d.attributes().keys().collect::<Vec<_>>(),
            vec!["active", "userName"]
        );
    }

    #[test]
    fn active_defaults_to_true() {
        assert!(doc(json!({"userName": "u"})).unwrap().active());
    }

    #[test]
    fn bad_inputs_are_invalid_value_errors() {
        for bad in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": "  "}),
            json!({"userName": null}),
            json!({"userName": "u", "active": "yes"}),
            json!({"userName": "u", "active": 1}),
            json!({"userName": "u", "name": "Jane"}),
            json!({"userName": "u", "emails": [true]}),
            json!({"userName": "u", ENTERPRISE_USER: "x"}),
            json!({"userName": ["u"]}),
        ] {
            let err = doc(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(err.status, 400, "{bad}");
            assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue), "{bad}");
        }
    }

    /// `n` distinct values for the multi-valued attribute `name`.
    fn values(name: &str, n: usize) -> Value {
        let key = if name == "addresses" {
            "formatted"
        } else {
            "value"
        };
        (0..n).map(|i| json!({key: format!("v{i}")})).collect()
    }

    #[test]
    fn every_multi_valued_attribute_is_limited_on_input() {
        let multi: Vec<&str> = USER_ATTRS
            .iter()
            .filter(|a| matches!(a.kind, Kind::MultiComplex(_)))
            .map(|a| a.name)
            .collect();
        assert_eq!(multi.len(), 8, "{multi:?}");
        for name in multi {
            for (n, accepted) in [
                (1, true),
                (MAX_VALUES_PER_ATTRIBUTE, true),
                (MAX_VALUES_PER_ATTRIBUTE + 1, false),
            ] {
                let result = doc(json!({"userName": "u", name: values(name, n)}));
                if accepted {
                    assert_eq!(
                        result.unwrap().value_count(name),
                        n,
                        "{name} with {n} values"
                    );
                    continue;
                }
                let err = result.expect_err(name);
                assert_eq!(err.status, 400, "{name}");
                assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue), "{name}");
                assert_eq!(
                    err.detail,
                    format!("{name} has 101 values; at most 100 are accepted")
                );
            }
        }
    }

    #[test]
    fn values_are_counted_as_stored() {
        let mut padded = values("emails", MAX_VALUES_PER_ATTRIBUTE);
        if let Value::Array(items) = &mut padded {
            // Nulls and empty objects are dropped, so they do not count.
            items.extend([Value::Null, json!({}), json!({"unknown": "x"})]);
        }
        let cases = [
            (json!({"userName": "u", "emails": padded}), None),
            (
                json!({"userName": "u", "emails": values("emails", 30_000)}),
                Some("emails has 30000 values; at most 100 are accepted"),
            ),
            // Keys in any case or URN-qualified name the same attribute.
            (
                json!({"userName": "u", "EMAILS": values("emails", 101)}),
                Some("emails has 101 values; at most 100 are accepted"),
            ),
            (
                json!({"userName": "u",
                       "urn:ietf:params:scim:schemas:core:2.0:User:phoneNumbers": values("phoneNumbers", 101)}),
                Some("phoneNumbers has 101 values; at most 100 are accepted"),
            ),
            // Duplicates are values too.
            (
                json!({"userName": "u", "roles": vec![json!({"value": "admin"}); 101]}),
                Some("roles has 101 values; at most 100 are accepted"),
            ),
            // The limit is per attribute, not per user.
            (
                json!({"userName": "u", "emails": values("emails", 100),
                       "phoneNumbers": values("phoneNumbers", 100), "ims": values("ims", 100)}),
                None,
            ),
        ];
        for (body, refused) in cases {
            match (doc(body.clone()), refused) {
                (Ok(_), None) => {}
                (Err(e), Some(detail)) => assert_eq!(e.detail, detail),
                (result, _) => panic!("{body}: {result:?}"),
            }
        }
    }

    #[test]
    fn users_stored_before_the_value_limit_still_read() {
        let stored = json!({"userName": "u", "active": true, "emails": values("emails", 150)});
        let d = UserDoc::from_stored(&stored.to_string()).unwrap();
        assert_eq!(d.value_count("emails"), 150);
        assert_eq!(d.indexed_values().len(), 150);
    }

    #[test]
    fn non_object_body_is_invalid_syntax() {
        for bad in [json!([]), json!("u"), json!(null)] {
            assert_eq!(
                doc(bad).unwrap_err().scim_type,
                Some(crate::ScimType::InvalidSyntax)
            );
        }
    }

    #[test]
    fn resource_has_schemas_id_and_meta() {
        let d = doc(json!({"userName": "u", ENTERPRISE_USER: {"department": "x"}})).unwrap();
        let meta = Meta {
            id: "abc".into(),
            created: "2020-03-24T10:40:37Z".into(),
            last_modified: "2020-03-24T10:40:37Z".into(),
            location: "https://h/scimapi/Users/abc".into(),
            version: 3,
        };
        let r = d.to_resource(&meta);
        assert_eq!(r["schemas"], json!([schema::USER, ENTERPRISE_USER]));
        assert_eq!(r["id"], "abc");
        assert_eq!(r["meta"]["version"], "W/\"3\"");
        assert_eq!(r["meta"]["resourceType"], "User");
    }

    #[test]
    fn indexed_values_cover_strings_complex_and_multi_valued() {
        let d = doc(
            json!({"userName": "U", "title": "CTO", "name": {"givenName": "Jane"},
            "emails": [{"value": "J@X", "type": "Work", "primary": true}, {"value": "h@x"}],
            "addresses": [{"formatted": "1 Main St", "type": "work"}],
            ENTERPRISE_USER: {"department": "Ops", "manager": {"value": "m1"}}}),
        )
        .unwrap();
        let v = d.indexed_values();
        let find = |a: &str, e: i64| {
            v.iter()
                .find(|x| x.attribute == a && x.element == e)
                .cloned()
        };
        assert_eq!(find("title", 0).unwrap().value.as_deref(), Some("cto"));
        assert_eq!(
            find("name.givenName", 0).unwrap().value.as_deref(),
            Some("jane")
        );
        let work = find("emails", 0).unwrap();
        assert_eq!(
            (work.value.as_deref(), work.kind.as_deref(), work.primary),
            (Some("j@x"), Some("work"), true)
        );
        assert_eq!(find("emails", 1).unwrap().value.as_deref(), Some("h@x"));
        assert_eq!(
            find("addresses", 0).unwrap().value.as_deref(),
            Some("1 main st")
        );
        assert!(find(&format!("{ENTERPRISE_USER}:department"), 0).is_some());
        assert_eq!(
            find(&format!("{ENTERPRISE_USER}:manager.value"), 0)
                .unwrap()
                .value
                .as_deref(),
            Some("m1")
        );
        assert!(find("userName", 0).is_none() && find("active", 0).is_none());
    }

    #[test]
    fn stored_form_round_trips_with_the_external_id_kept_apart() {
        let d = doc(json!({"userName": "u", "externalId": "E1", "emails": [{"value": "a@b"}]}))
            .unwrap();
        assert!(!d.to_json().contains("E1"));
        let back = UserDoc::from_stored(&d.to_json()).unwrap();
        assert_eq!(back.external_id(), None);
        assert_eq!(back.with_external_id(Some("E1".into())), d);
    }
}
