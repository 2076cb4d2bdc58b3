//! Admin sessions (tower-sessions records) in the store's own database, on either backend,
//! so that every statement of the console goes through the store: its threads, deadlines
//! and lanes. The record is kept as JSON; a record that does not decode (one written by an
//! earlier version) reads as no session, so its admin logs in again.
//!
//! Each row also names the admin it is logged in as (`admin_id`, from the record) and a
//! *handle*: a digest of the session id that names the session to its admin (who lists and
//! ends their sessions by it) without being the id, a bearer secret. An ended session is
//! deleted; saving a record whose row is gone does not bring it back, so a request still
//! running in an ended session cannot revive it.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::db::{stmt, Tx};
use super::{Backend, Store};
use crate::error::Result;

/// The record key holding the logged-in admin's id.
pub const ADMIN_ID: &str = "admin_id";

/// The handle naming the session `id` to its admin: 16 hex digits of its SHA-256.
pub fn handle(id: &Id) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The admin a record is logged in as.
fn admin_of(record: &Record) -> Option<String> {
    record
        .data
        .get(ADMIN_ID)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Ends the sessions of `admin_id`, but the one named `keep`; how many.
pub(super) async fn end_sessions(
    tx: &mut Tx,
    backend: Backend,
    admin_id: &str,
    keep: Option<&str>,
) -> Result<u64> {
    let (table, _) = layout(backend);
    stmt(format!(
        "DELETE FROM {table} WHERE admin_id = $1 AND handle <> $2"
    ))
    .bind(admin_id)
    .bind(keep.unwrap_or_default())
    .execute(tx)
    .await
}

impl Store {
    /// The live sessions of an admin: their handles and records (undecoded JSON), oldest
    /// first.
    pub async fn sessions_of(&self, admin_id: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let (table, at) = layout(self.backend());
        let sql = format!(
            "SELECT handle, data FROM {table} WHERE admin_id = $1 AND expiry_date > {} ORDER BY handle",
            at(2)
        );
        let (admin_id, now) = (
            admin_id.to_owned(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        );
        self.read(move |tx| {
            Box::pin(async move {
                let rows = stmt(&sql).bind(&admin_id).bind(now).fetch_all(tx).await?;
                Ok(rows
                    .into_iter()
                    .map(|mut r| (r.take(0), r.take(1)))
                    .collect())
            })
        })
        .await
    }

    /// Ends one of an admin's sessions (by handle), or all of them but `keep`, and records
    /// `audit` in the admin's organisation, in one job; how many ended.
    pub async fn end_sessions(
        &self,
        admin: &crate::accounts::Admin,
        only: Option<&str>,
        keep: Option<&str>,
        audit: &crate::audit::AuditEntry,
        at: i64,
    ) -> Result<u64> {
        let backend = self.backend();
        let (admin, only, keep, audit) = (
            admin.clone(),
            only.map(str::to_owned),
            keep.map(str::to_owned),
            audit.clone(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                let ended = match &only {
                    Some(handle) => {
                        let (table, _) = layout(backend);
                        stmt(format!(
                            "DELETE FROM {table} WHERE admin_id = $1 AND handle = $2"
                        ))
                        .bind(&admin.id)
                        .bind(handle)
                        .execute(tx)
                        .await?
                    }
                    None => end_sessions(tx, backend, &admin.id, keep.as_deref()).await?,
                };
                if ended > 0 {
                    super::audit::record_audit(tx, &admin.organisation_id, &audit, None, at)
                        .await?;
                }
                Ok(ended)
            })
        })
        .await
    }
}

/// The session store behind the console's `SessionManagerLayer`.
#[derive(Debug, Clone)]
pub struct AdminSessions(Store);

impl AdminSessions {
    pub fn new(store: Store) -> Self {
        Self(store)
    }
}

/// The table, and how an expiry time (seconds since the epoch, bound at `$n`) is written:
/// SQLite keeps the number, PostgreSQL a `timestamptz` (the table is tower-sessions'
/// PostgreSQL layout).
fn layout(backend: Backend) -> (&'static str, fn(usize) -> String) {
    match backend {
        Backend::Sqlite => ("tower_sessions", |n| format!("${n}")),
        Backend::Postgres => ("tower_sessions.session", |n| format!("to_timestamp(${n})")),
    }
}

fn backend_error(e: crate::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for AdminSessions {
    /// Inserts a new record, drawing a new id while the drawn one is taken.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (table, at) = layout(self.0.backend());
        let sql = format!(
            "INSERT INTO {table} (id, data, expiry_date, admin_id, handle) VALUES ($1, $2, {}, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
            at(3)
        );
        let mut draft = record.clone();
        let created = self
            .0
            .write(move |tx| {
                Box::pin(async move {
                    loop {
                        let data = encode(&draft).map_err(|e| {
                            crate::Error::internal("a session could not be encoded", e)
                        })?;
                        let inserted = stmt(&sql)
                            .bind(draft.id.to_string().as_str())
                            .bind(data.as_slice())
                            .bind(draft.expiry_date.unix_timestamp())
                            .bind(admin_of(&draft))
                            .bind(handle(&draft.id))
                            .execute(tx)
                            .await?;
                        if inserted == 1 {
                            return Ok(draft);
                        }
                        draft.id = Id::default();
                    }
                })
            })
            .await
            .map_err(backend_error)?;
        *record = created;
        Ok(())
    }

    /// Updates an existing record; one whose row is gone (ended, or expired and deleted)
    /// stays gone.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (table, at) = layout(self.0.backend());
        let sql = format!(
            "UPDATE {table} SET data = $2, expiry_date = {}, admin_id = $4 WHERE id = $1",
            at(3)
        );
        let (id, data, expiry, admin) = (
            record.id.to_string(),
            encode(record)?,
            record.expiry_date.unix_timestamp(),
            admin_of(record),
        );
        self.0
            .write(move |tx| {
                Box::pin(async move {
                    stmt(&sql)
                        .bind(id.as_str())
                        .bind(data.as_slice())
                        .bind(expiry)
                        .bind(admin)
                        .execute(tx)
                        .await
                        .map(drop)
                })
            })
            .await
            .map_err(backend_error)
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let (table, at) = layout(self.0.backend());
        let sql = format!(
            "SELECT data FROM {table} WHERE id = $1 AND expiry_date > {}",
            at(2)
        );
        let (id, now) = (
            session_id.to_string(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        );
        let data: Option<Vec<u8>> = self
            .0
            .read(move |tx| {
                Box::pin(async move {
                    stmt(&sql)
                        .bind(id.as_str())
                        .bind(now)
                        .fetch_optional_scalar(tx)
                        .await
                })
            })
            .await
            .map_err(backend_error)?;
        Ok(data.and_then(|data| match serde_json::from_slice(&data) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::debug!(error = %e, "a stored session does not decode; treated as none");
                None
            }
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let (table, _) = layout(self.0.backend());
        let sql = format!("DELETE FROM {table} WHERE id = $1");
        let id = session_id.to_string();
        self.0
            .write(move |tx| {
                Box::pin(async move { stmt(&sql).bind(id.as_str()).execute(tx).await.map(drop) })
            })
            .await
            .map_err(backend_error)
    }
}

#[async_trait]
impl ExpiredDeletion for AdminSessions {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let (table, at) = layout(self.0.backend());
        let sql = format!("DELETE FROM {table} WHERE expiry_date < {}", at(1));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.0
            .write(move |tx| {
                Box::pin(async move { stmt(&sql).bind(now).execute(tx).await.map(drop) })
            })
            .await
            .map_err(backend_error)
    }
}
