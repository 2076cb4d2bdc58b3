//! Storage of organisations and their admins.

use super::audit::record_audit;
use super::db::{stmt, Row};
use super::sessions::end_sessions;
use super::Store;
use crate::accounts::{AdminRow, Organisation};
use crate::audit::AuditEntry;
use crate::error::{Error, Result};

fn organisation(mut r: Row) -> Organisation {
    Organisation {
        id: r.take(0),
        name: r.take(1),
    }
}

fn admin(mut r: Row) -> AdminRow {
    AdminRow {
        id: r.take(0),
        organisation_id: r.take(1),
        email: r.take(2),
        password_hash: r.take(3),
        disabled_at: r.take(4),
        second_factor: r.take::<i64>(5) != 0,
        factor_required: r.take::<i64>(6) != 0,
    }
}

/// An admin's columns, whether they have a confirmed second factor and whether their
/// organisation requires one, read from [`ADMIN_FROM`].
const ADMIN_COLUMNS: &str = "a.id, a.organisation_id, a.email, a.password_hash, a.disabled_at, \
    CAST(CASE WHEN EXISTS (SELECT 1 FROM admin_factors f WHERE f.admin_id = a.id AND f.confirmed) \
    THEN 1 ELSE 0 END AS BIGINT), \
    CAST(CASE WHEN o.require_second_factor THEN 1 ELSE 0 END AS BIGINT)";
const ADMIN_FROM: &str = "admins a JOIN organisations o ON o.id = a.organisation_id";

/// What an admin does to another admin of the same organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Disable,
    Enable,
    Remove,
}

impl Store {
    /// The organisation called `name`, created (with id `id`) if it does not exist yet.
    pub async fn find_or_create_organisation(
        &self,
        id: &str,
        name: &str,
        at: i64,
    ) -> Result<Organisation> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.write(move |tx| {
            Box::pin(async move {
                stmt("INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(&id)
                    .bind(&name)
                    .bind(at)
                    .execute(tx)
                    .await?;
                let row = stmt("SELECT id, name FROM organisations WHERE name = $1")
                    .bind(&name)
                    .fetch_one(tx)
                    .await?;
                Ok(organisation(row))
            })
        })
        .await
    }

    pub async fn organisation_by_name(&self, name: &str) -> Result<Option<Organisation>> {
        self.organisation_where("name", name).await
    }

    pub async fn organisation(&self, id: &str) -> Result<Option<Organisation>> {
        self.organisation_where("id", id).await
    }

