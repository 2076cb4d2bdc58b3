//! Alerts: what tells an organisation's admins, without their opening the console, that
//! provisioning broke and why.
//!
//! - **Destinations** (at most [`MAX_DESTINATIONS`] per organisation): a webhook (an HTTPS URL,
//!   whose body is signed with a secret shown once) or an email address (when the operator
//!   set up SMTP). A webhook's URL and secret are sealed with the server's `SECRET_KEY`: a
//!   Slack webhook's URL is itself a credential.
//! - **Rules**, each on or off, some with a threshold: the SCIM failure rate of an
//!   integration over 15 minutes, no successful sync for N hours (on an integration that has
//!   synced), a retired token still sent, a token created or reset, an admin added or a
//!   second factor removed.
//! - **Conditions** (the first three rules) are checked by [`evaluate`] on every instance;
//!   one alert goes out when a condition starts to hold and one "resolved" when it clears:
//!   the database row of an open condition decides which instance sends them. **Events** (the
//!   last two) are queued in the transaction that records them in the audit log.
//! - **Deliveries** wait in the database until sent ([`claim`], [`finish`]): they survive a
//!   restart, are retried with exponential backoff, and are held by one instance at a time
//!   (a lease), so several instances send each once. Every attempt is in the audit log.
//!   An organisation has at most [`MAX_QUEUED`] deliveries waiting: one whose endpoint is
//!   down cannot fill the queue for others.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::Admin;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::factors::SecretKey;
use crate::integrations::IntegrationKind;
use crate::store::Store;
use crate::time;

/// Destinations one organisation may have.
pub const MAX_DESTINATIONS: usize = 5;
/// Deliveries of one organisation that may wait to be sent; alerts past it are dropped (and
/// logged): the endpoint that holds them up is that organisation's.
pub const MAX_QUEUED: i64 = 50;
/// The window of the failure-rate rule.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Requests an integration must have made in the window for its failure rate to count: one
/// failure in two requests is no outage.
pub const MIN_REQUESTS: i64 = 10;
/// Attempts at one delivery before it is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long an instance holds a delivery it is sending; longer than any attempt takes.
pub const LEASE: Duration = Duration::from_secs(60);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest webhook URL or email address accepted.
const MAX_TARGET: usize = 2048;

/// What raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The SCIM failure rate of an integration above the threshold (%) over 15 minutes.
    FailureRate,
    /// No successful sync for the threshold (hours) on an integration that has synced.
    NoSync,
    /// An identity provider still sends a token a reset retired.
    RetiredToken,
    /// A provisioning token created or reset.
    TokenChanged,
    /// An admin added, or a second factor removed.
    AdminChanged,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::FailureRate,
        Rule::NoSync,
        Rule::RetiredToken,
        Rule::TokenChanged,
        Rule::AdminChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::FailureRate => "failure_rate",
            Rule::NoSync => "no_sync",
            Rule::RetiredToken => "retired_token",
            Rule::TokenChanged => "token_changed",
            Rule::AdminChanged => "admin_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The threshold a rule has until an admin sets one, and the values it may take; `None`
    /// for the rules without one.
    pub fn threshold(self) -> Option<(i64, std::ops::RangeInclusive<i64>)> {
        match self {
            Rule::FailureRate => Some((20, 1..=100)),
            Rule::NoSync => Some((24, 1..=720)),
            _ => None,
        }
    }

    /// The rule an audited action raises an alert for.
    pub(crate) fn of_audit(action: &str) -> Option<Self> {
        match action {
            "token.created" | "token.reset" => Some(Rule::TokenChanged),
            "admin.added" | "admin.created" | "factor.removed" | "factors.reset" => {
                Some(Rule::AdminChanged)
            }
            _ => None,
        }
    }
}

/// An organisation's setting of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSetting {
    pub rule: Rule,
    pub enabled: bool,
    /// `None` for rules without a threshold.
    pub threshold: Option<i64>,
}

