//! Storage: one function per operation the domain needs. All SQL lives here, every statement
//! is parameterised, and callers never see which backend runs it. The store runs on SQLite
//! (the default; WAL, foreign keys, busy timeout set per connection; statements run in the
//! calling task, see `store::db`) or PostgreSQL: one set of statements, with the few dialect
//! differences (substring functions, the insertion sequence, GREATEST) decided by
//! [`Backend`] where the SQL is built.

use std::str::FromStr;
use std::time::Duration;

use scim::filter::{Attr, Condition, ElementCondition, Field, Op, Operand};
use scim::group::GroupChange;
use scim::list::{Sort, SortKey};
use scim::user::IndexedValue;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::{Error, Result};

pub mod activity;
mod db;
mod directory;

pub use db::DbError;
use db::{is_unique_violation, stmt, Db, On, Query, Row, Tx};

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
            Err(Error::Invalid(format!(
                "DATABASE_URL must be a sqlite:// or postgres:// URL, not {:?}",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }
}

/// A pool of the backend's own driver, for components that need one (the session store).
#[derive(Clone, Debug)]
pub enum NativePool {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    backend: Backend,
    url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRow {
    pub id: String,
    pub organisation_id: String,
    pub kind: String,
    pub has_token: bool,
    pub token_created_at: Option<i64>,
    pub last_sync_at: Option<i64>,
    pub delete_mode: String,
}

/// The integration a bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub integration_id: String,
    pub organisation_id: String,
    /// Whether DELETE removes users (otherwise it deactivates them).
    pub delete_removes: bool,
}

/// A new provisioning token digest for an organisation's integration of `kind`.
#[derive(Debug, Clone)]
pub struct TokenChange<'a> {
    /// The id the integration gets if this creates it.
    pub new_integration_id: &'a str,
    pub organisation_id: &'a str,
    pub kind: &'a str,
    pub token_hash: &'a str,
    /// Leave an existing token in place (create) rather than replace it (reset).
    pub only_if_absent: bool,
    pub audit: &'a AuditEntry,
    pub at: i64,
}

/// Who did what, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub admin_id: Option<String>,
    pub actor: String,
    pub action: &'static str,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub admin_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub integration_id: Option<String>,
    pub integration_kind: Option<String>,
    pub detail: Option<String>,
    pub at: i64,
}

/// A stored SCIM user, with the externalId of the integration that read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub attributes: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub external_id: Option<String>,
}

/// A stored SCIM group (members are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewGroup<'a> {
    pub id: &'a str,
    pub organisation_id: &'a str,
    pub integration_id: &'a str,
    pub display_name: &'a str,
    pub display_name_key: &'a str,
    pub external_id: Option<&'a str>,
    pub at: i64,
}

/// Which page of a list, filtered and sorted how, for which integration (whose externalIds
/// it sees; none for the console).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery<'a> {
    pub integration_id: Option<&'a str>,
    /// Only resources this integration created (the console's source filter).
    pub created_by: Option<&'a str>,
    pub filter: Option<&'a Condition>,
    pub sort: Option<Sort>,
    pub offset: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Users,
    Groups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "scim_users",
            Table::Groups => "scim_groups",
        }
    }

    /// The column of `scim_counts` that counts this table's rows.
    fn counted_as(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }

    fn external_ids(self) -> &'static str {
        match self {
            Table::Users => "scim_user_external_ids",
            Table::Groups => "scim_group_external_ids",
        }
    }

    /// The externalId the integration bound at `$param` keeps for the row.
    fn external_id_expr(self, param: usize) -> String {
        format!(
            "(SELECT x.external_id FROM {} x WHERE x.resource_id = {}.id AND x.integration_id = ${param})",
            self.external_ids(),
            self.name()
        )
    }

    /// The same, as a result column.
    fn external_id_column(self, param: usize) -> String {
        format!("{} AS external_id", self.external_id_expr(param))
    }
}

/// The indexed columns and document of a user being written.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub organisation_id: &'a str,
    pub integration_id: &'a str,
    pub user_name: &'a str,
    pub user_name_key: &'a str,
    pub external_id: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub display_name_key: Option<&'a str>,
    pub active: bool,
    pub attributes: &'a str,
    /// What filters can find the user by, beyond the columns.
    pub values: &'a [IndexedValue],
    pub at: i64,
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Idle connections a process keeps open on SQLite. Statements run in the task that asks, so
/// at most one or two connections per runtime thread are in use at once.
pub const DEFAULT_SQLITE_POOL_SIZE: u32 = 8;
/// Connections per process on PostgreSQL. N instances hold up to N times this many (plus 4
/// each for sessions), which must stay under the server's `max_connections`.
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 16;

