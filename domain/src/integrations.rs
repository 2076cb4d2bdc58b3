//! Directory integrations: an organisation's connection to one identity provider, with its
//! provisioning token and last sync.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::AuditEntry;
use crate::deadline::Credential;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::time;
use crate::token::{ProvisioningToken, TokenHash};

/// The integration a bearer token belongs to: who is provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub integration_id: String,
    pub organisation_id: String,
    /// What the console keeps of a user or group this integration deletes.
    pub on_delete: DeleteMode,
    pub kind: IntegrationKind,
}

/// An integration as stored (its token only as whether there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRow {
    pub id: String,
    pub organisation_id: String,
    pub kind: String,
    pub has_token: bool,
    pub token_created_at: Option<i64>,
    pub last_sync_at: Option<i64>,
    pub on_delete: DeleteMode,
}

/// A new provisioning token digest for an organisation's integration of `kind`.
#[derive(Debug, Clone)]
pub struct TokenChange {
    /// The id the integration gets if this creates it.
    pub new_integration_id: String,
    pub organisation_id: String,
    pub kind: &'static str,
    pub token_hash: String,
    /// Leave an existing token in place (create) rather than replace it (reset).
    pub only_if_absent: bool,
    pub audit: AuditEntry,
    pub at: i64,
}

pub use model::{DeleteMode, IntegrationKind};

/// What the console shows about an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationStatus {
    /// `None` until the integration's first token is created.
    pub integration_id: Option<String>,
    pub delete_mode: DeleteMode,
    pub has_token: bool,
    /// Milliseconds since the epoch of the last successful SCIM request.
    pub last_sync_at: Option<i64>,
    /// The IdP still sends a token that was reset: requests presented the integration's
    /// retired tokens, the newest of them after its last successful request.
    pub stale_token: Option<StaleTokenUse>,
}

/// A token replaced by a reset, as kept for a while (its digest only), and whose it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredToken {
    pub token_hash: String,
    pub integration_id: String,
    pub organisation_id: String,
    pub kind: IntegrationKind,
}

/// Requests that presented one retired token, to be added to its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredTokenUse {
    pub token_hash: String,
    pub count: i64,
    /// The newest request: its time (ms since the epoch), client address and user agent.
    pub last_at: i64,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// How much an integration's retired tokens are still presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleTokenUse {
    /// Requests refused for presenting one, since it was retired.
    pub requests: i64,
    /// The newest of them: its time (ms since the epoch), client address and user agent.
    pub last_at: i64,
    pub last_address: Option<String>,
    pub last_user_agent: Option<String>,
}

impl StaleTokenUse {
    /// Whether the newest request with a retired token came after the integration's last
    /// successful one: once a request with the current token succeeded after it, the IdP has
    /// the new token.
    pub fn after(&self, last_sync_at: Option<i64>) -> bool {
        last_sync_at.is_none_or(|synced| self.last_at > synced)
    }
}

/// Who is creating or resetting a token.
#[derive(Debug, Clone)]
pub enum Actor {
    Admin {
        id: String,
        email: String,
    },
    /// The operator's `server token reset` command.
    Operator,
}

impl Actor {
    fn audit(&self, action: &'static str) -> AuditEntry {
        match self {
            Actor::Admin { id, email } => AuditEntry {
                admin_id: Some(id.clone()),
                actor: email.clone(),
                action,
                detail: None,
            },
            Actor::Operator => AuditEntry {
                admin_id: None,
                actor: crate::accounts::OPERATOR.into(),
                action,
                detail: None,
            },
        }
    }
}

pub async fn status(
    store: &Store,
    organisation_id: &str,
    kind: IntegrationKind,
) -> Result<IntegrationStatus> {
    let row = store.integration(organisation_id, kind.as_str()).await?;
    let stale_token = match &row {
        Some(row) => stale_token(store, &row.id, row.last_sync_at).await?,
        None => None,
    };
    Ok(IntegrationStatus {
        integration_id: row.as_ref().map(|r| r.id.clone()),
        delete_mode: row.as_ref().map(|r| r.on_delete).unwrap_or_default(),
        has_token: row.as_ref().is_some_and(|r| r.has_token),
        last_sync_at: row.and_then(|r| r.last_sync_at),
        stale_token,
    })
}

