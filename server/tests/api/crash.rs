//! A real server process (SQLite, or PostgreSQL under `TEST_POSTGRES_URL`): SIGTERM finishes requests in flight, SIGKILL in the
//! middle of a write load loses no acknowledged write and leaves no half-applied PATCH.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::integrations::{Actor, IntegrationKind};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The organisation's token in a fresh database file.
pub(crate) async fn prepare(db: &str) -> String {
    let store = domain::Store::connect(db).await.expect("database");
    let (org, _) =
        domain::accounts::create_admin(&store, "Acme", "ada@example.com", "correct horse battery")
            .await
            .expect("admin");
    let token = domain::integrations::create_token(
        &store,
        &org.id,
        IntegrationKind::OneLogin,
        &Actor::Operator,
    )
    .await
    .expect("token")
    .into_plaintext();
    store.close().await;
    token
}

pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) async fn start(db: &str) -> Self {
        Self::start_logging(db, "warn", Stdio::null()).await
    }

    /// A server logging at `rust_log` (a `RUST_LOG` value) to `log`.
    pub(crate) async fn start_logging(db: &str, rust_log: &str, log: Stdio) -> Self {
        Self::start_with(db, rust_log, log, &[]).await
    }

    /// [`Server::start_logging`] with more environment variables.
    pub(crate) async fn start_with(
        db: &str,
        rust_log: &str,
        log: Stdio,
        vars: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_server"))
            .env("DATABASE_URL", db)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", rust_log)
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("server binary");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited ({status}) before it answered");
            }
            if let Ok((200, _)) = server
                .request("GET", "/scimapi/ServiceProviderConfig", None, None)
                .await
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not start");
    }

    /// One HTTP/1.1 request on its own connection: (status, body), or an error when the
    /// connection failed before a complete response arrived.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/scim+json")];
        headers.extend(auth.as_deref().map(|a| ("Authorization", a)));
        let body = body.map(Value::to_string).unwrap_or_default();
        let reply = self.raw(method, path, &headers, &body).await?;
        Ok((
            reply.status,
            serde_json::from_str(&reply.body).unwrap_or(Value::Null),
        ))
    }

    /// One HTTP/1.1 request on its own connection with `headers`, and the response as it
    /// came.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<RawReply> {
        raw_request(self.port, method, path, headers, body).await
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub(crate) fn stop(mut self) {
        self.signal("TERM");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, as an orchestrator does, without waiting.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Whether the process exits, successfully, within `limit`.
    pub(crate) fn exits_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` on its own connection with `headers`, and the
/// response as it came.
pub(crate) async fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<RawReply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    read_response(&mut stream).await
}

/// A response: its status, its header lines and its body.
pub(crate) struct RawReply {
    pub(crate) status: u16,
    head: String,
    pub(crate) body: String,
}

impl RawReply {
    /// The value of the header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

async fn read_response(stream: &mut TcpStream) -> std::io::Result<RawReply> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let incomplete =
        || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(incomplete)?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(incomplete)?;
    let reply = RawReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    };
    let length: Option<usize> = reply
        .header("content-length")
        .map(|v| v.parse().unwrap_or(0));
    if length.is_some_and(|n| body.len() < n) {
        return Err(incomplete());
    }
    Ok(reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_write_and_no_patch_is_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "crash").await;
    let token = prepare(&db).await;
    let server = Arc::new(Server::start(&db).await);
    let (_, group) = server
        .request(
            "POST",
            "/scimapi/Groups",
            Some(&token),
            Some(&json!({"displayName": "start"})),
        )
        .await
        .unwrap();
    let group_path = format!("/scimapi/Groups/{}", group["id"].as_str().unwrap());

    // Acknowledged users (id, userName) and acknowledged group PATCHes (member id, new name).
    let users: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let patches: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..6 {
        let (server, token, users, patches, group_path) = (
            server.clone(),
            token.clone(),
            users.clone(),
            patches.clone(),
            group_path.clone(),
        );
        load.push(tokio::spawn(async move {
            for i in 0..400 {
                let name = format!("w{worker}-{i}@acme.example");
                let Ok((201, user)) = server
                    .request(
                        "POST",
                        "/scimapi/Users",
                        Some(&token),
                        Some(&json!({"userName": name})),
                    )
                    .await
                else {
                    return;
                };
                let id = user["id"].as_str().unwrap().to_owned();
                users.lock().unwrap().push((id.clone(), name));
                // Two changes that must land together: a member and the group's new name.
                let label = format!("after {worker}-{i}");
                let patch = json!({"Operations": [
                    {"op": "add", "path": "members", "value": [{"value": id}]},
                    {"op": "replace", "path": "displayName", "value": label},
                ]});
                let path = format!("{group_path}?excludedAttributes=members");
                match server
                    .request("PATCH", &path, Some(&token), Some(&patch))
                    .await
                {
                    Ok((200, _)) => patches.lock().unwrap().push((id, label)),
                    Ok((status, body)) => panic!("PATCH answered {status}: {body}"),
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill the server in the middle of the load.
    let deadline = Instant::now() + Duration::from_secs(30);
    while users.lock().unwrap().len() < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    for task in load {
        task.await.unwrap();
    }
    let users = users.lock().unwrap().clone();
    let patches = patches.lock().unwrap().clone();
    assert!(
        users.len() >= 150 && users.len() < 6 * 400,
        "the kill must land mid-load ({} users)",
        users.len()
    );
    drop(server);

    let server = Server::start(&db).await;
    for (id, name) in &users {
        let (status, user) = server
            .request("GET", &format!("/scimapi/Users/{id}"), Some(&token), None)
            .await
            .unwrap();
        assert_eq!(
            (status, user["userName"].as_str()),
            (200, Some(name.as_str())),
            "acknowledged user {name} lost"
        );
    }
    let (_, group) = server
        .request("GET", &group_path, Some(&token), None)
        .await
        .unwrap();
    let members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    for (member, _) in &patches {
        assert!(
            members.contains(&member.as_str()),
            "acknowledged member {member} lost"
        );
    }
    // The name the group has came with its member, whichever PATCH wrote it last.
    let name = group["displayName"].as_str().unwrap();
    if name != "start" {
        let (worker, i) = name.trim_start_matches("after ").split_once('-').unwrap();
        let member_name = format!("w{worker}-{i}@acme.example");
        let (_, found) = server
            .request(
                "GET",
                &format!(
                    "/scimapi/Users?filter=userName%20eq%20%22{}%22",
                    member_name.replace('@', "%40")
                ),
                Some(&token),
                None,
            )
            .await
            .unwrap();
        let member_id = found["Resources"][0]["id"]
            .as_str()
            .expect("the renaming PATCH's user exists");
        assert!(
            members.contains(&member_id),
            "half-applied PATCH: name {name} without its member"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::fresh_database(dir.path(), "drain").await;
    let token = prepare(&db).await;
    let mut server = Server::start(&db).await;

    // A request whose body is only half sent when the signal arrives.
    let body = json!({"userName": "in-flight@acme.example"}).to_string();
    let (first, second) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /scimapi/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer served...
    assert!(server
        .request("GET", "/scimapi/ServiceProviderConfig", None, None)
        .await
        .is_err());
    // ...but the one in flight completes.
    stream.write_all(second.as_bytes()).await.unwrap();
    let reply = read_response(&mut stream)
        .await
        .expect("a complete response");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let user: Value = serde_json::from_str(&reply.body).unwrap();
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait();
        (server, status)
    })
    .await
    .unwrap();
    let (server, status) = exit;
    assert!(status.unwrap().success(), "a clean exit after SIGTERM");
    drop(server);

    let server = Server::start(&db).await;
    let (status, _) = server
        .request(
            "GET",
            &format!("/scimapi/Users/{}", user["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
}
