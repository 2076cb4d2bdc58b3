//! The domain's one error type; the SCIM API and the console each translate it in one place.
//! [`DbError`] is what a database driver reported, whichever backend ran the statement.

use std::time::Duration;

use scim::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a SCIM rule (bad body, filter, path ...).
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("not found")]
    NotFound,
    /// A value that must be unique is taken: which attribute (`userName`, `email`), and
    /// the value.
    #[error("{attribute} {value:?} is already taken")]
    Conflict {
        attribute: &'static str,
        value: String,
    },
    /// The request cannot be done as things stand (a token exists already, a limit is
    /// reached); the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// An If-Match version did not match the stored one.
    #[error("the resource has changed")]
    PreconditionFailed,
    /// Email or password is wrong; deliberately says nothing about which.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failed attempts from this account or address; try again after the wait.
    #[error("too many failed attempts; try again in {} s", crate::throttle::retry_after_secs(*.0))]
    TooManyAttempts(std::time::Duration),
    /// Input an operator or admin typed is unusable; `detail` says why.
    #[error("{detail}")]
    Invalid { detail: String },
    /// The caller may not do this; the text says why.
    #[error("{0}")]
    Forbidden(String),
    /// The action needs the admin to prove their identity again (a login within the
    /// step-up window).
    #[error("a recent login is required")]
    StepUpRequired,
    /// The request's deadline passed before its work was done; what it had done is rolled
    /// back.
    #[error("the request took longer than its deadline")]
    Timeout,
    /// The store has more work queued than it takes on (for this organisation, or in all);
    /// nothing was done. Try again after the wait.
    #[error("the service is busy; try again in {} s", crate::throttle::retry_after_secs(*.0))]
    Busy(Duration),
    #[error("the database failed")]
    Database(#[source] DbError),
    #[error("a database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Something inside the service failed that no input explains (sealing a secret,
    /// encoding a session, reading back what it stored): `what` it was doing, and why.
    #[error("{what}")]
    Internal {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Input that is unusable, `detail` saying why.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Error::Invalid {
            detail: detail.into(),
        }
    }

    /// An internal failure while doing `what`.
    pub fn internal(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            what,
            source: source.into(),
        }
    }
}

/// An error and every error under it (its sources), as "what: why: why", for logs and for
/// the binary's last word.
pub fn chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> impl std::fmt::Display + 'a {
    struct Chain<'a>(&'a (dyn std::error::Error + 'static));
    impl std::fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)?;
            let mut source = self.0.source();
            while let Some(e) = source {
                write!(f, ": {e}")?;
                source = e.source();
            }
            Ok(())
        }
    }
    Chain(error)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A database error from either driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// The grouped SQLite transaction a write was part of did not commit.
    #[error("the grouped transaction did not commit")]
    Commit(#[source] GroupFailure),
    /// The store is closed (the process is stopping).
    #[error("the store is closed")]
    Closed,
    /// A SQLite job waited for something asynchronous, which the store's own threads cannot
    /// do: a bug in the job.
    #[error("a SQLite job did not complete synchronously")]
    Suspended,
}

/// Why a grouped SQLite transaction did not commit (shared by every job of the group).
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupFailure {
    /// An error in one of its jobs made SQLite roll the whole transaction back.
    #[error("an error in one of its writes rolled it back")]
    RolledBack,
    #[error(transparent)]
    Commit(std::sync::Arc<rusqlite::Error>),
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
            _ => false,
        }
    }
}

impl Error {
    /// Whether a UNIQUE constraint refused a write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Database(d) if d.is_unique_violation())
    }
}

impl From<model::UnknownValue> for Error {
    fn from(e: model::UnknownValue) -> Self {
        Error::invalid(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            // PostgreSQL's statement_timeout cancelled the statement: the job's deadline.
            Some("57014") => Error::Timeout,
            // The transaction lost to another one (serialization failure, deadlock, a lock
            // not available): nothing of it was written, and the same request may well
            // succeed again.
            Some("40001" | "40P01" | "55P03") => Error::Busy(crate::store::RETRY_AFTER),
            _ => Error::Database(DbError::Sqlx(e)),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if let Some(busy) = busy(&e) {
            return busy;
        }
        // The progress handler stopped a statement past its job's deadline.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return Error::Timeout;
        }
        Error::Database(DbError::Sqlite(e))
    }
}

/// `Busy` when another process held the SQLite database locked past the busy timeout (the
/// retries SQLite makes for a lock): nothing was written, and trying again later may work.
fn busy(e: &rusqlite::Error) -> Option<Error> {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
    .then_some(Error::Busy(crate::store::RETRY_AFTER))
}

impl From<GroupFailure> for Error {
    fn from(failure: GroupFailure) -> Self {
        match &failure {
            GroupFailure::Commit(e) => busy(e),
            GroupFailure::RolledBack => None,
        }
        .unwrap_or(Error::Database(DbError::Commit(failure)))
    }
}
