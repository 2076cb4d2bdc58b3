//! Configuration, read once from the environment at start.

use std::net::SocketAddr;
use std::time::Duration;

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
    /// `DATABASE_POOL_SIZE`: connections to the database, default per backend.
    pub pool_size: Option<u32>,
    /// `ACTIVITY_RETENTION_DAYS`: how long SCIM requests stay in the activity log; 0 records
    /// none.
    pub activity_retention_days: u32,
    /// `TRUSTED_PROXY_HOPS`: how many reverse proxies in front of the server append to
    /// `X-Forwarded-For`. 0 (the default) uses the TCP peer as the client address; N takes
    /// the N-th address from the right of the header, the one the outermost trusted proxy
    /// saw. Client addresses key the throttling of failed logins and bad SCIM tokens.
    pub trusted_proxy_hops: usize,
    /// `REQUEST_TIMEOUT_SECONDS`: the longest a request may take, body upload included,
    /// before it is answered with 408. Default 30.
    pub request_timeout: Duration,
}

pub const DEFAULT_SITE_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/console.db";
pub const DEFAULT_SITE_ROOT: &str = "target/site";
pub const DEFAULT_ACTIVITY_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 30;

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
        let trusted_proxy_hops = number(&get, "TRUSTED_PROXY_HOPS", 0, 10, 0)?;
        let timeout = number(
            &get,
            "REQUEST_TIMEOUT_SECONDS",
            1,
            3600,
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
        )?;
        Ok(Self {
            site_addr,
            pool_size: pool_size.and_then(|n| u32::try_from(n).ok()),
            activity_retention_days: u32::try_from(activity_retention_days).unwrap_or_default(),
            trusted_proxy_hops: usize::try_from(trusted_proxy_hops).unwrap_or(0),
            request_timeout: Duration::from_secs(timeout),
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            public_url,
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| DEFAULT_SITE_ROOT.into()),
        })
    }

    /// The SCIM base URL an admin pastes into the IdP, e.g. `https://host/scimapi/`.
    pub fn scim_base_url(&self) -> String {
        format!("{}/scimapi/", self.public_url)
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
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.site_addr.to_string(), DEFAULT_SITE_ADDR);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.pool_size, None);
        assert_eq!(c.activity_retention_days, DEFAULT_ACTIVITY_RETENTION_DAYS);
        assert_eq!(c.trusted_proxy_hops, 0);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.scim_base_url(), "http://127.0.0.1:3000/scimapi/");
        assert!(!c.secure_cookies());
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
    }
}
