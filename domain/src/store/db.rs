//! Statements and jobs, the same for both backends.
//!
//! A store operation is one *job*: a closure given a transaction ([`Tx`]) in which it runs
//! all its statements. On SQLite the job runs on one of the store's own threads (see
//! `sqlite.rs`), synchronously; on PostgreSQL it runs in the calling task on sqlx's
//! asynchronous driver (see `postgres.rs`). Jobs are written once, as async code: on
//! SQLite, whose statements never wait, the job's future completes the first time it is
//! polled.
//!
//! Statements number their parameters `$1`, `$2` ... on both backends; rows come back
//! owned, as [`Row`]s of [`Value`]s.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Column, Postgres, TypeInfo, ValueRef};

use super::lanes::Lane;
use super::postgres::PgTx;
use super::sqlite::SqliteConn;
use crate::deadline::Budget;
use crate::error::{DbError, Error, Result};

/// A value bound to a parameter, typed so that PostgreSQL knows what a NULL is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'q> {
    Text(Option<Cow<'q, str>>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Bytes(Option<Cow<'q, [u8]>>),
}

impl<'q> From<&'q str> for Param<'q> {
    fn from(v: &'q str) -> Self {
        Param::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'q> From<&'q String> for Param<'q> {
    fn from(v: &'q String) -> Self {
        Param::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'q> From<Option<&'q str>> for Param<'q> {
    fn from(v: Option<&'q str>) -> Self {
        Param::Text(v.map(Cow::Borrowed))
    }
}

impl<'q> From<&'q Option<String>> for Param<'q> {
    fn from(v: &'q Option<String>) -> Self {
        Param::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Param::Text(Some(Cow::Owned(v)))
    }
}

impl From<Option<String>> for Param<'_> {
    fn from(v: Option<String>) -> Self {
        Param::Text(v.map(Cow::Owned))
    }
}

impl<'q> From<&'q [u8]> for Param<'q> {
    fn from(v: &'q [u8]) -> Self {
        Param::Bytes(Some(Cow::Borrowed(v)))
    }
}

impl<'q> From<Option<&'q [u8]>> for Param<'q> {
    fn from(v: Option<&'q [u8]>) -> Self {
        Param::Bytes(v.map(Cow::Borrowed))
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(Some(v))
    }
}

/// A column's value as read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Value {
    #[default]
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// What a column can be read as.
pub(crate) trait FromValue: Sized {
    /// The value as `Self`, or back unchanged when it is of another type.
    fn from_value(value: Value) -> Result<Self, Value>;
}

impl FromValue for i64 {
    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Int(v) => Ok(v),
            Value::Bool(v) => Ok(i64::from(v)),
            v => Err(v),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Int(v) => Ok(v != 0),
            Value::Bool(v) => Ok(v),
            v => Err(v),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Text(v) => Ok(v),
            v => Err(v),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Bytes(v) => Ok(v),
            Value::Text(v) => Ok(v.into_bytes()),
            v => Err(v),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(Vec<Value>);

impl Row {
    /// Moves column `i` out of the row.
    ///
    /// # Panics
    /// When the column does not exist or holds another type: the statement and the code
    /// reading it disagree, which is a bug, as with sqlx's `Row::get`.
    pub(crate) fn take<T: FromValue>(&mut self, i: usize) -> T {
        let Some(value) = self.0.get_mut(i).map(std::mem::take) else {
            panic!("the row has no column {i}");
        };
        T::from_value(value).unwrap_or_else(|v| {
            panic!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            )
        })
    }
}

/// A statement that takes this long is logged as a warning (sqlx's default too).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// A statement and its parameters.
pub struct Query<'q> {
    sql: Cow<'q, str>,
    params: Vec<Param<'q>>,
}

pub(crate) fn stmt<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query {
        sql: sql.into(),
        params: Vec::new(),
    }
}

/// The transaction a job runs its statements in. Rolled back unless the job succeeds.
pub(crate) enum Tx {
    Sqlite(SqliteConn),
    Postgres(PgTx),
}

impl<'q> Query<'q> {
    pub(crate) fn bind(mut self, value: impl Into<Param<'q>>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) async fn execute(self, tx: &mut Tx) -> Result<u64> {
        match tx {
            Tx::Sqlite(conn) => self.sqlite_execute(conn),
            Tx::Postgres(tx) => Ok(self.pg().execute(&mut **tx).await?.rows_affected()),
        }
    }

