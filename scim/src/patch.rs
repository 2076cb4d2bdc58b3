//! PATCH (RFC 7644 §3.5.2) on a User.
//!
//! A request is parsed whole before anything is applied, and its operations are applied to a
//! copy, so one bad operation leaves the resource unchanged. Ops are matched in any case
//! (Entra sends `"Replace"`), a no-path value object may use dotted and URN-qualified keys, and
//! a value-path `Add`/`Replace` that matches nothing creates the element the filter describes.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{self, Attr, Kind, SubAttr, ENTERPRISE_ATTRS, ENTERPRISE_USER, USER_ATTRS};
use crate::user::{normalise_value, strip_prefix_ci, UserDoc};

/// The most operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A parsed `PatchOp` message.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<Operation>,
}

impl PatchRequest {
    pub fn parse(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax(
                "a PatchOp body must be a JSON object",
            ));
        };
        if let Some(schemas) = get_ci(map, "schemas") {
            let listed = schemas.as_array().is_some_and(|s| {
                s.iter().any(|u| {
                    u.as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(schema::PATCH_OP))
                })
            });
            if !listed {
                return Err(ScimError::invalid_syntax(format!(
                    "schemas must contain {}",
                    schema::PATCH_OP
                )));
            }
        }
        let Some(Value::Array(ops)) = get_ci(map, "Operations") else {
            return Err(ScimError::invalid_syntax("Operations must be an array"));
        };
        if ops.is_empty() {
            return Err(ScimError::invalid_syntax("Operations must not be empty"));
        }
        if ops.len() > MAX_OPERATIONS {
            return Err(ScimError::new(
                413,
                None,
                format!("at most {MAX_OPERATIONS} operations per request"),
            ));
        }
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(op).map_err(|e| prefix(e, i)))
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// Applies every operation to a copy of `doc`; the result is validated like a PUT body,
    /// except that an attribute `doc` already held over the value limit may stay as large.
    pub fn apply_to_user(&self, doc: &UserDoc) -> Result<UserDoc, ScimError> {
        let mut attrs = doc.attributes().clone();
        for (i, operation) in self.operations.iter().enumerate() {
            apply(&mut attrs, operation).map_err(|e| prefix(e, i))?;
        }
        let patched = UserDoc::from_map(&attrs)?;
        patched.limit_values(Some(doc))?;
        Ok(patched)
    }
}

fn prefix(mut e: ScimError, index: usize) -> ScimError {
    e.detail = format!("Operations[{index}]: {}", e.detail);
    e
}

pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse_operation(value: &Value) -> Result<Operation, ScimError> {
    let Value::Object(map) = value else {
        return Err(ScimError::invalid_syntax("an operation must be an object"));
    };
    let op = match get_ci(map, "op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => Op::Add,
        Some(s) if s.eq_ignore_ascii_case("replace") => Op::Replace,
        Some(s) if s.eq_ignore_ascii_case("remove") => Op::Remove,
        Some(s) => {
            return Err(ScimError::invalid_syntax(format!(
                "op {s:?} is not one of add, replace, remove"
            )))
        }
        None => return Err(ScimError::invalid_syntax("op is required")),
    };
    let path = match get_ci(map, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => parse_path(p)?,
        Some(_) => return Err(ScimError::invalid_path("path must be a string")),
    };
    let value = get_ci(map, "value").cloned();
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(ScimError::no_target("remove needs a path")),
        (Op::Add | Op::Replace, _, None) => Err(ScimError::invalid_value("value is required")),
        (Op::Add | Op::Replace, None, Some(v)) if !v.is_object() => Err(ScimError::invalid_value(
            "without a path, value must be an object of attributes",
        )),
        _ => Ok(Operation { op, path, value }),
    }
}

/// Parses the `path` of an operation; `None` when it is blank, which means no path.
pub(crate) fn parse_path(p: &str) -> Result<Option<PatchPath>, ScimError> {
    if p.trim().is_empty() {
        return Ok(None);
    }
    crate::filter::check_size(p).map_err(|e| ScimError::invalid_path(format!("the path {e}")))?;
    p.parse::<PatchPath>()
        .map(Some)
        .map_err(|e| unparsed("path", p, &e))
}

