//! The thin layer under [`Store`](super::Store) that runs a statement on either backend.
//!
//! SQLite runs through rusqlite, synchronously, in the task that asks: a statement takes
//! microseconds, and handing each one to a connection's own thread and back (what sqlx's
//! SQLite driver does) cost two thread switches per statement, which was most of the SCIM
//! API's CPU time. PostgreSQL, where the statement crosses a network anyway, runs through
//! sqlx's asynchronous driver. Statements number their parameters `$1`, `$2` ... on both.
//!
//! Rows come back owned, as [`Row`]s of [`Value`]s, the same for both backends.
//!
//! On SQLite a process's writes are grouped into shared transactions (see [`Db::begin`]),
//! and a thread of the pool's own checkpoints the write-ahead log (see [`checkpoint`]).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Column, PgPool, Postgres, TypeInfo, ValueRef};

use crate::error::{Error, Result};

/// A value bound to a parameter, typed so that PostgreSQL knows what a NULL is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'q> {
    Text(Option<Cow<'q, str>>),
    Int(Option<i64>),
    Bool(Option<bool>),
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

impl From<Option<String>> for Param<'_> {
    fn from(v: Option<String>) -> Self {
        Param::Text(v.map(Cow::Owned))
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
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
pub(crate) struct Row(Vec<Value>);

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
pub(crate) struct Query<'q> {
    sql: Cow<'q, str>,
    params: Vec<Param<'q>>,
}

pub(crate) fn stmt<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query {
        sql: sql.into(),
        params: Vec::new(),
    }
}

/// Where a statement runs: on a connection of the pool, or in a transaction.
pub(crate) enum On<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for On<'a> {
    fn from(db: &'a Db) -> Self {
        On::Db(db)
    }
}

impl<'a> From<&'a mut Tx> for On<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        On::Tx(tx)
    }
}

impl<'q> Query<'q> {
    pub(crate) fn bind(mut self, value: impl Into<Param<'q>>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) async fn execute<'a>(self, on: impl Into<On<'a>>) -> Result<u64> {
        match on.into() {
            On::Db(Db::Sqlite(conns)) => self.sqlite_execute(&*conns.get()?),
            On::Db(Db::Postgres(pool)) => Ok(self.pg().execute(pool).await?.rows_affected()),
            On::Tx(Tx::Sqlite(tx)) => self.sqlite_execute(tx.conn()?),
            On::Tx(Tx::Postgres(tx)) => Ok(self.pg().execute(&mut **tx).await?.rows_affected()),
        }
    }

    pub(crate) async fn fetch_all<'a>(self, on: impl Into<On<'a>>) -> Result<Vec<Row>> {
        match on.into() {
            On::Db(Db::Sqlite(conns)) => self.sqlite_rows(&*conns.get()?, usize::MAX),
            On::Db(Db::Postgres(pool)) => pg_rows(self.pg().fetch_all(pool).await?),
            On::Tx(Tx::Sqlite(tx)) => self.sqlite_rows(tx.conn()?, usize::MAX),
            On::Tx(Tx::Postgres(tx)) => pg_rows(self.pg().fetch_all(&mut **tx).await?),
        }
    }

