//! The change history of users and groups: what each SCIM write changed (attribute path, old
//! and new value; never a password), by which integration, in which request, when. The store
//! records it in the transaction of the write itself, for the requests that ask
//! ([`crate::deadline::keep_history`]: the SCIM API, while the activity log is kept), and
//! keeps it as long as the activity log.

use crate::error::Result;
use crate::store::{Store, Table};

/// The newest entries a user's or group's page shows.
pub const SHOWN_ENTRIES: i64 = 50;

/// What a write did to a user or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    /// One attribute changed: see the entry's `path`, `old` and `new`.
    Changed,
    Deleted,
    MemberAdded,
    MemberRemoved,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Changed => "changed",
            Action::Deleted => "deleted",
            Action::MemberAdded => "member_added",
            Action::MemberRemoved => "member_removed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            Action::Created,
            Action::Changed,
            Action::Deleted,
            Action::MemberAdded,
            Action::MemberRemoved,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One entry of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: i64,
    /// The kind of the integration that wrote (`None`: unknown).
    pub by: Option<String>,
    pub request_id: Option<String>,
    pub action: Action,
    /// `true` when the entry is about a group (a user's history shows the groups they
    /// joined and left).
    pub on_group: bool,
    pub resource_id: String,
    /// The user's or group's name after the write.
    pub resource_name: String,
    pub path: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    /// For a membership change: the user and their name then.
    pub member: Option<(String, String)>,
}

/// The newest entries of a user's history, their group memberships included, newest first.
pub async fn user_history(
    store: &Store,
    organisation_id: &str,
    id: &str,
) -> Result<Vec<HistoryEntry>> {
    store
        .history(organisation_id, Table::Users, id, SHOWN_ENTRIES)
        .await
}

/// The newest entries of a group's history, newest first.
pub async fn group_history(
    store: &Store,
    organisation_id: &str,
    id: &str,
) -> Result<Vec<HistoryEntry>> {
    store
        .history(organisation_id, Table::Groups, id, SHOWN_ENTRIES)
        .await
}
