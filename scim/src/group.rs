//! The Group resource: a display name, an optional externalId and members.
//!
//! Members are never applied to an in-memory list: a PATCH becomes a list of
//! [`GroupChange`]s that storage applies row by row, so changing one member of a
//! 10,000-member group costs one row.

use std::collections::HashSet;

use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::patch::{get_ci, Op, Operation, PatchRequest};
use crate::schema;

/// The most member ids one request may name: a POST or PUT body, or a PATCH over all its
/// operations. Entra and Okta send far fewer per request; a bigger change takes several
/// requests (a PUT, or a POST, then PATCHes adding the rest).
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;

/// A Group body (POST or PUT), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDoc {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Member ids, in the order given, without duplicates.
    pub members: Vec<String>,
}

impl GroupDoc {
    pub fn from_request(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax(
                "the request body must be a JSON object",
            ));
        };
        let display_name = match get_ci(map, "displayName") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(ScimError::invalid_value(
                    "displayName is required and must be a non-empty string",
                ))
            }
        };
        let external_id = match get_ci(map, "externalId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ScimError::invalid_value("externalId must be a string")),
        };
        let members = match get_ci(map, "members") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => member_ids(v)?,
        };
        limit_members(members.len())?;
        Ok(Self {
            display_name,
            external_id,
            members,
        })
    }
}

/// The ids in a `members` value: an array (or a single object) of `{"value": id, ...}`.
pub fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id}",
            ))
        }
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for item in items {
        let id = item
            .as_object()
            .and_then(|m| get_ci(m, "value"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value("each member needs a \"value\" holding its id")
            })?;
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// One change a Group PATCH makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    DisplayName(String),
    ExternalId(Option<String>),
    AddMembers(Vec<String>),
    RemoveMembers(Vec<String>),
    RemoveAllMembers,
    /// Replace the whole membership with these ids.
    SetMembers(Vec<String>),
}

/// Translates a PatchOp on the group `group_id` into changes. Okta's rename carries the
/// group's own `id` in the value; an `id` naming another group is a `mutability` error.
pub fn group_changes(
    request: &PatchRequest,
    group_id: &str,
) -> Result<Vec<GroupChange>, ScimError> {
    let mut changes = Vec::new();
    for (i, operation) in request.operations.iter().enumerate() {
        operation_changes(operation, group_id, &mut changes).map_err(|mut e| {
            e.detail = format!("Operations[{i}]: {}", e.detail);
            e
        })?;
    }
    let named: usize = changes
        .iter()
        .map(|c| match c {
            GroupChange::AddMembers(ids)
            | GroupChange::RemoveMembers(ids)
            | GroupChange::SetMembers(ids) => ids.len(),
            _ => 0,
        })
        .sum();
    limit_members(named)?;
    Ok(changes)
}

/// Refuses a request naming more than [`MAX_MEMBERS_PER_REQUEST`] distinct member ids (per
/// list; a PATCH's operations are added up), the same way whichever method sent them.
fn limit_members(named: usize) -> Result<(), ScimError> {
    if named > MAX_MEMBERS_PER_REQUEST {
        return Err(ScimError::invalid_value(format!(
            "a request may name at most {MAX_MEMBERS_PER_REQUEST} members; this one names {named}"
        )));
    }
    Ok(())
}

fn operation_changes(
    operation: &Operation,
    group_id: &str,
    out: &mut Vec<GroupChange>,
) -> Result<(), ScimError> {
    let op = operation.op;
    match &operation.path {
        None => {
            let Some(Value::Object(map)) = &operation.value else {
                return Err(ScimError::invalid_value(
                    "without a path, value must be an object",
                ));
            };
            for (key, value) in map {
                let name = strip_group_urn(key);
                if name.eq_ignore_ascii_case("id") {
                    if value.as_str() == Some(group_id) {
                        continue;
                    }
                    return Err(ScimError::mutability("id is read-only"));
                }
                attribute_change(op, name, Some(value), out)?;
            }
            Ok(())
        }
        Some(PatchPath::Attr(path)) => {
            if path
                .uri
                .as_deref()
                .is_some_and(|u| !u.eq_ignore_ascii_case(schema::GROUP))
            {
                return Err(ScimError::invalid_path(format!(
                    "{path} is not a Group attribute"
                )));
            }
            if path.sub_attr.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "{path}: sub-attributes cannot be patched"
                )));
            }
            attribute_change(op, &path.name, operation.value.as_ref(), out)
        }
        Some(PatchPath::Value(vp)) => {
            if !vp.attr.name.eq_ignore_ascii_case("members")
                || vp.attr.sub_attr.is_some()
                || vp.sub_attr.is_some()
            {
                return Err(ScimError::invalid_path(format!(
                    "{}: only members[value eq \"id\"] can be selected",
                    vp.attr
                )));
            }
            if op != Op::Remove {
                return Err(ScimError::invalid_path(
                    "members[...] selects members to remove; add them with path \"members\"",
                ));
            }
            out.push(GroupChange::RemoveMembers(ids_in_filter(&vp.filter)?));
            Ok(())
        }
    }
}

