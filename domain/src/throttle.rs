//! Throttling of failed attempts per key in memory: bad SCIM tokens per client address (the
//! console's logins are counted in the database, see [`crate::lockout`]). Each key may fail
//! `burst` times at once, then once every `every`; while over that rate it is refused with
//! the time to wait. Successes are never counted, so a
//! client that keeps failing does not slow down one that does not.
//!
//! The state is in memory, per instance (behind a load balancer each instance throttles on
//! its own), and bounded: at most [`MAX_KEYS`] keys are tracked, the expired ones dropped
//! first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys tracked at most; past that, keys whose penalty has expired are dropped, and a new
/// key is not tracked until there is room (its attempts are still counted on its other
/// keys, e.g. the account of a login from a new address).
pub const MAX_KEYS: usize = 100_000;

/// Longest key kept, in bytes: a longer one (a megabyte "email") is cut, so that memory
/// stays bounded by [`MAX_KEYS`] whatever clients send.
pub const MAX_KEY_LEN: usize = 320;

/// `key` cut to at most [`MAX_KEY_LEN`] bytes, on a character boundary.
pub(crate) fn bounded(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY_LEN);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// The client address a request came from, as the server determined it (the peer, or the
/// address a trusted proxy forwarded). Absent when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key an address is throttled under: an IPv4 address, or the /64 network of an
    /// IPv6 one (one subscriber is handed a whole /64, and could rotate through it).
    pub fn throttle_key(self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// How many failures a key may have: `burst` at once, then one per `every`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub burst: u32,
    pub every: Duration,
}

/// Failed attempts per key, by the generic cell rate algorithm: each key keeps one instant,
/// the time at which its failures will have been "paid off".
#[derive(Debug, Clone)]
pub struct Throttle {
    policy: Policy,
    paid_off: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Throttle {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            paid_off: Arc::default(),
        }
    }

    /// How long `key` must wait before its next attempt counts, or `None` if it may try now.
    pub fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let paid_off = *self.lock().get(bounded(key))?;
        let allowance = self.policy.every * self.policy.burst.saturating_sub(1);
        let wait = paid_off
            .checked_duration_since(now)?
            .checked_sub(allowance)?;
        (!wait.is_zero()).then_some(wait)
    }

    /// Counts a failed attempt of `key`.
    pub fn fail(&self, key: &str, now: Instant) {
        let key = bounded(key);
        let mut map = self.lock();
        if let Some(paid_off) = map.get_mut(key) {
            *paid_off = (*paid_off).max(now) + self.policy.every;
            return;
        }
        if map.len() >= MAX_KEYS {
            map.retain(|_, paid_off| *paid_off > now);
            if map.len() >= MAX_KEYS {
                return;
            }
        }
        map.insert(key.to_owned(), now + self.policy.every);
    }

    /// Forgets the failures of `key` (an admin who finally typed the right password).
    pub fn forget(&self, key: &str) {
        self.lock().remove(bounded(key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // The map stays consistent whatever a panicking holder did, so poison is ignored.
        self.paid_off
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The throttles of one server: console logins (their counts are in the database, see
/// [`crate::lockout`]) and SCIM bearer tokens (in memory: a token cannot be guessed, so
/// this only tells a misconfigured IdP to back off).
#[derive(Debug, Clone)]
pub struct Throttles {
    pub logins: crate::lockout::Lockout,
    /// Missing or unknown SCIM bearer tokens per client address.
    pub scim_address: Throttle,
}

impl Default for Throttles {
    /// Twenty bad SCIM tokens from one address, then one every five seconds: enough for an
    /// admin pasting tokens by hand, and an IdP with a stale one is told to back off rather
    /// than hammer.
    fn default() -> Self {
        Self {
            logins: crate::lockout::Lockout::default(),
            scim_address: Throttle::new(Policy {
                burst: 20,
                every: Duration::from_secs(5),
            }),
        }
    }
}

/// `wait` as whole seconds for a `Retry-After` header, rounded up.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(burst: u32, every_secs: u64) -> Throttle {
        Throttle::new(Policy {
            burst,
            every: Duration::from_secs(every_secs),
        })
    }

    #[test]
    fn a_burst_is_allowed_then_one_per_period() {
        let t = throttle(3, 10);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.wait("k", start), None);
            t.fail("k", start);
        }
        assert_eq!(t.wait("k", start), Some(Duration::from_secs(10)));
        assert_eq!(
            t.wait("k", start + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        let later = start + Duration::from_secs(10);
        assert_eq!(t.wait("k", later), None);
        t.fail("k", later);
        assert_eq!(t.wait("k", later), Some(Duration::from_secs(10)));
        // A quiet key is forgiven entirely.
        assert_eq!(t.wait("k", later + Duration::from_secs(30)), None);
    }

    #[test]
    fn keys_are_independent_and_can_be_forgotten() {
        let t = throttle(1, 60);
        let now = Instant::now();
        t.fail("a", now);
        assert!(t.wait("a", now).is_some());
        assert_eq!(t.wait("b", now), None);
        t.forget("a");
        assert_eq!(t.wait("a", now), None);
    }

    #[test]
    fn memory_is_bounded_and_expired_keys_make_room() {
        let t = throttle(1, 1);
        let now = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            t.fail(&i.to_string(), now);
        }
        assert_eq!(t.lock().len(), MAX_KEYS);
        let later = now + Duration::from_secs(2);
        t.fail("new", later);
        assert_eq!(t.lock().len(), 1);
        assert!(t.wait("new", later).is_some());
    }

    #[test]
    fn long_keys_are_cut_and_still_throttled() {
        let t = throttle(1, 60);
        let now = Instant::now();
        let long = "é".repeat(100_000);
        t.fail(&long, now);
        assert!(t.wait(&long, now).is_some());
        let map = t.lock();
        let stored = map.keys().next().unwrap();
        assert!(stored.len() <= MAX_KEY_LEN && stored.len() >= MAX_KEY_LEN - 1);
    }

    #[test]
    fn ipv6_clients_are_throttled_per_64() {
        let key = |text: &str| ClientAddr(text.parse().unwrap()).throttle_key();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(5)), 5);
        assert_eq!(retry_after_secs(Duration::from_millis(5001)), 6);
    }
}
