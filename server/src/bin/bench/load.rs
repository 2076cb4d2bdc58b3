//! `bench load`: SCIM requests over HTTP/1.1 keep-alive connections to one or more running
//! servers, as IdPs send them. Each phase prints its throughput and, per operation, p50 / p99
//! / max latency; the run ends by reading back every user it created and every PATCH it had
//! acknowledged, and fails when anything is missing or wrong.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::{encode, XorShift};

#[derive(clap::Args)]
pub struct Options {
    /// Base URL of a running server (`http://127.0.0.1:3000`); repeat it to spread the
    /// connections over several instances.
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// The organisation's provisioning token (read from the environment so that it does not
    /// show in the process list).
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// Concurrent connections (each sends one request at a time).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Users created by the `create` phase; the other phases work on them.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Requests in each of the `get`, `filter`, `patch` and `mixed` phases.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Users of the sequential `sync` phase.
    #[arg(long, default_value_t = 10_000)]
    sync_users: usize,
    /// Phases to run, in this order. `noisy` (not run by default) needs `--attacker-token`.
    #[arg(long, value_delimiter = ',', default_values_t = Phase::DEFAULT.map(String::from))]
    phases: Vec<String>,
    /// For `noisy`: the token of a second organisation, the attacker (read from the
    /// environment so that it does not show in the process list).
    #[arg(long, env = "BENCH_ATTACKER_TOKEN", hide_env_values = true)]
    attacker_token: Option<String>,
    /// For `noisy`: users the attacker creates, each with the most emails a user may have.
    #[arg(long, default_value_t = 2_000)]
    attacker_users: usize,
    /// For `noisy`: the attacker's concurrent connections, each sending the costliest
    /// filter the limits allow, one after another.
    #[arg(long, default_value_t = 4)]
    attacker_connections: usize,
    /// For `noisy`: seconds the victim is measured alone, then beside the attacker.
    #[arg(long, default_value_t = 10)]
    noisy_seconds: u64,
}

/// The phases, in the order they run.
struct Phase;

impl Phase {
    const ALL: [&'static str; 7] = ["create", "get", "filter", "patch", "mixed", "sync", "noisy"];
    const DEFAULT: [&'static str; 6] = ["create", "get", "filter", "patch", "mixed", "sync"];
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Create,
    Get,
    Filter,
    Patch,
    Put,
}

impl Op {
    const ALL: [Op; 5] = [Op::Create, Op::Get, Op::Filter, Op::Patch, Op::Put];

    fn label(self) -> &'static str {
        match self {
            Op::Create => "POST /Users",
            Op::Get => "GET /Users/{id}",
            Op::Filter => "GET /Users?filter=userName eq",
            Op::Patch => "PATCH /Users/{id} (2 changes)",
            Op::Put => "PUT /Users/{id}",
        }
    }
}

/// One keep-alive connection to one server, opened again when the server has closed it
/// (it closes a connection left idle for its header-read timeout).
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    host: String,
    authorization: String,
}

impl Connection {
    async fn open(target: &Target, token: &str) -> Result<Self, String> {
        Ok(Self {
            sender: Self::handshake(target.addr).await?,
            addr: target.addr,
            host: target.addr.to_string(),
            authorization: format!("Bearer {token}"),
        })
    }

    async fn handshake(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Sends one request and reads the whole response: (status, body).
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), String> {
        if self.sender.ready().await.is_err() {
            // Closed while idle: no request was in flight on it, so nothing is lost.
            self.sender = Self::handshake(self.addr).await?;
        }
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/scimapi{path}"))
            .header("host", &self.host)
            .header("authorization", &self.authorization);
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/scim+json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{path}: reading the body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// Sends a request that must answer `expected`; the time it took, or what went wrong.
    async fn expect(
        &mut self,
        expected: u16,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Duration, Bytes), String> {
        let started = Instant::now();
        let (status, reply) = self.send(method.clone(), path, body).await?;
        let took = started.elapsed();
        if status != expected {
            return Err(format!(
                "{method} {path}: {status} instead of {expected}: {}",
                String::from_utf8_lossy(&reply)
            ));
        }
        Ok((took, reply))
    }
}

struct Target {
    addr: SocketAddr,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("target {url:?} must be an http:// URL"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let addr = authority
            .parse()
            .map_err(|_| format!("target {url:?} must name an IP address and port"))?;
        Ok(Self { addr })
    }
}

/// Latencies of one worker, per operation.
#[derive(Default)]
struct Samples {
    by_op: [Vec<Duration>; 5],
}

impl Samples {
    fn record(&mut self, op: Op, took: Duration) {
        self.by_op[op as usize].push(took);
    }

