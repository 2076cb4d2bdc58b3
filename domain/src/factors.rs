//! Admins' second factors: authenticator apps (TOTP, RFC 6238), passkeys (see
//! [`crate::passkeys`]) and ten one-time recovery codes, and the organisation's policy that
//! every admin use one.
//!
//! A factor's secret is sealed with the server's [`SecretKey`] (ChaCha20-Poly1305, bound to
//! its admin's id) before it is stored, so a copy of the database alone reveals no secret, and
//! a sealed secret moved to another admin does not open. Recovery codes hold 80 random bits
//! each and are stored as SHA-256 digests. A TOTP code is accepted once: the time step it was
//! accepted at is stored, and only a later one is accepted after it (RFC 6238 §5.2).

use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::accounts::Admin;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::store::{FactorRow, Store};
use crate::time;

/// The name authenticator apps show for the console's codes.
pub const ISSUER: &str = "Directory Console";
/// Recovery codes an admin gets.
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Bytes of a recovery code: 80 bits, 16 Base32 characters.
const RECOVERY_BYTES: usize = 10;
const NONCE_BYTES: usize = 12;

/// The server's key for sealing second factors' secrets (`SECRET_KEY`, or the file
/// `SECRET_KEY_FILE` names): 32 bytes, written as 64 hexadecimal digits.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Reads a key written as 64 hexadecimal digits (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::invalid(
                    "the secret key must be 64 hexadecimal digits (32 bytes), e.g. from \
                     `openssl rand -hex 32`",
                )
            })?;
        Ok(Self(*Key::from_slice(&bytes)))
    }

    /// Reads the key from a file holding its 64 hexadecimal digits.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!(
                "cannot read the secret key file {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text)
    }

    /// A new random key, as 64 hexadecimal digits.
    pub fn generate_hex() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        data_encoding::HEXLOWER.encode(&bytes)
    }

    /// Seals `secret` for `admin_id`: nonce, then ciphertext and tag.
    pub(crate) fn seal(&self, admin_id: &str, secret: &[u8]) -> Result<Vec<u8>> {
        let cipher = ChaCha20Poly1305::new(&self.0);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: admin_id.as_bytes(),
                },
            )
            .map_err(|e| Error::internal("a secret could not be sealed", e.to_string()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`SecretKey::seal`] sealed for `admin_id`.
    pub(crate) fn open(&self, admin_id: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_BYTES {
            return Err(sealed_by_another_key());
        }
        let (nonce, sealed) = sealed.split_at(NONCE_BYTES);
        ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: admin_id.as_bytes(),
                },
            )
            .map_err(|_| sealed_by_another_key())
    }
}

fn sealed_by_another_key() -> Error {
    Error::Forbidden(
        "a second factor could not be read: the server's SECRET_KEY is not the one it was set \
         up with"
            .into(),
    )
}

/// The key, or the error an admin sees when the operator set none.
pub(crate) fn key(key: Option<&SecretKey>) -> Result<&SecretKey> {
    key.ok_or_else(|| {
        Error::Forbidden(
            "Second factors need the server's SECRET_KEY, which the operator has not set.".into(),
        )
    })
}

fn totp(secret: Vec<u8>, account: &str) -> Result<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| Error::internal("an authenticator could not be set up", e))
}

/// A factor being set up: what the admin's authenticator app needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    pub factor_id: String,
    /// The secret in Base32, for typing into an app.
    pub secret: String,
    pub otpauth_url: String,
    /// The `otpauth://` URL as a QR code, an SVG document.
    pub qr_svg: String,
}

impl TotpEnrolment {
    /// The QR code as a `data:` URL, for an `<img>`.
    pub fn qr_data_url(&self) -> String {
        format!(
            "data:image/svg+xml;base64,{}",
            data_encoding::BASE64.encode(self.qr_svg.as_bytes())
        )
    }
}

