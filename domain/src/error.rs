//! The domain's one error type; the SCIM API and the console each translate it in one place.

use scim::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a SCIM rule (bad body, filter, path ...).
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the text says which.
    #[error("{0}")]
    Conflict(String),
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
    #[error("database error: {0}")]
    Database(crate::store::DbError),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