/// Applies SQLite's pending migrations. SQLite has no advisory lock, so when processes start
/// together on a new file, all but one lose the race: their migration fails once the winner
/// commits ("table already exists", or a busy database). Such a process runs the migrator
/// again, which now finds the migration applied. A migration that fails for another reason
/// fails every attempt and is reported.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<()> {
    let mut attempt = 1;
    loop {
        match SQLITE_MIGRATIONS.run(pool).await {
            Err(
                sqlx::migrate::MigrateError::ExecuteMigration(..)
                | sqlx::migrate::MigrateError::Execute(..),
            ) if attempt < 5 => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                attempt += 1;
            }
            result => return Ok(result?),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `sqlite://path/to/file.db` or `postgres://user@host/database`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_pool_size(url, None).await
    }

    /// [`Store::connect`] with `pool_size` connections instead of the backend's
    /// default ([`DEFAULT_SQLITE_POOL_SIZE`], [`DEFAULT_POSTGRES_POOL_SIZE`]).
    pub async fn connect_with_pool_size(url: &str, pool_size: Option<u32>) -> Result<Self> {
        let backend = Backend::of(url)?;
        let db = match backend {
            Backend::Sqlite => {
                if url.contains(":memory:") || url.contains("mode=memory") {
                    return Err(Error::Invalid(
                        "DATABASE_URL must name a SQLite file: an in-memory database would be \
                         a different one on every connection"
                            .into(),
                    ));
                }
                let options = sqlite_options(url)?;
                let path = options.get_filename().to_owned();
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            Error::Invalid(format!("cannot create {}: {e}", dir.display()))
                        })?;
                    }
                }
                // sqlx's migrator creates the file and applies the migrations; the store's
                // own connections open it afterwards.
                let migrator = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?;
                let migrated = migrate_sqlite(&migrator).await;
                migrator.close().await;
                migrated?;
                let keep = pool_size.unwrap_or(DEFAULT_SQLITE_POOL_SIZE);
                Db::Sqlite(db::SqliteConnections::open(path, keep as usize)?)
            }
            Backend::Postgres => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(pool_size.unwrap_or(DEFAULT_POSTGRES_POOL_SIZE))
                    .connect(url)
                    .await?;
                // sqlx takes an advisory lock, so instances starting together migrate once.
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Db::Postgres(pool)
            }
        };
        Ok(Self {
            db,
            backend,
            url: url.to_owned(),
        })
    }

    /// A small pool of the backend's own driver on the same database, for the session store.
    pub async fn native_pool(&self, connections: u32) -> Result<NativePool> {
        Ok(match self.backend {
            Backend::Sqlite => NativePool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(sqlite_options(&self.url)?)
                    .await?,
            ),
            Backend::Postgres => NativePool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(connections)
                    .connect(&self.url)
                    .await?,
            ),
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    // --- organisations and admins -------------------------------------------------------

    /// The organisation called `name`, created if it does not exist yet.
    pub async fn find_or_create_organisation(
        &self,
        id: &str,
        name: &str,
        at: i64,
    ) -> Result<Organisation> {
        let mut tx = self.db.begin().await?;
        stmt("INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(id)
            .bind(name)
            .bind(at)
            .execute(&mut tx)
            .await?;
        let mut row = stmt("SELECT id, name FROM organisations WHERE name = $1")
            .bind(name)
            .fetch_one(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Organisation {
            id: row.take(0),
            name: row.take(1),
        })
    }

    pub async fn organisation_by_name(&self, name: &str) -> Result<Option<Organisation>> {
        let row = stmt("SELECT id, name FROM organisations WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|mut r| Organisation {
            id: r.take(0),
            name: r.take(1),
        }))
    }

    pub async fn organisation(&self, id: &str) -> Result<Option<Organisation>> {
        let row = stmt("SELECT id, name FROM organisations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|mut r| Organisation {
            id: r.take(0),
            name: r.take(1),
        }))
    }

    /// Inserts an admin; `Conflict` when the email is taken.
    pub async fn insert_admin(&self, admin: &AdminRow, at: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let result = stmt(
            "INSERT INTO admins (id, organisation_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&admin.id)
        .bind(&admin.organisation_id)
        .bind(&admin.email)
        .bind(&admin.password_hash)
        .bind(at)
        .execute(&mut tx)
        .await;
        match result {
            Ok(_) => tx.commit().await,
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "an admin with the email {} already exists",
                admin.email
            ))),
            Err(e) => Err(e),
        }
    }

    pub async fn admin_by_email(&self, email: &str) -> Result<Option<AdminRow>> {
        self.admin_where("email", email).await
    }

    pub async fn admin_by_id(&self, id: &str) -> Result<Option<AdminRow>> {
        self.admin_where("id", id).await
    }

    async fn admin_where(&self, column: &'static str, value: &str) -> Result<Option<AdminRow>> {
        let sql = format!(
            "SELECT id, organisation_id, email, password_hash FROM admins WHERE {column} = $1"
        );
        let row = stmt(&sql).bind(value).fetch_optional(&self.db).await?;
        Ok(row.map(|mut r| AdminRow {
            id: r.take(0),
            organisation_id: r.take(1),
            email: r.take(2),
            password_hash: r.take(3),
        }))
    }

    /// The organisation's admins, by email (password hashes included: callers drop them).
    pub async fn admins_of(&self, organisation_id: &str) -> Result<Vec<AdminRow>> {
        let rows = stmt(
            "SELECT id, organisation_id, email, password_hash FROM admins \
             WHERE organisation_id = $1 ORDER BY email",
        )
        .bind(organisation_id)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|mut r| AdminRow {
                id: r.take(0),
                organisation_id: r.take(1),
                email: r.take(2),
                password_hash: r.take(3),
            })
            .collect())
    }

    pub async fn count_admins(&self) -> Result<i64> {
        stmt("SELECT COUNT(*) FROM admins")
            .fetch_scalar(&self.db)
            .await
    }

    // --- directory integrations ----------------------------------------------------------

    pub async fn integration(
        &self,
        organisation_id: &str,
        kind: &str,
    ) -> Result<Option<IntegrationRow>> {
        let row = stmt(
            "SELECT id, organisation_id, kind, CAST(CASE WHEN token_hash IS NULL THEN 0 ELSE 1 END AS BIGINT), token_created_at, last_sync_at, \
             delete_mode FROM directory_integrations WHERE organisation_id = $1 AND kind = $2",
        )
        .bind(organisation_id)
        .bind(kind)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|mut r| IntegrationRow {
            id: r.take(0),
            organisation_id: r.take(1),
            kind: r.take(2),
            // Computed truth values are integers: the backends disagree on booleans.
            has_token: r.take::<i64>(3) != 0,
            token_created_at: r.take(4),
            last_sync_at: r.take(5),
            delete_mode: r.take(6),
        }))
    }

    /// Stores `token_hash` as the integration's only token (creating the integration if
    /// needed) and records `audit`, in one transaction: the previous token stops working when
    /// this commits. With `only_if_absent`, an existing token is left alone and `None` is
    /// returned. Returns the integration id.
    pub async fn set_token(&self, change: &TokenChange<'_>) -> Result<Option<String>> {
        let mut tx = self.db.begin().await?;
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
        let id: Option<String> = stmt(&sql)
            .bind(change.new_integration_id)
            .bind(change.organisation_id)
            .bind(change.kind)
            .bind(change.token_hash)
            .bind(change.at)
            .fetch_optional_scalar(&mut tx)
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        record_audit(
            &mut tx,
            change.organisation_id,
            change.audit,
            Some(&id),
            change.at,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The integration whose token hashes to `token_hash`.
    pub async fn token_owner(&self, token_hash: &str) -> Result<Option<TokenOwner>> {
        let row = stmt(
            "SELECT id, organisation_id, CAST(CASE WHEN delete_mode = 'remove' THEN 1 ELSE 0 END AS BIGINT) \
             FROM directory_integrations WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|mut r| TokenOwner {
            integration_id: r.take(0),
            organisation_id: r.take(1),
            delete_removes: r.take::<i64>(2) != 0,
        }))
    }

    /// Sets what DELETE does for an existing integration and records who changed it, in one
    /// transaction. False when the organisation has no such integration yet.
    pub async fn set_delete_mode(
        &self,
        organisation_id: &str,
        kind: &str,
        mode: &str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let id: Option<String> = stmt(
            "UPDATE directory_integrations SET delete_mode = $1 WHERE organisation_id = $2 AND kind = $3 RETURNING id",
        )
        .bind(mode)
        .bind(organisation_id)
        .bind(kind)
        .fetch_optional_scalar(&mut tx)
        .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        record_audit(&mut tx, organisation_id, audit, Some(&id), at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves an integration's last sync forward to `at`; never backwards.
    pub async fn advance_last_sync(&self, integration_id: &str, at: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        stmt(
            "UPDATE directory_integrations SET last_sync_at = $1 \
             WHERE id = $2 AND (last_sync_at IS NULL OR last_sync_at < $1)",
        )
        .bind(at)
        .bind(integration_id)
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// The organisation's audit log, newest first: `limit` events older than `before_id`.
    pub async fn audit_events(
        &self,
        organisation_id: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = stmt(
            "SELECT a.id, a.admin_id, a.actor, a.action, a.integration_id, i.kind, a.detail, a.at \
             FROM audit_events a LEFT JOIN directory_integrations i ON i.id = a.integration_id \
             WHERE a.organisation_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3",
        )
        .bind(organisation_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|mut r| AuditRow {
                id: r.take(0),
                admin_id: r.take(1),
                actor: r.take(2),
                action: r.take(3),
                integration_id: r.take(4),
                integration_kind: r.take(5),
                detail: r.take(6),
                at: r.take(7),
            })
            .collect())
    }

    /// Records an event that concerns no integration (a login, a new admin).
    pub async fn insert_audit(
        &self,
        organisation_id: &str,
        audit: &AuditEntry,
        at: i64,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        record_audit(&mut tx, organisation_id, audit, None, at).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- SCIM users ----------------------------------------------------------------------

    /// Inserts a user; `Conflict` when the userName is taken in the organisation.
    pub async fn insert_user(&self, user: &NewUser<'_>) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let result = stmt(
            "INSERT INTO scim_users (id, organisation_id, integration_id, user_name, user_name_key, \
             display_name, display_name_key, active, attributes, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)",
        )
        .bind(user.id)
        .bind(user.organisation_id)
        .bind(user.integration_id)
        .bind(user.user_name)
        .bind(user.user_name_key)
        .bind(user.display_name)
        .bind(user.display_name_key)
        .bind(user.active)
        .bind(user.attributes)
        .bind(user.at)
        .execute(&mut tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(user_name_taken(user.user_name)),
            Err(e) => return Err(e),
        }
        insert_values(&mut tx, user.organisation_id, user.id, user.values).await?;
        set_external_id(
            &mut tx,
            Table::Users,
            user.id,
            user.integration_id,
            user.external_id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's document if it is still at `expected_version`; the integration that
    /// created the user stays its source. Returns false when it is not (changed meanwhile, or
    /// gone); `Conflict` when the new userName is taken.
    pub async fn update_user(&self, user: &NewUser<'_>, expected_version: i64) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let result = stmt(
            "UPDATE scim_users SET user_name = $1, user_name_key = $2, \
             display_name = $3, display_name_key = $4, active = $5, attributes = $6, \
             version = version + 1, updated_at = $7 \
             WHERE organisation_id = $8 AND id = $9 AND version = $10",
        )
        .bind(user.user_name)
        .bind(user.user_name_key)
        .bind(user.display_name)
        .bind(user.display_name_key)
        .bind(user.active)
        .bind(user.attributes)
        .bind(user.at)
        .bind(user.organisation_id)
        .bind(user.id)
        .bind(expected_version)
        .execute(&mut tx)
        .await;
        match result {
            Ok(1) => {}
            Ok(_) => {
                // Changed meanwhile, maybe by a write grouped with this one and not yet
                // committed: once it is, the caller's next read sees it.
                tx.settle().await?;
                return Ok(false);
            }
            Err(e) if is_unique_violation(&e) => return Err(user_name_taken(user.user_name)),
            Err(e) => return Err(e),
        }
        // Only the indexed values that changed are rewritten: a change touches one or two
        // of them (or none: active, a name), and each rewritten one dirties index pages.
        let stored = stored_values(&mut tx, user.id).await?;
        let (gone, added) = value_changes(&stored, &sorted_values(user.values));
        for v in gone {
            stmt("DELETE FROM scim_user_values WHERE user_id = $1 AND attribute = $2 AND element = $3")
                .bind(user.id)
                .bind(&v.attribute)
                .bind(v.element)
                .execute(&mut tx)
                .await?;
        }
        insert_values(&mut tx, user.organisation_id, user.id, &added).await?;
        set_external_id(
            &mut tx,
            Table::Users,
            user.id,
            user.integration_id,
            user.external_id,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The user `id`, with the externalId `integration_id` keeps for it.
    pub async fn user(
        &self,
        organisation_id: &str,
        id: &str,
        integration_id: Option<&str>,
    ) -> Result<Option<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, {} FROM scim_users WHERE organisation_id = $1 AND id = $2",
            Table::Users.external_id_column(3)
        );
        let row = stmt(&sql)
            .bind(organisation_id)
            .bind(id)
            .bind(integration_id.unwrap_or_default())
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(user_row))
    }

    /// One page of the organisation's users matching `filter`, in `sort` order (oldest
    /// first without one), and the number of all matches.
    pub async fn list_users(
        &self,
        organisation_id: &str,
        query: &ListQuery<'_>,
    ) -> Result<(u64, Vec<UserRow>)> {
        let (total, rows) = self
            .list(Table::Users, USER_COLUMNS, organisation_id, query)
            .await?;
        Ok((total, rows.into_iter().map(user_row).collect()))
    }

    async fn list(
        &self,
        table: Table,
        columns: &str,
        organisation_id: &str,
        query: &ListQuery<'_>,
    ) -> Result<(u64, Vec<Row>)> {
        let sql = ListSql::new(self.backend, table, columns, organisation_id, query);
        let total: i64 = bind_all(stmt(&sql.count), &sql.binds)
            .fetch_scalar(&self.db)
            .await?;
        if query.limit == 0 || query.offset >= total as u64 {
            return Ok((total as u64, Vec::new()));
        }
        let rows = bind_all(stmt(&sql.page), &sql.page_binds)
            .fetch_all(&self.db)
            .await?;
        Ok((total as u64, rows))
    }

    /// SQLite's query plans for the two statements a user list runs (count, then page), so
    /// a benchmark can show which indexes they use.
    pub async fn explain_list_users(
        &self,
        organisation_id: &str,
        query: &ListQuery<'_>,
    ) -> Result<[Vec<String>; 2]> {
        let sql = ListSql::new(self.backend, Table::Users, "id", organisation_id, query);
        let mut plans = [Vec::new(), Vec::new()];
        for (plan, (text, binds)) in plans
            .iter_mut()
            .zip([(&sql.count, &sql.binds), (&sql.page, &sql.page_binds)])
        {
            let (explain, column) = match self.backend {
                Backend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
                Backend::Postgres => ("EXPLAIN", 0),
            };
            let rows = bind_all(stmt(format!("{explain} {text}")), binds)
                .fetch_all(&self.db)
                .await?;
            *plan = rows
                .into_iter()
                .map(|mut r| r.take::<String>(column))
                .collect();
        }
        Ok(plans)
    }

    /// Removes a user for good, with their memberships and indexed values.
    pub async fn delete_user(
        &self,
        organisation_id: &str,
        id: &str,
        if_match: Option<&[i64]>,
    ) -> Result<bool> {
        self.delete_guarded("scim_users", organisation_id, id, if_match)
            .await
    }

    /// The groups each of `user_ids` belongs to: (user id, group id, group display name).
    pub async fn groups_of_users(
        &self,
        organisation_id: &str,
        user_ids: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT m.user_id, g.id, g.display_name FROM scim_group_members m \
                 JOIN scim_groups g ON g.id = m.group_id \
                 WHERE m.organisation_id = $1 AND m.user_id IN ({}) ORDER BY g.display_name_key, g.id",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(&sql).bind(organisation_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for mut r in q.fetch_all(&self.db).await? {
                out.push((r.take(0), r.take(1), r.take(2)));
            }
        }
        Ok(out)
    }

    // --- SCIM groups ---------------------------------------------------------------------

    /// Inserts a group with its members, in one transaction. A member id that is not a user
    /// of the organisation is an `invalidValue` error.
    pub async fn insert_group(&self, group: &NewGroup<'_>, members: &[String]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        stmt(
            "INSERT INTO scim_groups (id, organisation_id, integration_id, display_name, display_name_key, \
             version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(group.id)
        .bind(group.organisation_id)
        .bind(group.integration_id)
        .bind(group.display_name)
        .bind(group.display_name_key)
        .bind(group.at)
        .execute(&mut tx)
        .await?;
        set_external_id(
            &mut tx,
            Table::Groups,
            group.id,
            group.integration_id,
            group.external_id,
        )
        .await?;
        add_members(&mut tx, group.organisation_id, group.id, members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The group `id`, with the externalId `integration_id` keeps for it.
    pub async fn group(
        &self,
        organisation_id: &str,
        id: &str,
        integration_id: Option<&str>,
    ) -> Result<Option<GroupRow>> {
        read_group(&self.db, organisation_id, id, integration_id).await
    }

    pub async fn list_groups(
        &self,
        organisation_id: &str,
        query: &ListQuery<'_>,
    ) -> Result<(u64, Vec<GroupRow>)> {
        let (total, rows) = self
            .list(Table::Groups, GROUP_COLUMNS, organisation_id, query)
            .await?;
        Ok((total, rows.into_iter().map(group_row).collect()))
    }

    /// The members of each of `group_ids`, in a stable order: (group id, user id, display
    /// text). One query per chunk of groups, however many there are.
    pub async fn group_members(
        &self,
        organisation_id: &str,
        group_ids: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for chunk in group_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT m.group_id, u.id, COALESCE(u.display_name, u.user_name) FROM scim_group_members m \
                 JOIN scim_users u ON u.id = m.user_id \
                 WHERE m.organisation_id = $1 AND m.group_id IN ({}) ORDER BY m.group_id, u.user_name_key",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(&sql).bind(organisation_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for mut r in q.fetch_all(&self.db).await? {
                out.push((r.take(0), r.take(1), r.take(2)));
            }
        }
        Ok(out)
    }

    /// Applies a group PATCH in one transaction: all changes or none. An externalId change
    /// is the writing integration's. `None` when the group does not exist;
    /// `PreconditionFailed` when `if_match` names other versions.
    pub async fn change_group(
        &self,
        organisation_id: &str,
        id: &str,
        integration_id: &str,
        if_match: Option<&[i64]>,
        changes: &[GroupChange],
        at: i64,
    ) -> Result<Option<GroupRow>> {
        let display_name = changes.iter().rev().find_map(|c| match c {
            GroupChange::DisplayName(n) => Some(n.as_str()),
            _ => None,
        });
        let mut tx = self.db.begin().await?;
        // The update comes first: it takes the write lock and checks the version at once.
        if !bump_group(
            self.backend,
            &mut tx,
            organisation_id,
            id,
            if_match,
            display_name,
            at,
        )
        .await?
        {
            return missing_or_changed(&mut tx, organisation_id, id, "scim_groups").await;
        }
        for change in changes {
            match change {
                GroupChange::AddMembers(ids) => {
                    add_members(&mut tx, organisation_id, id, ids).await?
                }
                GroupChange::RemoveMembers(ids) => remove_members(&mut tx, id, ids).await?,
                GroupChange::RemoveAllMembers => remove_all_members(&mut tx, id).await?,
                GroupChange::SetMembers(ids) => {
                    remove_all_members(&mut tx, id).await?;
                    add_members(&mut tx, organisation_id, id, ids).await?;
                }
                GroupChange::ExternalId(e) => {
                    set_external_id(&mut tx, Table::Groups, id, integration_id, e.as_deref())
                        .await?
                }
                GroupChange::DisplayName(_) => {}
            }
        }
        let row = read_group(&mut tx, organisation_id, id, Some(integration_id)).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn delete_group(
        &self,
        organisation_id: &str,
        id: &str,
        if_match: Option<&[i64]>,
    ) -> Result<bool> {
        self.delete_guarded("scim_groups", organisation_id, id, if_match)
            .await
    }

    /// Deletes a row of `table` if its version is one of `if_match` (when given). False when
    /// it does not exist; `PreconditionFailed` when it does at another version.
    async fn delete_guarded(
        &self,
        table: &'static str,
        organisation_id: &str,
        id: &str,
        if_match: Option<&[i64]>,
    ) -> Result<bool> {
        let mut sql = format!("DELETE FROM {table} WHERE organisation_id = $1 AND id = $2");
        let (guard, versions) = version_guard(if_match, 3);
        sql.push_str(&guard);
        let mut tx = self.db.begin().await?;
        let mut q = stmt(&sql).bind(organisation_id).bind(id);
        for v in versions {
            q = q.bind(v);
        }
        if q.execute(&mut tx).await? == 1 {
            tx.commit().await?;
            return Ok(true);
        }
        missing_or_changed(&mut tx, organisation_id, id, table)
            .await
            .map(|_: Option<()>| false)
    }

    pub async fn count_users(&self, organisation_id: &str) -> Result<i64> {
        self.count(Table::Users, organisation_id).await
    }

    /// Active and deactivated users per integration kind that created them (`None`: its
    /// integration is gone).
    pub async fn user_counts_by_integration(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<(Option<String>, i64, i64)>> {
        let rows = stmt(
            "SELECT i.kind, CAST(SUM(CASE WHEN u.active THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN u.active THEN 0 ELSE 1 END) AS BIGINT) \
             FROM scim_users u LEFT JOIN directory_integrations i ON i.id = u.integration_id \
             WHERE u.organisation_id = $1 GROUP BY i.kind",
        )
        .bind(organisation_id)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|mut r| (r.take(0), r.take(1), r.take(2)))
            .collect())
    }

    pub async fn count_groups(&self, organisation_id: &str) -> Result<i64> {
        self.count(Table::Groups, organisation_id).await
    }

    async fn count(&self, table: Table, organisation_id: &str) -> Result<i64> {
        stmt(count_sql(table))
            .bind(organisation_id)
            .bind("")
            .fetch_scalar(&self.db)
            .await
    }
}