/// Starts setting up an authenticator app for `admin`: a new secret, stored sealed and
/// unconfirmed until [`confirm_totp`] sees a code from it.
pub async fn start_totp(
    store: &Store,
    secret_key: Option<&SecretKey>,
    admin: &Admin,
    name: &str,
) -> Result<TotpEnrolment> {
    let secret_key = key(secret_key)?;
    let name = factor_name(name)?;
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let app = totp(secret.clone(), &admin.email)?;
    let otpauth_url = app
        .to_url()
        .map_err(|e| Error::internal("an authenticator could not be set up", e))?;
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|e| Error::internal("the QR code could not be drawn", e))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let factor_id = uuid::Uuid::new_v4().to_string();
    store
        .insert_factor(FactorRow {
            id: factor_id.clone(),
            admin_id: admin.id.clone(),
            kind: "totp".into(),
            name,
            sealed_secret: secret_key.seal(&admin.id, &secret)?,
            confirmed: false,
            last_step: None,
            created_at: time::now_ms(),
            last_used_at: None,
        })
        .await?;
    Ok(TotpEnrolment {
        factor_id,
        secret: BASE32_NOPAD.encode(&secret),
        otpauth_url,
        qr_svg,
    })
}

pub(crate) fn factor_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(Error::invalid(
            "name the factor in 1 to 60 characters (e.g. \"Phone\")",
        ));
    }
    Ok(name.to_owned())
}

/// Confirms a factor being set up with a code from it. The admin's first factor comes with
/// [`RECOVERY_CODES`] recovery codes, returned here and never again.
pub async fn confirm_totp(
    store: &Store,
    secret_key: Option<&SecretKey>,
    admin: &Admin,
    factor_id: &str,
    code: &str,
) -> Result<Option<Vec<String>>> {
    let secret_key = key(secret_key)?;
    let factors = store.factors_of(&admin.id, false).await?;
    let factor = factors
        .iter()
        .find(|f| f.id == factor_id && !f.confirmed && f.kind == "totp")
        .ok_or(Error::NotFound)?;
    let secret = secret_key.open(&admin.id, &factor.sealed_secret)?;
    let step = totp(secret, &admin.email)?
        .check(code.trim(), now_secs())
        .ok_or_else(|| Error::invalid("That code is not right. Try the next one."))?;
    let audit = AuditEntry::by(
        admin,
        "factor.enrolled",
        Some(format!("authenticator app {:?}", factor.name)),
    );
    confirm_first(
        store,
        admin,
        factor_id,
        Some(i64::try_from(step).unwrap_or(i64::MAX)),
        &audit,
    )
    .await
}

/// Confirms a factor being set up (at TOTP time step `step`), recording `audit`. The
/// admin's first factor comes with new recovery codes, returned.
pub(crate) async fn confirm_first(
    store: &Store,
    admin: &Admin,
    factor_id: &str,
    step: Option<i64>,
    audit: &AuditEntry,
) -> Result<Option<Vec<String>>> {
    let codes = recovery_codes();
    let first = store
        .confirm_factor(
            admin,
            factor_id,
            step,
            codes.iter().map(|code| digest(code)).collect(),
            audit,
            time::now_ms(),
        )
        .await?;
    Ok(first.then_some(codes))
}

/// New recovery codes: `xxxx-xxxx-xxxx-xxxx`, Base32.
fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            let text = BASE32_NOPAD.encode(&bytes).to_lowercase();
            text.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code's digest, whatever the case and dashes it is typed with.
fn digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    data_encoding::HEXLOWER.encode(&Sha256::digest(normal.as_bytes()))
}

fn now_secs() -> u64 {
    u64::try_from(time::now_ms() / 1000).unwrap_or(0)
}

/// How a second factor was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Totp,
    RecoveryCode,
}