    async fn organisation_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Organisation>> {
        let value = value.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT id, name FROM organisations WHERE {column} = $1");
                let row = stmt(sql).bind(&value).fetch_optional(tx).await?;
                Ok(row.map(organisation))
            })
        })
        .await
    }

    /// Inserts an admin and records `audit`, in one transaction; `Conflict` when the email
    /// is taken.
    pub async fn insert_admin(&self, admin: &AdminRow, audit: &AuditEntry, at: i64) -> Result<()> {
        let (admin, audit) = (admin.clone(), audit.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let inserted = stmt(
                    "INSERT INTO admins (id, organisation_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&admin.id)
                .bind(&admin.organisation_id)
                .bind(&admin.email)
                .bind(&admin.password_hash)
                .bind(at)
                .execute(tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if e.is_unique_violation() => {
                        return Err(Error::Conflict {
                            attribute: "email",
                            value: admin.email.clone(),
                        })
                    }
                    Err(e) => return Err(e),
                }
                record_audit(tx, &admin.organisation_id, &audit, None, at).await
            })
        })
        .await
    }

    pub async fn admin_by_email(&self, email: &str) -> Result<Option<AdminRow>> {
        self.admin_where("email", email).await
    }

    pub async fn admin_by_id(&self, id: &str) -> Result<Option<AdminRow>> {
        self.admin_where("id", id).await
    }

    async fn admin_where(&self, column: &'static str, value: &str) -> Result<Option<AdminRow>> {
        let value = value.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {ADMIN_COLUMNS} FROM {ADMIN_FROM} WHERE a.{column} = $1");
                let row = stmt(sql).bind(&value).fetch_optional(tx).await?;
                Ok(row.map(admin))
            })
        })
        .await
    }

    /// The organisation's admins, by email (password hashes included: callers drop them).
    pub async fn admins_of(&self, organisation_id: &str) -> Result<Vec<AdminRow>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ADMIN_COLUMNS} FROM {ADMIN_FROM} WHERE a.organisation_id = $1 ORDER BY a.email"
                );
                let rows = stmt(sql).bind(&organisation_id).fetch_all(tx).await?;
                Ok(rows.into_iter().map(admin).collect())
            })
        })
        .await
    }

    /// Changes another admin of `by`'s organisation, records `audit` and ends the target's
    /// sessions (but for `Enable`), in one job. `NotFound` when the target is not an admin
    /// of that organisation; `Invalid` when `by` targets themselves, or when the change
    /// would leave the organisation without an active admin (`by` no longer being one, say,
    /// after a concurrent change). The organisation's admins are locked meanwhile, so two
    /// admins disabling each other at once cannot both succeed.
    pub async fn change_admin(
        &self,
        by: &crate::accounts::Admin,
        target_id: &str,
        change: AdminChange,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<()> {
        let (by, target_id, audit) = (by.clone(), target_id.to_owned(), audit.clone());
        let backend = self.backend();
        let lock = backend.for_update();
        self.write(move |tx| {
            Box::pin(async move {
                if by.id == target_id {
                    return Err(Error::invalid(
                        "you cannot disable or remove yourself; ask another admin",
                    ));
                }
                let admins = stmt(format!(
                    "SELECT id, disabled_at FROM admins WHERE organisation_id = $1 ORDER BY id{lock}"
                ))
                .bind(&by.organisation_id)
                .fetch_all(tx)
                .await?
                .into_iter()
                .map(|mut r| (r.take::<String>(0), r.take::<Option<i64>>(1).is_none()))
                .collect::<Vec<_>>();
                if !admins.iter().any(|(id, _)| *id == target_id) {
                    return Err(Error::NotFound);
                }
                let active_after = admins
                    .iter()
                    .filter(|(id, active)| {
                        *active && (*id != target_id || change == AdminChange::Enable)
                    })
                    .count();
                let by_active = admins.iter().any(|(id, active)| *id == by.id && *active);
                if !by_active || active_after == 0 {
                    return Err(Error::invalid(
                        "the organisation must keep at least one active admin",
                    ));
                }
                let sql = match change {
                    AdminChange::Disable => "UPDATE admins SET disabled_at = $3 WHERE organisation_id = $1 AND id = $2",
                    AdminChange::Enable => "UPDATE admins SET disabled_at = NULL WHERE organisation_id = $1 AND id = $2 AND $3 > 0",
                    AdminChange::Remove => "DELETE FROM admins WHERE organisation_id = $1 AND id = $2 AND $3 > 0",
                };
                stmt(sql)
                    .bind(&by.organisation_id)
                    .bind(&target_id)
                    .bind(at)
                    .execute(tx)
                    .await?;
                if change != AdminChange::Enable {
                    end_sessions(tx, backend, &target_id, None).await?;
                }
                record_audit(tx, &by.organisation_id, &audit, None, at).await
            })
        })
        .await
    }

    /// Sets an admin's password hash, ends their other sessions (all but `keep`) and records
    /// `audit`, in one job.
    pub async fn set_password(
        &self,
        admin: &crate::accounts::Admin,
        hash: &str,
        keep: &str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<()> {
        let backend = self.backend();
        let (admin, hash, keep, audit) = (
            admin.clone(),
            hash.to_owned(),
            keep.to_owned(),
            audit.clone(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                let changed = stmt("UPDATE admins SET password_hash = $1 WHERE id = $2")
                    .bind(&hash)
                    .bind(&admin.id)
                    .execute(tx)
                    .await?;
                if changed == 0 {
                    return Err(Error::NotFound);
                }
                end_sessions(tx, backend, &admin.id, Some(&keep)).await?;
                record_audit(tx, &admin.organisation_id, &audit, None, at).await
            })
        })
        .await
    }
}