impl RuleSetting {
    /// A rule as it is until an admin changes it: on, with its default threshold.
    pub fn default_of(rule: Rule) -> Self {
        Self {
            rule,
            enabled: true,
            threshold: rule.threshold().map(|(default, _)| default),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    Webhook,
    Email,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Email => "email",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [DestinationKind::Webhook, DestinationKind::Email]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A destination as the console shows it: a webhook by its host and the end of its URL
/// only (the rest may be a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub id: String,
    pub kind: DestinationKind,
    pub shown_as: String,
    pub created_at: i64,
}

/// A webhook's URL and signing secret, as sealed in the database.
#[derive(Serialize, Deserialize)]
struct WebhookSecrets {
    url: String,
    secret: String,
}

/// What may receive webhooks: by default only public addresses over HTTPS; the operator
/// may allow private and loopback addresses, over plain HTTP too, for receivers inside
/// their own network (`ALERT_ALLOW_PRIVATE_WEBHOOKS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    pub allow_private: bool,
}

impl WebhookPolicy {
    /// Checks a webhook URL an admin typed; the URL, normalised.
    pub fn check(self, url: &str) -> Result<url::Url> {
        let invalid = |why: &str| Error::invalid(format!("The webhook URL {why}."));
        let url = url.trim();
        if url.len() > MAX_TARGET {
            return Err(invalid("is too long"));
        }
        let parsed = url::Url::parse(url).map_err(|_| invalid("is not a valid URL"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(invalid("must start with https://")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("must not hold a user name or password"));
        }
        match parsed.host() {
            None => return Err(invalid("has no host")),
            Some(url::Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => {
                return Err(invalid("must not point at a private or loopback address"))
            }
            Some(url::Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => {
                return Err(invalid("must not point at a private or loopback address"))
            }
            Some(url::Host::Domain(host))
                if !self.allow_private && (host == "localhost" || host.ends_with(".localhost")) =>
            {
                return Err(invalid("must not point at a private or loopback address"))
            }
            _ => {}
        }
        Ok(parsed)
    }

    /// Whether a webhook may be sent to `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }
}

/// Whether `ip` is on the public internet: not loopback, private, link-local (cloud
/// metadata), shared, documentation, multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT.
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking.
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// How a webhook URL is shown: scheme and host, and the last four characters of the rest,
/// which tell two hooks on one host apart without showing a credential in their path.
fn shown_url(url: &url::Url) -> String {
    let rest = &url[url::Position::BeforePath..];
    let tail: String = rest
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    if rest.chars().count() > 4 {
        format!("{}://{host}{port}/…{tail}", url.scheme())
    } else {
        format!("{}://{host}{port}{rest}", url.scheme())
    }
}

/// Checks an email address an admin typed (the SMTP server has the last word).
fn check_address(address: &str) -> Result<String> {
    let address = address.trim();
    let invalid = || Error::invalid(format!("{address:?} is not an email address."));
    let (local, domain) = address.split_once('@').ok_or_else(invalid)?;
    let bad = |s: &str| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    };
    if address.len() > 254 || bad(local) || bad(domain) || !domain.contains('.') {
        return Err(invalid());
    }
    Ok(address.to_owned())
}

/// The associated data a webhook's secrets are sealed with: its destination.
fn sealed_for(id: &str) -> String {
    format!("alert-destination:{id}")
}

/// The organisation's destinations, oldest first.
pub async fn destinations(store: &Store, organisation_id: &str) -> Result<Vec<Destination>> {
    store.alert_destinations(organisation_id).await
}

/// A new webhook destination and its signing secret (`whsec_` and 64 hex digits), which is
/// shown this once.
pub async fn add_webhook(
    store: &Store,
    admin: &Admin,
    key: Option<&SecretKey>,
    policy: WebhookPolicy,
    url: &str,
) -> Result<(Destination, String)> {
    let key = key.ok_or_else(|| {
        Error::Forbidden(
            "Webhooks need the server's SECRET_KEY, which the operator has not set.".into(),
        )
    })?;
    let url = policy.check(url)?;
    let secret = format!("whsec_{}", crate::token::random_hex(32));
    let id = uuid::Uuid::new_v4().to_string();
    let sealed = key.seal(
        &sealed_for(&id),
        &serde_json::to_vec(&WebhookSecrets {
            url: url.to_string(),
            secret: secret.clone(),
        })
        .map_err(|e| Error::internal("the webhook could not be sealed", e))?,
    )?;
    let destination = Destination {
        id,
        kind: DestinationKind::Webhook,
        shown_as: shown_url(&url),
        created_at: time::now_ms(),
    };
    Ok((add(store, admin, destination, Some(sealed)).await?, secret))
}

/// A new email destination; only when the operator set up SMTP (`smtp`).
pub async fn add_email(
    store: &Store,
    admin: &Admin,
    smtp: bool,
    address: &str,
) -> Result<Destination> {
    if !smtp {
        return Err(Error::Forbidden(
            "Email alerts need an SMTP server, which the operator has not set up (SMTP_URL)."
                .into(),
        ));
    }
    let destination = Destination {
        id: uuid::Uuid::new_v4().to_string(),
        kind: DestinationKind::Email,
        shown_as: check_address(address)?,
        created_at: time::now_ms(),
    };
    add(store, admin, destination, None).await
}

/// Stores a new destination of the admin's organisation, with its audit entry.
async fn add(
    store: &Store,
    admin: &Admin,
    destination: Destination,
    sealed: Option<Vec<u8>>,
) -> Result<Destination> {
    let audit = AuditEntry::by(
        admin,
        "alert.destination_added",
        Some(destination.shown_as.clone()),
    );
    store
        .insert_alert_destination(&admin.organisation_id, &destination, sealed, &audit)
        .await?;
    Ok(destination)
}

/// Removes a destination, with the deliveries still waiting for it.
pub async fn remove_destination(store: &Store, admin: &Admin, id: &str) -> Result<()> {
    store.delete_alert_destination(admin, id).await
}

/// The organisation's rules, every one of them (those it never set, at their defaults).
pub async fn rules(store: &Store, organisation_id: &str) -> Result<Vec<RuleSetting>> {
    let set = store.alert_rules(organisation_id).await?;
    Ok(Rule::ALL
        .into_iter()
        .map(|rule| {
            set.iter()
                .find(|s| s.rule == rule)
                .copied()
                .unwrap_or_else(|| RuleSetting::default_of(rule))
        })
        .collect())
}

/// Sets a rule on or off, and its threshold (ignored for rules without one).
pub async fn set_rule(
    store: &Store,
    admin: &Admin,
    rule: Rule,
    enabled: bool,
    threshold: Option<i64>,
) -> Result<()> {
    let threshold = match (rule.threshold(), threshold) {
        (None, _) => None,
        (Some((default, _)), None) => Some(default),
        (Some((_, range)), Some(t)) if range.contains(&t) => Some(t),
        (Some((_, range)), Some(_)) => {
            return Err(Error::invalid(format!(
                "The threshold must be between {} and {}.",
                range.start(),
                range.end()
            )))
        }
    };
    let setting = RuleSetting {
        rule,
        enabled,
        threshold,
    };
    let detail = match threshold {
        Some(t) if enabled => format!("{} on, threshold {t}", rule.as_str()),
        _ if enabled => format!("{} on", rule.as_str()),
        _ => format!("{} off", rule.as_str()),
    };
    let audit = AuditEntry::by(admin, "alert.rule_set", Some(detail));
    store
        .set_alert_rule(&admin.organisation_id, setting, &audit)
        .await
}

/// An alert as it is queued: the webhook's body and what an email says. The sender adds
/// `console_url` (it knows the public URL) before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// One line a person reads; Slack's incoming webhooks show it as is.
    pub text: String,
    /// The rule (`failure_rate`, ...), or `test`.
    pub alert: String,
    /// `firing`, `resolved` (conditions), `event` (events) or `test`.
    pub status: String,
    pub organisation: String,
    /// The integration's kind, when the alert is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// RFC 3339.
    pub at: String,
    /// The console page to look at, from the console's root.
    pub console_path: String,
}

impl Message {
    fn integration(
        rule: Rule,
        status: &str,
        org: &str,
        kind: IntegrationKind,
        text: String,
        at: i64,
    ) -> Self {
        Self {
            text: format!("{org}: {text}"),
            alert: rule.as_str().into(),
            status: status.into(),
            organisation: org.into(),
            integration: Some(kind.as_str().into()),
            at: time::rfc3339(at),
            console_path: kind.path(),
        }
    }

