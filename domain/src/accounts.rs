//! Organisations and their admins: creating, disabling and removing admins, passwords and
//! logging in (all audited).

use crate::error::{Error, Result};

use crate::audit::AuditEntry;
use crate::lockout::{Attempt, Lockout};
pub use crate::store::AdminChange;
use crate::store::Store;
use crate::throttle::ClientAddr;
use crate::{password, time};

/// An organisation: the tenant that owns admins, integrations, users and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub name: String,
}

/// An admin as stored, with the password's Argon2id hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub password_hash: String,
    /// When another admin disabled this one; `None` while active.
    pub disabled_at: Option<i64>,
    /// Whether they have a confirmed second factor.
    pub second_factor: bool,
    /// Whether their organisation requires one.
    pub factor_required: bool,
}

/// A logged-in (or just created) admin, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub disabled: bool,
    /// Whether they have a confirmed second factor: their logins need it.
    pub second_factor: bool,
    /// Whether their organisation requires a second factor and they have none yet: until
    /// they set one up, the console lets them do nothing else.
    pub must_enrol: bool,
}

impl From<AdminRow> for Admin {
    fn from(r: AdminRow) -> Self {
        Self {
            id: r.id,
            organisation_id: r.organisation_id,
            email: r.email,
            disabled: r.disabled_at.is_some(),
            second_factor: r.second_factor,
            must_enrol: r.factor_required && !r.second_factor,
        }
    }
}

/// Emails are compared case-insensitively and stored trimmed and lower-cased.
pub fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(format!("{email:?} is not an email address")))
    }
}

/// Creates an admin in the organisation `organisation_name`, creating the organisation first
/// if it does not exist.
pub async fn create_admin(
    store: &Store,
    organisation_name: &str,
    email: &str,
    pw: &str,
) -> Result<(Organisation, Admin)> {
    let organisation_name = organisation_name.trim();
    if organisation_name.is_empty() {
        return Err(Error::invalid("the organisation name must not be empty"));
    }
    let email = normalise_email(email)?;
    check_new_password(pw)?;
    let now = time::now_ms();
    let org = store
        .find_or_create_organisation(&uuid::Uuid::new_v4().to_string(), organisation_name, now)
        .await?;
    let row = AdminRow {
        id: uuid::Uuid::new_v4().to_string(),
        organisation_id: org.id.clone(),
        email,
        password_hash: password::hash(pw.to_owned()).await?,
        disabled_at: None,
        second_factor: false,
        factor_required: false,
    };
    let audit = AuditEntry::by_operator("admin.created", Some(row.email.clone()));
    store.insert_admin(&row, &audit, now).await?;
    Ok((org, row.into()))
}

/// The audit log's name for the operator's command line.
pub const OPERATOR: &str = "operator (command line)";

/// An admin adds another admin to their own organisation.
pub async fn add_admin(store: &Store, by: &Admin, email: &str, pw: &str) -> Result<Admin> {
    let email = normalise_email(email)?;
    check_new_password(pw)?;
    let now = time::now_ms();
    let row = AdminRow {
        id: uuid::Uuid::new_v4().to_string(),
        organisation_id: by.organisation_id.clone(),
        email,
        password_hash: password::hash(pw.to_owned()).await?,
        disabled_at: None,
        second_factor: false,
        factor_required: false,
    };
    let audit = AuditEntry::by(by, "admin.added", Some(row.email.clone()));
    store.insert_admin(&row, &audit, now).await?;
    Ok(row.into())
}

/// The organisation's admins, by email.
pub async fn admins(store: &Store, organisation_id: &str) -> Result<Vec<Admin>> {
    Ok(store
        .admins_of(organisation_id)
        .await?
        .into_iter()
        .map(Admin::from)
        .collect())
}

fn check_new_password(pw: &str) -> Result<()> {
    if pw.chars().count() < password::MIN_LENGTH {
        return Err(Error::invalid(format!(
            "the password must be at least {} characters long",
            password::MIN_LENGTH
        )));
    }
    Ok(())
}

/// Checks an email and password. Every failure is the same `InvalidCredentials`, and an
/// unknown email costs as much time as a wrong password.
pub async fn login(store: &Store, email: &str, pw: &str) -> Result<Admin> {
    let Ok(email) = normalise_email(email) else {
        password::verify_nothing(pw.to_owned()).await?;
        return Err(Error::InvalidCredentials);
    };
    match store.admin_by_email(&email).await? {
        Some(row) => {
            let ok = password::verify(pw.to_owned(), row.password_hash.clone()).await?;
            let audit = AuditEntry {
                admin_id: Some(row.id.clone()),
                actor: row.email.clone(),
                action: if ok { "login" } else { "login.failed" },
                detail: None,
            };
            let at = time::now_ms();
            if ok {
                // Only a correct password learns that the account is disabled.
                if row.disabled_at.is_some() {
                    return Err(Error::Forbidden(
                        "This admin account is disabled. Ask another admin of your organisation \
                         to enable it."
                            .into(),
                    ));
                }
                // With a second factor, the login is recorded when the factor is proved.
                if !row.second_factor {
                    store.insert_audit(&row.organisation_id, &audit, at).await?;
                }
                return Ok(row.into());
            }
            // Recorded after the answer, so that a wrong password takes as long as an
            // unknown email (which has no organisation to record it in).
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.insert_audit(&row.organisation_id, &audit, at).await {
                    tracing::warn!(error = %crate::error::chain(&e), "could not record a failed login");
                }
            });
            Err(Error::InvalidCredentials)
        }
        None => {
            password::verify_nothing(pw.to_owned()).await?;
            Err(Error::InvalidCredentials)
        }
    }
}