    pub(crate) async fn fetch_all(self, tx: &mut Tx) -> Result<Vec<Row>> {
        match tx {
            Tx::Sqlite(conn) => self.sqlite_rows(conn, usize::MAX),
            Tx::Postgres(tx) => pg_rows(self.pg().fetch_all(&mut **tx).await?),
        }
    }

    pub(crate) async fn fetch_optional(self, tx: &mut Tx) -> Result<Option<Row>> {
        match tx {
            Tx::Sqlite(conn) => Ok(self.sqlite_rows(conn, 1)?.pop()),
            Tx::Postgres(tx) => {
                pg_rows(self.pg().fetch_optional(&mut **tx).await?).map(|mut r| r.pop())
            }
        }
    }

    /// The first row, which the statement always returns (a count, say).
    pub(crate) async fn fetch_one(self, tx: &mut Tx) -> Result<Row> {
        self.fetch_optional(tx)
            .await?
            .ok_or(Error::Database(DbError::Sqlx(sqlx::Error::RowNotFound)))
    }

    /// The first column of the first row.
    pub(crate) async fn fetch_scalar<T: FromValue>(self, tx: &mut Tx) -> Result<T> {
        Ok(self.fetch_one(tx).await?.take(0))
    }

    /// The first column of the first row, if there is a row.
    pub(crate) async fn fetch_optional_scalar<T: FromValue>(
        self,
        tx: &mut Tx,
    ) -> Result<Option<T>> {
        Ok(self.fetch_optional(tx).await?.map(|mut r| r.take(0)))
    }

    /// The first column of every row.
    pub(crate) async fn fetch_all_scalar<T: FromValue>(self, tx: &mut Tx) -> Result<Vec<T>> {
        Ok(self
            .fetch_all(tx)
            .await?
            .into_iter()
            .map(|mut r| r.take(0))
            .collect())
    }

    fn pg(&self) -> sqlx::query::Query<'_, Postgres, PgArguments> {
        let mut q = sqlx::query(&self.sql);
        for p in &self.params {
            q = match p {
                Param::Text(v) => q.bind(v.as_deref()),
                Param::Int(v) => q.bind(*v),
                Param::Bool(v) => q.bind(*v),
                Param::Bytes(v) => q.bind(v.as_deref()),
            };
        }
        q
    }

    /// The statement, prepared (or found in the connection's cache) with its parameters
    /// bound. A parameter is bound by the number in its name, wherever it first appears.
    fn sqlite_prepare<'c>(
        &self,
        conn: &'c rusqlite::Connection,
    ) -> Result<rusqlite::CachedStatement<'c>> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        for index in 1..=stmt.parameter_count() {
            let number = match stmt.parameter_name(index) {
                Some(name) => name[1..]
                    .parse::<usize>()
                    .map_err(|_| rusqlite::Error::InvalidParameterName(name.to_owned()))?,
                None => index,
            };
            let param = self.params.get(number.wrapping_sub(1)).ok_or(
                rusqlite::Error::InvalidParameterCount(number, self.params.len()),
            )?;
            match param {
                Param::Text(v) => stmt.raw_bind_parameter(index, v.as_deref())?,
                Param::Int(v) => stmt.raw_bind_parameter(index, v)?,
                Param::Bool(v) => stmt.raw_bind_parameter(index, v)?,
                Param::Bytes(v) => stmt.raw_bind_parameter(index, v.as_deref())?,
            }
        }
        Ok(stmt)
    }

    /// Runs `run` on the prepared statement, unless the job's deadline has passed, and logs
    /// the statement (its text, never its parameters) as sqlx does: at debug level, or as a
    /// warning when it was slow. While a read-only statement runs, the connection's
    /// progress handler may interrupt it at the deadline; a statement that writes always
    /// runs to its end (interrupting one would make SQLite roll back the whole grouped
    /// transaction, other jobs' writes included), and the next statement of its job then
    /// finds the deadline passed.
    fn sqlite_run<T>(
        &self,
        conn: &SqliteConn,
        run: impl FnOnce(&mut rusqlite::CachedStatement<'_>) -> Result<T>,
    ) -> Result<T> {
        if conn.deadline_passed() {
            return Err(Error::Timeout);
        }
        let started = Instant::now();
        let result = self.sqlite_prepare(conn).and_then(|mut stmt| {
            let _interruptible = conn.interruptible(stmt.readonly());
            run(&mut stmt)
        });
        let elapsed = started.elapsed();
        if elapsed >= SLOW_STATEMENT {
            tracing::warn!(sql = %self.sql, ?elapsed, ok = result.is_ok(), "slow statement");
        } else {
            tracing::debug!(sql = %self.sql, ?elapsed, ok = result.is_ok(), "statement");
        }
        result
    }

    fn sqlite_execute(&self, conn: &SqliteConn) -> Result<u64> {
        self.sqlite_run(conn, |stmt| {
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(conn.changes())
        })
    }

    fn sqlite_rows(&self, conn: &SqliteConn, at_most: usize) -> Result<Vec<Row>> {
        self.sqlite_run(conn, |stmt| {
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while out.len() < at_most {
                let Some(row) = rows.next()? else { break };
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    use rusqlite::types::ValueRef as V;
                    values.push(match row.get_ref(i)? {
                        V::Null => Value::Null,
                        V::Integer(v) => Value::Int(v),
                        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        V::Blob(b) => Value::Bytes(b.to_vec()),
                        V::Real(_) => {
                            return Err(rusqlite::Error::InvalidColumnType(
                                i,
                                self.sql.to_string(),
                                rusqlite::types::Type::Real,
                            )
                            .into())
                        }
                    });
                }
                out.push(Row(values));
            }
            Ok(out)
        })
    }
}