/// Checks `code` for `admin`: a current code of one of their authenticator apps, accepted
/// once, or one of their unused recovery codes, used up (and audited). `InvalidCredentials`
/// otherwise.
pub async fn verify(
    store: &Store,
    secret_key: Option<&SecretKey>,
    admin: &Admin,
    code: &str,
) -> Result<Proof> {
    let code = code.trim();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()) {
        let secret_key = key(secret_key)?;
        let now = now_secs();
        for factor in store.factors_of(&admin.id, true).await? {
            if factor.kind != "totp" {
                continue;
            }
            let secret = secret_key.open(&admin.id, &factor.sealed_secret)?;
            if let Some(step) = totp(secret, &admin.email)?.check(&digits, now) {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if store.accept_step(&factor.id, step, time::now_ms()).await? {
                    return Ok(Proof::Totp);
                }
            }
        }
        return Err(Error::InvalidCredentials);
    }
    let left = store.recovery_codes_left(&admin.id).await?;
    let audit = AuditEntry::by(
        admin,
        "recovery_code.used",
        Some(format!("{} left", left.saturating_sub(1))),
    );
    if store
        .use_recovery_code(admin, &digest(code), &audit, time::now_ms())
        .await?
    {
        Ok(Proof::RecoveryCode)
    } else {
        Err(Error::InvalidCredentials)
    }
}

/// One of an admin's second factors, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorSummary {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The admin's confirmed factors, and how many recovery codes they have left.
pub async fn factors(store: &Store, admin_id: &str) -> Result<(Vec<FactorSummary>, i64)> {
    let factors = store
        .factors_of(admin_id, true)
        .await?
        .into_iter()
        .map(|f| FactorSummary {
            id: f.id,
            kind: f.kind,
            name: f.name,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        })
        .collect();
    Ok((factors, store.recovery_codes_left(admin_id).await?))
}

/// Removes one of the admin's own factors. While their organisation requires a second
/// factor, not their last one.
pub async fn remove(store: &Store, admin: &Admin, factor_id: &str, required: bool) -> Result<()> {
    let factors = store.factors_of(&admin.id, true).await?;
    let factor = factors
        .iter()
        .find(|f| f.id == factor_id)
        .ok_or(Error::NotFound)?;
    if required && factors.len() == 1 {
        return Err(Error::invalid(
            "your organisation requires a second factor: set up another before removing this one",
        ));
    }
    let audit = AuditEntry::by(admin, "factor.removed", Some(format!("{:?}", factor.name)));
    store
        .delete_factors(
            &admin.organisation_id,
            &admin.id,
            Some(factor_id),
            &audit,
            time::now_ms(),
        )
        .await
        .map(drop)
}

/// The operator's `server admin reset-factors`: removes every second factor and recovery
/// code of the admin with `email`, so that they log in with their password alone (and set up
/// a factor again if their organisation requires one); how many factors went.
pub async fn reset(store: &Store, email: &str) -> Result<u64> {
    let email = crate::accounts::normalise_email(email)?;
    let row = store
        .admin_by_email(&email)
        .await?
        .ok_or_else(|| Error::invalid(format!("no admin has the email {email}")))?;
    let audit = AuditEntry::by_operator("factors.reset", Some(email));
    store
        .delete_factors(&row.organisation_id, &row.id, None, &audit, time::now_ms())
        .await
}