/// [`login`] under the [`Lockout`] rules: refused before the password is checked while the
/// client's address has failed too often (for this account, or for many), and answered only
/// after the account's delay while the account is under attack. A lockout that starts is
/// audited in the account's organisation.
pub async fn login_throttled(
    store: &Store,
    lockout: &Lockout,
    client: Option<ClientAddr>,
    email: &str,
    pw: &str,
) -> Result<Admin> {
    let attempt = Attempt::new(email, client);
    let admission = lockout.admit(store, &attempt).await.inspect_err(|_| {
        tracing::debug!(account = attempt.account(), address = ?attempt.address(),
            "login refused: too many failed attempts");
    })?;
    if !admission.delay.is_zero() {
        tokio::time::sleep(admission.delay).await;
    }
    let result = login(store, email, pw).await;
    match &result {
        Ok(_) => lockout.succeeded(store, &attempt).await?,
        Err(Error::InvalidCredentials) => {
            if lockout.failed(store, &attempt).await? {
                audit_lockout(store, &attempt).await?;
            }
        }
        Err(_) => {}
    }
    result
}

/// Records in the account's organisation (if the account exists) that an address is now
/// locked out of it.
async fn audit_lockout(store: &Store, attempt: &Attempt) -> Result<()> {
    let Some(row) = store.admin_by_email(attempt.account()).await? else {
        return Ok(());
    };
    let audit = AuditEntry {
        admin_id: Some(row.id.clone()),
        actor: row.email.clone(),
        action: "login.locked",
        detail: attempt.address().map(|a| format!("from {a}")),
    };
    store
        .insert_audit(&row.organisation_id, &audit, time::now_ms())
        .await
}

/// The operator's `server admin unlock`: forgets the failed logins counted against an
/// admin's account, from every address, and records it in the admin's organisation; how
/// many counts went.
pub async fn unlock(store: &Store, email: &str) -> Result<u64> {
    let email = normalise_email(email)?;
    let row = store
        .admin_by_email(&email)
        .await?
        .ok_or_else(|| Error::invalid(format!("no admin has the email {email}")))?;
    let forgotten = crate::lockout::unlock(store, &email).await?;
    let audit = AuditEntry::by_operator("admin.unlocked", Some(email));
    store
        .insert_audit(&row.organisation_id, &audit, time::now_ms())
        .await?;
    Ok(forgotten)
}

/// The admin behind a session, if it still exists and is not disabled.
pub async fn admin(store: &Store, id: &str) -> Result<Option<Admin>> {
    Ok(store
        .admin_by_id(id)
        .await?
        .map(Admin::from)
        .filter(|a| !a.disabled))
}

/// Whether `pw` is `admin`'s password (a step-up proves the admin is still at the keyboard),
/// under the same [`Lockout`] as logins: a stolen session cannot guess the password
/// faster than a login could.
pub async fn check_password(
    store: &Store,
    lockout: &Lockout,
    client: Option<ClientAddr>,
    admin: &Admin,
    pw: &str,
) -> Result<()> {
    let attempt = Attempt::new(&admin.email, client);
    let admission = lockout.admit(store, &attempt).await?;
    if !admission.delay.is_zero() {
        tokio::time::sleep(admission.delay).await;
    }
    let row = store.admin_by_id(&admin.id).await?.ok_or(Error::NotFound)?;
    if password::verify(pw.to_owned(), row.password_hash).await? {
        lockout.succeeded(store, &attempt).await?;
        Ok(())
    } else {
        if lockout.failed(store, &attempt).await? {
            audit_lockout(store, &attempt).await?;
        }
        Err(Error::InvalidCredentials)
    }
}

/// Records a login completed with a second factor (`how` it was proved).
pub async fn record_login(store: &Store, admin: &Admin, how: &str) -> Result<()> {
    let audit = AuditEntry::by(admin, "login", Some(how.to_owned()));
    store
        .insert_audit(&admin.organisation_id, &audit, time::now_ms())
        .await
}

/// Records that an admin confirmed their password for a sensitive action (a step-up).
pub async fn record_step_up(store: &Store, admin: &Admin) -> Result<()> {
    let audit = AuditEntry::by(admin, "login.step_up", None);
    store
        .insert_audit(&admin.organisation_id, &audit, time::now_ms())
        .await
}