fn user_name_taken(user_name: &str) -> Error {
    Error::Conflict(format!("userName {user_name:?} is already taken"))
}

const USER_COLUMNS: &str = "id, attributes, version, created_at, updated_at";

fn user_row(mut r: Row) -> UserRow {
    UserRow {
        id: r.take(0),
        attributes: r.take(1),
        version: r.take(2),
        created_at: r.take(3),
        updated_at: r.take(4),
        external_id: r.take(5),
    }
}

#[derive(Clone)]
enum Bind {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// Everything in the organisation `$1`, from the kept counts (`$2` unused but bound).
fn count_sql(table: Table) -> String {
    format!(
        "SELECT COALESCE((SELECT {} FROM scim_counts WHERE organisation_id = $1), 0) WHERE $2 IS NOT NULL",
        table.counted_as()
    )
}

/// The statements of one list request: a count of all matches and the page.
struct ListSql {
    count: String,
    binds: Vec<Bind>,
    page: String,
    page_binds: Vec<Bind>,
}

impl ListSql {
    fn new(
        b: Backend,
        table: Table,
        columns: &str,
        organisation_id: &str,
        query: &ListQuery<'_>,
    ) -> Self {
        let name = table.name();
        // $1 is the organisation, $2 the integration whose externalIds are read.
        let mut binds = vec![
            Bind::Str(organisation_id.to_owned()),
            Bind::Str(query.integration_id.unwrap_or_default().to_owned()),
        ];
        // When the filter looks a value up in scim_user_values, that index must drive the
        // query; `+` keeps the planner from scanning the organisation's rows instead (it
        // would, knowing nothing of the tables' sizes).
        let org = if b == Backend::Sqlite && query.filter.is_some_and(looks_up_values) {
            "+"
        } else {
            ""
        };
        let mut predicate = format!("{org}{name}.organisation_id = $1");
        if let Some(filter) = query.filter {
            predicate.push_str(" AND ");
            condition_sql(b, table, filter, &mut predicate, &mut binds);
        }
        if let Some(integration) = query.created_by {
            binds.push(Bind::Str(integration.to_owned()));
            predicate.push_str(&format!(" AND {name}.integration_id = ${}", binds.len()));
        }
        let n = binds.len();
        let page = format!(
            "SELECT {columns}, {} FROM {name} WHERE {predicate} ORDER BY {} LIMIT ${} OFFSET ${}",
            table.external_id_column(2),
            order_sql(b, table, query.sort),
            n + 1,
            n + 2
        );
        let mut page_binds = binds.clone();
        page_binds.push(Bind::Int(i64::from(query.limit)));
        page_binds.push(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
        Self {
            count: if query.filter.is_some() || query.created_by.is_some() {
                // The count names $2 only through externalId filters; a no-op mention keeps
                // the parameter list the same for both statements.
                format!("SELECT COUNT(*) FROM {name} WHERE {predicate} AND $2 IS NOT NULL")
            } else {
                count_sql(table)
            },
            binds,
            page,
            page_binds,
        }
    }
}

fn bind_all<'q>(mut q: Query<'q>, binds: &'q [Bind]) -> Query<'q> {
    for b in binds {
        q = match b {
            Bind::Str(s) => q.bind(s.as_str()),
            Bind::Int(i) => q.bind(*i),
            Bind::Bool(v) => q.bind(*v),
        };
    }
    q
}

/// Appends the SQL for `c` to `sql`, pushing its parameters onto `binds` (`$1` is always
/// the organisation). Every comparison evaluates to true or false, never NULL, so `not`
/// behaves as SCIM expects on absent values.
fn condition_sql(b: Backend, table: Table, c: &Condition, sql: &mut String, binds: &mut Vec<Bind>) {
    let this = table.name();
    match c {
        Condition::Present(Attr::Member) => {
            sql.push_str(&format!(
                "(EXISTS (SELECT 1 FROM scim_group_members pm WHERE pm.group_id = {this}.id))"
            ));
        }
        Condition::Present(Attr::Value(path)) => {
            let a = bind(binds, Bind::Str(path.clone()));
            sql.push_str(&format!(
                "({this}.id IN (SELECT v.user_id FROM scim_user_values v \
                 WHERE v.organisation_id = $1 AND v.attribute = {a} AND v.value_key IS NOT NULL))"
            ));
        }
        Condition::Present(Attr::ExternalId) => {
            sql.push_str(&format!(
                "({this}.id IN (SELECT x.resource_id FROM {} x WHERE x.integration_id = $2))",
                table.external_ids()
            ));
        }
        Condition::Present(attr) => {
            sql.push_str(&format!("({} IS NOT NULL)", column(table, attr)));
        }
        Condition::Compare(Attr::Member, _, operand) => {
            // The parser lets only `eq` through for members.
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "(EXISTS (SELECT 1 FROM scim_group_members cm WHERE cm.group_id = {this}.id AND cm.user_id = {p}))"
            ));
        }
        Condition::Compare(Attr::Value(path), op, operand) => {
            let a = bind(binds, Bind::Str(path.clone()));
            // `ne` is "not equal": users without the attribute match too.
            let (negate, op) = if *op == Op::Ne {
                ("NOT ", Op::Eq)
            } else {
                ("", *op)
            };
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "({this}.id {negate}IN (SELECT v.user_id FROM scim_user_values v \
                 WHERE v.organisation_id = $1 AND v.attribute = {a} AND {}))",
                compare_sql(b, "v.value_key", op, &p)
            ));
        }
        Condition::Compare(Attr::ExternalId, op, operand) => {
            let (negate, op) = if *op == Op::Ne {
                ("NOT ", Op::Eq)
            } else {
                ("", *op)
            };
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "({this}.id {negate}IN (SELECT x.resource_id FROM {} x WHERE x.integration_id = $2 AND {}))",
                table.external_ids(),
                compare_sql(b, "x.external_id", op, &p)
            ));
        }
        Condition::Compare(attr, op, operand) => {
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&compare_sql(b, &column(table, attr), *op, &p));
        }
        Condition::AnyElement(attribute, element) => {
            let a = bind(binds, Bind::Str((*attribute).to_owned()));
            sql.push_str(&format!(
                "({this}.id IN (SELECT e.user_id FROM scim_user_values e \
                 WHERE e.organisation_id = $1 AND e.attribute = {a} AND "
            ));
            element_sql(b, element, sql, binds);
            sql.push_str("))");
        }
        Condition::Not(inner) => {
            sql.push_str("(NOT ");
            condition_sql(b, table, inner, sql, binds);
            sql.push(')');
        }
        Condition::And(items) | Condition::Or(items) => {
            let joiner = if matches!(c, Condition::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                condition_sql(b, table, item, sql, binds);
            }
            sql.push(')');
        }
    }
}

