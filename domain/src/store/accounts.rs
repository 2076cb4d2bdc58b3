//! Storage of organisations and their admins.

use super::audit::record_audit;
use super::db::{stmt, Row};
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
    }
}

const ADMIN_COLUMNS: &str = "id, organisation_id, email, password_hash";

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
                        return Err(Error::Conflict(format!(
                            "an admin with the email {} already exists",
                            admin.email
                        )))
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
                let sql = format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE {column} = $1");
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
                    "SELECT {ADMIN_COLUMNS} FROM admins WHERE organisation_id = $1 ORDER BY email"
                );
                let rows = stmt(sql).bind(&organisation_id).fetch_all(tx).await?;
                Ok(rows.into_iter().map(admin).collect())
            })
        })
        .await
    }
}
