//! Sending alerts (see `domain::alerts`): the background task that checks the alert rules,
//! and the one that delivers queued alerts by webhook (`reqwest`) and email (`lettre`).
//!
//! Each attempt has a deadline ([`ATTEMPT_TIMEOUT`]); an instance sends at most
//! [`IN_FLIGHT`] alerts at once and [`IN_FLIGHT_PER_ORGANISATION`] of one organisation, so a
//! receiver that hangs holds up only its own organisation's alerts. Webhooks go only to
//! public addresses unless the operator allows private ones: every address a host name
//! resolves to is checked at connection time (no rebinding), and redirects are not followed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::alerts::{Claimed, Message, Outcome, Target, WebhookPolicy};
use domain::factors::SecretKey;
use domain::store::Store;
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::Sha256;

/// The longest one attempt (connection, TLS, request, answer) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Alerts one instance sends at once.
pub const IN_FLIGHT: usize = 16;
/// Alerts of one organisation one instance sends at once.
pub const IN_FLIGHT_PER_ORGANISATION: usize = 2;
/// How often the queue is looked at.
const POLL: Duration = Duration::from_millis(500);

/// How alerts are checked and sent, from the configuration.
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// `PUBLIC_URL`: the links alerts carry.
    pub public_url: String,
    /// `SMTP_URL`: lettre's URL form, e.g. `smtps://user:password@smtp.example.com`.
    pub smtp_url: Option<SmtpUrl>,
    /// `ALERT_EMAIL_FROM`: the sender of alert emails.
    pub email_from: String,
    /// `ALERT_ALLOW_PRIVATE_WEBHOOKS`.
    pub webhooks: WebhookPolicy,
    /// `ALERT_CHECK_SECONDS`: how often the rules are checked.
    pub check_every: Duration,
    /// `ALERT_RETRY_SECONDS`: the wait before the second attempt, doubled for each next one.
    pub first_retry: Duration,
    pub secret_key: Option<SecretKey>,
}

/// `SMTP_URL`, which may hold a password: never shown, in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpUrl(<redacted>)")
    }
}

/// An SMTP transport and its sender, built once.
#[derive(Clone)]
struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Checks `SMTP_URL` and `ALERT_EMAIL_FROM`, as the server starts.
pub fn check_smtp(url: &str, from: &str) -> Result<(), String> {
    smtp(url, from).map(|_| ())
}

fn smtp(url: &str, from: &str) -> Result<Smtp, String> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("SMTP_URL is not a usable SMTP URL: {e}"))?
        .timeout(Some(ATTEMPT_TIMEOUT))
        .build();
    let from = from
        .parse::<Mailbox>()
        .map_err(|e| format!("ALERT_EMAIL_FROM {from:?} is not an email address: {e}"))?;
    Ok(Smtp { transport, from })
}

/// Resolves webhook hosts, keeping only the addresses the policy allows.
struct GuardedResolver(WebhookPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (private, loopback and link-local \
                     ones are refused)"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// What sends one alert.
#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    smtp: Option<Smtp>,
    settings: AlertSettings,
}