/// Sets whether every admin of `admin`'s organisation must use a second factor. Requiring
/// one needs the admin to have one already, so they do not lock themselves out.
pub async fn set_policy(store: &Store, admin: &Admin, required: bool) -> Result<()> {
    if required && !admin.second_factor {
        return Err(Error::invalid(
            "set up a second factor for yourself before requiring one of every admin",
        ));
    }
    let action = if required {
        "policy.second_factor_required"
    } else {
        "policy.second_factor_optional"
    };
    store
        .set_factor_policy(
            &admin.organisation_id,
            required,
            &AuditEntry::by(admin, action, None),
            time::now_ms(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::parse(&SecretKey::generate_hex()).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_admin() {
        let k = key();
        let sealed = k.seal("admin-1", b"secret").unwrap();
        assert_eq!(k.open("admin-1", &sealed).unwrap(), b"secret");
        assert!(k.open("admin-2", &sealed).is_err());
        assert!(key().open("admin-1", &sealed).is_err());
        assert!(k.open("admin-1", &sealed[..5]).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(SecretKey::parse(&"ab".repeat(32)).is_ok());
        assert!(SecretKey::parse(&format!(" {}\n", "AB".repeat(32))).is_ok());
        for bad in ["", "abc", &"ab".repeat(31), &"zz".repeat(32)] {
            assert!(SecretKey::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", key()), "SecretKey(<redacted>)");
    }

    #[test]
    fn recovery_codes_are_random_and_read_whatever_the_case_and_dashes() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert_ne!(codes[0], codes[1]);
        assert_eq!(
            digest(&codes[0]),
            digest(&codes[0].to_uppercase().replace('-', " "))
        );
    }

    #[test]
    fn a_code_is_good_within_one_step_either_side() {
        let app = totp(vec![7; SECRET_BYTES], "ada@example.com").unwrap();
        let now = 1_800_000_000;
        let code = app.generate(now).to_string();
        assert_eq!(app.check(&code, now), Some(now / 30));
        assert_eq!(app.check(&code, now + 30), Some(now / 30));
        assert_eq!(app.check(&code, now - 30), Some(now / 30));
        assert_eq!(app.check(&code, now + 90), None);
    }

    #[tokio::test]
    async fn a_code_is_accepted_once_and_a_recovery_code_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let (_, admin) = crate::accounts::create_admin(
            &store,
            "Acme",
            "ada@example.com",
            "correct horse battery",
        )
        .await
        .unwrap();
        let k = key();
        let started = start_totp(&store, Some(&k), &admin, "Phone").await.unwrap();
        assert!(started.qr_svg.starts_with("<?xml") && started.qr_svg.contains("<svg"));
        assert!(started.otpauth_url.starts_with("otpauth://totp/"));
        let app = totp(
            BASE32_NOPAD.decode(started.secret.as_bytes()).unwrap(),
            &admin.email,
        )
        .unwrap();
        let now = now_secs();
        // Not a factor until confirmed.
        assert!(matches!(
            verify(&store, Some(&k), &admin, &app.generate(now).to_string()).await,
            Err(Error::InvalidCredentials)
        ));
        let wrong = confirm_totp(&store, Some(&k), &admin, &started.factor_id, "000000").await;
        assert!(
            matches!(wrong, Err(Error::Invalid { .. }))
                || app.generate(now).to_string() == "000000"
        );
        let codes = confirm_totp(
            &store,
            Some(&k),
            &admin,
            &started.factor_id,
            &app.generate(now).to_string(),
        )
        .await
        .unwrap()
        .expect("recovery codes with the first factor");
        assert_eq!(codes.len(), RECOVERY_CODES);
        // The code that confirmed it is spent; the next step's code works, once.
        assert!(matches!(
            verify(&store, Some(&k), &admin, &app.generate(now).to_string()).await,
            Err(Error::InvalidCredentials)
        ));
        let next = app.generate(now + 30).to_string();
        assert_eq!(
            verify(&store, Some(&k), &admin, &next).await.unwrap(),
            Proof::Totp
        );
        assert!(matches!(
            verify(&store, Some(&k), &admin, &next).await,
            Err(Error::InvalidCredentials)
        ));
        // A recovery code works once, typed any way.
        let typed = codes[3].to_uppercase();
        assert_eq!(
            verify(&store, Some(&k), &admin, &typed).await.unwrap(),
            Proof::RecoveryCode
        );
        assert!(matches!(
            verify(&store, Some(&k), &admin, &codes[3]).await,
            Err(Error::InvalidCredentials)
        ));
        let (listed, left) = factors(&store, &admin.id).await.unwrap();
        assert_eq!((listed.len(), left), (1, 9));
        // Without the key, or with another, nothing opens.
        assert!(matches!(
            verify(&store, None, &admin, &app.generate(now + 60).to_string()).await,
            Err(Error::Forbidden(_))
        ));
        assert!(verify(
            &store,
            Some(&key()),
            &admin,
            &app.generate(now + 60).to_string()
        )
        .await
        .is_err());
        // The operator's reset removes the factor and its codes.
        assert_eq!(reset(&store, "ADA@example.com").await.unwrap(), 1);
        assert_eq!(factors(&store, &admin.id).await.unwrap(), (vec![], 0));
    }
}
