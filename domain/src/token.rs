//! Provisioning tokens: 256 bits from the operating system's CSPRNG behind a recognisable
//! prefix (so secret scanners can spot a leaked one), stored only as a SHA-256 digest.

use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// Every provisioning token starts with this, so leaks are easy to recognise.
pub const PREFIX: &str = "dcpt_";

/// Bytes of entropy in a token.
const SECRET_BYTES: usize = 32;

/// A freshly generated token. The plaintext lives only as long as this value: it is shown to
/// the admin once and never stored.
pub struct ProvisioningToken(String);

impl ProvisioningToken {
    /// Draws a new token from the OS CSPRNG. Panics only if the OS has no randomness to give,
    /// in which case no token could ever be safe.
    pub fn generate() -> Self {
        Self(format!("{PREFIX}{}", random_hex(SECRET_BYTES)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_plaintext(self) -> String {
        self.0
    }

    /// The digest under which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for ProvisioningToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProvisioningToken(<redacted>)")
    }
}

/// The SHA-256 digest of a token, hex-encoded: what the database holds and what a presented
/// bearer token is looked up by. A full-entropy secret needs no salt or slow hash, and a
/// lookup by digest never compares secret characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(presented: &str) -> Self {
        Self(hex(&Sha256::digest(presented.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `n` bytes from the OS CSPRNG, hex-encoded. Panics only if the OS has no randomness to
/// give, in which case no secret could ever be safe.
pub(crate) fn random_hex(n: usize) -> String {
    let mut secret = vec![0u8; n];
    OsRng
        .try_fill_bytes(&mut secret)
        .expect("the operating system's random number generator failed");
    hex(&secret)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_prefix_and_256_bits() {
        let t = ProvisioningToken::generate();
        let body = t.expose().strip_prefix(PREFIX).unwrap();
        assert_eq!(body.len(), 64);
        assert!(body.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn tokens_are_distinct() {
        let a = ProvisioningToken::generate();
        let b = ProvisioningToken::generate();
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn hash_is_sha256_hex_and_not_the_token() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = ProvisioningToken::generate();
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
        assert!(!t.hash().as_str().contains(&t.expose()[PREFIX.len()..]));
    }

    #[test]
    fn debug_does_not_reveal_the_token() {
        let t = ProvisioningToken::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
