//! Storage of directory integrations: their tokens (as digests), delete setting and last
//! sync.

use super::audit::record_audit;
use super::db::stmt;
use super::Store;
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::integrations::{DeleteMode, IntegrationRow, TokenChange, TokenOwner};

/// The delete setting as a number: the backends disagree on computed booleans.
const ERASES: &str = "CAST(CASE WHEN on_delete = 'erase' THEN 1 ELSE 0 END AS BIGINT)";

fn delete_mode(erases: i64) -> DeleteMode {
    if erases == 0 {
        DeleteMode::Keep
    } else {
        DeleteMode::Erase
    }
}

impl Store {
    pub async fn integration(
        &self,
        organisation_id: &str,
        kind: &'static str,
    ) -> Result<Option<IntegrationRow>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let row = stmt(format!(
                    "SELECT id, organisation_id, kind, CAST(CASE WHEN token_hash IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                     token_created_at, last_sync_at, {ERASES} FROM directory_integrations \
                     WHERE organisation_id = $1 AND kind = $2"
                ))
                .bind(&organisation_id)
                .bind(kind)
                .fetch_optional(tx)
                .await?;
                Ok(row.map(|mut r| IntegrationRow {
                    id: r.take(0),
                    organisation_id: r.take(1),
                    kind: r.take(2),
                    // Computed truth values are integers: the backends disagree on booleans.
                    has_token: r.take::<i64>(3) != 0,
                    token_created_at: r.take(4),
                    last_sync_at: r.take(5),
                    on_delete: delete_mode(r.take(6)),
                }))
            })
        })
        .await
    }

    /// Stores `token_hash` as the integration's only token (creating the integration if
    /// needed) and records `audit`, in one transaction: the previous token stops working when
    /// this commits. With `only_if_absent`, an existing token is left alone and `None` is
    /// returned. Returns the integration id.
    pub async fn set_token(&self, change: TokenChange) -> Result<Option<String>> {
        self.write(move |tx| {
            Box::pin(async move {
                let guard = if change.only_if_absent {
                    " WHERE directory_integrations.token_hash IS NULL"
                } else {
                    ""
                };
                let sql = format!(
                    "INSERT INTO directory_integrations (id, organisation_id, kind, token_hash, token_created_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (organisation_id, kind) DO UPDATE \
                     SET token_hash = excluded.token_hash, token_created_at = excluded.token_created_at{guard} \
                     RETURNING id"
                );
                let id: Option<String> = stmt(sql)
                    .bind(&change.new_integration_id)
                    .bind(&change.organisation_id)
                    .bind(change.kind)
                    .bind(&change.token_hash)
                    .bind(change.at)
                    .fetch_optional_scalar(tx)
                    .await?;
                let Some(id) = id else {
                    return Ok(None);
                };
                record_audit(tx, &change.organisation_id, &change.audit, Some(&id), change.at)
                    .await?;
                Ok(Some(id))
            })
        })
        .await
    }

    /// The integration whose token hashes to `token_hash`.
    pub async fn token_owner(&self, token_hash: &str) -> Result<Option<TokenOwner>> {
        let token_hash = token_hash.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let row = stmt(format!(
                    "SELECT id, organisation_id, {ERASES}, kind FROM directory_integrations WHERE token_hash = $1"
                ))
                .bind(&token_hash)
                .fetch_optional(tx)
                .await?;
                row.map(|mut r| {
                    Ok(TokenOwner {
                        integration_id: r.take(0),
                        organisation_id: r.take(1),
                        on_delete: delete_mode(r.take(2)),
                        kind: r.take::<String>(3).parse()?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    /// Checks the current request's credential (see `deadline::present`) and nothing else:
    /// `InvalidCredentials` when its token is no longer valid.
    pub async fn confirm_credential(&self) -> Result<()> {
        self.read(|_| Box::pin(async { Ok(()) })).await
    }

    /// Sets what the console keeps of what an existing integration deletes and records who changed it, in one
    /// transaction. False when the organisation has no such integration yet.
    pub async fn set_delete_mode(
        &self,
        organisation_id: &str,
        kind: &'static str,
        mode: &'static str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<bool> {
        let (organisation_id, audit) = (organisation_id.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let id: Option<String> = stmt(
                    "UPDATE directory_integrations SET on_delete = $1 WHERE organisation_id = $2 AND kind = $3 RETURNING id",
                )
                .bind(mode)
                .bind(&organisation_id)
                .bind(kind)
                .fetch_optional_scalar(tx)
                .await?;
                let Some(id) = id else {
                    return Ok(false);
                };
                record_audit(tx, &organisation_id, &audit, Some(&id), at).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Moves each integration's last sync forward to its time; never backwards.
    pub async fn advance_last_sync(&self, times: Vec<(String, i64)>) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                for (integration_id, at) in &times {
                    stmt(
                        "UPDATE directory_integrations SET last_sync_at = $1 \
                         WHERE id = $2 AND (last_sync_at IS NULL OR last_sync_at < $1)",
                    )
                    .bind(*at)
                    .bind(integration_id)
                    .execute(tx)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }
}