/// Whether the integration's IdP still sends a token that was reset: requests presented its
/// retired tokens, the newest of them after its last successful request (`last_sync_at`, see
/// [`StaleTokenUse::after`]).
pub async fn stale_token(
    store: &Store,
    integration_id: &str,
    last_sync_at: Option<i64>,
) -> Result<Option<StaleTokenUse>> {
    Ok(store
        .stale_token_use(integration_id)
        .await?
        .filter(|stale| stale.after(last_sync_at)))
}

/// Creates the integration's first token. `Refused` if it already has one: replacing a
/// token is a reset, which the admin must ask for explicitly.
pub async fn create_token(
    store: &Store,
    organisation_id: &str,
    kind: IntegrationKind,
    actor: &Actor,
) -> Result<ProvisioningToken> {
    let (token, stored) = store_new_token(store, organisation_id, kind, actor, true).await?;
    match stored {
        Some(_) => Ok(token),
        None => Err(Error::Refused(
            "a provisioning token already exists; reset it to get a new one".into(),
        )),
    }
}

/// Replaces the integration's token (creating the integration if needed). The old token is
/// refused from the moment this returns.
pub async fn reset_token(
    store: &Store,
    organisation_id: &str,
    kind: IntegrationKind,
    actor: &Actor,
) -> Result<ProvisioningToken> {
    let (token, _) = store_new_token(store, organisation_id, kind, actor, false).await?;
    Ok(token)
}

/// Generates a token and stores its digest with the audit entry. The integration id comes
/// back, or `None` when `only_if_absent` found a token already in place.
async fn store_new_token(
    store: &Store,
    organisation_id: &str,
    kind: IntegrationKind,
    actor: &Actor,
    only_if_absent: bool,
) -> Result<(ProvisioningToken, Option<String>)> {
    let token = ProvisioningToken::generate();
    let action = if only_if_absent {
        "token.created"
    } else {
        "token.reset"
    };
    let stored = store
        .set_token(TokenChange {
            new_integration_id: uuid::Uuid::new_v4().to_string(),
            organisation_id: organisation_id.to_owned(),
            kind: kind.as_str(),
            token_hash: token.hash().as_str().to_owned(),
            only_if_absent,
            audit: actor.audit(action),
            at: time::now_ms(),
        })
        .await?;
    Ok((token, stored))
}

/// Sets what the console keeps of what the integration deletes (recorded in the audit
/// log). The integration exists once its first token was created.
pub async fn set_delete_mode(
    store: &Store,
    organisation_id: &str,
    kind: IntegrationKind,
    mode: DeleteMode,
    actor: &Actor,
) -> Result<()> {
    let audit = actor.audit(match mode {
        DeleteMode::Keep => "settings.delete_keeps_record",
        DeleteMode::Erase => "settings.delete_erases",
    });
    if store
        .set_delete_mode(
            organisation_id,
            kind.as_str(),
            mode.as_str(),
            &audit,
            time::now_ms(),
        )
        .await?
    {
        Ok(())
    } else {
        Err(Error::invalid("create the provisioning token first"))
    }
}

/// The integration a presented bearer token belongs to, if any.
pub async fn authenticate(store: &Store, bearer: &str) -> Result<Option<TokenOwner>> {
    store.token_owner(TokenHash::of(bearer).as_str()).await
}

/// The integration whose token (by its digest, `TokenHash`) was until a reset retired it
/// (kept for `RETIRED_TOKEN_DAYS`), for a request whose token no integration has. The lookup
/// works for no organisation, even in a request that presented the token as valid before the
/// reset (whose own store jobs now refuse to run): it keeps the request's deadline only.
pub async fn retired(store: &Store, token_hash: &str) -> Result<Option<RetiredToken>> {
    let lookup = store.retired_token(token_hash);
    match crate::deadline::current() {
        Some(budget) => {
            crate::deadline::within(crate::deadline::Budget::new(budget.deadline()), lookup).await
        }
        None => lookup.await,
    }
}

/// Requests that presented retired tokens, counted in memory and written by a background
/// task at most once per interval, so that an IdP sending an old token in a loop costs no
/// write per request. Bounded: past `MAX_PENDING_RETIRED` tokens waiting, more are dropped
/// until the next write (a retired token is only ever one of an organisation's resets).
#[derive(Debug, Clone, Default)]
pub struct RetiredTokenUses(Arc<Mutex<HashMap<String, RetiredTokenUse>>>);

const MAX_PENDING_RETIRED: usize = 10_000;

