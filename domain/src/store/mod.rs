//! Storage: one function per operation the domain needs, each one *job* that runs all its
//! statements in one transaction. All SQL lives here, every statement is parameterised,
//! and callers never see which backend runs it.
//!
//! - SQLite (the default): jobs run on the store's own threads, off the async workers
//!   (`sqlite.rs`); PostgreSQL: on sqlx's asynchronous driver (`postgres.rs`).
//! - Every job has a deadline (its request's, see [`crate::deadline`]) and a lane (its
//!   organisation's, see `lanes.rs`), so no organisation can hold the store for others.
//! - One set of statements for both backends; the few dialect differences are decided by
//!   [`Backend`] where the SQL is built.
//!
//! One module per aggregate: `accounts` (organisations and admins), `integrations`,
//! `audit`, `users`, `groups`, `deleted` (the console's records of deleted ones),
//! `activity`, `sessions`; `counts` reads the dashboard's kept counts, `resources` holds
//! what users and groups share, `filter_sql` compiles SCIM filters, `db` holds statements
//! and jobs, and `sqlite`, `postgres` and `lanes` run them.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::deadline::{self, Budget};
use crate::error::{Error, Result};

mod accounts;
pub mod activity;
mod alerts;
mod audit;
mod counts;
mod db;
mod deleted;
mod factors;
mod filter_sql;
mod groups;
mod history;
mod integrations;
mod lanes;
mod logins;
mod postgres;
mod resources;
mod sessions;
mod sqlite;
mod users;

pub use accounts::AdminChange;
pub use counts::{DashboardFigures, IntegrationFigures};
pub(crate) use db::RETRY_AFTER;
use db::{stmt, Admission, JobContext, JobFuture, Tx};
pub use deleted::{DeletedGroupRow, DeletedQuery, DeletedUserRow};
pub use factors::FactorRow;
pub(crate) use filter_sql::Table;
pub use groups::{GroupBody, GroupRow, NewGroup};
use lanes::LaneLimits;
pub(crate) use resources::RowBody;
pub use resources::{Deletion, Listed, ResourceRow, Stored, Target};
pub use sessions::{handle as session_handle, AdminSessions, ADMIN_ID};
pub use users::{UserBody, UserRow};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database a store runs on. It decides the few places where the SQL differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::invalid(format!(
                "DATABASE_URL must be a sqlite:// or postgres:// URL, not {:?}",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// The function giving the larger of two values.
    fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "MAX",
            Backend::Postgres => "GREATEST",
        }
    }

    /// A JSON array (as text) of `element` (a SQL JSON array of columns, see
    /// [`Backend::json_row`]) for every row of `from_where`, ordered by `order`; `[]` for
    /// none.
    fn json_rows(self, element: &str, from_where: &str, order: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("(SELECT json_group_array({element} ORDER BY {order}) {from_where})")
            }
            Backend::Postgres => format!(
                "COALESCE((SELECT json_agg({element} ORDER BY {order})::text {from_where}), '[]')"
            ),
        }
    }

    /// A JSON array of the SQL expressions `items`.
    fn json_row(self, items: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_array({items})"),
            Backend::Postgres => format!("json_build_array({items})"),
        }
    }

    /// `haystack` contains `needle` (two SQL expressions), as a condition.
    fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Backend::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Backend::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }

    /// What locks a row read for a change. SQLite needs nothing: its one writer is alone.
    fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// Which page of a list, filtered and sorted how, for which integration (whose externalIds
/// it sees; none for the console).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub integration_id: Option<String>,
    /// Only resources this integration created (the console's source filter).
    pub created_by: Option<String>,
    pub filter: Option<scim::filter::Condition>,
    pub sort: Option<scim::list::Sort>,
    pub offset: u64,
    pub limit: u32,
}

/// Ids per statement when a list of ids is bound, well under SQLite's parameter limit.
const CHUNK: usize = 500;

/// `$first, $first+1, ...` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read threads (SQLite) or connections (PostgreSQL) a process uses by default.
pub const DEFAULT_SQLITE_POOL_SIZE: u32 = 4;
/// Connections per process on PostgreSQL. N instances hold up to N times this many, which
/// must stay under the server's `max_connections`.
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 16;
/// Jobs one organisation may have waiting for their turn.
pub const DEFAULT_QUEUED_PER_ORGANISATION: usize = 64;
/// How long a job waits for its turn before it is refused with 503.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// The deadline of a job outside any request (background writers, the command line).
pub const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(30);