/// Whether `c` must hold an equality on an indexed value (`emails.value eq`, `title eq`), so
/// the rows it selects are best found through `scim_user_values_lookup`.
fn looks_up_values(c: &Condition) -> bool {
    fn element(c: &ElementCondition) -> bool {
        match c {
            ElementCondition::Compare(Field::Value, Op::Eq, _) => true,
            ElementCondition::And(items) => items.iter().any(element),
            _ => false,
        }
    }
    match c {
        Condition::AnyElement(_, e) => element(e),
        Condition::Compare(Attr::Value(_), Op::Eq, _) => true,
        Condition::And(items) => items.iter().any(looks_up_values),
        _ => false,
    }
}

/// A condition on one row of `scim_user_values e` (one element of a multi-valued attribute).
fn element_sql(b: Backend, c: &ElementCondition, sql: &mut String, binds: &mut Vec<Bind>) {
    let col = |f: Field| match f {
        Field::Value => "e.value_key",
        Field::Type => "e.type_key",
        Field::Display => "e.display_key",
        Field::Primary => "e.is_primary",
    };
    match c {
        ElementCondition::Present(Field::Primary) => sql.push_str("(e.is_primary = TRUE)"),
        ElementCondition::Present(f) => sql.push_str(&format!("({} IS NOT NULL)", col(*f))),
        ElementCondition::Compare(f, op, operand) => {
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&compare_sql(b, col(*f), *op, &p));
        }
        ElementCondition::Not(inner) => {
            sql.push_str("(NOT ");
            element_sql(b, inner, sql, binds);
            sql.push(')');
        }
        ElementCondition::And(items) | ElementCondition::Or(items) => {
            let joiner = if matches!(c, ElementCondition::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                element_sql(b, item, sql, binds);
            }
            sql.push(')');
        }
    }
}

