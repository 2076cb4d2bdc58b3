//! What the server and the console's browser code share: the values both sides name, as
//! plain types that compile to wasm (serde only). The console's server functions take and
//! return them, so serde parses them at the edge and refuses unknown values there.
//!
//! Adding an identity provider is one variant of [`IntegrationKind`] with its slug and label
//! here, and its setup text in the console (an exhaustive match there asks for it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the console and the server name by a slug: every value ([`ALL`]), its slug
/// (`as_str`, `Display`), and the parse back (`FromStr`, any case), which serde uses too, so
/// an unknown value is refused with an [`UnknownValue`] naming `$what` and the known slugs.
///
/// [`ALL`]: IntegrationKind::ALL
macro_rules! named_values {
    ($(#[$meta:meta])* pub enum $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $slug:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the console shows them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable identifier used in storage, URLs, forms and serde.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $slug,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            /// A slug, in any case.
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                        known: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;

            fn try_from(s: String) -> Result<Self, UnknownValue> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> Self {
                value.as_str()
            }
        }
    };
}

named_values! {
    /// The identity providers an organisation can connect.
    pub enum IntegrationKind ("integration") {
        OneLogin = "onelogin",
        Okta = "okta",
        Entra = "entra",
        /// Any other SCIM 2.0 client.
        Generic = "generic",
    }
}

impl IntegrationKind {
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

/// A value that is none of those its type knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was asked for: "integration", "delete setting".
    pub what: &'static str,
    pub value: String,
    pub known: Vec<&'static str>,
}

/// "unknown status \"x\"; expected all, active or deleted".
impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}; expected ", self.what, self.value)?;
        match self.known.split_last() {
            Some((last, [])) => f.write_str(last),
            Some((last, rest)) => write!(f, "{} or {last}", rest.join(", ")),
            None => f.write_str("nothing"),
        }
    }
}

impl std::error::Error for UnknownValue {}

named_values! {
    /// What the console keeps of a user or group an integration deletes. Either way the
    /// resource is gone for SCIM (RFC 7644 §3.6): every later request for it is 404, no
    /// query finds it, and its userName is free for a new user.
    #[derive(Default)]
    pub enum DeleteMode ("delete setting") {
        /// A read-only record: who deleted it and when, its attributes and its groups or
        /// members at deletion, and its SCIM history.
        #[default]
        Keep = "keep",
        /// Nothing: its attributes and memberships go, and its requests in the activity log
        /// keep only their request line.
        Erase = "erase",
    }
}

/// An integration to list the work of, or all of them: a form's "" is all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub struct KindFilter(pub Option<IntegrationKind>);

impl FromStr for KindFilter {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        if s.is_empty() {
            return Ok(KindFilter(None));
        }
        s.parse().map(|kind| KindFilter(Some(kind)))
    }
}

impl TryFrom<String> for KindFilter {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, UnknownValue> {
        s.parse()
    }
}

impl From<KindFilter> for &'static str {
    fn from(filter: KindFilter) -> Self {
        filter.0.map_or("", IntegrationKind::as_str)
    }
}

named_values! {
    /// Which users the console lists.
    #[derive(Default)]
    pub enum UserStatus ("status") {
        #[default]
        All = "all",
        Active = "active",
        Deactivated = "deactivated",
        /// The records of users an integration deleted.
        Deleted = "deleted",
    }
}

named_values! {
    /// Which groups the console lists.
    #[derive(Default)]
    pub enum GroupStatus ("status") {
        #[default]
        Current = "current",
        /// The records of groups an integration deleted.
        Deleted = "deleted",
    }
}

named_values! {
    /// The order the console lists users or groups in. Deleted ones' "newest" is by time
    /// of deletion.
    #[derive(Default)]
    pub enum ListOrder ("sort order") {
        /// Oldest first.
        #[default]
        Created = "created",
        Newest = "newest",
        /// By userName (users only), A to Z.
        Name = "name",
        NameDesc = "name-desc",
        Display = "display",
    }
}

named_values! {
    /// Which requests the activity log lists.
    #[derive(Default)]
    pub enum StatusFilter ("status filter") {
        #[default]
        All = "all",
        /// Answered with a 4xx or 5xx status.
        Failures = "failures",
        /// Refused for presenting a token that a reset retired.
        RetiredToken = "retired",
    }
}

/// A moment to show an admin: milliseconds since the epoch, and the server's rendering of it
/// in UTC, used until the browser can render it in the admin's own time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    pub at_ms: i64,
    pub utc_text: String,
    pub rfc3339: String,
}

/// Who deleted a user or group (an integration kind; `None` when that integration is gone),
/// and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub by: Option<IntegrationKind>,
    pub at: Moment,
}

/// A user as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub created: Moment,
    /// For the record of a deleted user: who deleted them and when.
    pub deleted: Option<Deleted>,
}

/// A group as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub id: String,
    pub display_name: String,
    pub members: i64,
    pub created: Moment,
    /// For the record of a deleted group: who deleted it and when.
    pub deleted: Option<Deleted>,
}

/// A member of a group as the console lists it (of a deleted group: as they were when it
/// was deleted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `all` reads back from its slug, in any case, and through serde; an
    /// unknown slug is refused by both with the same message, naming `what`.
    fn reads_back<T>(all: &[T], what: &str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownValue>,
        T: Serialize + serde::de::DeserializeOwned,
    {
        for &value in all {
            let slug = value.to_string();
            assert_eq!(slug.parse::<T>(), Ok(value));
            assert_eq!(slug.to_uppercase().parse::<T>(), Ok(value));
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(json, format!("\"{slug}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
        }
        let unknown = "sleeping".parse::<T>().unwrap_err();
        assert!(
            unknown
                .to_string()
                .starts_with(&format!("unknown {what} \"sleeping\"; expected ")),
            "{unknown}"
        );
        let refused = serde_json::from_str::<T>("\"sleeping\"").unwrap_err();
        assert!(
            refused.to_string().contains(&unknown.to_string()),
            "{refused}"
        );
    }

    #[test]
    fn every_named_value_reads_back_from_its_slug_and_through_serde() {
        reads_back(IntegrationKind::ALL, "integration");
        reads_back(DeleteMode::ALL, "delete setting");
        reads_back(UserStatus::ALL, "status");
        reads_back(GroupStatus::ALL, "status");
        reads_back(ListOrder::ALL, "sort order");
        reads_back(StatusFilter::ALL, "status filter");
        assert_eq!(
            "shred".parse::<DeleteMode>().unwrap_err().to_string(),
            "unknown delete setting \"shred\"; expected keep or erase"
        );
        assert_eq!(
            "azure".parse::<IntegrationKind>().unwrap_err().to_string(),
            "unknown integration \"azure\"; expected onelogin, okta, entra or generic"
        );
        for &kind in IntegrationKind::ALL {
            assert!(kind.path().ends_with(kind.as_str()));
            assert!(!kind.label().is_empty());
        }
    }

    #[test]
    fn a_kind_filter_is_all_when_empty() {
        let all: KindFilter = serde_json::from_str("\"\"").unwrap();
        assert_eq!(all, KindFilter(None));
        assert_eq!(serde_json::to_string(&all).unwrap(), "\"\"");
        let okta: KindFilter = serde_json::from_str("\"okta\"").unwrap();
        assert_eq!(okta, KindFilter(Some(IntegrationKind::Okta)));
        assert_eq!(serde_json::to_string(&okta).unwrap(), "\"okta\"");
        assert!(serde_json::from_str::<KindFilter>("\"azure\"").is_err());
    }
}
