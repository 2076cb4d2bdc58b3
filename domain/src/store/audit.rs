//! Storage of the audit log.

use super::db::{stmt, Tx};
use super::Store;
use crate::audit::{AuditEntry, AuditRow};
use crate::error::Result;

impl Store {
    /// The organisation's audit log, newest first: `limit` events older than `before_id`.
    pub async fn audit_events(
        &self,
        organisation_id: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(
                    "SELECT a.id, a.admin_id, a.actor, a.action, a.integration_id, i.kind, a.detail, a.at \
                     FROM audit_events a LEFT JOIN directory_integrations i ON i.id = a.integration_id \
                     WHERE a.organisation_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3",
                )
                .bind(&organisation_id)
                .bind(before_id.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(tx)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|mut r| AuditRow {
                        id: r.take(0),
                        admin_id: r.take(1),
                        actor: r.take(2),
                        action: r.take(3),
                        integration_id: r.take(4),
                        integration_kind: r.take(5),
                        detail: r.take(6),
                        at: r.take(7),
                    })
                    .collect())
            })
        })
        .await
    }

    /// Records an event that concerns no integration (a login, a failed login).
    pub async fn insert_audit(
        &self,
        organisation_id: &str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<()> {
        let (organisation_id, audit) = (organisation_id.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move { record_audit(tx, &organisation_id, &audit, None, at).await })
        })
        .await
    }
}

/// Records who did what, in the transaction that did it.
pub(super) async fn record_audit(
    tx: &mut Tx,
    organisation_id: &str,
    audit: &AuditEntry,
    integration_id: Option<&str>,
    at: i64,
) -> Result<()> {
    stmt(
        "INSERT INTO audit_events (organisation_id, admin_id, actor, action, integration_id, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(organisation_id)
    .bind(&audit.admin_id)
    .bind(&audit.actor)
    .bind(audit.action)
    .bind(integration_id)
    .bind(&audit.detail)
    .bind(at)
    .execute(tx)
    .await?;
    // The events an alert rule watches raise their alert in the same transaction.
    super::alerts::queue_audited(tx, organisation_id, audit, integration_id, at).await
}