impl RetiredTokenUses {
    /// Notes a request that presented `token`'s retired token at `at`.
    pub fn record(
        &self,
        token: &RetiredToken,
        at: i64,
        address: Option<String>,
        user_agent: Option<String>,
    ) {
        let mut pending = self.lock();
        if let Some(used) = pending.get_mut(&token.token_hash) {
            used.count += 1;
            if at >= used.last_at {
                used.last_at = at;
                used.address = address;
                used.user_agent = user_agent;
            }
        } else if pending.len() < MAX_PENDING_RETIRED {
            pending.insert(
                token.token_hash.clone(),
                RetiredTokenUse {
                    token_hash: token.token_hash.clone(),
                    count: 1,
                    last_at: at,
                    address,
                    user_agent,
                },
            );
        }
    }

    /// Writes every pending count, in one job. A failed write is put back to be retried.
    pub async fn flush(&self, store: &Store) {
        let batch: Vec<RetiredTokenUse> = self.lock().drain().map(|(_, used)| used).collect();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.record_retired_token_uses(batch.clone()).await {
            tracing::warn!(error = %crate::error::chain(&e), "could not count requests with retired tokens; will retry");
            let mut pending = self.lock();
            for used in batch {
                match pending.get_mut(&used.token_hash) {
                    Some(newer) => {
                        newer.count += used.count;
                        if used.last_at > newer.last_at {
                            newer.last_at = used.last_at;
                            newer.address = used.address;
                            newer.user_agent = used.user_agent;
                        }
                    }
                    None => {
                        pending.insert(used.token_hash.clone(), used);
                    }
                }
            }
        }
    }

    /// Flushes every `interval` until the returned handle is aborted.
    pub fn spawn_flusher(&self, store: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        crate::last_sync::every(interval, move || {
            let (this, store) = (this.clone(), store.clone());
            async move { this.flush(&store).await }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RetiredTokenUse>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The integrations of the tokens presented lately, by digest, so that a SCIM request needs
/// no store job of its own to learn its organisation: its first job does the work. An entry
/// may outlive its token (reset by another process or instance); that is safe because each
/// store job of the request checks the token again, in its own transaction (see
/// `deadline::present`), and the request is then refused as if the token were unknown.
/// Only valid tokens are kept, so guessing clients cannot fill it.
#[derive(Debug, Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, TokenOwner>>>);

/// Tokens kept at most; past that the cache starts over (there is a token per integration).
const MAX_CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    fn get(&self, token_hash: &str) -> Option<TokenOwner> {
        self.lock().get(token_hash).cloned()
    }

    fn keep(&self, token_hash: String, owner: TokenOwner) {
        let mut tokens = self.lock();
        if tokens.len() >= MAX_CACHED_TOKENS {
            tokens.clear();
        }
        tokens.insert(token_hash, owner);
    }

    /// Forgets a token found no longer valid.
    pub fn forget(&self, credential: &Credential) {
        self.lock().remove(&credential.token_hash);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenOwner>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The integration a presented bearer token belongs to (from `cache`, or else the store),
/// and the credential its request presents to its store jobs. The owner's `on_delete` may
/// be stale when it came from the cache: see [`current_owner`].
pub async fn authenticate_cached(
    store: &Store,
    cache: &TokenCache,
    bearer: &str,
) -> Result<Option<(TokenOwner, Credential)>> {
    let token_hash = TokenHash::of(bearer).as_str().to_owned();
    let owner = match cache.get(&token_hash) {
        Some(owner) => owner,
        None => match store.token_owner(&token_hash).await? {
            Some(owner) => {
                cache.keep(token_hash.clone(), owner.clone());
                owner
            }
            None => return Ok(None),
        },
    };
    let credential = Credential {
        integration_id: owner.integration_id.clone(),
        token_hash,
    };
    Ok(Some((owner, credential)))
}

/// The integration behind `credential` as stored now (its DELETE setting may have changed
/// since its token was cached); `InvalidCredentials` when the token is no longer valid.
pub async fn current_owner(store: &Store, credential: &Credential) -> Result<TokenOwner> {
    match store.token_owner(&credential.token_hash).await? {
        Some(owner) if owner.integration_id == credential.integration_id => Ok(owner),
        _ => Err(Error::InvalidCredentials),
    }
}

/// Whether the credential the current request presented is still valid, for a request that
/// reached no store job (which would have checked it).
pub async fn confirm(store: &Store) -> Result<bool> {
    match store.confirm_credential().await {
        Ok(()) => Ok(true),
        Err(Error::InvalidCredentials) => Ok(false),
        Err(e) => Err(e),
    }
}