    /// The alert for an audited event, if it raises one.
    pub(crate) fn of_audit(
        rule: Rule,
        org: &str,
        audit: &AuditEntry,
        integration_kind: Option<IntegrationKind>,
        at: i64,
    ) -> Self {
        let who = &audit.actor;
        let detail = audit.detail.as_deref().unwrap_or_default();
        let integration = integration_kind.map_or("an integration", IntegrationKind::label);
        let text = match audit.action {
            "token.created" => format!("{who} created the {integration} provisioning token."),
            "token.reset" => format!(
                "{who} reset the {integration} provisioning token: the old one no longer works."
            ),
            "admin.added" | "admin.created" => format!("{who} added the admin {detail}."),
            "factor.removed" => format!("{who} removed their second factor {detail}."),
            "factors.reset" => format!("{who} removed every second factor of {detail}."),
            other => format!("{who}: {other} {detail}"),
        };
        Self {
            text: format!("{org}: {text}"),
            alert: rule.as_str().into(),
            status: "event".into(),
            organisation: org.into(),
            integration: integration_kind.map(|k| k.as_str().to_owned()),
            at: time::rfc3339(at),
            console_path: match rule {
                Rule::TokenChanged => integration_kind
                    .map(IntegrationKind::path)
                    .unwrap_or_else(|| "/audit".into()),
                _ => "/audit".into(),
            },
        }
    }