    pub(crate) async fn fetch_optional<'a>(self, on: impl Into<On<'a>>) -> Result<Option<Row>> {
        match on.into() {
            On::Db(Db::Sqlite(conns)) => Ok(self.sqlite_rows(&*conns.get()?, 1)?.pop()),
            On::Db(Db::Postgres(pool)) => {
                pg_rows(self.pg().fetch_optional(pool).await?).map(|mut r| r.pop())
            }
            On::Tx(Tx::Sqlite(tx)) => Ok(self.sqlite_rows(tx.conn()?, 1)?.pop()),
            On::Tx(Tx::Postgres(tx)) => {
                pg_rows(self.pg().fetch_optional(&mut **tx).await?).map(|mut r| r.pop())
            }
        }
    }

    /// The first row, which the statement always returns (a count, say).
    pub(crate) async fn fetch_one<'a>(self, on: impl Into<On<'a>>) -> Result<Row> {
        self.fetch_optional(on)
            .await?
            .ok_or(Error::Database(DbError::Sqlx(sqlx::Error::RowNotFound)))
    }

    /// The first column of the first row.
    pub(crate) async fn fetch_scalar<'a, T: FromValue>(self, on: impl Into<On<'a>>) -> Result<T> {
        Ok(self.fetch_one(on).await?.take(0))
    }

    /// The first column of the first row, if there is a row.
    pub(crate) async fn fetch_optional_scalar<'a, T: FromValue>(
        self,
        on: impl Into<On<'a>>,
    ) -> Result<Option<T>> {
        Ok(self.fetch_optional(on).await?.map(|mut r| r.take(0)))
    }

    /// The first column of every row.
    pub(crate) async fn fetch_all_scalar<'a, T: FromValue>(
        self,
        on: impl Into<On<'a>>,
    ) -> Result<Vec<T>> {
        Ok(self
            .fetch_all(on)
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
            }
        }
        Ok(stmt)
    }

    /// Runs `run` and logs the statement (its text, never its parameters) as sqlx does:
    /// at debug level, or as a warning when it was slow.
    fn logged<T>(&self, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = std::time::Instant::now();
        let result = run();
        let elapsed = started.elapsed();
        if elapsed >= SLOW_STATEMENT {
            tracing::warn!(sql = %self.sql, ?elapsed, ok = result.is_ok(), "slow statement");
        } else {
            tracing::debug!(sql = %self.sql, ?elapsed, ok = result.is_ok(), "statement");
        }
        result
    }

    fn sqlite_execute(&self, conn: &rusqlite::Connection) -> Result<u64> {
        self.logged(|| {
            let mut stmt = self.sqlite_prepare(conn)?;
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(conn.changes())
        })
    }

    fn sqlite_rows(&self, conn: &rusqlite::Connection, at_most: usize) -> Result<Vec<Row>> {
        self.logged(|| self.sqlite_read(conn, at_most))
    }

    fn sqlite_read(&self, conn: &rusqlite::Connection, at_most: usize) -> Result<Vec<Row>> {
        let mut stmt = self.sqlite_prepare(conn)?;
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
                    other => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            i,
                            self.sql.to_string(),
                            other.data_type(),
                        )
                        .into())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
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
                    _ => Value::Text(row.try_get::<String, _>(i)?),
                });
            }
            Ok(Row(values))
        })
        .collect()
}

/// The connections of a store.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(Arc<SqliteConnections>),
    Postgres(PgPool),
}