    fn merge(&mut self, other: Samples) {
        for (mine, theirs) in self.by_op.iter_mut().zip(other.by_op) {
            mine.extend(theirs);
        }
    }

    fn print(mut self, phase: &str, elapsed: Duration) {
        let total: usize = self.by_op.iter().map(Vec::len).sum();
        println!(
            "{phase}: {total} requests in {elapsed:.2?}: {:.0} requests/s",
            total as f64 / elapsed.as_secs_f64()
        );
        for op in Op::ALL {
            let times = &mut self.by_op[op as usize];
            if times.is_empty() {
                continue;
            }
            times.sort();
            let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
            println!(
                "  {:<32} n={:<7} {:>7.0}/s  p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
                op.label(),
                times.len(),
                times.len() as f64 / elapsed.as_secs_f64(),
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
    }
}

/// What the run has created and acknowledged, to check at the end.
struct Ledger {
    run: String,
    /// Ids of the users of the `create` phase, by index.
    ids: Vec<String>,
    /// The last acknowledged PATCH of each of those users (0: none). Each user is patched by
    /// one connection only, so its last acknowledgement is the value that must be stored.
    patched: Vec<AtomicU64>,
    next_patch: AtomicU64,
    /// Users created by the `mixed` and `sync` phases: (userName, id).
    extra: Mutex<Vec<(String, String)>>,
}

impl Ledger {
    fn user_name(&self, i: usize) -> String {
        format!("{}.u{i}@bench.example", self.run)
    }
}

fn new_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Bench", "familyName": "User"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "title": "new",
        "active": true
    })
}

fn patch_body(value: u64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "title", "value": format!("t{value}")},
            {"op": "replace", "path": "name.givenName", "value": format!("t{value}")}
        ]
    })
}

fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("unreadable reply: {e}"))
}

fn id_of(body: &[u8]) -> Result<String, String> {
    parse(body)?["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a created user without id".to_owned())
}

fn filter_path(user_name: &str) -> String {
    format!(
        "/Users?filter={}",
        encode(&format!("userName eq \"{user_name}\""))
    )
}

pub async fn run(options: Options) -> Result<(), String> {
    let targets = options
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(phase) = options
        .phases
        .iter()
        .find(|p| !Phase::ALL.contains(&p.as_str()))
    {
        return Err(format!(
            "unknown phase {phase:?}; phases are {}",
            Phase::ALL.join(", ")
        ));
    }
    if options.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let creates = options.phases.iter().any(|p| p == "create");
    if !creates && options.phases.iter().any(|p| p != "sync") {
        return Err("the get, filter, patch and mixed phases need the create phase".into());
    }
    let mut connections = Vec::with_capacity(options.concurrency);
    for i in 0..options.concurrency {
        connections.push(Connection::open(&targets[i % targets.len()], &options.token).await?);
    }
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let run = format!("r{:x}", started_at.as_micros() & 0xff_ffff_ffff);
    println!(
        "run {run} against {} ({} connections)",
        options.targets.join(", "),
        options.concurrency
    );

    // The create phase comes first: the others work on its users.
    let ids = if creates {
        let (ids, back) = create_phase(connections, &run, options.users).await?;
        connections = back;
        ids
    } else {
        Vec::new()
    };
    let ledger = Arc::new(Ledger {
        run,
        patched: ids.iter().map(|_| AtomicU64::new(0)).collect(),
        ids,
        next_patch: AtomicU64::new(1),
        extra: Mutex::new(Vec::new()),
    });
    for phase in options.phases.iter().filter(|p| *p != "create") {
        if phase == "sync" {
            sync_phase(&mut connections[0], &ledger, options.sync_users).await?;
        } else if phase == "noisy" {
            connections = noisy_phase(&targets, connections, &ledger, &options).await?;
        } else {
            connections = concurrent_phase(phase, connections, &ledger, options.requests).await?;
        }
    }
    verify(connections, &ledger).await
}

/// What one connection did in a phase: its latencies and the users it created.
type Done = (Connection, Samples, Vec<(String, String)>);