    fn test(org: &str, admin: &Admin, at: i64) -> Self {
        Self {
            text: format!(
                "{org}: a test alert, sent by {} from the console. Alerts reach this destination.",
                admin.email
            ),
            alert: "test".into(),
            status: "test".into(),
            organisation: org.into(),
            integration: None,
            at: time::rfc3339(at),
            console_path: "/settings/alerts".into(),
        }
    }

    /// The email subject: the text without the organisation, shortened.
    pub fn subject(&self) -> String {
        let marker = match self.status.as_str() {
            "resolved" => "[resolved] ",
            "firing" => "[alert] ",
            _ => "",
        };
        let text: String = self.text.chars().take(120).collect();
        format!("{marker}{text}")
    }
}

/// Queues a test alert to one destination.
pub async fn send_test(store: &Store, admin: &Admin, destination_id: &str) -> Result<()> {
    let org = store
        .organisation(&admin.organisation_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let message = Message::test(&org, admin, time::now_ms());
    let audit = AuditEntry::by(admin, "alert.test_requested", None);
    store
        .queue_test_alert(admin, destination_id, &message, &audit)
        .await
}

/// One condition checked for one integration: its key, whether it holds, and the alerts it
/// sends when it starts to hold and when it clears.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub key: String,
    pub holds: bool,
    pub firing: Message,
    pub resolved: Message,
}

/// An integration as the rules look at it.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub id: String,
    pub kind: IntegrationKind,
    pub last_sync_at: Option<i64>,
}

/// Checks the condition rules of every organisation that has a destination, as of `now`,
/// and queues the alerts of conditions that started to hold or cleared. Each organisation's
/// checks run with its own deadline and share of the store.
pub async fn evaluate(store: &Store, now: i64) {
    let organisations = match store.alerting_organisations().await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "could not list the organisations with alerts");
            return;
        }
    };
    for (organisation_id, name) in organisations {
        let checked = crate::deadline::run(Duration::from_secs(10), async {
            crate::deadline::work_for(&organisation_id);
            evaluate_organisation(store, &organisation_id, &name, now).await
        })
        .await;
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::error::chain(&e), "could not check an organisation's alerts")
            }
            Err(crate::deadline::TimedOut) => {
                tracing::warn!("checking an organisation's alerts took longer than 10 s")
            }
        }
    }
}

