//! Admin sessions (tower-sessions records) in the store's own database, on either backend,
//! so that every statement of the console goes through the store: its threads, deadlines
//! and lanes. The record is kept as JSON; a record that does not decode (one written by an
//! earlier version) reads as no session, so its admin logs in again.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::db::stmt;
use super::{Backend, Store};

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
            "INSERT INTO {table} (id, data, expiry_date) VALUES ($1, $2, {}) ON CONFLICT (id) DO NOTHING",
            at(3)
        );
        let mut draft = record.clone();
        let created = self
            .0
            .write(move |tx| {
                Box::pin(async move {
                    loop {
                        let data =
                            encode(&draft).map_err(|e| crate::Error::Invalid(e.to_string()))?;
                        let inserted = stmt(&sql)
                            .bind(draft.id.to_string().as_str())
                            .bind(data.as_slice())
                            .bind(draft.expiry_date.unix_timestamp())
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

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (table, at) = layout(self.0.backend());
        let sql = format!(
            "INSERT INTO {table} (id, data, expiry_date) VALUES ($1, $2, {}) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
            at(3)
        );
        let (id, data, expiry) = (
            record.id.to_string(),
            encode(record)?,
            record.expiry_date.unix_timestamp(),
        );
        self.0
            .write(move |tx| {
                Box::pin(async move {
                    stmt(&sql)
                        .bind(id.as_str())
                        .bind(data.as_slice())
                        .bind(expiry)
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