/// The error for a path or key that does not parse. One that mentions a password is not
/// repeated: its filter could hold one, and errors reach the activity log.
fn unparsed(what: &str, text: &str, e: &dyn std::fmt::Display) -> ScimError {
    if crate::redact::mentions_password(text) {
        ScimError::invalid_path(format!("a {what} naming password does not parse"))
    } else {
        ScimError::invalid_path(format!("{what} {text:?}: {e}"))
    }
}

/// What a key of a no-path value object names.
pub(crate) enum ValueKey {
    /// The enterprise extension's URN: its value is the extension object.
    Extension,
    Path(PatchPath),
}

/// Parses a key of a no-path value object: `active`, `name.givenName`,
/// `urn:...:core:2.0:User:title`, `urn:...:enterprise:2.0:User:department`, or the extension
/// URN itself.
pub(crate) fn parse_value_key(key: &str) -> Result<ValueKey, ScimError> {
    if key.eq_ignore_ascii_case(ENTERPRISE_USER) {
        return Ok(ValueKey::Extension);
    }
    // Core-URN-qualified keys name core attributes.
    let key = strip_prefix_ci(key, schema::USER)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or(key);
    key.parse::<PatchPath>()
        .map(ValueKey::Path)
        .map_err(|e| unparsed("attribute", key, &e))
}

/// Whether `path` designates the write-only `password` or anything under it: its attribute
/// is named `password`, in any case and under any schema URN, whatever sub-attribute or value
/// filter follows. Only the plain core attribute exists; the PATCH engine refuses the others.
/// The activity log ([`crate::redact`]) hides the value of every operation and key this
/// answers yes for, so the two can never disagree on what a password is.
pub(crate) fn designates_password(path: &PatchPath) -> bool {
    let attr = match path {
        PatchPath::Attr(a) => a,
        PatchPath::Value(v) => &v.attr,
    };
    attr.name.eq_ignore_ascii_case("password")
}

/// What a path designates in a User.
enum Target {
    /// `password` is write-only and not stored: accepted, nothing to change.
    Ignored,
    /// The whole enterprise extension object.
    Extension,
    Attr {
        enterprise: bool,
        attr: &'static Attr,
        sub: Option<&'static SubAttr>,
        filter: Option<ValFilter>,
    },
}

fn resolve(path: &PatchPath) -> Result<Target, ScimError> {
    let (attr_path, filter, trailing_sub) = match path {
        PatchPath::Attr(a) => (a, None, None),
        PatchPath::Value(v) => (&v.attr, Some(v.filter.clone()), v.sub_attr.as_deref()),
    };
    let uri = attr_path.uri.as_deref();
    // "urn:...:enterprise:2.0:User" parses as uri "urn:...:enterprise:2.0" + name "User".
    if let Some(uri) = uri {
        let full = format!("{uri}:{}", attr_path.name);
        if full.eq_ignore_ascii_case(ENTERPRISE_USER)
            && attr_path.sub_attr.is_none()
            && filter.is_none()
        {
            return Ok(Target::Extension);
        }
    }
    let enterprise = match uri {
        None => false,
        Some(u) if u.eq_ignore_ascii_case(schema::USER) => false,
        Some(u) if u.eq_ignore_ascii_case(ENTERPRISE_USER) => true,
        Some(u) => return Err(ScimError::invalid_path(format!("unknown schema {u}"))),
    };
    let name = attr_path.name.as_str();
    if !enterprise {
        for read_only in ["id", "meta", "groups", "schemas"] {
            if name.eq_ignore_ascii_case(read_only) {
                return Err(ScimError::mutability(format!("{read_only} is read-only")));
            }
        }
        if designates_password(path) {
            // The detail does not quote the path: a value filter on password could hold one.
            return match path {
                PatchPath::Attr(AttrPath { sub_attr: None, .. }) => Ok(Target::Ignored),
                _ => Err(ScimError::invalid_path(
                    "password has no sub-attributes and is single-valued: \
                     only the path password sets it",
                )),
            };
        }
    }
    let attrs = if enterprise {
        ENTERPRISE_ATTRS
    } else {
        USER_ATTRS
    };
    let attr = schema::find(attrs, name).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "{} is not a supported attribute",
            display(attr_path)
        ))
    })?;
    let sub_name = match (attr_path.sub_attr.as_deref(), trailing_sub) {
        (Some(_), Some(_)) => return Err(ScimError::invalid_path("too many sub-attributes")),
        (a, b) => a.or(b),
    };
    let subs = match attr.kind {
        Kind::Complex(subs) | Kind::MultiComplex(subs) => subs,
        Kind::String | Kind::Boolean => &[][..],
    };
    let sub = match sub_name {
        None => None,
        Some(s) => {
            let s = if attr.name == "manager" && s.eq_ignore_ascii_case("managerId") {
                "value"
            } else {
                s
            };
            Some(schema::find_sub(subs, s).ok_or_else(|| {
                ScimError::invalid_path(format!("{} has no sub-attribute {s}", attr.name))
            })?)
        }
    };
    if filter.is_some() && !matches!(attr.kind, Kind::MultiComplex(_)) {
        return Err(ScimError::invalid_path(format!(
            "{} is not multi-valued; a filter cannot select from it",
            attr.name
        )));
    }
    Ok(Target::Attr {
        enterprise,
        attr,
        sub,
        filter,
    })
}