async fn evaluate_organisation(
    store: &Store,
    organisation_id: &str,
    org: &str,
    now: i64,
) -> Result<()> {
    let rules = rules(store, organisation_id).await?;
    let setting = |rule| rules.iter().find(|s| s.rule == rule && s.enabled).copied();
    let window = i64::try_from(FAILURE_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let mut checks = Vec::new();
    for w in store.watched_integrations(organisation_id).await? {
        let label = w.kind.label();
        let key = |rule: Rule| format!("{}:{}", rule.as_str(), w.id);
        if let Some(RuleSetting {
            threshold: Some(percent),
            ..
        }) = setting(Rule::FailureRate)
        {
            let (total, failed) = store.request_outcomes(&w.id, now - window).await?;
            let rate = if total > 0 { failed * 100 / total } else { 0 };
            checks.push(Check {
                key: key(Rule::FailureRate),
                holds: total >= MIN_REQUESTS && failed * 100 > percent * total,
                firing: Message::integration(
                    Rule::FailureRate,
                    "firing",
                    org,
                    w.kind,
                    format!(
                        "{rate} % of {label}'s SCIM requests failed in the last 15 minutes \
                         ({failed} of {total}; the alert is set at {percent} %)."
                    ),
                    now,
                ),
                resolved: Message::integration(
                    Rule::FailureRate,
                    "resolved",
                    org,
                    w.kind,
                    format!("{label}'s SCIM failure rate is back under {percent} %."),
                    now,
                ),
            });
        }
        if let (
            Some(RuleSetting {
                threshold: Some(hours),
                ..
            }),
            Some(last),
        ) = (setting(Rule::NoSync), w.last_sync_at)
        {
            checks.push(Check {
                key: key(Rule::NoSync),
                holds: now - last > hours * 3_600_000,
                firing: Message::integration(
                    Rule::NoSync,
                    "firing",
                    org,
                    w.kind,
                    format!(
                        "{label} has not synced for more than {hours} h (last sync {}).",
                        time::human_utc(last)
                    ),
                    now,
                ),
                resolved: Message::integration(
                    Rule::NoSync,
                    "resolved",
                    org,
                    w.kind,
                    format!("{label} syncs again."),
                    now,
                ),
            });
        }
        if setting(Rule::RetiredToken).is_some() {
            let stale = crate::integrations::stale_token(store, &w.id, w.last_sync_at).await?;
            let text = match &stale {
                Some(s) => format!(
                    "{label} is still sending the old token: {} request(s) since the reset, \
                     last from {}. Paste the new token into {label}.",
                    s.requests,
                    s.last_address.as_deref().unwrap_or("an unknown address")
                ),
                None => String::new(),
            };
            checks.push(Check {
                key: key(Rule::RetiredToken),
                holds: stale.is_some(),
                firing: Message::integration(Rule::RetiredToken, "firing", org, w.kind, text, now),
                resolved: Message::integration(
                    Rule::RetiredToken,
                    "resolved",
                    org,
                    w.kind,
                    format!("{label} now sends the new token."),
                    now,
                ),
            });
        }
    }
    store.settle_conditions(organisation_id, checks, now).await
}

/// A delivery an instance holds: where it goes and what it says.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub organisation_id: String,
    pub attempt: i64,
    /// Its lease: only the holder of this lease may record the attempt's outcome.
    pub lease_until: i64,
    pub message: Message,
    pub target: Target,
}