fn bind(binds: &mut Vec<Bind>, value: Bind) -> String {
    binds.push(value);
    format!("${}", binds.len())
}

fn operand_bind(operand: &Operand) -> Bind {
    match operand {
        Operand::Str(s) => Bind::Str(s.clone()),
        Operand::Bool(v) => Bind::Bool(*v),
        Operand::Time(ms) => Bind::Int(*ms),
    }
}

/// `col op p`, true or false even when `col` is NULL.
fn compare_sql(b: Backend, col: &str, op: Op, p: &str) -> String {
    let expr = match op {
        Op::Eq => format!("{col} = {p}"),
        Op::Ne => format!("{col} <> {p}"),
        Op::Co => match b {
            Backend::Sqlite => format!("instr({col}, {p}) > 0"),
            Backend::Postgres => format!("strpos({col}, {p}) > 0"),
        },
        Op::Sw => format!("substr({col}, 1, length({p})) = {p}"),
        Op::Ew => match b {
            Backend::Sqlite => format!("substr({col}, -length({p})) = {p}"),
            Backend::Postgres => format!("right({col}, length({p})) = {p}"),
        },
        Op::Gt => format!("{col} > {p}"),
        Op::Ge => format!("{col} >= {p}"),
        Op::Lt => format!("{col} < {p}"),
        Op::Le => format!("{col} <= {p}"),
    };
    if op == Op::Ne {
        format!("({col} IS NULL OR {expr})")
    } else {
        format!("({col} IS NOT NULL AND {expr})")
    }
}

