//! Storage of admins' second factors (`admin_factors`) and recovery codes
//! (`admin_recovery_codes`). Secrets arrive sealed (see `crate::factors`): nothing here sees
//! one in the clear.

use super::audit::record_audit;
use super::db::{stmt, Row};
use super::Store;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};

/// A second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorRow {
    pub id: String,
    pub admin_id: String,
    pub kind: String,
    pub name: String,
    pub sealed_secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const FACTOR_COLUMNS: &str = "id, admin_id, kind, name, secret, \
    CAST(CASE WHEN confirmed THEN 1 ELSE 0 END AS BIGINT), last_step, created_at, last_used_at";

fn factor(mut r: Row) -> FactorRow {
    FactorRow {
        id: r.take(0),
        admin_id: r.take(1),
        kind: r.take(2),
        name: r.take(3),
        sealed_secret: r.take(4),
        confirmed: r.take::<i64>(5) != 0,
        last_step: r.take(6),
        created_at: r.take(7),
        last_used_at: r.take(8),
    }
}

impl Store {
    /// Adds an unconfirmed factor.
    pub(crate) async fn insert_factor(&self, row: FactorRow) -> Result<()> {
        self.write(move |tx| {
            Box::pin(async move {
                stmt(
                    "INSERT INTO admin_factors (id, admin_id, kind, name, secret, confirmed, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&row.id)
                .bind(&row.admin_id)
                .bind(&row.kind)
                .bind(&row.name)
                .bind(row.sealed_secret.as_slice())
                .bind(false)
                .bind(row.created_at)
                .execute(tx)
                .await
                .map(drop)
            })
        })
        .await
    }

    /// The admin's factors, oldest first (`confirmed_only`: those that count).
    pub(crate) async fn factors_of(
        &self,
        admin_id: &str,
        confirmed_only: bool,
    ) -> Result<Vec<FactorRow>> {
        let admin_id = admin_id.to_owned();
        let only = if confirmed_only { " AND confirmed" } else { "" };
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(format!(
                    "SELECT {FACTOR_COLUMNS} FROM admin_factors WHERE admin_id = $1{only} \
                     ORDER BY created_at, id"
                ))
                .bind(&admin_id)
                .fetch_all(tx)
                .await?;
                Ok(rows.into_iter().map(factor).collect())
            })
        })
        .await
    }

    /// Marks a factor confirmed at time step `step` (TOTP) and, when it is the admin's first
    /// confirmed factor, makes `codes` (digests) their recovery codes, recording `audit`, in
    /// one job: two factors confirmed at once cannot both count as the first. Whether the
    /// codes were stored. `NotFound` when the admin has no such unconfirmed factor.
    pub(crate) async fn confirm_factor(
        &self,
        admin: &crate::accounts::Admin,
        factor_id: &str,
        step: Option<i64>,
        codes: Vec<String>,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<bool> {
        let (admin, factor_id, audit) = (admin.clone(), factor_id.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let others: i64 = stmt(
                    "SELECT COUNT(*) FROM admin_factors WHERE admin_id = $1 AND confirmed",
                )
                .bind(&admin.id)
                .fetch_scalar(tx)
                .await?;
                let confirmed = stmt(
                    "UPDATE admin_factors SET confirmed = $1, last_step = $2, last_used_at = $3 \
                     WHERE id = $4 AND admin_id = $5 AND NOT confirmed",
                )
                .bind(true)
                .bind(step)
                .bind(at)
                .bind(&factor_id)
                .bind(&admin.id)
                .execute(tx)
                .await?;
                if confirmed == 0 {
                    return Err(Error::NotFound);
                }
                let first = others == 0;
                if first {
                    stmt("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
                        .bind(&admin.id)
                        .execute(tx)
                        .await?;
                    for hash in &codes {
                        stmt("INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES ($1, $2)")
                            .bind(&admin.id)
                            .bind(hash)
                            .execute(tx)
                            .await?;
                    }
                }
                record_audit(tx, &admin.organisation_id, &audit, None, at).await?;
                Ok(first)
            })
        })
        .await
    }

    /// Accepts TOTP time step `step` for a factor if it is later than the last one accepted
    /// (a code is good once); whether it was.
    pub(crate) async fn accept_step(&self, factor_id: &str, step: i64, at: i64) -> Result<bool> {
        let factor_id = factor_id.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                Ok(stmt(
                    "UPDATE admin_factors SET last_step = $1, last_used_at = $2 \
                     WHERE id = $3 AND confirmed AND (last_step IS NULL OR last_step < $1)",
                )
                .bind(step)
                .bind(at)
                .bind(&factor_id)
                .execute(tx)
                .await?
                    == 1)
            })
        })
        .await
    }

    /// Replaces a factor's sealed secret (a passkey's counter moved on) and notes its use.
    pub(crate) async fn update_factor_secret(
        &self,
        factor_id: &str,
        sealed: &[u8],
        at: i64,
    ) -> Result<()> {
        let (factor_id, sealed) = (factor_id.to_owned(), sealed.to_vec());
        self.write(move |tx| {
            Box::pin(async move {
                stmt("UPDATE admin_factors SET secret = $1, last_used_at = $2 WHERE id = $3")
                    .bind(sealed.as_slice())
                    .bind(at)
                    .bind(&factor_id)
                    .execute(tx)
                    .await
                    .map(drop)
            })
        })
        .await
    }

    /// Uses up one of the admin's recovery codes (by digest) and records `audit`; whether it
    /// was an unused code of theirs.
    pub(crate) async fn use_recovery_code(
        &self,
        admin: &crate::accounts::Admin,
        code_hash: &str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<bool> {
        let (admin, code_hash, audit) = (admin.clone(), code_hash.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let used = stmt(
                    "UPDATE admin_recovery_codes SET used_at = $1 \
                     WHERE admin_id = $2 AND code_hash = $3 AND used_at IS NULL",
                )
                .bind(at)
                .bind(&admin.id)
                .bind(&code_hash)
                .execute(tx)
                .await?;
                if used == 1 {
                    record_audit(tx, &admin.organisation_id, &audit, None, at).await?;
                }
                Ok(used == 1)
            })
        })
        .await
    }

    /// How many of the admin's recovery codes are left.
    pub(crate) async fn recovery_codes_left(&self, admin_id: &str) -> Result<i64> {
        let admin_id = admin_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                stmt("SELECT COUNT(*) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL")
                    .bind(&admin_id)
                    .fetch_scalar(tx)
                    .await
            })
        })
        .await
    }

    /// Deletes one of the admin's factors (`Some`), or all of them and their recovery codes
    /// (`None`), recording `audit` in `organisation_id`; how many factors went.
    pub(crate) async fn delete_factors(
        &self,
        organisation_id: &str,
        admin_id: &str,
        factor_id: Option<&str>,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<u64> {
        let (organisation_id, admin_id, factor_id, audit) = (
            organisation_id.to_owned(),
            admin_id.to_owned(),
            factor_id.map(str::to_owned),
            audit.clone(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                let deleted = match &factor_id {
                    Some(id) => {
                        stmt("DELETE FROM admin_factors WHERE admin_id = $1 AND id = $2")
                            .bind(&admin_id)
                            .bind(id)
                            .execute(tx)
                            .await?
                    }
                    None => {
                        stmt("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
                            .bind(&admin_id)
                            .execute(tx)
                            .await?;
                        stmt("DELETE FROM admin_factors WHERE admin_id = $1")
                            .bind(&admin_id)
                            .execute(tx)
                            .await?
                    }
                };
                // The last confirmed factor gone, its recovery codes go too.
                let left: i64 =
                    stmt("SELECT COUNT(*) FROM admin_factors WHERE admin_id = $1 AND confirmed")
                        .bind(&admin_id)
                        .fetch_scalar(tx)
                        .await?;
                if left == 0 {
                    stmt("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
                        .bind(&admin_id)
                        .execute(tx)
                        .await?;
                }
                if deleted > 0 {
                    record_audit(tx, &organisation_id, &audit, None, at).await?;
                }
                Ok(deleted)
            })
        })
        .await
    }

    /// How many confirmed factors exist in the whole database: with any, the server needs
    /// its SECRET_KEY to start.
    pub async fn count_confirmed_factors(&self) -> Result<i64> {
        self.read(move |tx| {
            Box::pin(async move {
                stmt("SELECT COUNT(*) FROM admin_factors WHERE confirmed")
                    .fetch_scalar(tx)
                    .await
            })
        })
        .await
    }

    /// Sets whether every admin of the organisation must use a second factor, recording
    /// `audit`.
    pub(crate) async fn set_factor_policy(
        &self,
        organisation_id: &str,
        required: bool,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<()> {
        let (organisation_id, audit) = (organisation_id.to_owned(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                stmt("UPDATE organisations SET require_second_factor = $1 WHERE id = $2")
                    .bind(required)
                    .bind(&organisation_id)
                    .execute(tx)
                    .await?;
                record_audit(tx, &organisation_id, &audit, None, at).await
            })
        })
        .await
    }
}
