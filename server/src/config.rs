//! Configuration, read once from the environment at start.

use std::net::SocketAddr;
use std::time::Duration;

use crate::listen::ConnectionLimits;

/// Where to listen, which database to use and how the service is reached from outside.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LEPTOS_SITE_ADDR`, default `127.0.0.1:3000`.
    pub site_addr: SocketAddr,
    /// `DATABASE_URL`, default a SQLite file under `./data`.
    pub database_url: String,
    /// `PUBLIC_URL` without a trailing slash, default `http://` + the listen address. The
    /// SCIM base URL shown to admins and the `Location` of resources derive from it.
    pub public_url: String,
    /// `LEPTOS_SITE_ROOT`: the directory holding `pkg/` (the wasm, JS and CSS of the console).
    pub site_root: String,
    /// `DATABASE_POOL_SIZE`: PostgreSQL connections, or SQLite read threads (each with its
    /// connection); default per backend.
    pub pool_size: Option<u32>,
    /// `STORE_JOBS_PER_ORGANISATION`: store jobs one organisation may run at once; default
    /// half the pool.
    pub jobs_per_organisation: Option<usize>,
    /// `STORE_QUEUE_PER_ORGANISATION`: store jobs one organisation may have waiting for
    /// their turn; more are answered 503.
    pub queue_per_organisation: usize,
    /// `STORE_QUEUE_TIMEOUT_MS`: the longest a store job waits for its turn before its
    /// request is answered 503 with `Retry-After`.
    pub queue_timeout: Duration,
    /// `ACTIVITY_RETENTION_DAYS`: how long SCIM requests stay in the activity log; 0 records
    /// none.
    pub activity_retention_days: u32,
    /// `RETIRED_TOKEN_DAYS`: how long a reset token's digest is kept, so that a request still
    /// presenting it is attributed to its integration (and the console warns its admins).
    pub retired_token_days: u32,
    /// `TRUSTED_PROXY_HOPS`: how many reverse proxies in front of the server append to
    /// `X-Forwarded-For`. 0 (the default) uses the TCP peer as the client address; N takes
    /// the N-th address from the right of the header, the one the outermost trusted proxy
    /// saw. Client addresses key the throttling of failed logins and bad SCIM tokens.
    pub trusted_proxy_hops: usize,
    /// `REQUEST_TIMEOUT_SECONDS`: the longest a request may take, body upload included,
    /// before it is answered with 408. Default 30.
    pub request_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_SECONDS`: the longest a client may take to send a request's
    /// headers, from connecting or from the previous response; an idle keep-alive connection
    /// is closed after as long. Default 10.
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections served at once; more wait in the kernel's listen
    /// backlog. Default 1024.
    pub max_connections: usize,
    /// `STEP_UP_MINUTES`: how recent an admin's last login (or confirmation of their
    /// password) must be for the most sensitive actions: creating or resetting a token,
    /// adding, disabling or removing an admin. Default 10.
    pub step_up: Duration,
    /// `SECRET_KEY` (64 hexadecimal digits), or else the file `SECRET_KEY_FILE` names: the
    /// key second factors' secrets are sealed with. Without one, admins cannot set up a second
    /// factor, and a server whose database holds factors refuses to start.
    pub secret_key: Option<domain::factors::SecretKey>,
    /// `SHUTDOWN_DRAIN_SECONDS`: after SIGTERM, how long the server keeps serving while
    /// `/readyz` answers 503, so that load balancers stop sending it requests before it stops
    /// accepting them. Default 0.
    pub shutdown_drain: Duration,
    /// `METRICS_ADDR`: where `/metrics` is served instead of beside the console and the SCIM
    /// API, e.g. an address only the monitoring network reaches. Unset: on `LEPTOS_SITE_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    /// `SMTP_URL`: the SMTP server alert emails go through, in lettre's URL form
    /// (`smtps://user:password@smtp.example.com`, `smtp://host:587?tls=required`,
    /// `smtp://127.0.0.1:25`). Unset: alerts go to webhooks only.
    pub smtp_url: Option<crate::alerts::SmtpUrl>,
    /// `ALERT_EMAIL_FROM`: the sender of alert emails; default `alerts@` the public host.
    pub alert_email_from: String,
    /// `ALERT_ALLOW_PRIVATE_WEBHOOKS`: `true` lets webhooks go to private and loopback
    /// addresses, over plain HTTP too (receivers inside the operator's network). Default
    /// `false`: HTTPS to public addresses only.
    pub alert_allow_private_webhooks: bool,
    /// `ALERT_CHECK_SECONDS`: how often the alert rules are checked. Default 60.
    pub alert_check: Duration,
    /// `ALERT_RETRY_SECONDS`: the wait before an alert's second attempt, doubled for each
    /// next one up to an hour. Default 30.
    pub alert_first_retry: Duration,
}