/// Runs `work` on every connection at once; returns the connections, the merged samples and
/// the time the phase took.
async fn on_all<F, Fut>(
    connections: Vec<Connection>,
    ledger: Option<&Ledger>,
    work: F,
) -> Result<(Vec<Connection>, Samples, Duration), String>
where
    F: Fn(usize, Connection) -> Fut,
    Fut: std::future::Future<Output = Result<Done, String>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(worker, connection)| tokio::spawn(work(worker, connection)))
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    let mut samples = Samples::default();
    let mut first_error = None;
    for task in tasks {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((connection, mine, created)) => {
                back.push(connection);
                samples.merge(mine);
                if let Some(ledger) = ledger {
                    ledger
                        .extra
                        .lock()
                        .map_err(|e| e.to_string())?
                        .extend(created);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = started.elapsed();
    match first_error {
        Some(e) => Err(e),
        None => Ok((back, samples, elapsed)),
    }
}

/// `users` creates, one at a time per connection.
async fn create_phase(
    connections: Vec<Connection>,
    run: &str,
    users: usize,
) -> Result<(Vec<String>, Vec<Connection>), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let run = Arc::new(run.to_owned());
    let created = Arc::new(Mutex::new(vec![String::new(); users]));
    let (connections, samples, elapsed) = on_all(connections, None, |_, mut connection| {
        let (next, run, created) = (next.clone(), run.clone(), created.clone());
        async move {
            let mut samples = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let body = new_user(&format!("{run}.u{i}@bench.example"));
                let (took, reply) = connection
                    .expect(201, Method::POST, "/Users", Some(&body))
                    .await?;
                samples.record(Op::Create, took);
                created.lock().map_err(|e| e.to_string())?[i] = id_of(&reply)?;
            }
            Ok((connection, samples, Vec::new()))
        }
    })
    .await?;
    samples.print("create", elapsed);
    let ids = std::mem::take(&mut *created.lock().map_err(|e| e.to_string())?);
    Ok((ids, connections))
}

/// `get`, `filter`, `patch` or `mixed` (50 % GET, 20 % filter, 20 % PATCH, 10 % POST), with
/// `requests` spread evenly over the connections.
async fn concurrent_phase(
    phase: &str,
    connections: Vec<Connection>,
    ledger: &Arc<Ledger>,
    requests: usize,
) -> Result<Vec<Connection>, String> {
    let workers = connections.len();
    let kind = match phase {
        "get" => Some(Op::Get),
        "filter" => Some(Op::Filter),
        "patch" => Some(Op::Patch),
        _ => None,
    };
    let (connections, samples, elapsed) =
        on_all(connections, Some(ledger), |worker, mut connection| {
            let ledger = ledger.clone();
            async move {
                let mut samples = Samples::default();
                let mut created = Vec::new();
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ ((worker as u64 + 1) << 32));
                let n = ledger.ids.len();
                // Users i with i % workers == worker are this connection's to patch.
                let mine = (n + workers - 1 - worker) / workers;
                if n == 0 {
                    return Err("no users to work on: --users is 0".into());
                }
                for k in 0..requests / workers + usize::from(worker < requests % workers) {
                    let op = kind.unwrap_or(match rng.below(10) {
                        0..=4 => Op::Get,
                        5 | 6 => Op::Filter,
                        7 | 8 if mine > 0 => Op::Patch,
                        _ => Op::Create,
                    });
                    let took = match op {
                        Op::Get => {
                            let path = format!("/Users/{}", ledger.ids[rng.below(n)]);
                            connection.expect(200, Method::GET, &path, None).await?.0
                        }
                        Op::Filter => {
                            let path = filter_path(&ledger.user_name(rng.below(n)));
                            let (took, reply) =
                                connection.expect(200, Method::GET, &path, None).await?;
                            if parse(&reply)?["totalResults"] != 1 {
                                return Err(format!("{path}: not exactly one match"));
                            }
                            took
                        }
                        Op::Patch => {
                            let i = worker + workers * rng.below(mine.max(1));
                            let value = ledger.next_patch.fetch_add(1, Ordering::Relaxed);
                            let path = format!("/Users/{}", ledger.ids[i]);
                            let body = patch_body(value);
                            let (took, _) = connection
                                .expect(200, Method::PATCH, &path, Some(&body))
                                .await?;
                            ledger.patched[i].store(value, Ordering::Relaxed);
                            took
                        }
                        Op::Create | Op::Put => {
                            let user_name = format!("{}.m{worker}x{k}@bench.example", ledger.run);
                            let body = new_user(&user_name);
                            let (took, reply) = connection
                                .expect(201, Method::POST, "/Users", Some(&body))
                                .await?;
                            created.push((user_name, id_of(&reply)?));
                            took
                        }
                    };
                    samples.record(op, took);
                }
                Ok((connection, samples, created))
            }
        })
        .await?;
    samples.print(phase, elapsed);
    Ok(connections)
}

/// How the attacker of the `noisy` phase was answered: (status, latency) per request.
type Answers = Vec<(u16, Duration)>;

