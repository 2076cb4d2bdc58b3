//! Admin passwords, hashed with Argon2id (PHC string format, parameters from argon2's
//! defaults: 19 MiB, 2 passes, 1 lane, the OWASP recommendation).
//!
//! Hashing takes tens of milliseconds of CPU, by design, so it never runs on the async
//! workers: each hash or verification runs on a blocking thread, and at most half the
//! machine's cores hash at once (at least one). A flood of logins waits for those slots,
//! while SCIM requests and the console keep the async workers and the other cores.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Shortest password an admin may set.
pub const MIN_LENGTH: usize = 12;

/// How many hashes may run at once: half the cores, at least one.
pub fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(hashing_slots()))
}

/// Runs `work` on a blocking thread once a hashing slot is free.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let _slot = slots()
        .acquire()
        .await
        .map_err(|e| Error::internal("no password hashing slot could be had", e))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal("password hashing did not finish", e))
}

/// The PHC string of a new hash of `password`.
pub async fn hash(password: String) -> Result<String> {
    off_the_workers(move || hash_now(&password)).await?
}

/// True when `password` matches the stored PHC string.
pub async fn verify(password: String, stored: String) -> Result<bool> {
    off_the_workers(move || verify_now(&password, &stored)).await
}

/// Spends the time of one verification, so a login for an unknown email takes as long as one
/// with a wrong password and does not reveal which emails exist.
pub async fn verify_nothing(password: String) -> Result<()> {
    off_the_workers(move || {
        static DUMMY: OnceLock<Option<String>> = OnceLock::new();
        if let Some(stored) = DUMMY.get_or_init(|| hash_now("not a real password").ok()) {
            verify_now(&password, stored);
        }
    })
    .await
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("password hashing failed", e))
}

fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), h.clone())
            .await
            .unwrap());
        assert!(!verify("wrong".into(), h).await.unwrap());
        assert!(
            !verify("correct horse battery".into(), "not a phc string".into())
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn salts_differ() {
        assert_ne!(
            hash("same password".into()).await.unwrap(),
            hash("same password".into()).await.unwrap()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_worker_free() {
        // On a single-threaded runtime, a hash running on the worker would hold off the
        // ticker below until it ended.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        hash("a long enough password".into()).await.unwrap();
        ticker.abort();
        assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 10);
    }
}