/// An admin changes their own password: the current one is required, and every other
/// session of theirs ends (the one named `keep`, where they are, goes on).
pub async fn change_password(
    store: &Store,
    lockout: &Lockout,
    client: Option<ClientAddr>,
    admin: &Admin,
    keep: &str,
    current: &str,
    new: &str,
) -> Result<()> {
    check_password(store, lockout, client, admin, current)
        .await
        .map_err(|e| match e {
            Error::InvalidCredentials => Error::invalid("the current password is not right"),
            other => other,
        })?;
    check_new_password(new)?;
    if current == new {
        return Err(Error::invalid(
            "the new password must differ from the current one",
        ));
    }
    let hash = password::hash(new.to_owned()).await?;
    let audit = AuditEntry::by(admin, "password.changed", None);
    store
        .set_password(admin, &hash, keep, &audit, time::now_ms())
        .await
}

/// What an admin does to another admin of their organisation: disable (they cannot log in,
/// and their sessions end), enable, or remove. Never themselves, and never the
/// organisation's last active admin.
pub async fn change_admin(
    store: &Store,
    by: &Admin,
    target_id: &str,
    change: AdminChange,
) -> Result<()> {
    let target = store
        .admin_by_id(target_id)
        .await?
        .filter(|t| t.organisation_id == by.organisation_id)
        .ok_or(Error::NotFound)?;
    let audit = AuditEntry {
        admin_id: Some(by.id.clone()),
        actor: by.email.clone(),
        action: match change {
            AdminChange::Disable => "admin.disabled",
            AdminChange::Enable => "admin.enabled",
            AdminChange::Remove => "admin.removed",
        },
        detail: Some(target.email),
    };
    store
        .change_admin(by, target_id, change, &audit, time::now_ms())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalise_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in ["", "ada", "@x", "ada@", "a b@c", "a@b@c"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn create_then_login() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let (org, admin) = create_admin(&store, "Acme", "Ada@Example.com", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(admin.organisation_id, org.id);
        assert_eq!(
            login(&store, "ada@example.COM", "correct horse battery")
                .await
                .unwrap(),
            admin
        );
        assert!(matches!(
            login(&store, "ada@example.com", "wrong password!").await,
            Err(Error::InvalidCredentials)
        ));
        assert!(matches!(
            login(&store, "nobody@example.com", "correct horse battery").await,
            Err(Error::InvalidCredentials)
        ));
        // A second admin joins the same organisation; a duplicate email is refused.
        let (org2, _) = create_admin(&store, "Acme", "bob@example.com", "another long password")
            .await
            .unwrap();
        assert_eq!(org2.id, org.id);
        assert!(matches!(
            create_admin(&store, "Other", "ADA@example.com", "correct horse battery").await,
            Err(Error::Conflict {
                attribute: "email",
                ..
            })
        ));
        assert!(matches!(
            create_admin(&store, "Acme", "c@example.com", "short").await,
            Err(Error::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn a_stranger_cannot_lock_an_admin_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let (org, _) = create_admin(&store, "Acme", "ada@example.com", "correct horse battery")
            .await
            .unwrap();
        let lockout = Lockout::default();
        let from = |last: u8| Some(ClientAddr([10, 0, 0, last].into()));
        // Five wrong passwords for Ada from one address: that address is locked out of her
        // account, even with the right password.
        for _ in 0..5 {
            assert!(matches!(
                login_throttled(&store, &lockout, from(1), "ada@example.com", "wrong!!!!!!!").await,
                Err(Error::InvalidCredentials)
            ));
        }
        let locked = login_throttled(
            &store,
            &lockout,
            from(1),
            " ADA@example.com",
            "correct horse battery",
        )
        .await;
        assert!(
            matches!(locked, Err(Error::TooManyAttempts(wait)) if wait.as_secs() >= 59),
            "{locked:?}"
        );
        // From any other address her password works at once.
        let started = std::time::Instant::now();
        assert!(login_throttled(
            &store,
            &lockout,
            from(2),
            "ada@example.com",
            "correct horse battery"
        )
        .await
        .is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // The lockout is in the audit log, once.
        let events = store.audit_events(&org.id, None, 10).await.unwrap();
        let locks: Vec<_> = events
            .iter()
            .filter(|e| e.action == "login.locked")
            .collect();
        assert_eq!(locks.len(), 1, "{events:?}");
        assert_eq!(locks[0].detail.as_deref(), Some("from 10.0.0.1"));
        // An address guessing many accounts is stopped after twenty failures (five of them on
        // Ada), known accounts or not.
        for i in 0..15 {
            let email = format!("nobody{i}@example.com");
            assert!(matches!(
                login_throttled(&store, &lockout, from(1), &email, "guess guess guess").await,
                Err(Error::InvalidCredentials)
            ));
        }
        assert!(matches!(
            login_throttled(&store, &lockout, from(1), "bob@example.com", "guess guess").await,
            Err(Error::TooManyAttempts(_))
        ));
        // The operator's unlock forgets Ada's counts, so that address may try again.
        assert!(unlock(&store, "Ada@Example.com").await.unwrap() > 0);
        assert!(matches!(
            unlock(&store, "nobody@example.com").await,
            Err(Error::Invalid { .. })
        ));
        assert!(login_throttled(
            &store,
            &lockout,
            from(3),
            "ada@example.com",
            "correct horse battery"
        )
        .await
        .is_ok());
    }
}
