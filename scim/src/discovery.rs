//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`. The User
//! schema is generated from the same attribute tables the parser uses, so it lists exactly
//! what the service accepts.

use serde_json::{json, Value};

use crate::list::MAX_COUNT;
use crate::schema::{
    Attr, Kind, SubAttr, ENTERPRISE_ATTRS, ENTERPRISE_USER, GROUP, USER, USER_ATTRS,
};

const SERVICE_PROVIDER_CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// What this service provider supports. `base_url` has no trailing slash.
pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Provisioning token",
            "description": "The provisioning token from the console's Directory integrations page, as a bearer token.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        }
    })
}

/// The resource types, in the order of [`resource_type`]'s names.
pub const RESOURCE_TYPES: [&str; 2] = ["User", "Group"];

pub fn resource_type(name: &str, base_url: &str) -> Option<Value> {
    let (endpoint, description, schema, extensions) = match name {
        "User" => (
            "/Users",
            "User Account",
            USER,
            json!([{"schema": ENTERPRISE_USER, "required": false}]),
        ),
        "Group" => ("/Groups", "Group", GROUP, json!([])),
        _ => return None,
    };
    Some(json!({
        "schemas": [RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": description,
        "schema": schema,
        "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{name}")},
    }))
}

/// The schema URNs served by `/Schemas`.
pub const SCHEMA_IDS: [&str; 3] = [USER, ENTERPRISE_USER, GROUP];

pub fn schema(id: &str, base_url: &str) -> Option<Value> {
    let (name, description, attributes) = if id.eq_ignore_ascii_case(USER) {
        let mut attrs: Vec<Value> = USER_ATTRS.iter().map(attribute).collect();
        attrs.push(json!({
            "name": "groups", "type": "complex", "multiValued": true, "required": false,
            "mutability": "readOnly", "returned": "default", "uniqueness": "none",
            "description": "The groups the user belongs to, derived from group membership.",
            "subAttributes": [
                read_only_string("value"),
                reference("$ref", "Group", "readOnly"),
                read_only_string("display"), read_only_string("type"),
            ],
        }));
        ("User", "User Account", attrs)
    } else if id.eq_ignore_ascii_case(ENTERPRISE_USER) {
        (
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRS.iter().map(attribute).collect(),
        )
    } else if id.eq_ignore_ascii_case(GROUP) {
        let members = json!({
            "name": "members", "type": "complex", "multiValued": true, "required": false,
            "mutability": "readWrite", "returned": "default", "uniqueness": "none",
            "description": "The users in the group.",
            "subAttributes": [
                {"name": "value", "type": "string", "multiValued": false, "required": true,
                 "caseExact": true, "mutability": "immutable", "returned": "default", "uniqueness": "none"},
                // Members are users (nested groups are not supported).
                reference("$ref", "User", "immutable"),
                read_only_string("display"),
                {"name": "type", "type": "string", "multiValued": false, "required": false,
                 "caseExact": false, "canonicalValues": ["User"], "mutability": "immutable",
                 "returned": "default", "uniqueness": "none"},
            ],
        });
        let display_name = json!({
            "name": "displayName", "type": "string", "multiValued": false, "required": true,
            "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
        });
        ("Group", "Group", vec![display_name, members])
    } else {
        return None;
    };
    let id = SCHEMA_IDS
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(id))?;
    Some(json!({
        "schemas": [SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{id}")},
    }))
}

fn reference(name: &str, to: &str, mutability: &str) -> Value {
    json!({"name": name, "type": "reference", "referenceTypes": [to], "multiValued": false,
           "required": false, "caseExact": true, "mutability": mutability, "returned": "default",
           "uniqueness": "none"})
}

fn read_only_string(name: &str) -> Value {
    json!({"name": name, "type": "string", "multiValued": false, "required": false,
           "caseExact": false, "mutability": "readOnly", "returned": "default", "uniqueness": "none"})
}

fn attribute(attr: &Attr) -> Value {
    let required = attr.name == "userName";
    let case_exact = attr.name == "externalId";
    let uniqueness = if attr.name == "userName" {
        "server"
    } else {
        "none"
    };
    let mut out = json!({
        "name": attr.name,
        "multiValued": matches!(attr.kind, Kind::MultiComplex(_)),
        "required": required,
        "caseExact": case_exact,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    });
    match attr.kind {
        Kind::String => out["type"] = "string".into(),
        Kind::Boolean => out["type"] = "boolean".into(),
        Kind::Complex(subs) | Kind::MultiComplex(subs) => {
            out["type"] = "complex".into();
            out["subAttributes"] = subs.iter().map(sub_attribute).collect();
        }
    }
    out
}

fn sub_attribute(sub: &SubAttr) -> Value {
    // The only `$ref` among the writable sub-attributes is the enterprise manager's.
    if sub.name == "$ref" {
        return reference("$ref", "User", "readWrite");
    }
    json!({
        "name": sub.name,
        "type": if sub.boolean { "boolean" } else { "string" },
        "multiValued": false,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_schema_lists_every_attribute_the_parser_accepts() {
        let s = schema(USER, "https://h/scimapi").unwrap();
        let names: Vec<&str> = s["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for attr in USER_ATTRS {
            assert!(names.contains(&attr.name), "{}", attr.name);
        }
        assert!(
            !names.contains(&"password"),
            "passwords are not stored, so not offered"
        );
        let user_name = &s["attributes"][0];
        assert_eq!(
            (
                user_name["name"].as_str(),
                user_name["required"].as_bool(),
                user_name["uniqueness"].as_str()
            ),
            (Some("userName"), Some(true), Some("server"))
        );
    }

    #[test]
    fn lookups() {
        assert!(schema("urn:nope", "b").is_none());
        assert_eq!(schema(&GROUP.to_uppercase(), "b").unwrap()["id"], GROUP);
        assert_eq!(
            resource_type("User", "b").unwrap()["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER
        );
        assert!(resource_type("Device", "b").is_none());
        assert_eq!(
            service_provider_config("b")["filter"]["maxResults"],
            MAX_COUNT
        );
    }
}