impl Db {
    /// Starts a transaction: every transaction here writes.
    ///
    /// On SQLite, the process's writers take turns, and their transactions are grouped:
    /// each runs in a savepoint of a transaction that stays open while further writers
    /// wait for their turn, and is committed by the last of them (see [`Tx::commit`]).
    /// One commit then writes the pages many writes share (a table's last page, the upper
    /// pages of its indexes) once instead of once per write, which is most of what a
    /// commit costs. Taking turns here also keeps the writers out of SQLite's busy handler,
    /// which backs off for up to 100 ms at a time.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        match self {
            Db::Sqlite(conns) => {
                let mut turn = {
                    let _waiting = Waiting::count(&conns.writers.waiting);
                    Arc::clone(&conns.writers.turn).lock_owned().await
                };
                if turn.is_none() {
                    let conn = conns.get()?;
                    // IMMEDIATE takes the write lock now: a transaction that read first and
                    // found the lock taken by another process afterwards could not go on.
                    stmt("BEGIN IMMEDIATE").sqlite_execute(&conn)?;
                    let id = conns.writers.batches.fetch_add(1, Ordering::Relaxed);
                    *turn = Some(Batch {
                        id,
                        conn,
                        writes: 0,
                        outcome: tokio::sync::watch::channel(None).0,
                    });
                }
                let tx = SqliteTx {
                    turn: Some(turn),
                    conns: Arc::clone(conns),
                };
                stmt("SAVEPOINT write").sqlite_execute(tx.conn()?)?;
                Ok(Tx::Sqlite(tx))
            }
            Db::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }

    /// Grouped transactions begun so far, and writers waiting for their turn (SQLite).
    #[cfg(test)]
    pub(crate) fn writers(&self) -> (u64, usize) {
        match self {
            Db::Sqlite(conns) => (
                conns.writers.batches.load(Ordering::Relaxed),
                conns.writers.waiting.load(Ordering::Relaxed),
            ),
            Db::Postgres(_) => (0, 0),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(conns) => conns.close(),
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// An open transaction, rolled back when dropped uncommitted.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits. On SQLite this returns once the grouped transaction holding this one's
    /// savepoint has committed (or failed, which fails every write in it).
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(mut tx) => {
                let conns = Arc::clone(&tx.conns);
                let mut turn = tx.turn.take().ok_or_else(closed)?;
                let Some(batch) = turn.as_mut() else {
                    return Err(closed());
                };
                if let Err(e) = stmt("RELEASE write").sqlite_execute(&batch.conn) {
                    fail(&mut turn, &e);
                    return Err(e);
                }
                batch.writes += 1;
                let (id, outcome) = (batch.id, batch.outcome.subscribe());
                conns.writers.pass(turn, false);
                conns.writers.outcome(id, outcome).await
            }
            Tx::Postgres(tx) => Ok(tx.commit().await?),
        }
    }
}

impl Tx {
    /// Undoes this transaction, and returns once the writes it was grouped with have
    /// committed (SQLite): a reader on another connection then sees them. For a write that
    /// found a row changed by one of them and will read it again.
    pub(crate) async fn settle(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => {
                let conns = Arc::clone(&tx.conns);
                let batch = tx
                    .turn
                    .as_deref()
                    .and_then(Option::as_ref)
                    .map(|batch| (batch.id, batch.outcome.subscribe()));
                drop(tx);
                if let Some((id, outcome)) = batch {
                    // Their outcome is theirs to report.
                    conns.writers.outcome(id, outcome).await.ok();
                }
                Ok(())
            }
            Tx::Postgres(tx) => Ok(tx.rollback().await?),
        }
    }
}

/// A write's savepoint in the open grouped transaction, holding the writers' turn.
pub(crate) struct SqliteTx {
    /// Taken when the write ends.
    turn: Option<tokio::sync::OwnedMutexGuard<Option<Batch>>>,
    conns: Arc<SqliteConnections>,
}

impl SqliteTx {
    fn conn(&self) -> Result<&rusqlite::Connection> {
        self.turn
            .as_deref()
            .and_then(Option::as_ref)
            .map(|batch| &*batch.conn)
            .ok_or_else(closed)
    }
}

impl Drop for SqliteTx {
    /// Undoes this write's savepoint, and passes the turn on (or commits the others).
    fn drop(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        if let Some(batch) = turn.as_ref() {
            let undone = stmt("ROLLBACK TO write")
                .sqlite_execute(&batch.conn)
                .and_then(|_| stmt("RELEASE write").sqlite_execute(&batch.conn));
            if let Err(e) = undone {
                // What this write did cannot be told apart from the others' any more.
                fail(&mut turn, &e);
            }
        }
        self.conns.writers.pass(turn, false);
    }
}

fn closed() -> Error {
    Error::Database(DbError::Sqlx(sqlx::Error::PoolClosed))
}

/// The open grouped transaction.
struct Batch {
    /// Tells batches apart, for a writer waiting for its own.
    id: u64,
    conn: Pooled,
    /// Writes released into it.
    writes: usize,
    /// Set once it has committed (Ok) or failed (the error's text).
    outcome: tokio::sync::watch::Sender<Option<std::result::Result<(), String>>>,
}

