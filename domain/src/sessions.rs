//! An admin's console sessions: what each records (when it began and was last seen, when
//! its admin last proved their identity, from where), listing and ending them, and whether a
//! session is fresh enough for the most sensitive actions (step-up).

use serde::{Deserialize, Serialize};

use crate::accounts::Admin;
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::store::Store;
use crate::time;

/// The session record key holding its [`SessionInfo`].
pub const INFO: &str = "login";

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 200;

/// What a session records about itself, shown to its admin in their list of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub last_seen_at: i64,
    /// When the admin last gave their password (and second factor): at login, or a step-up.
    pub authenticated_at: i64,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionInfo {
    /// A session logging in now, from `address` with `user_agent`.
    pub fn new(address: Option<String>, user_agent: Option<&str>) -> Self {
        let now = time::now_ms();
        Self {
            created_at: now,
            last_seen_at: now,
            authenticated_at: now,
            address,
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        }
    }

    /// Whether the admin proved their identity within `window` of now.
    pub fn is_fresh(&self, window: std::time::Duration) -> bool {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        time::now_ms().saturating_sub(self.authenticated_at) <= window
    }
}

/// One of an admin's sessions: the handle naming it, and what it records (`None` for a
/// session from before sessions recorded anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub handle: String,
    pub info: Option<SessionInfo>,
}

/// The admin's live sessions.
pub async fn sessions(store: &Store, admin_id: &str) -> Result<Vec<SessionSummary>> {
    let rows = store.sessions_of(admin_id).await?;
    Ok(rows
        .into_iter()
        .map(|(handle, data)| {
            let info = serde_json::from_slice::<tower_sessions::session::Record>(&data)
                .ok()
                .and_then(|record| record.data.get(INFO).cloned())
                .and_then(|info| serde_json::from_value(info).ok());
            SessionSummary { handle, info }
        })
        .collect())
}

/// Ends one of the admin's sessions, by handle; whether it existed.
pub async fn end(store: &Store, admin: &Admin, handle: &str) -> Result<bool> {
    let audit = AuditEntry::by(admin, "session.ended", Some(handle.to_owned()));
    Ok(store
        .end_sessions(admin, Some(handle), None, &audit, time::now_ms())
        .await?
        > 0)
}

/// Ends every session of the admin but `current`; how many.
pub async fn end_others(store: &Store, admin: &Admin, current: &str) -> Result<u64> {
    let audit = AuditEntry::by(admin, "sessions.ended", None);
    store
        .end_sessions(admin, None, Some(current), &audit, time::now_ms())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_step_up_is_fresh_within_its_window_only() {
        let mut info = SessionInfo::new(Some("203.0.113.7".into()), Some(&"x".repeat(500)));
        assert_eq!(
            info.user_agent.as_deref().map(str::len),
            Some(MAX_USER_AGENT)
        );
        let window = Duration::from_secs(600);
        assert!(info.is_fresh(window));
        info.authenticated_at -= 599_000;
        assert!(info.is_fresh(window));
        info.authenticated_at -= 2_000;
        assert!(!info.is_fresh(window));
        // A session from before sessions recorded logins is never fresh.
        info.authenticated_at = 0;
        assert!(!info.is_fresh(window));
    }
}