/// Where a delivery goes.
#[derive(Clone)]
pub enum Target {
    Webhook { url: String, secret: String },
    Email { address: String },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Webhook { .. } => f.write_str("Webhook(<sealed>)"),
            Target::Email { address } => write!(f, "Email({address})"),
        }
    }
}

/// The stored form of a claimed delivery, before its webhook's secrets are opened.
pub(crate) struct ClaimedRow {
    pub id: i64,
    pub organisation_id: String,
    pub destination_id: String,
    pub attempt: i64,
    pub lease_until: i64,
    pub message: String,
    pub kind: String,
    pub target: String,
    pub sealed: Option<Vec<u8>>,
    pub shown_as: String,
}

/// Takes up to `limit` deliveries that are due, at most `per_organisation` of each
/// organisation less those `busy` (organisation ids, one per delivery this instance is
/// sending now), and holds them for [`LEASE`]. A delivery whose webhook cannot be opened
/// (another SECRET_KEY) is given up at once.
pub async fn claim(
    store: &Store,
    key: Option<&SecretKey>,
    busy: &[String],
    limit: usize,
    per_organisation: usize,
) -> Result<Vec<Claimed>> {
    let now = time::now_ms();
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(60_000);
    let rows = store
        .claim_deliveries(now, now + lease, busy.to_vec(), limit, per_organisation)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let target = match DestinationKind::parse(&row.kind) {
            Some(DestinationKind::Email) => Ok(Target::Email {
                address: row.target.clone(),
            }),
            Some(DestinationKind::Webhook) => open_webhook(key, &row),
            None => Err(format!("unknown destination kind {:?}", row.kind)),
        };
        let message = serde_json::from_str::<Message>(&row.message)
            .map_err(|e| format!("the queued alert is not readable: {e}"));
        match (target, message) {
            (Ok(target), Ok(message)) => claimed.push(Claimed {
                id: row.id,
                organisation_id: row.organisation_id,
                attempt: row.attempt,
                lease_until: row.lease_until,
                message,
                target,
            }),
            (Err(why), _) | (_, Err(why)) => {
                let outcome = Outcome::Unsendable(why);
                store
                    .finish_delivery(&row_claim(&row), &outcome, now, None)
                    .await?;
            }
        }
    }
    Ok(claimed)
}

fn open_webhook(key: Option<&SecretKey>, row: &ClaimedRow) -> std::result::Result<Target, String> {
    let key = key.ok_or("the server has no SECRET_KEY to open the webhook with")?;
    let sealed = row
        .sealed
        .as_deref()
        .ok_or("the webhook has no sealed secret")?;
    let opened = key
        .open(&sealed_for(&row.destination_id), sealed)
        .map_err(|_| "the webhook was sealed with another SECRET_KEY".to_owned())?;
    let secrets: WebhookSecrets =
        serde_json::from_slice(&opened).map_err(|e| format!("the webhook is not readable: {e}"))?;
    Ok(Target::Webhook {
        url: secrets.url,
        secret: secrets.secret,
    })
}

/// What the store needs of a claimed delivery to record its outcome.
pub(crate) struct ClaimRef {
    pub id: i64,
    pub organisation_id: String,
    pub attempt: i64,
    pub lease_until: i64,
    pub shown_as: String,
}

fn row_claim(row: &ClaimedRow) -> ClaimRef {
    ClaimRef {
        id: row.id,
        organisation_id: row.organisation_id.clone(),
        attempt: row.attempt,
        lease_until: row.lease_until,
        shown_as: row.shown_as.clone(),
    }
}

/// How one attempt at a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// The receiver failed or could not be reached; the text says how. Retried.
    Failed(String),
    /// It can never be sent (the destination cannot be opened); given up at once.
    Unsendable(String),
}