/// Ends the open batch after an error that SQLite may have answered by rolling back the
/// whole transaction: every write in it fails.
fn fail(turn: &mut Option<Batch>, e: &Error) {
    if let Some(batch) = turn.take() {
        if !batch.conn.is_autocommit() && batch.conn.execute_batch("ROLLBACK").is_err() {
            batch.conn.discard();
        }
        batch.outcome.send_replace(Some(Err(e.to_string())));
    }
}

/// Commits the open batch, if there is one, and tells its writers.
fn commit(turn: &mut Option<Batch>) {
    if turn
        .as_ref()
        .is_some_and(|batch| batch.conn.is_autocommit())
    {
        // An error made SQLite roll the whole transaction back.
        let e = Error::Database(DbError::Commit(
            "the grouped transaction was rolled back".into(),
        ));
        fail(turn, &e);
        return;
    }
    let Some(batch) = turn.take() else {
        return;
    };
    let committed = stmt("COMMIT").sqlite_execute(&batch.conn);
    if let Err(e) = &committed {
        if batch.conn.execute_batch("ROLLBACK").is_err() {
            batch.conn.discard();
        }
        tracing::error!(error = %e, writes = batch.writes, "a grouped commit failed");
    }
    batch
        .outcome
        .send_replace(Some(committed.map(drop).map_err(|e| e.to_string())));
}

/// At most this many writes share a transaction, which bounds how long its first one waits.
const MAX_BATCH: usize = 32;
/// A write waits this long for the writer after it to commit their transaction, then
/// commits it itself (that writer may have been cancelled while waiting for its turn).
const HANDOVER_WAIT: Duration = Duration::from_millis(20);

/// The process's SQLite writers: their turn, which holds the open batch.
#[derive(Default)]
pub(crate) struct Writers {
    turn: Arc<tokio::sync::Mutex<Option<Batch>>>,
    /// Writers waiting for the turn.
    waiting: AtomicUsize,
    batches: AtomicU64,
}

impl Writers {
    /// Passes the turn on: to the next writer, within the open batch, when one is waiting
    /// and the batch has room; otherwise after committing the batch (`now`: in any case).
    fn pass(&self, mut turn: tokio::sync::OwnedMutexGuard<Option<Batch>>, now: bool) {
        let full = turn.as_ref().is_some_and(|batch| batch.writes >= MAX_BATCH);
        if now || full || self.waiting.load(Ordering::Acquire) == 0 {
            commit(&mut turn);
        }
    }

    /// Waits for the outcome of batch `id`, committing it after [`HANDOVER_WAIT`] if it is
    /// still open.
    async fn outcome(
        &self,
        id: u64,
        mut outcome: tokio::sync::watch::Receiver<Option<std::result::Result<(), String>>>,
    ) -> Result<()> {
        loop {
            if let Some(result) = outcome.borrow_and_update().clone() {
                return result.map_err(|e| Error::Database(DbError::Commit(e)));
            }
            match tokio::time::timeout(HANDOVER_WAIT, outcome.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(closed()),
                Err(_) => {
                    let turn = Arc::clone(&self.turn).lock_owned().await;
                    if turn.as_ref().is_some_and(|batch| batch.id == id) {
                        self.pass(turn, true);
                    }
                }
            }
        }
    }
}

/// Counts a writer waiting for its turn until dropped (also when its request is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// SQLite connections to one file, opened as needed and kept for reuse. Statements run
/// synchronously while a connection is out, so at most a few are out at once (one or two
/// per runtime thread); `keep` bounds how many idle ones stay open.
pub(crate) struct SqliteConnections {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    keep: usize,
    closed: AtomicBool,
    writers: Writers,
}

impl std::fmt::Debug for SqliteConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConnections")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// Prepared statements each connection keeps: the SCIM API's own plus the shapes of the
/// filters IdPs send.
const STATEMENT_CACHE: usize = 256;