fn pg_rows(rows: impl IntoIterator<Item = PgRow>) -> Result<Vec<Row>> {
    use sqlx::Row as _;
    rows.into_iter()
        .map(|row| {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i)?;
                if raw.is_null() {
                    values.push(Value::Null);
                    continue;
                }
                values.push(match column.type_info().name() {
                    "INT2" => Value::Int(i64::from(row.try_get::<i16, _>(i)?)),
                    "INT4" => Value::Int(i64::from(row.try_get::<i32, _>(i)?)),
                    "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
                    "BOOL" => Value::Bool(row.try_get::<bool, _>(i)?),
                    "BYTEA" => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?),
                    _ => Value::Text(row.try_get::<String, _>(i)?),
                });
            }
            Ok(Row(values))
        })
        .collect()
}

/// A job's future: it borrows the job's transaction.
pub(crate) type JobFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

/// Where and until when a job may run: its deadline, the lane it queues in, and the
/// request it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct JobContext {
    pub(crate) deadline: Instant,
    pub(crate) lane: Lane,
    pub(crate) budget: Option<Arc<Budget>>,
}

/// Checks, in the job's transaction, that the request's token is still its integration's
/// (see `deadline::present`); `InvalidCredentials` when it is not.
pub(crate) async fn check_credential(tx: &mut Tx, budget: &Budget) -> Result<()> {
    let Some(credential) = budget.credential() else {
        return Ok(());
    };
    let valid: Option<i64> =
        stmt("SELECT 1 FROM directory_integrations WHERE id = $1 AND token_hash = $2")
            .bind(credential.integration_id.as_str())
            .bind(credential.token_hash.as_str())
            .fetch_optional_scalar(tx)
            .await?;
    if valid.is_none() {
        return Err(Error::InvalidCredentials);
    }
    budget.note_credential_checked();
    Ok(())
}

impl JobContext {
    /// For a write: notes that it starts (see [`Budget::start_write`]); false when its
    /// deadline has passed and it must not.
    pub(crate) fn start_write(&self) -> bool {
        match &self.budget {
            Some(budget) => budget.start_write(),
            None => Instant::now() < self.deadline,
        }
    }

    /// What to answer a job that could not have its turn in time: 408 when its deadline
    /// passed meanwhile, otherwise 503 (the store was saturated).
    pub(crate) fn waited_too_long(&self) -> Error {
        if Instant::now() >= self.deadline {
            Error::Timeout
        } else {
            Error::Busy(RETRY_AFTER)
        }
    }
}

/// Measures a job that ran and logs it (at trace level): its lane, how long it waited for
/// its turn and how long it ran.
pub(crate) fn log_job(kind: &'static str, lane: &Lane, waited: Duration, started: Instant) {
    let ran = started.elapsed();
    crate::metrics::job(kind, waited, ran);
    tracing::trace!(
        kind,
        organisation = lane.as_deref().unwrap_or("-"),
        ?waited,
        ?ran,
        "store job"
    );
}

/// What a client refused for saturation is told to wait before trying again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long jobs may wait for their turn, and how many each lane may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub lanes: super::LaneLimits,
    /// The longest a job waits for its turn before it is refused with 503.
    pub queue_wait: Duration,
}