/// How a store is sized and shared.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// SQLite: read threads, each with its connection; PostgreSQL: connections. Default
    /// [`DEFAULT_SQLITE_POOL_SIZE`] or [`DEFAULT_POSTGRES_POOL_SIZE`].
    pub pool_size: Option<u32>,
    /// Jobs one organisation may run at once; default half the pool (at least one).
    pub running_per_organisation: Option<usize>,
    /// Jobs one organisation may have waiting; default [`DEFAULT_QUEUED_PER_ORGANISATION`].
    pub queued_per_organisation: Option<usize>,
    /// Default [`DEFAULT_QUEUE_WAIT`].
    pub queue_wait: Option<Duration>,
    /// The deadline of jobs outside a request; default [`DEFAULT_JOB_DEADLINE`].
    pub job_deadline: Option<Duration>,
}

impl StoreOptions {
    fn pool_size(&self, backend: Backend) -> u32 {
        self.pool_size.unwrap_or(match backend {
            Backend::Sqlite => DEFAULT_SQLITE_POOL_SIZE,
            Backend::Postgres => DEFAULT_POSTGRES_POOL_SIZE,
        })
    }

    /// The lane limits and queue wait this store gives each organisation.
    fn admission(&self, backend: Backend) -> Admission {
        let pool = self.pool_size(backend) as usize;
        Admission {
            lanes: LaneLimits {
                running: self.running_per_organisation.unwrap_or((pool / 2).max(1)),
                queued: self
                    .queued_per_organisation
                    .unwrap_or(DEFAULT_QUEUED_PER_ORGANISATION),
            },
            queue_wait: self.queue_wait.unwrap_or(DEFAULT_QUEUE_WAIT),
        }
    }
}

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
    /// The request this handle works for, when it was bound to one (see
    /// [`Store::for_current_request`]).
    budget: Option<Arc<Budget>>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    backend: Backend,
    job_deadline: Duration,
    /// The SQLite file, to tell whether it is still there.
    sqlite_path: Option<PathBuf>,
}

#[derive(Debug)]
enum Db {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Applies SQLite's pending migrations. SQLite has no advisory lock, so when processes start
/// together on a new file, all but one lose the race: their connection cannot switch the file
/// to WAL while the winner writes (SQLite answers "database is locked" at once, without its
/// busy timeout), or their migration fails once the winner commits ("table already exists",
/// or a busy database). Such a process connects and runs the migrator again, which now finds
/// the migration applied. It may lose the race on every migration, so it has two attempts per
/// migration. Any other failure to connect, and a migration that fails for another reason on
/// every attempt, is reported.
async fn migrate_sqlite(options: &SqliteConnectOptions) -> Result<()> {
    let attempts = 2 * SQLITE_MIGRATIONS.iter().count() + 1;
    let mut attempt = 1;
    loop {
        let migrated = match SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => {
                let migrated = SQLITE_MIGRATIONS.run(&pool).await;
                pool.close().await;
                migrated
            }
            Err(e) if is_busy(&e) => Err(sqlx::migrate::MigrateError::Execute(e)),
            Err(e) => return Err(e.into()),
        };
        match migrated {
            Err(
                sqlx::migrate::MigrateError::ExecuteMigration(..)
                | sqlx::migrate::MigrateError::Execute(..),
            ) if attempt < attempts => {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                attempt += 1;
            }
            result => return Ok(result?),
        }
    }
}

/// Whether SQLite answered SQLITE_BUSY, in any of its extended forms.
fn is_busy(e: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    matches!(e, sqlx::Error::Database(d)
        if d.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == SQLITE_BUSY))
}

/// Creates the SQLite file (and its directory) if needed and applies pending migrations;
/// the file's path.
async fn open_sqlite(url: &str) -> Result<PathBuf> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(Error::invalid(
            "DATABASE_URL must name a SQLite file: an in-memory database would be a different \
             one on every connection",
        ));
    }
    let options = sqlite_options(url)?;
    let path = options.get_filename().to_owned();
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal("the database's directory could not be created", e))?;
        }
    }
    // sqlx's migrator creates the file and applies the migrations; the store's own
    // connections open it afterwards.
    migrate_sqlite(&options).await?;
    Ok(path)
}