impl SqliteConnections {
    /// Opens the pool, and a thread of its own that checkpoints the write-ahead log (see
    /// [`checkpoint`]) until the pool is closed or dropped.
    pub(crate) fn open(path: PathBuf, keep: usize) -> Result<Arc<Self>> {
        let conns = Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            keep,
            closed: AtomicBool::new(false),
            writers: Writers::default(),
        });
        // Opening one now reports a file that cannot be opened at start, not at first use.
        let checkpointer = conns.connect()?;
        let weak = Arc::downgrade(&conns);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint(&checkpointer, &weak))
            .map_err(|e| Error::Database(DbError::Sqlx(sqlx::Error::Io(e))))?;
        Ok(conns)
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // No automatic checkpoints: they would run inside a writer's commit, while every
        // other writer waits, and stall them for the checkpoint's fsync.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 100663296;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// An idle connection, or a new one.
    pub(crate) fn get(self: &Arc<Self>) -> Result<Pooled> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        Ok(Pooled {
            conn: Some(conn),
            home: Arc::clone(self),
        })
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// How often the checkpoint thread copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Once the log holds this many pages (64 MiB), the checkpoint thread lets it start over.
const RESTART_AT: i64 = 16384;
/// Pages it leaves for the last, locked pass when letting the log start over.
const SMALL_TAIL: i64 = 256;

/// Copies committed pages from the write-ahead log into the database file, beside the
/// writers rather than inside one of their commits (SQLite's automatic checkpoints, turned
/// off here, run in a committing writer while every other writer waits for it).
///
/// A passive checkpoint takes no lock a writer needs, but SQLite starts the log over only
/// when a writer begins with every page of it copied, which never happens while writers
/// keep committing: the log would grow without end. So once it holds [`RESTART_AT`] pages,
/// the thread copies until a small tail is left, then takes the writers' turn, commits the
/// open batch if there is one, copies the tail and lets go: the next writer finds the log
/// fully copied and starts it over. Ends with a last checkpoint once the pool is closed or
/// gone.
fn checkpoint(conn: &rusqlite::Connection, pool: &std::sync::Weak<SqliteConnections>) {
    // (pages in the log, pages of it copied), or None when the checkpoint failed.
    let passive = || match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok(pages) => Some(pages),
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint failed");
            None
        }
    };
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(pool) = pool.upgrade().filter(|p| !p.closed.load(Ordering::Relaxed)) else {
            break;
        };
        let Some((log, _)) = passive() else { continue };
        if log < RESTART_AT {
            continue;
        }
        for _ in 0..8 {
            match passive() {
                Some((log, copied)) if log - copied > SMALL_TAIL => {}
                _ => break,
            }
        }
        let mut turn = pool.writers.turn.blocking_lock();
        commit(&mut turn);
        passive();
        drop(turn);
    }
    passive();
}

/// A connection out of the pool; it goes back when dropped.
pub(crate) struct Pooled {
    conn: Option<rusqlite::Connection>,
    home: Arc<SqliteConnections>,
}

impl Pooled {
    /// Closes the connection instead of returning it to the pool.
    fn discard(mut self) {
        self.conn = None;
    }
}

impl std::ops::Deref for Pooled {
    type Target = rusqlite::Connection;

    fn deref(&self) -> &Self::Target {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.home.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.home.keep {
                idle.push(conn);
            }
        }
    }
}

/// A database error from either driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// The grouped SQLite transaction a write was part of did not commit.
    #[error("the transaction did not commit: {0}")]
    Commit(String),
}

impl DbError {
    /// Whether a UNIQUE constraint refused the write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation()),
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            DbError::Sqlite(_) | DbError::Commit(_) => false,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(DbError::Sqlx(e))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database(DbError::Sqlite(e))
    }
}

/// Whether `e` is a UNIQUE constraint refusing a write.
pub(crate) fn is_unique_violation(e: &Error) -> bool {
    matches!(e, Error::Database(d) if d.is_unique_violation())
}