fn column(table: Table, attr: &Attr) -> String {
    let name = match attr {
        Attr::Id => "id",
        Attr::UserName => "user_name_key",
        Attr::Active => "active",
        Attr::DisplayName => "display_name_key",
        Attr::Created => "created_at",
        Attr::LastModified => "updated_at",
        // Membership, externalIds and indexed values are subqueries, built by the caller.
        Attr::Member | Attr::ExternalId | Attr::Value(_) => "id",
    };
    format!("{}.{name}", table.name())
}

fn order_sql(b: Backend, table: Table, sort: Option<Sort>) -> String {
    // Creation order: created_at, then the insertion sequence for rows created in the same
    // millisecond (SQLite's rowid; an identity column on PostgreSQL).
    let sequence = match b {
        Backend::Sqlite => "rowid",
        Backend::Postgres => "seq",
    };
    let Some(sort) = sort else {
        return format!("created_at, {sequence}");
    };
    let col = match sort.key {
        SortKey::Id => "id".to_owned(),
        SortKey::UserName => "user_name_key".to_owned(),
        SortKey::DisplayName => "display_name_key".to_owned(),
        SortKey::ExternalId => table.external_id_expr(2),
        SortKey::Created => "created_at".to_owned(),
        SortKey::LastModified => "updated_at".to_owned(),
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    // Resources without the attribute come last either way (RFC 7644 §3.4.2.3).
    format!("{col} IS NULL, {col} {direction}, created_at, {sequence}")
}

/// The `If-Match` condition of a guarded write, its parameters numbered from `first`, and
/// the versions to bind. An If-Match naming none of our versions binds -1, which no row has.
fn version_guard(if_match: Option<&[i64]>, first: usize) -> (String, Vec<i64>) {
    match if_match {
        None => (String::new(), Vec::new()),
        Some([]) => (format!(" AND version = ${first}"), vec![-1]),
        Some(versions) => (
            format!(" AND version IN ({})", placeholders(first, versions.len())),
            versions.to_vec(),
        ),
    }
}

/// `$first, $first+1, ...` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids per statement when a list of ids is bound, well under SQLite's parameter limit.
const CHUNK: usize = 500;

const GROUP_COLUMNS: &str = "id, display_name, version, created_at, updated_at";

fn group_row(mut r: Row) -> GroupRow {
    GroupRow {
        id: r.take(0),
        display_name: r.take(1),
        version: r.take(2),
        created_at: r.take(3),
        updated_at: r.take(4),
        external_id: r.take(5),
    }
}

async fn read_group<'a>(
    on: impl Into<On<'a>>,
    organisation_id: &str,
    id: &str,
    integration_id: Option<&str>,
) -> Result<Option<GroupRow>> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS}, {} FROM scim_groups WHERE organisation_id = $1 AND id = $2",
        Table::Groups.external_id_column(3)
    );
    let row = stmt(&sql)
        .bind(organisation_id)
        .bind(id)
        .bind(integration_id.unwrap_or_default())
        .fetch_optional(on)
        .await?;
    Ok(row.map(group_row))
}

/// After a guarded write changed nothing: `Ok(None)` if the resource is gone,
/// `PreconditionFailed` if it exists (so its version did not match). Asked in the write's
/// transaction, which sees what it saw.
async fn missing_or_changed<T>(
    tx: &mut Tx,
    organisation_id: &str,
    id: &str,
    table: &'static str,
) -> Result<Option<T>> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE organisation_id = $1 AND id = $2");
    let exists: i64 = stmt(&sql)
        .bind(organisation_id)
        .bind(id)
        .fetch_scalar(tx)
        .await?;
    if exists == 0 {
        Ok(None)
    } else {
        Err(Error::PreconditionFailed)
    }
}

