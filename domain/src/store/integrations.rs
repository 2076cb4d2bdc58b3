//! Storage of directory integrations: their tokens (as digests), delete setting and last
//! sync.

use super::audit::record_audit;
use super::db::stmt;
use super::Store;
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::integrations::{
    DeleteMode, IntegrationKind, IntegrationRow, RetiredToken, RetiredTokenUse, StaleTokenUse,
    TokenChange, TokenOwner,
};

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
    /// this commits, and its digest is kept as retired (see `retired_token`). With
    /// `only_if_absent`, an existing token is left alone and `None` is returned. Returns the
    /// integration id.
    pub async fn set_token(&self, change: TokenChange) -> Result<Option<String>> {
        self.write(move |tx| {
            Box::pin(async move {
                let guard = if change.only_if_absent {
                    " WHERE directory_integrations.token_hash IS NULL"
                } else {
                    stmt(
                        "INSERT INTO retired_tokens (token_hash, integration_id, retired_at) \
                         SELECT token_hash, id, $3 FROM directory_integrations \
                         WHERE organisation_id = $1 AND kind = $2 AND token_hash IS NOT NULL \
                         ON CONFLICT (token_hash) DO NOTHING",
                    )
                    .bind(&change.organisation_id)
                    .bind(change.kind)
                    .bind(change.at)
                    .execute(tx)
                    .await?;
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

    /// The integration a retired token (one replaced by a reset, and kept) belonged to.
    pub async fn retired_token(&self, token_hash: &str) -> Result<Option<RetiredToken>> {
        let token_hash = token_hash.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let row = stmt(
                    "SELECT r.integration_id, i.organisation_id, i.kind FROM retired_tokens r \
                     JOIN directory_integrations i ON i.id = r.integration_id WHERE r.token_hash = $1",
                )
                .bind(&token_hash)
                .fetch_optional(tx)
                .await?;
                row.map(|mut r| {
                    Ok(RetiredToken {
                        token_hash: token_hash.clone(),
                        integration_id: r.take(0),
                        organisation_id: r.take(1),
                        kind: r.take::<String>(2).parse::<IntegrationKind>()?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    /// Adds requests that presented retired tokens to their counts, each token's newest one
    /// replacing what was known of its last use only if it is newer (another instance may
    /// have written a newer one).
    pub async fn record_retired_token_uses(&self, uses: Vec<RetiredTokenUse>) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                for used in &uses {
                    // Every SET expression reads the row as it was before the update.
                    stmt(
                        "UPDATE retired_tokens SET uses = uses + $1, \
                         last_address = CASE WHEN last_used_at IS NULL OR last_used_at <= $2 THEN $3 ELSE last_address END, \
                         last_user_agent = CASE WHEN last_used_at IS NULL OR last_used_at <= $2 THEN $4 ELSE last_user_agent END, \
                         last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END \
                         WHERE token_hash = $5",
                    )
                    .bind(used.count)
                    .bind(used.last_at)
                    .bind(&used.address)
                    .bind(&used.user_agent)
                    .bind(&used.token_hash)
                    .execute(tx)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// How much the integration's retired tokens are still presented: all their requests,
    /// and the newest one. `None` when none was presented after its retirement.
    pub async fn stale_token_use(&self, integration_id: &str) -> Result<Option<StaleTokenUse>> {
        let integration_id = integration_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let row = stmt(
                    "SELECT (SELECT CAST(SUM(uses) AS BIGINT) FROM retired_tokens WHERE integration_id = $1), \
                     last_used_at, last_address, last_user_agent FROM retired_tokens \
                     WHERE integration_id = $1 AND last_used_at IS NOT NULL ORDER BY last_used_at DESC LIMIT 1",
                )
                .bind(&integration_id)
                .fetch_optional(tx)
                .await?;
                Ok(row.map(|mut r| StaleTokenUse {
                    requests: r.take(0),
                    last_at: r.take(1),
                    last_address: r.take(2),
                    last_user_agent: r.take(3),
                }))
            })
        })
        .await
    }

    /// Forgets tokens retired before `cutoff` (ms since the epoch): a request presenting one
    /// is then refused as an unknown token.
    pub async fn prune_retired_tokens(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM retired_tokens WHERE retired_at < $1")
                    .bind(cutoff)
                    .execute(tx)
                    .await
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
