//! Who may try a password, and how fast, so that a stranger cannot lock an admin out:
//! - per account **and** client address: five wrong passwords, then one a minute; past that
//!   the address is refused for that account (`TooManyAttempts`) before the password is
//!   checked;
//! - per client address on any account: twenty, then one every ten seconds (one address
//!   guessing many accounts);
//! - per account from anywhere: never a refusal, only a delay before the answer, doubling
//!   with each failure past ten within the hour's allowance and at most [`MAX_DELAY`], so a
//!   flood from many addresses is slowed while the admin's correct password, from an address
//!   that has not failed, still logs them in.
//!
//! Failures are counted in the database (`login_failures`), so every instance sees them.
//! A second factor is checked against the pending login itself, not these counts, so others'
//! failures never block a client that passed the password step.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::throttle::{bounded, ClientAddr, Policy};
use crate::time;

/// The longest an answer is delayed for an account under attack.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// The first delay, once an account's failures pass its allowance.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// How many failures each key may have.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub pair: Policy,
    pub address: Policy,
    pub account: Policy,
}

impl Default for Lockout {
    fn default() -> Self {
        Self {
            pair: Policy {
                burst: 5,
                every: Duration::from_secs(60),
            },
            address: Policy {
                burst: 20,
                every: Duration::from_secs(10),
            },
            account: Policy {
                burst: 10,
                every: Duration::from_secs(60),
            },
        }
    }
}

/// What a login attempt may do: go on after `delay`, or nothing (refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub delay: Duration,
}

/// An attempt's keys: the account (normalised email, cut) and the client address.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: String,
    address: Option<String>,
}

impl Attempt {
    pub fn new(email: &str, client: Option<ClientAddr>) -> Self {
        Self {
            account: bounded(&email.trim().to_lowercase()).to_owned(),
            address: client.map(ClientAddr::throttle_key),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The keys refused past their limit (pair, address) and the account's own.
    fn keys(&self) -> Vec<((String, String), Key)> {
        let mut keys = Vec::with_capacity(3);
        if let Some(address) = &self.address {
            keys.push(((self.account.clone(), address.clone()), Key::Pair));
            keys.push(((String::new(), address.clone()), Key::Address));
        }
        keys.push(((self.account.clone(), String::new()), Key::Account));
        keys
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Pair,
    Address,
    Account,
}

/// How long past its allowance a key is: `None` when within it. `debt` is how far its
/// paid-off instant lies ahead.
fn over(policy: Policy, debt: Duration) -> Option<Duration> {
    let allowance = policy.every * policy.burst.saturating_sub(1);
    debt.checked_sub(allowance).filter(|d| !d.is_zero())
}

/// The delay for an account `debt` ahead: none within its allowance, then doubling with
/// each failure past it, at most [`MAX_DELAY`].
pub fn account_delay(policy: Policy, debt: Duration) -> Duration {
    let Some(past) = over(policy, debt) else {
        return Duration::ZERO;
    };
    let failures = past.as_millis() / policy.every.as_millis().max(1);
    let doublings = u32::try_from(failures).unwrap_or(u32::MAX).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

fn debt(paid_off: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(paid_off - now).unwrap_or(0))
}

impl Lockout {
    fn policy(&self, key: Key) -> Policy {
        match key {
            Key::Pair => self.pair,
            Key::Address => self.address,
            Key::Account => self.account,
        }
    }

    /// Whether `attempt` may go on, and after what delay; `TooManyAttempts` with the wait
    /// when its address has failed too often, for this account or for any.
    pub async fn admit(&self, store: &Store, attempt: &Attempt) -> Result<Admission> {
        let now = time::now_ms();
        let keys = attempt.keys();
        let paid_off = store
            .login_debts(keys.iter().map(|(k, _)| k.clone()).collect(), now)
            .await?;
        let mut delay = Duration::ZERO;
        let mut wait = None::<Duration>;
        for ((_, key), paid_off) in keys.iter().zip(paid_off) {
            let policy = self.policy(*key);
            let debt = debt(paid_off, now);
            match key {
                Key::Account => delay = account_delay(policy, debt),
                Key::Pair | Key::Address => {
                    if let Some(past) = over(policy, debt) {
                        wait = wait.max(Some(past));
                    }
                }
            }
        }
        match wait {
            Some(wait) => {
                crate::metrics::login_throttled();
                Err(Error::TooManyAttempts(wait))
            }
            None => Ok(Admission { delay }),
        }
    }

    /// Counts a wrong password; whether it locked the address out of the account (it was
    /// within its allowance before, and is past it now), which is worth an audit entry.
    pub async fn failed(&self, store: &Store, attempt: &Attempt) -> Result<bool> {
        crate::metrics::login_failed();
        let now = time::now_ms();
        let keys = attempt.keys();
        let every =
            |key: Key| i64::try_from(self.policy(key).every.as_millis()).unwrap_or(i64::MAX);
        let paid_off = store
            .login_failed(
                keys.iter()
                    .map(|(k, key)| (k.clone(), every(*key)))
                    .collect(),
                now,
            )
            .await?;
        Ok(keys.iter().zip(paid_off).any(|((_, key), paid_off)| {
            let policy = self.policy(*key);
            *key == Key::Pair
                && over(policy, debt(paid_off, now)).is_some()
                && over(policy, debt(paid_off - every(*key), now)).is_none()
        }))
    }

    /// A correct password forgets its address's failures on the account (not the account's
    /// own: one login does not wipe out what an attacker elsewhere has spent).
    pub async fn succeeded(&self, store: &Store, attempt: &Attempt) -> Result<()> {
        match &attempt.address {
            Some(address) => {
                store
                    .login_forget((attempt.account.clone(), address.clone()))
                    .await
            }
            None => Ok(()),
        }
    }
}

/// Forgets every failure counted against the account of `email`, from any address (the
/// operator's `server admin unlock`, see `accounts::unlock`); how many counts went.
pub(crate) async fn unlock(store: &Store, email: &str) -> Result<u64> {
    store
        .unlock_account(Attempt::new(email, None).account())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_slowed_past_its_allowance_never_more_than_the_cap() {
        let policy = Lockout::default().account;
        let every = policy.every;
        assert_eq!(account_delay(policy, Duration::ZERO), Duration::ZERO);
        assert_eq!(account_delay(policy, every * 9), Duration::ZERO);
        assert_eq!(account_delay(policy, every * 9 + every / 2), FIRST_DELAY);
        assert_eq!(
            account_delay(policy, every * 10 + every / 2),
            FIRST_DELAY * 2
        );
        assert_eq!(
            account_delay(policy, every * 12 + every / 2),
            FIRST_DELAY * 8
        );
        assert_eq!(account_delay(policy, every * 10_000), MAX_DELAY);
    }

    #[test]
    fn a_key_is_over_once_past_burst_failures() {
        let policy = Lockout::default().pair;
        assert_eq!(over(policy, policy.every * 4), None);
        assert_eq!(
            over(policy, policy.every * 5),
            Some(policy.every),
            "the sixth within the period waits a period"
        );
    }

    #[test]
    fn attempts_are_keyed_by_normalised_account_and_address() {
        let a = Attempt::new(
            " Ada@Example.COM ",
            Some(ClientAddr("203.0.113.7".parse().unwrap())),
        );
        assert_eq!(a.account(), "ada@example.com");
        assert_eq!(a.address(), Some("203.0.113.7"));
        assert_eq!(
            Attempt::new(&"é".repeat(1000), None).account().len(),
            crate::throttle::MAX_KEY_LEN
        );
    }
}