impl Store {
    /// Opens (creating if needed) the database at `url` with the default options and
    /// applies pending migrations. `sqlite://path/to/file.db` or
    /// `postgres://user@host/database`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, &StoreOptions::default()).await
    }

    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let backend = Backend::of(url)?;
        let admission = options.admission(backend);
        let pool_size = options.pool_size(backend);
        let mut sqlite_path = None;
        let db = match backend {
            Backend::Sqlite => {
                let path = open_sqlite(url).await?;
                sqlite_path = Some(path.clone());
                Db::Sqlite(sqlite::Sqlite::open(path, pool_size as usize, admission)?)
            }
            Backend::Postgres => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(pool_size)
                    .connect(url)
                    .await?;
                // sqlx takes an advisory lock, so instances starting together migrate once.
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Db::Postgres(postgres::Postgres::new(pool, pool_size as usize, admission))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                backend,
                job_deadline: options.job_deadline.unwrap_or(DEFAULT_JOB_DEADLINE),
                sqlite_path,
            }),
            budget: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Whether this store can serve requests: its database answers a read with every
    /// migration this build knows applied, and (SQLite) its file is still where it was
    /// opened. `Ok(false)` when migrations are missing; an error when the database does not
    /// answer.
    pub async fn ready(&self) -> Result<bool> {
        let known = match self.backend() {
            Backend::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            Backend::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        };
        let path = self.inner.sqlite_path.clone();
        let applied: i64 = self
            .read(move |tx| {
                Box::pin(async move {
                    // Looked at in the job: on SQLite it runs on the store's own thread, off
                    // the async workers.
                    if path.is_some_and(|p| !p.exists()) {
                        return Err(Error::Database(crate::error::DbError::Closed));
                    }
                    stmt("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                        .fetch_scalar(tx)
                        .await
                })
            })
            .await?;
        Ok(usize::try_from(applied).unwrap_or(0) >= known)
    }

    /// This store bound to the request running now (see [`deadline::run`]): its jobs carry
    /// that request's deadline and lane even when they run in another task, as the
    /// console's server-rendered pages do.
    pub fn for_current_request(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            budget: deadline::current(),
        }
    }

    /// Names the organisation the request of this handle works for (see
    /// [`deadline::work_for`]).
    pub fn work_for(&self, organisation_id: &str) {
        match &self.budget {
            Some(budget) => budget.work_for(organisation_id),
            None => deadline::work_for(organisation_id),
        }
    }

    fn context(&self) -> JobContext {
        match self.budget.clone().or_else(deadline::current) {
            Some(budget) => JobContext {
                deadline: budget.deadline(),
                lane: budget.organisation(),
                budget: Some(budget),
            },
            None => JobContext {
                deadline: Instant::now() + self.inner.job_deadline,
                lane: None,
                budget: None,
            },
        }
    }

    /// Runs a job that only reads.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        self.run(false, work).await
    }

    /// Runs a job that writes: answered once its transaction has committed (or failed).
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        self.run(true, work).await
    }

    async fn run<T, F>(&self, write: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        let context = self.context();
        let work = checked(&context, work);
        match &self.inner.db {
            Db::Sqlite(db) if write => db.write(context, work).await,
            Db::Sqlite(db) => db.read(context, work).await,
            Db::Postgres(db) => db.run(context, write, work).await,
        }
    }

    /// Write groups ended so far and write jobs waiting (SQLite), for tests of grouping.
    #[cfg(test)]
    fn writer_state(&self) -> (u64, usize) {
        match &self.inner.db {
            Db::Sqlite(db) => db.writer_state(),
            Db::Postgres(_) => (0, 0),
        }
    }

    /// Finishes the jobs running now, refuses queued ones, and closes the connections.
    pub async fn close(&self) {
        match &self.inner.db {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(db) => db.close().await,
        }
    }
}

/// `work`, preceded in its transaction by the check of its request's credential, if the
/// request presented one.
fn checked<T, F>(
    context: &JobContext,
    work: F,
) -> impl for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
{
    let budget = context
        .budget
        .clone()
        .filter(|budget| budget.credential().is_some());
    move |tx: &mut Tx| -> JobFuture<'_, T> {
        Box::pin(async move {
            if let Some(budget) = &budget {
                db::check_credential(tx, budget).await?;
            }
            work(tx).await
        })
    }
}

#[cfg(test)]
mod tests;
