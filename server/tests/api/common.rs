//! A real server (router, real database) driven in-process. The database is a SQLite file
//! in a temporary directory, or, when `TEST_POSTGRES_URL` names a PostgreSQL server, a
//! throw-away database of its own there (named `scimtest_*`; `scripts/test` drops them).

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use domain::integrations::{Actor, IntegrationKind};
use http_body_util::BodyExt;
use serde_json::Value;
use server::{App, Config};
use tower::ServiceExt;

/// The key the servers under test seal second factors with.
pub const TEST_SECRET_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestServer {
    pub app: App,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub organisation_id: String,
    /// The OneLogin provisioning token of the organisation "Acme".
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts this is a SCIM error with the given status (and scimType when given).
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.body["schemas"][0],
            scim::schema::ERROR,
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.to_string(), "{}", self.body);
        self.detail();
        if let Some(t) = scim_type {
            assert_eq!(self.body["scimType"], t, "{}", self.body);
        }
        assert_eq!(self.headers["content-type"], "application/scim+json");
    }

    /// A SCIM error's detail, without the request id every detail ends with (which it
    /// asserts is there, and the response's `X-Request-Id`).
    #[track_caller]
    pub fn detail(&self) -> &str {
        let detail = self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", self.body));
        let id = self.headers["x-request-id"].to_str().expect("x-request-id");
        detail
            .strip_suffix(&format!(" (request id: {id})"))
            .unwrap_or_else(|| panic!("no request id in {detail:?}"))
    }
}

/// A fresh, empty database for one test: a SQLite file named `name` in `dir`, or a new
/// PostgreSQL database when `TEST_POSTGRES_URL` is set.
pub async fn fresh_database(dir: &std::path::Path, name: &str) -> String {
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        return format!("sqlite://{}/{name}.db", dir.display());
    };
    let database = format!("scimtest_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .expect("TEST_POSTGRES_URL");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {database}").as_str())
        .await
        .expect("create a test database");
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

/// A fresh database (see [`fresh_database`]) with the migrations up to `last` applied, as a
/// database of that release would be: its URL, and a pool on it to fill it with.
pub async fn database_migrated_to(
    dir: &std::path::Path,
    name: &str,
    last: i64,
) -> (String, sqlx::AnyPool) {
    let url = fresh_database(dir, name).await;
    sqlx::any::install_default_drivers();
    let (backend, create) = if url.starts_with("sqlite:") {
        ("sqlite", "?mode=rwc")
    } else {
        ("postgres", "")
    };
    let pool = sqlx::AnyPool::connect(&format!("{url}{create}"))
        .await
        .unwrap();
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(&format!(
        "{}/../migrations/{backend}",
        env!("CARGO_MANIFEST_DIR")
    )))
    .await
    .unwrap();
    before.migrations = std::borrow::Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version <= last)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    (url, pool)
}

/// Everything the database holds, as bytes to search: the SQLite file and its write-ahead
/// log, or every row of every table of the PostgreSQL database as JSON text.
pub async fn database_contents(database_url: &str, dir: &std::path::Path) -> Vec<u8> {
    if database_url.starts_with("sqlite:") {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).expect("database directory") {
            let path = entry.expect("entry").path();
            if path.to_string_lossy().contains(".db") {
                all.extend(std::fs::read(path).unwrap_or_default());
            }
        }
        return all;
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname IN ('public', 'tower_sessions')",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut all = Vec::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        for row in rows {
            all.extend(row.into_bytes());
        }
    }
    all
}

/// The configuration of a server under test on `database_url`, with `vars` besides.
pub fn test_config(database_url: &str, vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.to_owned()),
        "PUBLIC_URL" => Some("https://console.example.com".into()),
        "SECRET_KEY" => Some(TEST_SECRET_KEY.into()),
        _ => vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()),
    })
    .expect("config")
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server configured with `vars` besides its database and public URL.
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database_url = fresh_database(dir.path(), "test").await;
        let app = App::build(&test_config(&database_url, vars))
            .await
            .expect("app");
        let (org, _) = domain::accounts::create_admin(
            &app.state.console.store,
            "Acme",
            "ada@example.com",
            "correct horse battery",
        )
        .await
        .expect("admin");
        let token = domain::integrations::create_token(
            &app.state.console.store,
            &org.id,
            IntegrationKind::OneLogin,
            &Actor::Operator,
        )
        .await
        .expect("token")
        .into_plaintext();
        Self {
            app,
            dir,
            database_url,
            organisation_id: org.id,
            token,
        }
    }

    /// A token for a second organisation.
    pub async fn other_organisation_token(&self) -> String {
        let store = &self.app.state.console.store;
        let (org, _) = domain::accounts::create_admin(
            store,
            "Globex",
            "hank@example.com",
            "correct horse battery",
        )
        .await
        .expect("admin");
        domain::integrations::create_token(
            store,
            &org.id,
            IntegrationKind::OneLogin,
            &Actor::Operator,
        )
        .await
        .expect("token")
        .into_plaintext()
    }

    /// Sends a raw request: any headers, any body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.send(request(method, path, headers, body)).await
    }

    /// [`raw`](Self::raw) from the client address `peer`, as a TCP connection gives it.
    pub async fn raw_from(
        &self,
        peer: std::net::IpAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.send(request_from(peer, method, path, headers, body))
            .await
    }

    /// Sends `request` through the router and reads the whole answer.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        send_through(self.app.router.clone(), request).await
    }

    /// A SCIM request with this organisation's token, as an IdP sends it.
    pub async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.scim_with(&self.token.clone(), method, path, body)
            .await
    }

    pub async fn scim_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/scim+json"));
        }
        let body = body.map(|b| b.to_string());
        self.raw(
            method,
            &format!("/scimapi{path}"),
            &headers,
            body.as_deref(),
        )
        .await
    }

    pub async fn create_user(&self, user_name: &str) -> Value {
        let reply = self
            .scim(
                Method::POST,
                "/Users",
                Some(serde_json::json!({"userName": user_name})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }
}

/// Sends `request` through `router` and reads the whole answer; for requests sent from tasks
/// of their own.
pub async fn send_through(router: axum::Router, request: Request<Body>) -> Reply {
    let response = router
        .map_request(server::collapse_slashes)
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A SCIM request with `token`, as an IdP sends it.
pub fn scim_request(token: &str, method: Method, path: &str) -> Request<Body> {
    let auth = format!("Bearer {token}");
    request(
        method,
        &format!("/scimapi{path}"),
        &[("authorization", auth.as_str())],
        None,
    )
}

/// A request from the client address `peer`, as a TCP connection gives it.
pub fn request_from(
    peer: std::net::IpAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request<Body> {
    let mut request = request(method, path, headers, body);
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            peer, 40000,
        )));
    request
}

fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("request")
}

/// URL-encodes a filter for a query string.
pub fn q(filter: &str) -> String {
    filter
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