fn display(p: &AttrPath) -> String {
    p.to_string()
}

fn apply(attrs: &mut Map<String, Value>, operation: &Operation) -> Result<(), ScimError> {
    let value = operation.value.as_ref();
    match &operation.path {
        Some(path) => apply_path(attrs, operation.op, &resolve(path)?, value),
        None => {
            // Validated at parse: add/replace without a path carry an object.
            let Some(Value::Object(map)) = value else {
                return Err(ScimError::invalid_value("value must be an object"));
            };
            for (key, v) in map {
                let target = key_target(key)?;
                apply_path(attrs, operation.op, &target, Some(v))?;
            }
            Ok(())
        }
    }
}

/// Resolves a key of a no-path value object (see [`parse_value_key`]).
fn key_target(key: &str) -> Result<Target, ScimError> {
    match parse_value_key(key)? {
        ValueKey::Extension => Ok(Target::Extension),
        ValueKey::Path(path) => resolve(&path),
    }
}

fn apply_path(
    attrs: &mut Map<String, Value>,
    op: Op,
    target: &Target,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match target {
        Target::Ignored => Ok(()),
        Target::Extension => match (op, value) {
            (Op::Remove, _) => {
                attrs.remove(ENTERPRISE_USER);
                Ok(())
            }
            (_, Some(Value::Object(map))) => {
                // The extension object may name its own schema, as in a resource body.
                for (k, v) in map
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    let attr = schema::find(ENTERPRISE_ATTRS, k).ok_or_else(|| {
                        ScimError::invalid_path(format!("{k} is not an enterprise attribute"))
                    })?;
                    let t = Target::Attr {
                        enterprise: true,
                        attr,
                        sub: None,
                        filter: None,
                    };
                    apply_path(attrs, op, &t, Some(v))?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "{ENTERPRISE_USER} must be an object"
            ))),
        },
        Target::Attr {
            enterprise,
            attr,
            sub,
            filter,
        } => {
            if *enterprise {
                let mut ext = match attrs.remove(ENTERPRISE_USER) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                let result = apply_attr(&mut ext, op, attr, *sub, filter.as_ref(), value);
                if !ext.is_empty() {
                    attrs.insert(ENTERPRISE_USER.into(), Value::Object(ext));
                }
                result
            } else {
                apply_attr(attrs, op, attr, *sub, filter.as_ref(), value)
            }
        }
    }
}