/// One organisation (the attacker) sends the costliest filter the limits allow, from a few
/// connections, one after another, while the victim (the run's organisation) sends GETs
/// on every connection: the victim's latencies alone, then beside the attacker.
async fn noisy_phase(
    targets: &[Target],
    connections: Vec<Connection>,
    ledger: &Arc<Ledger>,
    options: &Options,
) -> Result<Vec<Connection>, String> {
    let token = options
        .attacker_token
        .as_deref()
        .ok_or("the noisy phase needs --attacker-token (or BENCH_ATTACKER_TOKEN)")?;
    let mut attackers = Vec::with_capacity(options.attacker_connections.max(1));
    for i in 0..options.attacker_connections.max(1) {
        attackers.push(Connection::open(&targets[i % targets.len()], token).await?);
    }
    // The attacker's data: users with the most emails a user may have.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let (users, run) = (options.attacker_users, Arc::new(ledger.run.clone()));
    let (attackers, _, _) = on_all(attackers, None, |_, mut connection| {
        let (next, run) = (next.clone(), run.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let emails: Vec<Value> = (0..scim::user::MAX_VALUES_PER_ATTRIBUTE)
                    .map(|e| json!({"value": format!("{run}.a{i}.e{e}@attacker.example")}))
                    .collect();
                let body =
                    json!({"userName": format!("{run}.a{i}@attacker.example"), "emails": emails});
                connection
                    .expect(201, Method::POST, "/Users", Some(&body))
                    .await?;
            }
            Ok((connection, Samples::default(), Vec::new()))
        }
    })
    .await?;
    println!(
        "noisy: the attacker created {users} users with {} emails each in {:.2?}",
        scim::user::MAX_VALUES_PER_ATTRIBUTE,
        started.elapsed()
    );
    let period = Duration::from_secs(options.noisy_seconds.max(1));
    let (connections, alone) = victim_gets(connections, ledger, period).await?;
    alone
        .0
        .print("noisy, the victim alone (GET /Users/{id})", alone.1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let filter = (0..scim::filter::MAX_FILTER_TERMS)
        .map(|i| format!("emails co \"zz{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    let path = Arc::new(format!("/Users?filter={}", encode(&filter)));
    let attack: Vec<_> = attackers
        .into_iter()
        .map(|mut connection| {
            let (stop, path) = (stop.clone(), path.clone());
            tokio::spawn(async move {
                let mut answers: Answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, _) = connection.send(Method::GET, &path, None).await?;
                    answers.push((status, started.elapsed()));
                }
                Ok::<_, String>(answers)
            })
        })
        .collect();
    // The attack is under way before the victim is measured.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (connections, beside) = victim_gets(connections, ledger, period).await?;
    stop.store(true, Ordering::Relaxed);
    beside.0.print(
        "noisy, the victim beside the attacker (GET /Users/{id})",
        beside.1,
    );
    let mut answers: Answers = Vec::new();
    for task in attack {
        answers.extend(task.await.map_err(|e| e.to_string())??);
    }
    let mut statuses: Vec<(u16, usize, Duration)> = Vec::new();
    for (status, took) in answers {
        match statuses.iter_mut().find(|(s, _, _)| *s == status) {
            Some((_, n, max)) => {
                *n += 1;
                *max = (*max).max(took);
            }
            None => statuses.push((status, 1, took)),
        }
    }
    statuses.sort_unstable();
    for (status, n, max) in statuses {
        println!("  the attacker's filters answered {status}: {n} (slowest {max:.2?})");
    }
    Ok(connections)
}

/// GETs of the run's users on every connection for `period`.
async fn victim_gets(
    connections: Vec<Connection>,
    ledger: &Arc<Ledger>,
    period: Duration,
) -> Result<(Vec<Connection>, (Samples, Duration)), String> {
    let until = Instant::now() + period;
    let (connections, samples, elapsed) = on_all(connections, None, |worker, mut connection| {
        let ledger = ledger.clone();
        async move {
            let mut samples = Samples::default();
            let mut rng = XorShift(0xA076_1D64_78BD_642F ^ ((worker as u64 + 1) << 32));
            let n = ledger.ids.len();
            if n == 0 {
                return Err("no users to work on: --users is 0".into());
            }
            while Instant::now() < until {
                let path = format!("/Users/{}", ledger.ids[rng.below(n)]);
                let (took, _) = connection.expect(200, Method::GET, &path, None).await?;
                samples.record(Op::Get, took);
            }
            Ok((connection, samples, Vec::new()))
        }
    })
    .await?;
    Ok((connections, (samples, elapsed)))
}

