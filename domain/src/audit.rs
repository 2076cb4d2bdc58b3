//! The audit log: who did what to an organisation's integrations and admins, and when.

/// Who did what, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub admin_id: Option<String>,
    pub actor: String,
    pub action: &'static str,
    pub detail: Option<String>,
}

impl AuditEntry {
    /// `admin` did `action` (on `detail`, when it names what).
    pub fn by(
        admin: &crate::accounts::Admin,
        action: &'static str,
        detail: Option<String>,
    ) -> Self {
        Self {
            admin_id: Some(admin.id.clone()),
            actor: admin.email.clone(),
            action,
            detail,
        }
    }

    /// The operator's command line did `action` (to `detail`).
    pub fn by_operator(action: &'static str, detail: Option<String>) -> Self {
        Self {
            admin_id: None,
            actor: crate::accounts::OPERATOR.into(),
            action,
            detail,
        }
    }
}

/// An event as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub admin_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub integration_id: Option<String>,
    pub integration_kind: Option<String>,
    pub detail: Option<String>,
    pub at: i64,
}