fn apply_attr(
    container: &mut Map<String, Value>,
    op: Op,
    attr: &'static Attr,
    sub: Option<&'static SubAttr>,
    filter: Option<&ValFilter>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if op == Op::Remove && attr.name == "userName" && sub.is_none() {
        return Err(ScimError::invalid_value(
            "userName is required and cannot be removed",
        ));
    }
    match (sub, filter) {
        (None, None) => apply_whole(container, op, attr, value),
        (Some(sub), None) => apply_sub_everywhere(container, op, attr, sub, value),
        (_, Some(filter)) => apply_filtered(container, op, attr, sub, filter, value),
    }
}

fn apply_whole(
    container: &mut Map<String, Value>,
    op: Op,
    attr: &'static Attr,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    if op == Op::Remove {
        match (attr.kind, value) {
            // Entra removes members/values by listing them: remove only those.
            (Kind::MultiComplex(_), Some(v)) if !v.is_null() => {
                let gone = normalise_value(attr, v)?.unwrap_or(Value::Array(vec![]));
                let gone: Vec<&Value> = gone
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e.get("value")).collect())
                    .unwrap_or_default();
                if let Some(Value::Array(items)) = container.get_mut(name) {
                    items.retain(|item| !item.get("value").is_some_and(|v| gone.contains(&v)));
                    if items.is_empty() {
                        container.remove(name);
                    }
                }
            }
            _ => {
                container.remove(name);
            }
        }
        return Ok(());
    }
    let Some(new) = normalise_value(attr, value.unwrap_or(&Value::Null))? else {
        if op == Op::Replace {
            container.remove(name);
            return Ok(());
        }
        return Err(ScimError::invalid_value(format!(
            "add needs a value for {name}"
        )));
    };
    match (attr.kind, op, container.get_mut(name)) {
        // Complex: given sub-attributes replace or add; the others stay (RFC 7644 §3.5.2.3).
        (Kind::Complex(_), _, Some(Value::Object(existing))) => {
            if let Value::Object(new) = new {
                existing.extend(new);
            }
        }
        (Kind::MultiComplex(_), Op::Add, Some(Value::Array(existing))) => {
            if let Value::Array(new) = new {
                for item in new {
                    if !existing.contains(&item) {
                        existing.push(item);
                    }
                }
            }
        }
        _ => {
            container.insert(name.into(), new);
        }
    }
    Ok(())
}

/// `name.givenName` on a complex attribute, or `emails.value` on every element of a
/// multi-valued one.
fn apply_sub_everywhere(
    container: &mut Map<String, Value>,
    op: Op,
    attr: &'static Attr,
    sub: &'static SubAttr,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let new = match op {
        Op::Remove => None,
        Op::Add | Op::Replace => sub_value(attr, sub, value)?,
    };
    let name = attr.name;
    match attr.kind {
        Kind::MultiComplex(_) => {
            let items = match container.get_mut(name) {
                Some(Value::Array(items)) => items,
                _ => {
                    if let Some(v) = new {
                        container.insert(name.into(), Value::Array(vec![single(sub, v)]));
                    }
                    return Ok(());
                }
            };
            for item in items.iter_mut() {
                set_sub(item, sub, new.clone());
            }
            items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
            if items.is_empty() {
                container.remove(name);
            }
        }
        _ => {
            let entry = container
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            set_sub(entry, sub, new);
            if entry.as_object().is_some_and(Map::is_empty) {
                container.remove(name);
            }
        }
    }
    Ok(())
}