fn strip_group_urn(key: &str) -> &str {
    crate::user::strip_prefix_ci(key, schema::GROUP)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or(key)
}

fn attribute_change(
    op: Op,
    name: &str,
    value: Option<&Value>,
    out: &mut Vec<GroupChange>,
) -> Result<(), ScimError> {
    if name.eq_ignore_ascii_case("displayName") {
        match (op, value) {
            (Op::Remove, _) => Err(ScimError::invalid_value(
                "displayName is required and cannot be removed",
            )),
            (_, Some(Value::String(s))) if !s.trim().is_empty() => {
                out.push(GroupChange::DisplayName(s.clone()));
                Ok(())
            }
            _ => Err(ScimError::invalid_value(
                "displayName must be a non-empty string",
            )),
        }
    } else if name.eq_ignore_ascii_case("externalId") {
        match (op, value) {
            (Op::Remove, _) | (_, Some(Value::Null)) => {
                out.push(GroupChange::ExternalId(None));
                Ok(())
            }
            (_, Some(Value::String(s))) => {
                out.push(GroupChange::ExternalId(Some(s.clone())));
                Ok(())
            }
            _ => Err(ScimError::invalid_value("externalId must be a string")),
        }
    } else if name.eq_ignore_ascii_case("members") {
        let change = match (op, value) {
            (Op::Add, Some(v)) => GroupChange::AddMembers(member_ids(v)?),
            (Op::Replace, Some(Value::Null)) | (Op::Remove, None | Some(Value::Null)) => {
                GroupChange::RemoveAllMembers
            }
            (Op::Replace, Some(v)) => GroupChange::SetMembers(member_ids(v)?),
            // Entra removes members by listing them: remove only those.
            (Op::Remove, Some(v)) => GroupChange::RemoveMembers(member_ids(v)?),
            (Op::Add, None) | (Op::Replace, None) => {
                return Err(ScimError::invalid_value("value is required"))
            }
        };
        out.push(change);
        Ok(())
    } else if ["id", "meta", "schemas"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        Err(ScimError::mutability(format!("{name} is read-only")))
    } else {
        Err(ScimError::invalid_path(format!(
            "{name} is not a supported Group attribute"
        )))
    }
}

/// The member ids a `members[...]` filter names: `value eq "id"`, joined by `or`.
fn ids_in_filter(filter: &ValFilter) -> Result<Vec<String>, ScimError> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(id)))
            if p.name.eq_ignore_ascii_case("value") && p.sub_attr.is_none() && p.uri.is_none() =>
        {
            Ok(vec![id.clone()])
        }
        ValFilter::Or(items) => {
            let mut ids = Vec::new();
            for item in items.iter() {
                ids.extend(ids_in_filter(item)?);
            }
            Ok(ids)
        }
        other => Err(ScimError::invalid_filter(format!(
            "members can be selected by value eq \"id\" (joined by or), not by {other:?}"
        ))),
    }
}