pub const DEFAULT_SITE_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/console.db";
pub const DEFAULT_SITE_ROOT: &str = "target/site";
pub const DEFAULT_ACTIVITY_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_RETIRED_TOKEN_DAYS: u32 = 30;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_STEP_UP_MINUTES: u64 = 10;
/// Long enough for a slow client on a bad network to send a few KiB of headers, short enough
/// that idle and stalled connections give their slot back soon.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Each open connection holds a file descriptor. Our hosts' soft limit is 20000, so 1024
/// leaves the great majority to the database (SQLite files, pool connections) and never lets
/// `accept` run out; and it is far more than IdPs and admins open, since an IdP sends its
/// requests a few at a time. Where the soft limit is lower (`ulimit -n` is often 1024), set
/// it below that.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let addr = get("LEPTOS_SITE_ADDR").unwrap_or_else(|| DEFAULT_SITE_ADDR.into());
        let site_addr: SocketAddr = addr.trim().parse().map_err(|_| {
            format!("LEPTOS_SITE_ADDR {addr:?} is not an address like 127.0.0.1:3000")
        })?;
        let public_url = match get("PUBLIC_URL") {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .ok_or_else(|| {
                        format!("PUBLIC_URL {url:?} must start with http:// or https://")
                    })?;
                if rest.is_empty() || rest.contains(['?', '#']) {
                    return Err(format!(
                        "PUBLIC_URL {url:?} must be a base URL like https://console.example.com"
                    ));
                }
                url
            }
            None => format!("http://{site_addr}"),
        };
        let pool_size = match get("DATABASE_POOL_SIZE") {
            Some(_) => Some(number(&get, "DATABASE_POOL_SIZE", 1, 1000, 0)?),
            None => None,
        };
        let activity_retention_days = number(
            &get,
            "ACTIVITY_RETENTION_DAYS",
            0,
            3650,
            DEFAULT_ACTIVITY_RETENTION_DAYS.into(),
        )?;
        let retired_token_days = number(
            &get,
            "RETIRED_TOKEN_DAYS",
            1,
            3650,
            DEFAULT_RETIRED_TOKEN_DAYS.into(),
        )?;
        let trusted_proxy_hops = number(&get, "TRUSTED_PROXY_HOPS", 0, 10, 0)?;
        let jobs_per_organisation = match get("STORE_JOBS_PER_ORGANISATION") {
            Some(_) => Some(number(&get, "STORE_JOBS_PER_ORGANISATION", 1, 1000, 0)?),
            None => None,
        };
        let queue_per_organisation = number(
            &get,
            "STORE_QUEUE_PER_ORGANISATION",
            1,
            100_000,
            domain::store::DEFAULT_QUEUED_PER_ORGANISATION as u64,
        )?;
        let queue_timeout = number(
            &get,
            "STORE_QUEUE_TIMEOUT_MS",
            1,
            3_600_000,
            domain::store::DEFAULT_QUEUE_WAIT.as_millis() as u64,
        )?;
        let timeout = number(
            &get,
            "REQUEST_TIMEOUT_SECONDS",
            1,
            3600,
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
        )?;
        let header_read_timeout = number(
            &get,
            "HEADER_READ_TIMEOUT_SECONDS",
            1,
            300,
            DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
        )?;
        let max_connections = number(&get, "MAX_CONNECTIONS", 1, 100_000, DEFAULT_MAX_CONNECTIONS)?;
        let step_up = number(&get, "STEP_UP_MINUTES", 1, 1440, DEFAULT_STEP_UP_MINUTES)?;
        let shutdown_drain = number(&get, "SHUTDOWN_DRAIN_SECONDS", 0, 300, 0)?;
        let metrics_addr = get("METRICS_ADDR")
            .map(|addr| {
                addr.trim().parse::<SocketAddr>().map_err(|_| {
                    format!("METRICS_ADDR {addr:?} is not an address like 127.0.0.1:9090")
                })
            })
            .transpose()?;
        if metrics_addr == Some(site_addr) {
            return Err(
                "METRICS_ADDR must differ from LEPTOS_SITE_ADDR; leave it unset to serve \
                        /metrics there"
                    .into(),
            );
        }
        let secret_key = match (get("SECRET_KEY"), get("SECRET_KEY_FILE")) {
            (Some(key), _) => Some(
                domain::factors::SecretKey::parse(&key).map_err(|e| format!("SECRET_KEY: {e}"))?,
            ),
            (None, Some(path)) => Some(
                domain::factors::SecretKey::read(std::path::Path::new(&path))
                    .map_err(|e| format!("SECRET_KEY_FILE: {e}"))?,
            ),
            (None, None) => None,
        };
        let smtp_url = get("SMTP_URL").map(|u| crate::alerts::SmtpUrl(u.trim().to_owned()));
        let host = public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or("localhost");
        let alert_email_from = get("ALERT_EMAIL_FROM")
            .map(|f| f.trim().to_owned())
            .unwrap_or_else(|| format!("SCIM console <alerts@{host}>"));
        if let Some(url) = &smtp_url {
            crate::alerts::check_smtp(&url.0, &alert_email_from)?;
        }
        let alert_allow_private_webhooks = match get("ALERT_ALLOW_PRIVATE_WEBHOOKS").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "ALERT_ALLOW_PRIVATE_WEBHOOKS {other:?} must be true or false"
                ))
            }
        };
        let alert_check = number(&get, "ALERT_CHECK_SECONDS", 1, 3600, 60)?;
        let alert_first_retry = number(&get, "ALERT_RETRY_SECONDS", 1, 3600, 30)?;
        Ok(Self {
            smtp_url,
            alert_email_from,
            alert_allow_private_webhooks,
            alert_check: Duration::from_secs(alert_check),
            alert_first_retry: Duration::from_secs(alert_first_retry),
            site_addr,
            pool_size: pool_size.and_then(|n| u32::try_from(n).ok()),
            activity_retention_days: u32::try_from(activity_retention_days).unwrap_or_default(),
            retired_token_days: u32::try_from(retired_token_days)
                .unwrap_or(DEFAULT_RETIRED_TOKEN_DAYS),
            trusted_proxy_hops: usize::try_from(trusted_proxy_hops).unwrap_or(0),
            jobs_per_organisation: jobs_per_organisation.and_then(|n| usize::try_from(n).ok()),
            queue_per_organisation: usize::try_from(queue_per_organisation)
                .unwrap_or(domain::store::DEFAULT_QUEUED_PER_ORGANISATION),
            queue_timeout: Duration::from_millis(queue_timeout),
            request_timeout: Duration::from_secs(timeout),
            header_read_timeout: Duration::from_secs(header_read_timeout),
            max_connections: usize::try_from(max_connections).unwrap_or(1),
            step_up: Duration::from_secs(step_up * 60),
            secret_key,
            shutdown_drain: Duration::from_secs(shutdown_drain),
            metrics_addr,
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            public_url,
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| DEFAULT_SITE_ROOT.into()),
        })
    }

    /// How the store is sized and shared between organisations. Jobs outside a request get
    /// the request timeout as their deadline too.
    pub fn store_options(&self) -> domain::store::StoreOptions {
        domain::store::StoreOptions {
            pool_size: self.pool_size,
            running_per_organisation: self.jobs_per_organisation,
            queued_per_organisation: Some(self.queue_per_organisation),
            queue_wait: Some(self.queue_timeout),
            job_deadline: Some(self.request_timeout),
        }
    }

    /// The SCIM base URL an admin pastes into the IdP, e.g. `https://host/scimapi/`.
    pub fn scim_base_url(&self) -> String {
        format!("{}/scimapi/", self.public_url)
    }

    /// How alerts are checked and sent.
    pub fn alert_settings(&self) -> crate::alerts::AlertSettings {
        crate::alerts::AlertSettings {
            public_url: self.public_url.clone(),
            smtp_url: self.smtp_url.clone(),
            email_from: self.alert_email_from.clone(),
            webhooks: domain::alerts::WebhookPolicy {
                allow_private: self.alert_allow_private_webhooks,
            },
            check_every: self.alert_check,
            first_retry: self.alert_first_retry,
            secret_key: self.secret_key.clone(),
        }
    }

    /// The limits of the accept loop in front of the router.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
        }
    }

    /// Cookies get the `Secure` flag when the public URL is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// The whole number in variable `name`, from `min` to `max`, or `default` when unset.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, String> {
    match get(name) {
        Some(value) => value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{name} {value:?} must be a number from {min} to {max}")),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_lookup(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn smtp_settings_are_checked_and_the_password_never_shown() {
        let c = config(&[
            ("SMTP_URL", "smtps://alerts:hunter2@smtp.example.com"),
            ("PUBLIC_URL", "https://console.example.com"),
        ])
        .unwrap();
        assert_eq!(
            c.alert_email_from,
            "SCIM console <alerts@console.example.com>"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.alert_settings()).contains("hunter2"));
        for bad in [
            vec![("SMTP_URL", "ftp://smtp.example.com")],
            vec![
                ("SMTP_URL", "smtp://127.0.0.1:25"),
                ("ALERT_EMAIL_FROM", "not an address"),
            ],
            vec![("ALERT_ALLOW_PRIVATE_WEBHOOKS", "yes")],
            vec![("ALERT_CHECK_SECONDS", "0")],
        ] {
            assert!(config(&bad).is_err(), "{bad:?}");
        }
        let d = config(&[]).unwrap();
        assert_eq!(d.smtp_url, None);
        assert!(!d.alert_allow_private_webhooks);
        assert_eq!(d.alert_check, Duration::from_secs(60));
        assert_eq!(d.alert_first_retry, Duration::from_secs(30));
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.site_addr.to_string(), DEFAULT_SITE_ADDR);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.pool_size, None);
        assert_eq!(c.activity_retention_days, DEFAULT_ACTIVITY_RETENTION_DAYS);
        assert_eq!(c.retired_token_days, DEFAULT_RETIRED_TOKEN_DAYS);
        assert_eq!(c.trusted_proxy_hops, 0);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(
            c.connection_limits(),
            ConnectionLimits {
                header_read_timeout: Duration::from_secs(10),
                max_connections: 1024,
            }
        );
        assert_eq!(c.jobs_per_organisation, None);
        assert_eq!(c.queue_per_organisation, 64);
        assert_eq!(c.queue_timeout, Duration::from_secs(5));
        assert_eq!(c.step_up, Duration::from_secs(600));
        assert_eq!(c.scim_base_url(), "http://127.0.0.1:3000/scimapi/");
        assert!(!c.secure_cookies());
        assert_eq!(c.metrics_addr, None);
    }

    #[test]
    fn public_url_sets_scim_url_and_cookie_security() {
        let c = config(&[("PUBLIC_URL", "https://console.example.com/")]).unwrap();
        assert_eq!(c.scim_base_url(), "https://console.example.com/scimapi/");
        assert!(c.secure_cookies());
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(config(&[("LEPTOS_SITE_ADDR", "localhost")])
            .unwrap_err()
            .contains("LEPTOS_SITE_ADDR"));
        assert!(config(&[("PUBLIC_URL", "console.example.com")])
            .unwrap_err()
            .contains("PUBLIC_URL"));
        assert!(config(&[("PUBLIC_URL", "https://")]).is_err());
        assert!(config(&[("DATABASE_POOL_SIZE", "0")])
            .unwrap_err()
            .contains("DATABASE_POOL_SIZE"));
        assert!(config(&[("DATABASE_POOL_SIZE", "many")]).is_err());
        assert!(config(&[("ACTIVITY_RETENTION_DAYS", "-1")])
            .unwrap_err()
            .contains("ACTIVITY_RETENTION_DAYS"));
        assert_eq!(
            config(&[("ACTIVITY_RETENTION_DAYS", "0")])
                .unwrap()
                .activity_retention_days,
            0
        );
        assert_eq!(
            config(&[("DATABASE_POOL_SIZE", "32")]).unwrap().pool_size,
            Some(32)
        );
        assert!(config(&[("TRUSTED_PROXY_HOPS", "11")])
            .unwrap_err()
            .contains("TRUSTED_PROXY_HOPS"));
        assert_eq!(
            config(&[("TRUSTED_PROXY_HOPS", "1")])
                .unwrap()
                .trusted_proxy_hops,
            1
        );
        assert!(config(&[("REQUEST_TIMEOUT_SECONDS", "0")])
            .unwrap_err()
            .contains("REQUEST_TIMEOUT_SECONDS"));
        for (name, bad) in [
            ("STORE_JOBS_PER_ORGANISATION", "0"),
            ("STORE_QUEUE_PER_ORGANISATION", "none"),
            ("STORE_QUEUE_TIMEOUT_MS", "0"),
        ] {
            assert!(config(&[(name, bad)]).unwrap_err().contains(name), "{name}");
        }
        let shared = config(&[
            ("STORE_JOBS_PER_ORGANISATION", "3"),
            ("STORE_QUEUE_PER_ORGANISATION", "10"),
            ("STORE_QUEUE_TIMEOUT_MS", "250"),
        ])
        .unwrap()
        .store_options();
        assert_eq!(shared.running_per_organisation, Some(3));
        assert_eq!(shared.queued_per_organisation, Some(10));
        assert_eq!(shared.queue_wait, Some(Duration::from_millis(250)));
        assert!(config(&[("METRICS_ADDR", "9090")])
            .unwrap_err()
            .contains("METRICS_ADDR"));
        assert!(config(&[("METRICS_ADDR", DEFAULT_SITE_ADDR)])
            .unwrap_err()
            .contains("METRICS_ADDR"));
        assert_eq!(
            config(&[("METRICS_ADDR", "127.0.0.1:9090")])
                .unwrap()
                .metrics_addr
                .map(|a| a.port()),
            Some(9090)
        );
    }

    #[test]
    fn connection_limits_are_bounded() {
        for (name, bad) in [
            ("HEADER_READ_TIMEOUT_SECONDS", "0"),
            ("HEADER_READ_TIMEOUT_SECONDS", "301"),
            ("HEADER_READ_TIMEOUT_SECONDS", "1.5"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS", "100001"),
            ("MAX_CONNECTIONS", "-1"),
            ("MAX_CONNECTIONS", "lots"),
        ] {
            let error = config(&[(name, bad)]).unwrap_err();
            assert!(
                error.contains(name) && error.contains(bad),
                "{name}={bad}: {error}"
            );
        }
        let c = config(&[
            ("HEADER_READ_TIMEOUT_SECONDS", " 300 "),
            ("MAX_CONNECTIONS", "1"),
        ])
        .unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(300));
        assert_eq!(c.max_connections, 1);
        let c = config(&[
            ("HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("MAX_CONNECTIONS", "100000"),
        ])
        .unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(1));
        assert_eq!(c.max_connections, 100_000);
    }
}