/// A OneLogin-style sync on one connection: for each user, a filter on userName then a
/// POST; then a second pass of filter then PUT.
async fn sync_phase(
    connection: &mut Connection,
    ledger: &Ledger,
    users: usize,
) -> Result<(), String> {
    let user_name = |i: usize| format!("{}.s{i}@bench.example", ledger.run);
    let mut samples = Samples::default();
    let started = Instant::now();
    let mut created = Vec::with_capacity(users);
    for i in 0..users {
        let path = filter_path(&user_name(i));
        let (took, reply) = connection.expect(200, Method::GET, &path, None).await?;
        samples.record(Op::Filter, took);
        if parse(&reply)?["totalResults"] != 0 {
            return Err(format!("{path}: a user that was never created"));
        }
        let (took, reply) = connection
            .expect(201, Method::POST, "/Users", Some(&new_user(&user_name(i))))
            .await?;
        samples.record(Op::Create, took);
        created.push((user_name(i), id_of(&reply)?));
    }
    let first_pass = started.elapsed();
    samples.print(
        &format!("sync, first pass ({users} users: filter, then POST)"),
        first_pass,
    );
    let mut samples = Samples::default();
    let started = Instant::now();
    for (name, id) in &created {
        let path = filter_path(name);
        let (took, reply) = connection.expect(200, Method::GET, &path, None).await?;
        samples.record(Op::Filter, took);
        if parse(&reply)?["Resources"][0]["id"] != id.as_str() {
            return Err(format!("{path}: not the user created as {id}"));
        }
        let mut user = new_user(name);
        user["title"] = json!("synced");
        let (took, _) = connection
            .expect(200, Method::PUT, &format!("/Users/{id}"), Some(&user))
            .await?;
        samples.record(Op::Put, took);
    }
    samples.print(
        &format!("sync, second pass ({users} users: filter, then PUT)"),
        started.elapsed(),
    );
    println!(
        "sync of {users} users: {:.2?} (first pass) + {:.2?} (second pass)",
        first_pass,
        started.elapsed()
    );
    ledger
        .extra
        .lock()
        .map_err(|e| e.to_string())?
        .extend(created);
    Ok(())
}

/// Reads back every user the run created, checks the last acknowledged PATCH of each, and
/// that the organisation holds exactly the run's users under its prefix.
async fn verify(connections: Vec<Connection>, ledger: &Arc<Ledger>) -> Result<(), String> {
    let checked = Arc::new(AtomicUsize::new(0));
    let extra = Arc::new(ledger.extra.lock().map_err(|e| e.to_string())?.clone());
    let total = ledger.ids.len() + extra.len();
    let started = Instant::now();
    let (mut connections, _, _) = on_all(connections, None, |_, mut connection| {
        let (ledger, extra, checked) = (ledger.clone(), extra.clone(), checked.clone());
        async move {
            loop {
                let k = checked.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let (user_name, id, patched) = match ledger.ids.get(k) {
                    Some(id) => (
                        ledger.user_name(k),
                        id.as_str(),
                        ledger.patched[k].load(Ordering::Relaxed),
                    ),
                    None => {
                        let (name, id) = &extra[k - ledger.ids.len()];
                        (name.clone(), id.as_str(), 0)
                    }
                };
                let path = format!("/Users/{id}");
                let (_, reply) = connection.expect(200, Method::GET, &path, None).await?;
                let user = parse(&reply)?;
                if user["userName"] != user_name.as_str() {
                    return Err(format!("{path}: userName {} is not {user_name}", user["userName"]));
                }
                if patched > 0 {
                    let want = format!("t{patched}");
                    if user["title"] != want.as_str() || user["name"]["givenName"] != want.as_str()
                    {
                        return Err(format!(
                            "{path}: the last acknowledged PATCH set {want}, stored: title {}, givenName {}",
                            user["title"], user["name"]["givenName"]
                        ));
                    }
                }
            }
            Ok((connection, Samples::default(), Vec::new()))
        }
    })
    .await?;
    let path = format!(
        "/Users?count=0&filter={}",
        encode(&format!("userName sw \"{}.\"", ledger.run))
    );
    let (_, reply) = connections[0].expect(200, Method::GET, &path, None).await?;
    let stored = parse(&reply)?["totalResults"].as_u64().unwrap_or(0);
    if stored != total as u64 {
        return Err(format!(
            "the run acknowledged {total} creates; {stored} of its users are stored"
        ));
    }
    let patches = ledger
        .patched
        .iter()
        .filter(|p| p.load(Ordering::Relaxed) > 0)
        .count();
    println!(
        "verified in {:.2?}: all {total} created users present, the last acknowledged PATCH of {patches} users stored whole",
        started.elapsed()
    );
    Ok(())
}