/// The representation of a group returned to clients. `members` is `None` when excluded.
pub fn group_resource(
    display_name: &str,
    external_id: Option<&str>,
    members: Option<Vec<Value>>,
    meta: &crate::user::Meta,
) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), Value::from(vec![schema::GROUP]));
    out.insert("id".into(), Value::from(meta.id.clone()));
    if let Some(e) = external_id {
        out.insert("externalId".into(), Value::from(e));
    }
    out.insert("displayName".into(), Value::from(display_name));
    if let Some(members) = members {
        out.insert("members".into(), Value::Array(members));
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": "Group",
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": meta.location,
            "version": meta.etag(),
        }),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;
    use serde_json::json;

    fn changes(ops: Value) -> Result<Vec<GroupChange>, ScimError> {
        let req = PatchRequest::parse(&json!({"schemas": [schema::PATCH_OP], "Operations": ops}))?;
        group_changes(&req, "g1")
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn bodies() {
        let g = GroupDoc::from_request(&json!({"schemas": [schema::GROUP], "DisplayName": "Eng",
            "members": [{"value": "u1", "display": "A"}, {"value": "u2"}, {"value": "u1"}]}))
        .unwrap();
        assert_eq!(g.display_name, "Eng");
        assert_eq!(g.members, ids(&["u1", "u2"]));
        for bad in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": "x", "members": [{}]}),
            json!({"displayName": "x", "members": "u1"}),
            json!({"displayName": 3}),
        ] {
            assert_eq!(
                GroupDoc::from_request(&bad).unwrap_err().scim_type,
                Some(ScimType::InvalidValue),
                "{bad}"
            );
        }
    }

    /// `{"value": id}` for `n` distinct ids, starting at `u{from}`.
    fn members(from: usize, n: usize) -> Value {
        (from..from + n)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect()
    }

    #[test]
    fn members_per_request_are_limited_for_every_method() {
        let body = |members: Value| json!({"displayName": "Everyone", "members": members});
        let patch = |ops: Value| changes(ops).map(|_| ());
        let half = MAX_MEMBERS_PER_REQUEST / 2;
        let doubled: Vec<Value> = (0..MAX_MEMBERS_PER_REQUEST)
            .chain(0..10)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect();
        let cases: [(&str, Result<(), ScimError>, Option<usize>); 9] = [
            (
                "POST/PUT at the limit",
                GroupDoc::from_request(&body(members(0, MAX_MEMBERS_PER_REQUEST))).map(|_| ()),
                None,
            ),
            (
                "POST/PUT one over",
                GroupDoc::from_request(&body(members(0, MAX_MEMBERS_PER_REQUEST + 1))).map(|_| ()),
                Some(10_001),
            ),
            (
                "POST/PUT far over",
                GroupDoc::from_request(&body(members(0, 12_000))).map(|_| ()),
                Some(12_000),
            ),
            // Duplicates name nobody new.
            (
                "POST/PUT with duplicates",
                GroupDoc::from_request(&body(doubled.into())).map(|_| ()),
                None,
            ),
            (
                "PATCH at the limit, over two operations",
                patch(json!([
                    {"op": "add", "path": "members", "value": members(0, half)},
                    {"op": "remove", "path": "members", "value": members(half, half)},
                ])),
                None,
            ),
            (
                "PATCH one over, over two operations",
                patch(json!([
                    {"op": "add", "path": "members", "value": members(0, half)},
                    {"op": "remove", "path": "members", "value": members(half, half + 1)},
                ])),
                Some(10_001),
            ),
            (
                "PATCH replace one over",
                patch(json!([
                    {"op": "replace", "path": "members", "value": members(0, MAX_MEMBERS_PER_REQUEST + 1)},
                ])),
                Some(10_001),
            ),
            (
                "PATCH no-path add one over",
                patch(json!([
                    {"op": "add", "value": {"members": members(0, MAX_MEMBERS_PER_REQUEST + 1)}},
                ])),
                Some(10_001),
            ),
            (
                "PATCH removing everyone names nobody",
                patch(json!([{"op": "remove", "path": "members"}])),
                None,
            ),
        ];
        for (case, result, refused) in cases {
            match (result, refused) {
                (Ok(()), None) => {}
                (Err(e), Some(named)) => {
                    assert_eq!(e.status, 400, "{case}");
                    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{case}");
                    assert_eq!(
                        e.detail,
                        format!("a request may name at most 10000 members; this one names {named}"),
                        "{case}"
                    );
                }
                (result, _) => panic!("{case}: {result:?}"),
            }
        }
    }

    #[test]
    fn okta_rename_with_its_own_id_and_member_ops() {
        let c = changes(json!([
            {"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}},
            {"op": "remove", "path": "members[value eq \"u9\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u1", "display": "x"}]},
        ]))
        .unwrap();
        assert_eq!(
            c,
            vec![
                GroupChange::DisplayName("Renamed".into()),
                GroupChange::RemoveMembers(ids(&["u9"])),
                GroupChange::AddMembers(ids(&["u1"])),
            ]
        );
    }

    #[test]
    fn entra_remove_with_a_value_array_removes_only_those() {
        let c = changes(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}])).unwrap();
        assert_eq!(c, vec![GroupChange::RemoveMembers(ids(&["u1", "u2"]))]);
        let c = changes(json!([{"op": "Remove", "path": "members"}])).unwrap();
        assert_eq!(c, vec![GroupChange::RemoveAllMembers]);
    }

    #[test]
    fn replace_members_and_no_path_adds() {
        assert_eq!(
            changes(json!([{"op": "replace", "path": "members", "value": [{"value": "u3"}]}]))
                .unwrap(),
            vec![GroupChange::SetMembers(ids(&["u3"]))]
        );
        assert_eq!(
            changes(
                json!([{"op": "Add", "value": {"members": [{"value": "u4"}], "externalId": "e"}}])
            )
            .unwrap(),
            // The keys of a value object are applied in sorted order.
            vec![
                GroupChange::ExternalId(Some("e".into())),
                GroupChange::AddMembers(ids(&["u4"])),
            ]
        );
        assert_eq!(
            changes(json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]))
                .unwrap(),
            vec![GroupChange::RemoveMembers(ids(&["a", "b"]))]
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                json!([{"op": "replace", "value": {"id": "other"}}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "meta", "value": {}}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "title", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "members[value eq \"a\"]", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "remove", "path": "members[display eq \"a\"]"}]),
                ScimType::InvalidFilter,
            ),
            (
                json!([{"op": "remove", "path": "displayName"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "displayName", "value": 7}]),
                ScimType::InvalidValue,
            ),
        ];
        for (ops, expected) in cases {
            let err = changes(ops.clone()).expect_err(&ops.to_string());
            assert_eq!(err.scim_type, Some(expected), "{ops}: {}", err.detail);
        }
    }
}
