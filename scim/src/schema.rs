//! Schema URNs and the attribute names of the User resource this service stores.

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// How an attribute of the User schema is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    /// A single complex value with the listed sub-attributes.
    Complex(&'static [SubAttr]),
    /// A list of complex values with the listed sub-attributes.
    MultiComplex(&'static [SubAttr]),
}

/// A sub-attribute of a complex attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAttr {
    pub name: &'static str,
    pub boolean: bool,
}

const fn s(name: &'static str) -> SubAttr {
    SubAttr {
        name,
        boolean: false,
    }
}

const fn b(name: &'static str) -> SubAttr {
    SubAttr {
        name,
        boolean: true,
    }
}

/// An attribute the User schema (or its enterprise extension) defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
}

const NAME: &[SubAttr] = &[
    s("formatted"),
    s("familyName"),
    s("givenName"),
    s("middleName"),
    s("honorificPrefix"),
    s("honorificSuffix"),
];
const MULTI: &[SubAttr] = &[s("value"), s("display"), s("type"), b("primary")];
const ADDRESS: &[SubAttr] = &[
    s("formatted"),
    s("streetAddress"),
    s("locality"),
    s("region"),
    s("postalCode"),
    s("country"),
    s("type"),
    b("primary"),
];
const MANAGER: &[SubAttr] = &[s("value"), s("$ref"), s("displayName")];

/// Writable attributes of the core User schema. `id`, `meta` and `groups` are read-only and
/// `password` is write-only; they are handled separately.
pub const USER_ATTRS: &[Attr] = &[
    Attr {
        name: "userName",
        kind: Kind::String,
    },
    Attr {
        name: "externalId",
        kind: Kind::String,
    },
    Attr {
        name: "name",
        kind: Kind::Complex(NAME),
    },
    Attr {
        name: "displayName",
        kind: Kind::String,
    },
    Attr {
        name: "nickName",
        kind: Kind::String,
    },
    Attr {
        name: "profileUrl",
        kind: Kind::String,
    },
    Attr {
        name: "title",
        kind: Kind::String,
    },
    Attr {
        name: "userType",
        kind: Kind::String,
    },
    Attr {
        name: "preferredLanguage",
        kind: Kind::String,
    },
    Attr {
        name: "locale",
        kind: Kind::String,
    },
    Attr {
        name: "timezone",
        kind: Kind::String,
    },
    Attr {
        name: "active",
        kind: Kind::Boolean,
    },
    Attr {
        name: "emails",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "phoneNumbers",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "ims",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "photos",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "addresses",
        kind: Kind::MultiComplex(ADDRESS),
    },
    Attr {
        name: "entitlements",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "roles",
        kind: Kind::MultiComplex(MULTI),
    },
    Attr {
        name: "x509Certificates",
        kind: Kind::MultiComplex(MULTI),
    },
];

/// Attributes of the enterprise User extension.
pub const ENTERPRISE_ATTRS: &[Attr] = &[
    Attr {
        name: "employeeNumber",
        kind: Kind::String,
    },
    Attr {
        name: "costCenter",
        kind: Kind::String,
    },
    Attr {
        name: "organization",
        kind: Kind::String,
    },
    Attr {
        name: "division",
        kind: Kind::String,
    },
    Attr {
        name: "department",
        kind: Kind::String,
    },
    Attr {
        name: "manager",
        kind: Kind::Complex(MANAGER),
    },
];

/// Looks an attribute up by name, ignoring case as RFC 7643 §2.1 requires.
pub fn find(attrs: &'static [Attr], name: &str) -> Option<&'static Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Looks a sub-attribute up by name, ignoring case.
pub fn find_sub(subs: &'static [SubAttr], name: &str) -> Option<&'static SubAttr> {
    subs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}