/// Sets (or with `None` clears) the externalId `integration_id` keeps for a resource.
async fn set_external_id(
    tx: &mut Tx,
    table: Table,
    resource_id: &str,
    integration_id: &str,
    external_id: Option<&str>,
) -> Result<()> {
    let ids = table.external_ids();
    match external_id {
        Some(e) => {
            stmt(format!(
                "INSERT INTO {ids} (resource_id, integration_id, external_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (resource_id, integration_id) DO UPDATE SET external_id = excluded.external_id \
                 WHERE {ids}.external_id <> excluded.external_id"
            ))
            .bind(resource_id)
            .bind(integration_id)
            .bind(e)
            .execute(&mut *tx)
            .await?;
        }
        None => {
            stmt(format!(
                "DELETE FROM {ids} WHERE resource_id = $1 AND integration_id = $2"
            ))
            .bind(resource_id)
            .bind(integration_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

async fn bump_group(
    b: Backend,
    tx: &mut Tx,
    organisation_id: &str,
    id: &str,
    if_match: Option<&[i64]>,
    display_name: Option<&str>,
    at: i64,
) -> Result<bool> {
    let greatest = match b {
        Backend::Sqlite => "MAX",
        Backend::Postgres => "GREATEST",
    };
    let mut sql = format!(
        "UPDATE scim_groups SET version = version + 1, updated_at = {greatest}(updated_at, $3), \
         display_name = COALESCE($4, display_name), display_name_key = COALESCE($5, display_name_key) \
         WHERE organisation_id = $1 AND id = $2"
    );
    let (guard, versions) = version_guard(if_match, 6);
    sql.push_str(&guard);
    let key = display_name.map(scim::user::fold_case);
    let mut q = stmt(&sql)
        .bind(organisation_id)
        .bind(id)
        .bind(at)
        .bind(display_name)
        .bind(key);
    for v in versions {
        q = q.bind(v);
    }
    Ok(q.execute(&mut *tx).await? == 1)
}

/// Records who did what to an integration, in the transaction that did it.
async fn record_audit(
    tx: &mut Tx,
    organisation_id: &str,
    audit: &AuditEntry,
    integration_id: Option<&str>,
    at: i64,
) -> Result<()> {
    stmt(
        "INSERT INTO audit_events (organisation_id, admin_id, actor, action, integration_id, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(organisation_id)
    .bind(&audit.admin_id)
    .bind(&audit.actor)
    .bind(audit.action)
    .bind(integration_id)
    .bind(&audit.detail)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A user's stored filterable values, in [`sorted_values`] order.
async fn stored_values(tx: &mut Tx, user_id: &str) -> Result<Vec<IndexedValue>> {
    let rows = stmt(
        "SELECT attribute, element, value_key, type_key, display_key, is_primary \
         FROM scim_user_values WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(tx)
    .await?;
    let values = rows
        .into_iter()
        .map(|mut r| IndexedValue {
            attribute: r.take(0),
            element: r.take(1),
            value: r.take(2),
            kind: r.take(3),
            display: r.take(4),
            primary: r.take(5),
        })
        .collect::<Vec<_>>();
    Ok(sorted_values(&values))
}

/// Every field of an indexed value, in the order [`sorted_values`] sorts by.
fn value_order(v: &IndexedValue) -> impl Ord + '_ {
    (
        v.attribute.as_str(),
        v.element,
        v.value.as_deref(),
        v.kind.as_deref(),
        v.display.as_deref(),
        v.primary,
    )
}

/// `values` in one order, to compare them whatever order they were written in.
fn sorted_values(values: &[IndexedValue]) -> Vec<IndexedValue> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| value_order(a).cmp(&value_order(b)));
    sorted
}

/// The values in `stored` but not in `new`, and those in `new` but not in `stored` (both
/// sorted by [`sorted_values`]).
fn value_changes(
    stored: &[IndexedValue],
    new: &[IndexedValue],
) -> (Vec<IndexedValue>, Vec<IndexedValue>) {
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    let (mut old, mut new) = (stored.iter().peekable(), new.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (Some(o), Some(n)) => match value_order(o).cmp(&value_order(n)) {
                std::cmp::Ordering::Equal => {
                    old.next();
                    new.next();
                }
                std::cmp::Ordering::Less => gone.extend(old.next().cloned()),
                std::cmp::Ordering::Greater => added.extend(new.next().cloned()),
            },
            (Some(_), None) => gone.extend(old.next().cloned()),
            (None, Some(_)) => added.extend(new.next().cloned()),
            (None, None) => return (gone, added),
        }
    }
}

/// Writes filterable values of a user (see `scim_user_values` in the schema).
async fn insert_values(
    tx: &mut Tx,
    organisation_id: &str,
    user_id: &str,
    values: &[IndexedValue],
) -> Result<()> {
    for chunk in values.chunks(CHUNK / 8) {
        let rows = (0..chunk.len())
            .map(|i| {
                let b = 3 + i * 6;
                format!(
                    "($1, $2, ${b}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO scim_user_values (organisation_id, user_id, attribute, element, value_key, \
             type_key, display_key, is_primary) VALUES {rows}"
        );
        let mut q = stmt(&sql).bind(organisation_id).bind(user_id);
        for v in chunk {
            q = q
                .bind(&v.attribute)
                .bind(v.element)
                .bind(&v.value)
                .bind(&v.kind)
                .bind(&v.display)
                .bind(v.primary);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Adds members, refusing ids that are not users of the organisation.
async fn add_members(
    tx: &mut Tx,
    organisation_id: &str,
    group_id: &str,
    ids: &[String],
) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id FROM scim_users WHERE organisation_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = stmt(&sql).bind(organisation_id);
        for id in chunk {
            q = q.bind(id);
        }
        let known: Vec<String> = q.fetch_all_scalar(&mut *tx).await?;
        if known.len() < chunk.len() {
            let missing = chunk
                .iter()
                .find(|id| !known.contains(id))
                .cloned()
                .unwrap_or_default();
            return Err(Error::Scim(scim::ScimError::invalid_value(format!(
                "member {missing:?} is not a user of this organisation"
            ))));
        }
        let values = (0..chunk.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO scim_group_members (organisation_id, group_id, user_id) VALUES {values} \
             ON CONFLICT (group_id, user_id) DO NOTHING"
        );
        let mut q = stmt(&sql).bind(organisation_id).bind(group_id);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn remove_members(tx: &mut Tx, group_id: &str, ids: &[String]) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM scim_group_members WHERE group_id = $1 AND user_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = stmt(&sql).bind(group_id);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn remove_all_members(tx: &mut Tx, group_id: &str) -> Result<()> {
    stmt("DELETE FROM scim_group_members WHERE group_id = $1")
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::{create_token, Actor, IntegrationKind};

    /// A store on a temporary file with one organisation and its OneLogin integration.
    async fn store() -> (tempfile::TempDir, Store, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let org = store
            .find_or_create_organisation("o", "Org", 1)
            .await
            .unwrap();
        create_token(&store, &org.id, IntegrationKind::OneLogin, &Actor::Operator)
            .await
            .unwrap();
        let integration = store
            .integration(&org.id, "onelogin")
            .await
            .unwrap()
            .unwrap();
        (dir, store, org.id, integration.id)
    }

    fn user<'a>(
        id: &'a str,
        user_name: &'a str,
        org: &'a str,
        integration: &'a str,
        at: i64,
    ) -> NewUser<'a> {
        NewUser {
            id,
            organisation_id: org,
            integration_id: integration,
            user_name,
            user_name_key: user_name,
            external_id: None,
            display_name: None,
            display_name_key: None,
            active: true,
            attributes: "{}",
            values: &[],
            at,
        }
    }

    #[tokio::test]
    async fn rows_created_in_the_same_millisecond_list_in_creation_order() {
        let (_dir, store, org, integration) = store().await;
        // Ids that sort in the opposite order of creation, all created at the same instant.
        let ids = ["u9", "u5", "u1"];
        for id in ids {
            store
                .insert_user(&user(id, id, &org, &integration, 42))
                .await
                .unwrap();
        }
        let query = ListQuery {
            limit: 10,
            ..ListQuery::default()
        };
        let (_, rows) = store.list_users(&org, &query).await.unwrap();
        let listed: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(listed, ids);
    }

    #[tokio::test]
    async fn kept_counts_follow_inserts_and_deletes() {
        let (_dir, store, org, integration) = store().await;
        assert_eq!(store.count_users(&org).await.unwrap(), 0);
        for id in ["a", "b", "c"] {
            store
                .insert_user(&user(id, id, &org, &integration, 1))
                .await
                .unwrap();
        }
        // A failed insert (duplicate userName) counts nothing.
        assert!(store
            .insert_user(&user("d", "a", &org, &integration, 1))
            .await
            .is_err());
        assert!(store.delete_user(&org, "b", None).await.unwrap());
        assert_eq!(store.count_users(&org).await.unwrap(), 2);
        let (total, _) = store
            .list_users(
                &org,
                &ListQuery {
                    limit: 0,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(store.count_groups(&org).await.unwrap(), 0);
    }

    #[test]
    fn only_changed_values_are_rewritten() {
        let value = |attribute: &str, element: i64, value: &str| IndexedValue {
            attribute: attribute.into(),
            element,
            value: Some(value.into()),
            kind: None,
            display: None,
            primary: false,
        };
        let stored = sorted_values(&[
            value("title", 0, "cto"),
            value("emails", 0, "a@x"),
            value("emails", 1, "b@x"),
        ]);
        let new = sorted_values(&[
            value("emails", 1, "b@x"),
            value("emails", 0, "a@x"),
            value("title", 0, "ceo"),
            value("nickname", 0, "j"),
        ]);
        let (gone, added) = value_changes(&stored, &new);
        assert_eq!(gone, [value("title", 0, "cto")]);
        assert_eq!(added, [value("nickname", 0, "j"), value("title", 0, "ceo")]);
        assert_eq!(value_changes(&new, &new), (vec![], vec![]));
    }

    /// Polls a writer once, so that it waits for its turn; it cannot have had it yet.
    async fn poll_once(writer: &mut (impl std::future::Future + Unpin)) {
        tokio::select! {
            biased;
            _ = writer => panic!("the writer cannot have had its turn"),
            () = std::future::ready(()) => {}
        }
    }

    /// Waits until `n` writers wait for their turn.
    async fn writers_waiting(store: &Store, n: usize) {
        while store.db.writers().1 < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn waiting_writers_share_one_transaction_and_a_failed_one_changes_nothing() {
        let (_dir, store, org, integration) = store().await;
        let (begun, _) = store.db.writers();
        let first = store.db.begin().await.unwrap();
        let mut writers = Vec::new();
        // "dup" takes the userName "a" has just taken in the same transaction.
        for (id, name) in [("a", "a"), ("b", "b"), ("dup", "a"), ("c", "c")] {
            let (store, org, integration) = (store.clone(), org.clone(), integration.clone());
            writers.push(tokio::spawn(async move {
                store
                    .insert_user(&user(id, name, &org, &integration, 1))
                    .await
            }));
        }
        writers_waiting(&store, 4).await;
        first.commit().await.unwrap();
        let mut results = Vec::new();
        for writer in writers {
            results.push(writer.await.unwrap().map_err(|e| e.to_string()));
        }
        assert_eq!(
            results,
            [
                Ok(()),
                Ok(()),
                Err("userName \"a\" is already taken".to_owned()),
                Ok(())
            ]
        );
        assert_eq!(store.db.writers().0 - begun, 1, "one transaction for all");
        assert_eq!(store.count_users(&org).await.unwrap(), 3);
        assert!(store.user(&org, "dup", None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_write_commits_itself_when_the_writer_after_it_gives_up() {
        let (_dir, store, org, integration) = store().await;
        let mut first = store.db.begin().await.unwrap();
        stmt("INSERT INTO organisations (id, name, created_at) VALUES ('o2', 'Second', 1)")
            .execute(&mut first)
            .await
            .unwrap();
        // The next writer's request, polled once so that it waits for its turn, and then
        // dropped without running.
        let new_user = user("b", "b", &org, &integration, 1);
        let mut next = Box::pin(store.insert_user(&new_user));
        poll_once(&mut next).await;
        assert_eq!(store.db.writers().1, 1);
        // The first write passes the open transaction to the next writer and waits for
        // its commit.
        let committing = tokio::spawn(first.commit());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            store
                .organisation_by_name("Second")
                .await
                .unwrap()
                .is_none(),
            "handed over, not committed"
        );
        drop(next);
        tokio::time::timeout(Duration::from_secs(5), committing)
            .await
            .expect("the first write committed by itself")
            .unwrap()
            .unwrap();
        assert!(store
            .organisation_by_name("Second")
            .await
            .unwrap()
            .is_some());
        assert!(store.user(&org, "b", None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_update_that_finds_the_row_changed_in_its_group_returns_once_that_commits() {
        let (_dir, store, org, integration) = store().await;
        store
            .insert_user(&user("a", "a", &org, &integration, 1))
            .await
            .unwrap();
        let mut first = store.db.begin().await.unwrap();
        stmt("UPDATE scim_users SET version = 2 WHERE id = 'a'")
            .execute(&mut first)
            .await
            .unwrap();
        let second = {
            let (store, org, integration) = (store.clone(), org.clone(), integration.clone());
            tokio::spawn(async move {
                store
                    .update_user(&user("a", "renamed", &org, &integration, 2), 1)
                    .await
            })
        };
        writers_waiting(&store, 1).await;
        // A third writer keeps the group open; it is polled once and dropped later.
        let new_user = user("c", "c", &org, &integration, 1);
        let mut third = Box::pin(store.insert_user(&new_user));
        poll_once(&mut third).await;
        writers_waiting(&store, 2).await;
        let committing = tokio::spawn(first.commit());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !second.is_finished(),
            "the update waits for the group holding the newer version to commit"
        );
        drop(third);
        assert!(!second.await.unwrap().unwrap(), "version 1 is gone");
        let row = store.user(&org, "a", None).await.unwrap().unwrap();
        assert_eq!(row.version, 2, "and the caller's next read sees it");
        committing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn every_sqlite_connection_runs_in_wal_mode_with_foreign_keys() {
        let (_dir, store, _, _) = store().await;
        let Db::Sqlite(conns) = &store.db else {
            panic!("a sqlite:// store runs on SQLite");
        };
        // Hold several connections at once so the check is not about a single one.
        let mut held = Vec::new();
        for _ in 0..4 {
            let conn = conns.get().unwrap();
            let pragma = |name: &str| -> String {
                conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .unwrap()
            };
            let settings = [
                pragma("journal_mode"),
                pragma("foreign_keys"),
                pragma("synchronous"),
                pragma("busy_timeout"),
            ];
            assert_eq!(settings, ["wal", "1", "1", "5000"]);
            held.push(conn);
        }
    }
}
