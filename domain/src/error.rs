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
    /// Input an operator or admin typed is unusable; the text says why.
    #[error("{0}")]
    Invalid(String),
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
    #[error("database error: {0}")]
    Database(DbError),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A database error from either driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// The grouped SQLite transaction a write was part of did not commit; the text is the
    /// commit's error.
    #[error("the transaction did not commit: {0}")]
    Commit(std::sync::Arc<str>),
    /// The store is closed (the process is stopping).
    #[error("the store is closed")]
    Closed,
    /// A SQLite job waited for something asynchronous, which the store's own threads cannot
    /// do: a bug in the job.
    #[error("a SQLite job did not complete synchronously")]
    Suspended,
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
        Error::Invalid(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // PostgreSQL's statement_timeout cancelled the statement: the job's deadline.
        if e.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == "57014")
        {
            return Error::Timeout;
        }
        Error::Database(DbError::Sqlx(e))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // The progress handler stopped a statement past its job's deadline.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return Error::Timeout;
        }
        Error::Database(DbError::Sqlite(e))
    }
}