/// The wait before attempt `attempt + 1` after attempt `attempt` (from 1) failed: `first`,
/// doubling each time, at most [`MAX_BACKOFF`].
pub fn backoff(first: Duration, attempt: i64) -> Duration {
    let doublings = u32::try_from(attempt.clamp(1, 30) - 1).unwrap_or(0);
    first
        .checked_mul(1u32 << doublings.min(20))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Records how an attempt ended, in the audit log too: sent, failed and retried after
/// [`backoff`], or given up after [`MAX_ATTEMPTS`]. Nothing is recorded if the lease was
/// lost meanwhile (another instance holds the delivery now).
pub async fn finish(
    store: &Store,
    claimed: &Claimed,
    shown_as: &str,
    outcome: &Outcome,
    first_retry: Duration,
) -> Result<()> {
    let claim = ClaimRef {
        id: claimed.id,
        organisation_id: claimed.organisation_id.clone(),
        attempt: claimed.attempt,
        lease_until: claimed.lease_until,
        shown_as: shown_as.to_owned(),
    };
    let retry = i64::try_from(backoff(first_retry, claimed.attempt).as_millis()).unwrap_or(0);
    store
        .finish_delivery(&claim, outcome, time::now_ms(), Some(retry))
        .await
}

impl Claimed {
    /// How the destination is shown in the audit log.
    pub fn shown_as(&self) -> String {
        match &self.target {
            Target::Email { address } => address.clone(),
            Target::Webhook { url, .. } => url::Url::parse(url)
                .map(|u| shown_url(&u))
                .unwrap_or_else(|_| "a webhook".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_https_to_a_public_host_unless_the_operator_allows_private_ones() {
        let strict = WebhookPolicy::default();
        let open = WebhookPolicy {
            allow_private: true,
        };
        for (url, strict_ok, open_ok) in [
            ("https://hooks.slack.com/services/T0/B0/XYZW", true, true),
            ("http://hooks.example.com/x", false, true),
            ("https://127.0.0.1/x", false, true),
            ("https://10.1.2.3/x", false, true),
            ("https://169.254.169.254/latest/meta-data", false, true),
            ("https://[::1]/x", false, true),
            ("https://[::ffff:192.168.0.1]/x", false, true),
            ("https://localhost/x", false, true),
            ("https://user:pw@example.com/x", false, false),
            ("ftp://example.com/x", false, false),
            ("not a url", false, false),
            ("https://", false, false),
        ] {
            assert_eq!(strict.check(url).is_ok(), strict_ok, "strict {url}");
            assert_eq!(open.check(url).is_ok(), open_ok, "open {url}");
        }
    }

    #[test]
    fn a_webhook_is_shown_by_its_host_and_the_end_of_its_url() {
        let url = url::Url::parse("https://hooks.slack.com/services/T0/B0/secretXYZW").unwrap();
        assert_eq!(shown_url(&url), "https://hooks.slack.com/…XYZW");
        let short = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(shown_url(&short), "http://127.0.0.1:8080/");
    }

    #[test]
    fn email_addresses_are_checked_loosely() {
        for (address, ok) in [
            ("ops@example.com", true),
            (" ops@example.com ", true),
            ("ops@localhost", false),
            ("ops example.com", false),
            ("o ps@example.com", false),
            ("@example.com", false),
            ("ops@@example.com", false),
        ] {
            assert_eq!(check_address(address).is_ok(), ok, "{address}");
        }
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 1), Duration::from_secs(30));
        assert_eq!(backoff(first, 2), Duration::from_secs(60));
        assert_eq!(backoff(first, 4), Duration::from_secs(240));
        assert_eq!(backoff(first, 8), MAX_BACKOFF);
        assert_eq!(backoff(first, i64::MAX), MAX_BACKOFF);
    }

    #[test]
    fn audited_events_map_to_their_rules() {
        assert_eq!(Rule::of_audit("token.reset"), Some(Rule::TokenChanged));
        assert_eq!(Rule::of_audit("factor.removed"), Some(Rule::AdminChanged));
        assert_eq!(Rule::of_audit("admin.added"), Some(Rule::AdminChanged));
        assert_eq!(Rule::of_audit("alert.sent"), None, "no alert about alerts");
        assert_eq!(Rule::of_audit("login"), None);
    }
}
