//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes a read
//! returns. `id` and `schemas` are always returned.

use scim_v2::filter::{AttrPath, PatchPath};
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::ENTERPRISE_USER;

/// The attributes a client asked for, or asked to leave out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    include: Option<Vec<AttrPath>>,
    exclude: Vec<AttrPath>,
}

impl Projection {
    /// Reads the comma-separated query parameters. Both at once is `invalidSyntax`.
    pub fn from_query(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        let attributes = attributes.filter(|s| !s.trim().is_empty());
        let excluded = excluded.filter(|s| !s.trim().is_empty());
        if attributes.is_some() && excluded.is_some() {
            return Err(ScimError::invalid_syntax(
                "attributes and excludedAttributes cannot be used together",
            ));
        }
        Ok(Self {
            include: attributes.map(parse_list).transpose()?,
            exclude: excluded.map(parse_list).transpose()?.unwrap_or_default(),
        })
    }

    /// Whether the projection leaves out `name` entirely (e.g. a group's members, which are
    /// then not even loaded).
    pub fn omits(&self, name: &str) -> bool {
        let named = |p: &AttrPath| p.name.eq_ignore_ascii_case(name) && p.sub_attr.is_none();
        match &self.include {
            Some(include) => !include.iter().any(|p| p.name.eq_ignore_ascii_case(name)),
            None => self.exclude.iter().any(named),
        }
    }

    /// Removes what the client did not ask for from a full resource.
    pub fn apply(&self, resource: &mut Value) {
        let Value::Object(map) = resource else { return };
        if let Some(include) = &self.include {
            let mut kept = Map::new();
            for key in ["schemas", "id"] {
                if let Some(v) = map.remove(key) {
                    kept.insert(key.into(), v);
                }
            }
            for path in include {
                copy_path(map, &mut kept, path);
            }
            *map = kept;
        } else {
            for path in &self.exclude {
                if !(path.name.eq_ignore_ascii_case("id")
                    || path.name.eq_ignore_ascii_case("schemas"))
                {
                    remove_path(map, path);
                }
            }
        }
    }
}

fn parse_list(list: &str) -> Result<Vec<AttrPath>, ScimError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<PatchPath>() {
            Ok(PatchPath::Attr(path)) => Ok(path),
            _ => Err(ScimError::invalid_syntax(format!(
                "{s:?} is not an attribute name"
            ))),
        })
        .collect()
}

/// The object that holds `path`'s attribute: the resource itself, or the extension object a
/// URN names (`urn:...:enterprise:2.0:User:department`).
fn container_key(path: &AttrPath) -> Option<String> {
    match path.uri.as_deref() {
        Some(uri) if uri.eq_ignore_ascii_case(ENTERPRISE_USER) => Some(ENTERPRISE_USER.to_owned()),
        _ => None,
    }
}

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &AttrPath) {
    // The extension URN itself names the whole extension object.
    if let Some(uri) = &path.uri {
        if format!("{uri}:{}", path.name).eq_ignore_ascii_case(ENTERPRISE_USER) {
            if let Some(v) = from.get(ENTERPRISE_USER) {
                to.insert(ENTERPRISE_USER.into(), v.clone());
            }
            return;
        }
    }
    let (source, target) = match container_key(path) {
        Some(ext) => {
            let Some(Value::Object(source)) = from.get(&ext) else {
                return;
            };
            let Value::Object(target) = to.entry(ext).or_insert_with(|| Value::Object(Map::new()))
            else {
                return;
            };
            (source, target)
        }
        None => (from, to),
    };
    let Some(key) = find_key(source, &path.name) else {
        return;
    };
    let value = &source[&key];
    let Some(sub) = &path.sub_attr else {
        target.insert(key, value.clone());
        return;
    };
    let pick = |v: &Value| -> Option<Value> {
        let obj = v.as_object()?;
        let k = find_key(obj, sub)?;
        let mut m = Map::new();
        m.insert(k.clone(), obj[&k].clone());
        Some(Value::Object(m))
    };
    let picked = match value {
        Value::Array(items) => {
            let items: Vec<Value> = items.iter().filter_map(pick).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => pick(other),
    };
    if let Some(p) = picked {
        match (target.get_mut(&key), p) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (_, p) => {
                target.insert(key, p);
            }
        }
    }
}

fn remove_path(map: &mut Map<String, Value>, path: &AttrPath) {
    if let Some(uri) = &path.uri {
        if format!("{uri}:{}", path.name).eq_ignore_ascii_case(ENTERPRISE_USER) {
            map.remove(ENTERPRISE_USER);
            return;
        }
    }
    let container = match container_key(path) {
        Some(ext) => match map.get_mut(&ext) {
            Some(Value::Object(m)) => m,
            _ => return,
        },
        None => map,
    };
    let Some(key) = find_key(container, &path.name) else {
        return;
    };
    match &path.sub_attr {
        None => {
            container.remove(&key);
        }
        Some(sub) => {
            let strip = |v: &mut Value| {
                if let Value::Object(o) = v {
                    if let Some(k) = find_key(o, sub) {
                        o.remove(&k);
                    }
                }
            };
            match container.get_mut(&key) {
                Some(Value::Array(items)) => items.iter_mut().for_each(strip),
                Some(v) => strip(v),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
            "id": "1", "userName": "u", "active": true,
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            ENTERPRISE_USER: {"department": "D", "costCenter": "C"},
            "meta": {"resourceType": "User"}
        })
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut v = user();
        Projection::from_query(attributes, excluded)
            .unwrap()
            .apply(&mut v);
        v
    }

    #[test]
    fn attributes_keep_only_what_is_named_plus_id_and_schemas() {
        let v = project(Some("userName, name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None);
        assert_eq!(
            v,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
                "id": "1", "userName": "u",
                "name": {"givenName": "G"},
                "emails": [{"value": "a@x"}, {"value": "b@x"}],
                ENTERPRISE_USER: {"department": "D"},
            })
        );
        assert_eq!(project(Some("USERNAME"), None)["userName"], "u");
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_id() {
        let v = project(None, Some("emails,name.familyName,id,meta"));
        assert!(v.get("emails").is_none() && v.get("meta").is_none());
        assert_eq!(v["name"], json!({"givenName": "G"}));
        assert_eq!(v["id"], "1");
    }

    #[test]
    fn omits() {
        assert!(Projection::from_query(None, Some("members"))
            .unwrap()
            .omits("members"));
        assert!(Projection::from_query(Some("displayName"), None)
            .unwrap()
            .omits("members"));
        assert!(!Projection::from_query(Some("members.value"), None)
            .unwrap()
            .omits("members"));
        assert!(!Projection::default().omits("members"));
    }

    #[test]
    fn errors() {
        assert!(Projection::from_query(Some("a"), Some("b")).is_err());
        assert!(Projection::from_query(Some("emails[type eq \"work\"]"), None).is_err());
        assert!(Projection::from_query(Some("1abc"), None).is_err());
    }
}