impl Sender {
    fn new(settings: AlertSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT / 2)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scim-console-alerts/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver(settings.webhooks)))
            .build()
            .map_err(|e| format!("the webhook client could not be built: {e}"))?;
        let smtp = match &settings.smtp_url {
            Some(url) => Some(smtp(&url.0, &settings.email_from)?),
            None => None,
        };
        Ok(Self {
            http,
            smtp,
            settings,
        })
    }

    /// The body a webhook receives: the alert with the console's link.
    fn body(&self, message: &Message) -> Vec<u8> {
        let mut body = serde_json::to_value(message).unwrap_or_default();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("console_path");
            fields.insert("console_url".into(), self.link(message).into());
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn link(&self, message: &Message) -> String {
        format!("{}{}", self.settings.public_url, message.console_path)
    }

    async fn send(&self, claimed: &Claimed) -> Outcome {
        match &claimed.target {
            Target::Webhook { url, secret } => self.webhook(claimed, url, secret).await,
            Target::Email { address } => self.email(&claimed.message, address).await,
        }
    }

    async fn webhook(&self, claimed: &Claimed, url: &str, secret: &str) -> Outcome {
        // Checked again: the operator may have stopped allowing private addresses since.
        if let Err(e) = self.settings.webhooks.check(url) {
            return Outcome::Unsendable(e.to_string());
        }
        let body = self.body(&claimed.message);
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                "X-Signature",
                format!("sha256={}", signature(secret, &body)),
            )
            .header("X-Alert-Delivery", claimed.id.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Outcome::Sent,
            Ok(response) => Outcome::Failed(format!("the receiver answered {}", response.status())),
            // Without the URL: its path may be a credential.
            Err(e) => Outcome::Failed(e.without_url().to_string()),
        }
    }

    async fn email(&self, message: &Message, address: &str) -> Outcome {
        let Some(smtp) = &self.smtp else {
            return Outcome::Unsendable("no SMTP server is set up (SMTP_URL)".into());
        };
        let to = match address.parse::<Mailbox>() {
            Ok(to) => to,
            Err(e) => return Outcome::Unsendable(format!("{address:?}: {e}")),
        };
        let email = lettre::Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(message.subject())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(format!(
                "{}\n\nOpen the console: {}\n\nSent at {} by the SCIM console's alerts \
                 (Settings > Alerts).\n",
                message.text,
                self.link(message),
                message.at
            ));
        let email = match email {
            Ok(email) => email,
            Err(e) => return Outcome::Unsendable(e.to_string()),
        };
        match smtp.transport.send(email).await {
            Ok(_) => Outcome::Sent,
            Err(e) => Outcome::Failed(format!("the SMTP server: {e}")),
        }
    }
}

/// HMAC-SHA256 of `body` under `secret`, hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts checking the rules every `check_every`, and delivering what is queued.
pub fn spawn(
    store: Store,
    settings: AlertSettings,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let sender = Sender::new(settings.clone())?;
    let checker = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(settings.check_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                domain::alerts::evaluate(&store, domain::time::now_ms()).await;
            }
        })
    };
    let deliverer = tokio::spawn(deliver(store, sender));
    Ok(vec![checker, deliverer])
}

/// Claims due deliveries and sends each in a task of its own, within the limits of
/// [`IN_FLIGHT`] and [`IN_FLIGHT_PER_ORGANISATION`]. Aborting it aborts the sends under way:
/// their leases lapse and another attempt sends them.
async fn deliver(store: Store, sender: Sender) {
    let busy: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut sends = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while sends.try_join_next().is_some() {}
        let now_busy = busy.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let free = IN_FLIGHT.saturating_sub(now_busy.len());
        if free == 0 {
            continue;
        }
        let claimed = match domain::alerts::claim(
            &store,
            sender.settings.secret_key.as_ref(),
            &now_busy,
            free,
            IN_FLIGHT_PER_ORGANISATION,
        )
        .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %domain::error::chain(&e), "could not claim alerts to send");
                continue;
            }
        };
        for claimed in claimed {
            busy.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(claimed.organisation_id.clone());
            let (store, sender, busy) = (store.clone(), sender.clone(), busy.clone());
            sends.spawn(async move {
                let outcome = sender.send(&claimed).await;
                let shown = claimed.shown_as();
                tracing::info!(
                    delivery = claimed.id,
                    attempt = claimed.attempt,
                    ?outcome,
                    "alert attempt"
                );
                if let Err(e) = domain::alerts::finish(
                    &store,
                    &claimed,
                    &shown,
                    &outcome,
                    sender.settings.first_retry,
                )
                .await
                {
                    tracing::warn!(error = %domain::error::chain(&e), "could not record an alert attempt");
                }
                let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(i) = busy.iter().position(|o| *o == claimed.organisation_id) {
                    busy.swap_remove(i);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