fn apply_filtered(
    container: &mut Map<String, Value>,
    op: Op,
    attr: &'static Attr,
    sub: Option<&'static SubAttr>,
    filter: &ValFilter,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    let Kind::MultiComplex(subs) = attr.kind else {
        return Err(ScimError::invalid_path(format!(
            "{name} is not multi-valued"
        )));
    };
    let mut items = match container.remove(name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| matches(filter, &items[i]))
        .collect();
    let result = (|| {
        match (op, sub) {
            (Op::Remove, None) => {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&i);
                    i += 1;
                    keep
                });
            }
            (Op::Remove, Some(sub)) => {
                for &i in &matched {
                    set_sub(&mut items[i], sub, None);
                }
            }
            (Op::Add | Op::Replace, Some(sub)) => {
                let new = sub_value(attr, sub, value)?;
                if matched.is_empty() {
                    let mut element = element_from_filter(subs, filter).ok_or_else(|| {
                        ScimError::no_target(format!("no {name} value matches the filter"))
                    })?;
                    set_sub(&mut element, sub, new);
                    items.push(element);
                } else {
                    for &i in &matched {
                        set_sub(&mut items[i], sub, new.clone());
                    }
                }
            }
            (Op::Add | Op::Replace, None) => {
                let Some(Value::Object(new)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "value for a filtered {name} must be an object"
                    )));
                };
                if matched.is_empty() {
                    let mut element = element_from_filter(subs, filter).ok_or_else(|| {
                        ScimError::no_target(format!("no {name} value matches the filter"))
                    })?;
                    merge(&mut element, new);
                    items.push(element);
                } else {
                    for &i in &matched {
                        merge(&mut items[i], new);
                    }
                }
            }
        }
        Ok(())
    })();
    items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
    if !items.is_empty() {
        container.insert(name.into(), Value::Array(items));
    }
    result?;
    // Re-normalise the attribute so merged raw values get canonical names and types.
    if let Some(v) = container.remove(name) {
        if let Some(v) = normalise_value(attr, &v)? {
            container.insert(name.into(), v);
        }
    }
    Ok(())
}

fn merge(element: &mut Value, new: &Map<String, Value>) {
    if let Value::Object(e) = element {
        for (k, v) in new {
            e.insert(k.clone(), v.clone());
        }
    }
}

fn sub_value(
    attr: &'static Attr,
    sub: &'static SubAttr,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let probe = single(sub, value.cloned().unwrap_or(Value::Null));
    let normalised = normalise_value(attr, &probe)?;
    let v = normalised.and_then(|n| match n {
        Value::Array(mut a) => a.pop(),
        other => Some(other),
    });
    Ok(v.and_then(|v| v.get(sub.name).cloned()))
}

fn single(sub: &SubAttr, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(sub.name.into(), v);
    Value::Object(m)
}

fn set_sub(item: &mut Value, sub: &SubAttr, new: Option<Value>) {
    if let Value::Object(o) = item {
        match new {
            Some(v) => {
                o.insert(sub.name.into(), v);
            }
            None => {
                o.remove(sub.name);
            }
        }
    }
}

/// The element a conjunction of `eq` terms describes, for an Add to a value path that does
/// not exist yet: `emails[type eq "work"].value` creates `{"type": "work", "value": ...}`.
fn element_from_filter(subs: &'static [SubAttr], filter: &ValFilter) -> Option<Value> {
    fn collect(
        subs: &'static [SubAttr],
        f: &ValFilter,
        out: &mut Map<String, Value>,
    ) -> Option<()> {
        match f {
            ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) if p.sub_attr.is_none() => {
                let sub = schema::find_sub(subs, &p.name)?;
                let v = match v {
                    CompValue::Str(s) => Value::String(s.clone()),
                    CompValue::True => Value::Bool(true),
                    CompValue::False => Value::Bool(false),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::Null => return None,
                };
                out.insert(sub.name.into(), v);
                Some(())
            }
            ValFilter::And(items) => items.iter().try_for_each(|i| collect(subs, i, out)),
            _ => None,
        }
    }
    let mut out = Map::new();
    collect(subs, filter, &mut out)?;
    Some(Value::Object(out))
}

/// Evaluates a value filter against one element of a multi-valued attribute. Strings compare
/// case-insensitively: every sub-attribute of the User's multi-valued attributes is
/// caseExact=false.
pub(crate) fn matches(filter: &ValFilter, element: &Value) -> bool {
    let Value::Object(map) = element else {
        return false;
    };
    match filter {
        ValFilter::Attr(AttrExp::Present(p)) => {
            p.sub_attr.is_none() && get_ci(map, &p.name).is_some_and(|v| !v.is_null())
        }
        ValFilter::Attr(AttrExp::Comparison(p, op, expected)) => {
            if p.sub_attr.is_some() {
                return false;
            }
            compare(get_ci(map, &p.name), op, expected)
        }
        ValFilter::Not(inner) => !matches(inner, element),
        ValFilter::And(items) => items.iter().all(|f| matches(f, element)),
        ValFilter::Or(items) => items.iter().any(|f| matches(f, element)),
    }
}

