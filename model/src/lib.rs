//! What the server and the console's browser code share: the values both sides name, as
//! plain types that compile to wasm (serde only). The console's server functions take and
//! return them, so serde parses them at the edge and refuses unknown values there.
//!
//! Adding an identity provider is one variant of [`IntegrationKind`] with its slug and label
//! here, and its setup text in the console (an exhaustive match there asks for it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identity providers an organisation can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    OneLogin,
    Okta,
    Entra,
    /// Any other SCIM 2.0 client.
    Generic,
}

impl IntegrationKind {
    /// Every kind, in the order the console shows them.
    pub const ALL: [IntegrationKind; 4] = [
        IntegrationKind::OneLogin,
        IntegrationKind::Okta,
        IntegrationKind::Entra,
        IntegrationKind::Generic,
    ];

    /// The stable identifier used in storage, URLs, the CLI and serde.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::OneLogin => "onelogin",
            IntegrationKind::Okta => "okta",
            IntegrationKind::Entra => "entra",
            IntegrationKind::Generic => "generic",
        }
    }

    /// The name an admin knows it by.
    pub fn label(self) -> &'static str {
        match self {
            IntegrationKind::OneLogin => "OneLogin",
            IntegrationKind::Okta => "Okta",
            IntegrationKind::Entra => "Microsoft Entra ID",
            IntegrationKind::Generic => "Other SCIM client",
        }
    }

    /// Its tab in the console.
    pub fn path(self) -> String {
        format!("/settings/directory-integrations/{}", self.as_str())
    }

    /// Whether its setup instructions are a page of their own (under [`Self::path`]
    /// `/setup`) rather than steps on its tab.
    pub fn has_setup_page(self) -> bool {
        self == IntegrationKind::OneLogin
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that is none of those its type knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was asked for: "integration", "delete setting".
    pub what: &'static str,
    pub value: String,
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; known: {}",
            self.what,
            self.value,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

impl FromStr for IntegrationKind {
    type Err = UnknownValue;

    /// A slug, in any case.
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownValue {
                what: "integration",
                value: s.to_owned(),
                known: Self::ALL.map(Self::as_str).to_vec(),
            })
    }
}

/// What the console keeps of a user or group an integration deletes. Either way the
/// resource is gone for SCIM (RFC 7644 §3.6): every later request for it is 404, no query
/// finds it, and its userName is free for a new user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// A read-only record: who deleted it and when, its attributes and its groups or members
    /// at deletion, and its SCIM history.
    #[default]
    Keep,
    /// Nothing: its attributes and memberships go, and its requests in the activity log
    /// keep only their request line.
    Erase,
}

impl DeleteMode {
    pub const ALL: [DeleteMode; 2] = [DeleteMode::Keep, DeleteMode::Erase];

    pub fn as_str(self) -> &'static str {
        match self {
            DeleteMode::Keep => "keep",
            DeleteMode::Erase => "erase",
        }
    }
}

impl FromStr for DeleteMode {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownValue {
                what: "delete setting",
                value: s.to_owned(),
                known: Self::ALL.map(Self::as_str).to_vec(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_slug_and_through_serde() {
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.as_str().parse::<IntegrationKind>(), Ok(kind));
            assert_eq!(
                kind.as_str().to_uppercase().parse::<IntegrationKind>(),
                Ok(kind)
            );
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                serde_json::from_str::<IntegrationKind>(&json).unwrap(),
                kind
            );
            assert!(kind.path().ends_with(kind.as_str()));
            assert!(!kind.label().is_empty());
        }
        let unknown = "azure".parse::<IntegrationKind>().unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown integration \"azure\"; known: onelogin, okta, entra, generic"
        );
        assert!(serde_json::from_str::<IntegrationKind>("\"azure\"").is_err());
    }

    #[test]
    fn delete_modes_read_back() {
        for mode in DeleteMode::ALL {
            assert_eq!(mode.as_str().parse::<DeleteMode>(), Ok(mode));
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(serde_json::from_str::<DeleteMode>(&json).unwrap(), mode);
        }
        assert!("remove".parse::<DeleteMode>().is_err());
    }
}