fn compare(actual: Option<&Value>, op: &CompareOp, expected: &CompValue) -> bool {
    match (actual, expected) {
        (Some(Value::String(a)), CompValue::Str(e)) => {
            let (a, e) = (a.to_lowercase(), e.to_lowercase());
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Some(Value::Bool(a)), CompValue::True | CompValue::False) => {
            let e = matches!(expected, CompValue::True);
            match op {
                CompareOp::Eq => *a == e,
                CompareOp::Ne => *a != e,
                _ => false,
            }
        }
        (None | Some(Value::Null), CompValue::Null) => matches!(op, CompareOp::Eq),
        (Some(_), CompValue::Null) => matches!(op, CompareOp::Ne),
        (None, _) => matches!(op, CompareOp::Ne),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;
    use serde_json::json;

    fn user() -> UserDoc {
        UserDoc::from_request(&json!({
            "userName": "jane",
            "active": true,
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "jane@home.example", "type": "home"}],
        }))
        .unwrap()
    }

    fn patch(ops: Value) -> Result<UserDoc, ScimError> {
        let req = PatchRequest::parse(&json!({"schemas": [schema::PATCH_OP], "Operations": ops}))?;
        req.apply_to_user(&user())
    }

    fn attrs(ops: Value) -> Map<String, Value> {
        patch(ops).unwrap().attributes().clone()
    }

    #[test]
    fn deactivate_in_every_dialect() {
        for ops in [
            json!([{"op": "replace", "path": "active", "value": false}]),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            json!([{"op": "replace", "value": {"active": false}}]),
            json!([{"op": "REPLACE", "value": {"active": "false"}}]),
            json!([{"op": "add", "path": "active", "value": "false"}]),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:active": false}}]),
        ] {
            assert!(!patch(ops.clone()).unwrap().active(), "{ops}");
        }
    }

    #[test]
    fn dotted_and_urn_keys_in_a_no_path_value() {
        let a = attrs(json!([{"op": "replace", "value": {
            "name.givenName": "Janet",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "7"},
        }}]));
        assert_eq!(
            a["name"],
            json!({"givenName": "Janet", "familyName": "Doe"})
        );
        assert_eq!(
            a[ENTERPRISE_USER],
            json!({"department": "Ops", "costCenter": "7"})
        );
    }

    #[test]
    fn value_path_replace_updates_the_matching_element_only() {
        let a = attrs(json!([
            {"op": "add", "path": "emails", "value": [{"value": "jane@work.example", "type": "work"}]},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "j@work.example"},
        ]));
        assert_eq!(
            a["emails"],
            json!([{"value": "jane@home.example", "type": "home"},
                   {"value": "j@work.example", "type": "work"}])
        );
    }

    #[test]
    fn add_to_a_value_path_that_does_not_exist_creates_it() {
        let a = attrs(
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "j@w.example"}]),
        );
        assert_eq!(
            a["emails"][1],
            json!({"type": "work", "value": "j@w.example"})
        );
    }

    #[test]
    fn remove_by_value_path_and_whole_attribute() {
        let a = attrs(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
        assert!(!a.contains_key("emails"));
        let a = attrs(json!([{"op": "remove", "path": "name.givenName"}]));
        assert_eq!(a["name"], json!({"familyName": "Doe"}));
        let a = attrs(json!([{"op": "remove", "path": "name"}]));
        assert!(!a.contains_key("name"));
    }

    #[test]
    fn manager_by_value_or_manager_id() {
        for ops in [
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"managerId": "m1"}}]),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m1"}]),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m1"}]),
        ] {
            assert_eq!(
                attrs(ops.clone())[ENTERPRISE_USER]["manager"],
                json!({"value": "m1"}),
                "{ops}"
            );
        }
    }

    #[test]
    fn the_extension_object_may_carry_its_schemas() {
        for op in ["add", "replace"] {
            let a = attrs(json!([{"op": op, "path": ENTERPRISE_USER,
                "value": {"schemas": [ENTERPRISE_USER], "department": "Ops"}}]));
            assert_eq!(a[ENTERPRISE_USER], json!({"department": "Ops"}), "{op}");
        }
    }

    #[test]
    fn removing_active_leaves_it_unassigned_which_reads_as_active() {
        let deactivated = PatchRequest::parse(
            &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .unwrap()
        .apply_to_user(&user())
        .unwrap();
        let removed =
            PatchRequest::parse(&json!({"Operations": [{"op": "remove", "path": "active"}]}))
                .unwrap()
                .apply_to_user(&deactivated)
                .unwrap();
        assert!(!removed.attributes().contains_key("active"));
        assert!(removed.active());
        // And it stays unassigned once stored.
        assert!(!UserDoc::from_stored(&removed.to_json())
            .unwrap()
            .attributes()
            .contains_key("active"));
    }

    /// `n` work emails, `e0@x` to `e{n-1}@x`.
    fn emails(n: usize) -> Value {
        (0..n)
            .map(|i| json!({"value": format!("e{i}@x"), "type": "work"}))
            .collect()
    }

    #[test]
    fn a_patch_may_not_grow_a_multi_valued_attribute_past_the_limit() {
        let with = |n: usize| {
            UserDoc::from_request(&json!({"userName": "jane", "emails": emails(n)})).unwrap()
        };
        // Stored before the limit existed: only readable through `from_stored`.
        let legacy = UserDoc::from_stored(
            &json!({"userName": "old", "active": true, "emails": emails(150)}).to_string(),
        )
        .unwrap();
        let add = |value: Value| json!([{"op": "add", "path": "emails", "value": value}]);
        let one = json!([{"value": "new@x"}]);
        let refused = |n: usize| Err(format!("emails has {n} values; at most 100 are accepted"));
        let cases = [
            (with(99), add(one.clone()), Ok(100)),
            (with(100), add(one.clone()), refused(101)),
            (with(1), add(emails(101)), refused(101)),
            (
                with(100),
                json!([{"op": "add", "value": {"emails": [{"value": "new@x"}]}}]),
                refused(101),
            ),
            // A value path that matches nothing creates the element it describes.
            (
                with(100),
                json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "h@x"}]),
                refused(101),
            ),
            (
                with(100),
                json!([{"op": "replace", "path": "emails", "value": emails(100)}]),
                Ok(100),
            ),
            (
                with(1),
                json!([{"op": "replace", "path": "emails", "value": emails(101)}]),
                refused(101),
            ),
            // Adding then removing within one request: only the result counts.
            (
                with(100),
                json!([
                    {"op": "add", "path": "emails", "value": one.clone()},
                    {"op": "remove", "path": "emails[value eq \"e0@x\"]"},
                ]),
                Ok(100),
            ),
            // A user stored with more can still be deactivated, and shrink, but not grow.
            (
                legacy.clone(),
                json!([{"op": "replace", "path": "active", "value": false}]),
                Ok(150),
            ),
            (
                legacy.clone(),
                json!([{"op": "remove", "path": "emails[value eq \"e0@x\"]"}]),
                Ok(149),
            ),
            (legacy.clone(), add(one.clone()), refused(151)),
            (
                legacy,
                json!([{"op": "add", "path": "phoneNumbers", "value": emails(101)}]),
                Err("phoneNumbers has 101 values; at most 100 are accepted".into()),
            ),
        ];
        for (user, ops, expected) in cases {
            let req =
                PatchRequest::parse(&json!({"schemas": [schema::PATCH_OP], "Operations": ops}))
                    .unwrap();
            match (req.apply_to_user(&user), expected) {
                (Ok(patched), Ok(n)) => {
                    assert_eq!(
                        patched.attributes()["emails"].as_array().map(Vec::len),
                        Some(n),
                        "{ops}"
                    );
                }
                (Err(e), Err(detail)) => {
                    assert_eq!(e.status, 400, "{ops}");
                    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
                    assert_eq!(e.detail, detail, "{ops}");
                }
                (result, expected) => panic!("{ops}: {result:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn password_is_accepted_and_not_stored() {
        for path in [
            "password",
            "PASSWORD",
            "Password",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:PASSWORD",
        ] {
            for op in ["add", "Replace", "remove"] {
                let patched = patch(json!([{"op": op, "path": path, "value": "s3cret"}]));
                assert_eq!(patched, Ok(user()), "{op} {path}");
            }
            let mut value = Map::new();
            value.insert(path.into(), json!("s3cret"));
            value.insert("title".into(), json!("Boss"));
            let a = attrs(json!([{"op": "replace", "value": value}]));
            assert_eq!(a["title"], "Boss", "{path}");
            assert!(
                !a.values().any(|v| v.to_string().contains("s3cret")),
                "{a:?}"
            );
        }
    }

    /// `password` is single-valued and has no sub-attributes, and only the core schema has
    /// it: any other path to it names nothing, whether sent as a path or as a no-path key.
    #[test]
    fn paths_under_password_are_invalid() {
        for path in [
            "password.value",
            "PassWord.Value",
            "urn:ietf:params:scim:schemas:core:2.0:User:password.value",
            "password[value eq \"x\"]",
            "password[value eq \"x\"].value",
            "PASSWORD[type pr]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:password",
            // Does not parse: the error does not repeat it either.
            "password[value eq \"s3cret\"",
        ] {
            let mut value = Map::new();
            value.insert(path.into(), json!("s3cret"));
            for ops in [
                json!([{"op": "add", "path": path, "value": "s3cret"}]),
                json!([{"op": "replace", "path": path, "value": "s3cret"}]),
                json!([{"op": "remove", "path": path}]),
                json!([{"op": "replace", "value": value}]),
            ] {
                let err = patch(ops.clone()).expect_err(&ops.to_string());
                assert_eq!(err.status, 400, "{ops}");
                assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{ops}");
                assert!(!err.detail.contains("s3cret"), "{}", err.detail);
            }
        }
    }

    #[test]
    fn what_designates_the_password() {
        for (path, expected) in [
            ("password", true),
            ("pASSWORD", true),
            ("urn:ietf:params:scim:schemas:core:2.0:User:password", true),
            ("password.value", true),
            ("password[value eq \"x\"].value", true),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:password",
                true,
            ),
            ("passwords", false),
            ("userPassword", false),
            ("name.givenName", false),
            ("emails[value eq \"password\"]", false),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                false,
            ),
        ] {
            let parsed = parse_path(path).ok().flatten().expect(path);
            assert_eq!(designates_password(&parsed), expected, "{path}");
        }
    }

    #[test]
    fn errors_carry_the_right_scim_type() {
        let cases = [
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "meta.version", "value": "x"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "nosuch", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "urn:x:y:attr", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "active", "value": "maybe"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "active"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "value": "x"}]),
                ScimType::InvalidValue,
            ),
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (
                json!([{"op": "remove", "path": "userName"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "move", "path": "active"}]),
                ScimType::InvalidSyntax,
            ),
            (json!([{"path": "active"}]), ScimType::InvalidSyntax),
            (json!([]), ScimType::InvalidSyntax),
            (json!({"op": "add"}), ScimType::InvalidSyntax),
            (
                json!([{"op": "replace", "path": "emails[type sw \"w\"].value", "value": "v"}]),
                ScimType::NoTarget,
            ),
            (
                json!([{"op": "remove", "path": format!("emails[{}type pr{}]", "(".repeat(20), ")".repeat(20))}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "remove", "path": format!("emails[value eq \"{}\"]", "x".repeat(5000))}]),
                ScimType::InvalidPath,
            ),
        ];
        for (ops, expected) in cases {
            let err = patch(ops.clone()).expect_err(&ops.to_string());
            assert_eq!(err.status, 400, "{ops}");
            assert_eq!(err.scim_type, Some(expected), "{ops}: {}", err.detail);
        }
    }

    #[test]
    fn schemas_when_present_must_name_patch_op() {
        let err = PatchRequest::parse(&json!({"schemas": ["urn:wrong"], "Operations": [
            {"op": "replace", "path": "active", "value": false}]}))
        .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    }
}
