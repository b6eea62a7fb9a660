//! `tend config-server`: the fleet ConfigServer (seed 002, iLogtail protocol).
//!
//! ```text
//! tend config-server --listen [inet://]HOST:PORT --store DIR [--token-file F]
//!                    [--heartbeat-interval SECS] [--max-agents N] [--workers N]
//! ```
//!
//! Shape: tiny_http over TCP, a fixed pool of worker threads pulling requests
//! with `recv()`, and one mutex around the state. Every change is applied to a
//! copy, written to the store (fsync'd) and only then made current and
//! acknowledged, so a crash at any moment loses nothing that was answered
//! `Accept`. Heartbeat times and running statistics live in memory (they are
//! refreshed every interval anyway); an agent's registration (id, type,
//! version, ip, tags, startup time) is persisted whenever it changes.
//!
//! This runs as its own process (supervised by tend, see [`component_spec`]),
//! never inside PID 1: tiny_http has no timeouts and can abort on a hostile
//! `Content-Length`, which here costs at most a restart.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::messages::{
    Agent, AgentGroup, Api, Code, ConfigUpdateInfo, Param, Payload, Request, Response, UpdateStatus,
};
use super::store::{State, Store, StoredConfig, Table};
use crate::config::{ComponentSpec, ConfigServerSpec, Mode};

/// Largest request body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// Announced bodies above this are not drained after the answer (see
/// `abandon`); below it, tiny_http's drain allocates at most this much.
const DRAIN_LIMIT: usize = 64 << 20;
/// Abandoned connections tolerated before the process restarts itself.
const MAX_ABANDONED: usize = 64;
/// The group every agent belongs to.
pub const DEFAULT_GROUP: &str = "default";
/// Heartbeats missed before an agent is shown offline.
const MISSED_BEATS: u64 = 3;

/// The supervised child tend starts for `config-server { … }`.
pub fn component_spec(spec: &ConfigServerSpec, exe: &Path) -> ComponentSpec {
    let mut argv = vec![
        exe.display().to_string(),
        "config-server".to_string(),
        "--listen".to_string(),
        spec.listen.clone(),
        "--store".to_string(),
        spec.store.display().to_string(),
    ];
    if let Some(f) = &spec.token_file {
        argv.push("--token-file".to_string());
        argv.push(f.display().to_string());
    }
    let mut c = ComponentSpec::new("config-server", argv);
    c.mode = Mode::Respawn;
    c.flags.precious = true;
    c
}

/// Run the ConfigServer with its arguments; returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tend config-server: {e}\n{USAGE}");
            return 2;
        }
    };
    match run(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tend config-server: {e}");
            1
        }
    }
}

const USAGE: &str = "usage: tend config-server --listen [inet://]HOST:PORT --store DIR \
[--token-file FILE] [--heartbeat-interval SECS] [--max-agents N] [--workers N]";

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    listen: String,
    store: PathBuf,
    token_file: Option<PathBuf>,
    heartbeat_secs: u64,
    max_agents: usize,
    workers: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut listen = None;
        let mut store = None;
        let mut token_file = None;
        let mut heartbeat_secs = 10u64;
        let mut max_agents = 100_000usize;
        let mut workers = 4usize;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "--listen" => listen = Some(parse_listen(&value()?)?),
                "--store" => store = Some(PathBuf::from(value()?)),
                "--token-file" => token_file = Some(PathBuf::from(value()?)),
                "--heartbeat-interval" => heartbeat_secs = positive(name, &value()?)?,
                "--max-agents" => max_agents = positive(name, &value()?)?,
                "--workers" => workers = positive::<usize>(name, &value()?)?.min(64),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Options {
            listen: listen.ok_or("--listen is required")?,
            store: store.ok_or("--store is required")?,
            token_file,
            heartbeat_secs,
            max_agents,
            workers,
        })
    }
}

fn parse_listen(url: &str) -> Result<String, String> {
    let addr = url.strip_prefix("inet://").unwrap_or(url);
    if addr.contains("://") || !addr.contains(':') {
        return Err(format!("--listen {url:?}: expected [inet://]HOST:PORT"));
    }
    Ok(addr.trim_end_matches('/').to_string())
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(name: &str, v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("{name} {v:?}: expected a positive integer")),
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(token)
}

/// Set TCP_NODELAY on a socket (best effort: only latency depends on it).
fn set_nodelay(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from a live local.
    unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn run(opts: &Options) -> Result<(), String> {
    let token = opts.token_file.as_deref().map(read_token).transpose()?;
    let (store, state) = Store::open(&opts.store).map_err(|e| e.to_string())?;
    let service = Service::new(store, state, opts);
    let listener =
        TcpListener::bind(&opts.listen).map_err(|e| format!("listen on {}: {e}", opts.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listen on {}: {e}", opts.listen))?;
    // tiny_http writes an answer in pieces; without TCP_NODELAY a piece
    // after the first waits for the client's delayed ACK (~40 ms). Accepted
    // sockets inherit the option from the listener on Linux.
    set_nodelay(&listener);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| format!("listen on {}: {e}", opts.listen))?;
    log::info!(
        "config-server listening on {local}, store {}",
        opts.store.display()
    );
    let shared = Arc::new(Shared {
        server,
        service,
        token,
        abandoned: AtomicUsize::new(0),
    });
    let workers: Vec<_> = (0..opts.workers)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || worker(&shared))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Err("the HTTP server stopped accepting connections".to_string())
}

/// What the workers share.
struct Shared {
    server: tiny_http::Server,
    service: Service,
    token: Option<String>,
    /// Connections given up by [`abandon`].
    abandoned: AtomicUsize,
}

fn worker(shared: &Shared) {
    loop {
        match shared.server.recv() {
            Ok(req) => {
                // A bug in one request must not take the worker (and with
                // it a share of the server's capacity) down.
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(shared, req)));
                if r.is_err() {
                    log::error!("request handler panicked");
                }
            }
            Err(e) => {
                // tiny_http's accept loop is gone (e.g. out of file
                // descriptors): exit so the supervisor starts a fresh process.
                log::error!("accept failed: {e}; exiting");
                std::process::exit(1);
            }
        }
    }
}

// ------------------------------------------------------------------ HTTP layer

/// How the request body (and so the answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Protobuf,
}

fn header<'a>(req: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn encoding_of(req: &tiny_http::Request) -> Encoding {
    let ct = header(req, "Content-Type").unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" | "application/octet-stream" => {
            Encoding::Protobuf
        }
        _ => Encoding::Json,
    }
}

/// An answer: HTTP status plus the seed's response envelope.
struct Reply {
    status: u16,
    response: Response,
}

impl Reply {
    fn of(response: Response) -> Reply {
        Reply {
            status: response.code.http_status(),
            response,
        }
    }

    /// A transport-level refusal: the status says what, the code stays one of
    /// the seed's.
    fn refuse(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            response: Response::new(Code::BadRequest, message),
        }
    }
}

fn serve(shared: &Shared, mut req: tiny_http::Request) {
    let enc = encoding_of(&req);
    let reply = handle(shared, &mut req);
    let (body, ctype) = match enc {
        Encoding::Json => (reply.response.json_bytes(), "application/json"),
        Encoding::Protobuf => (reply.response.encode(), "application/x-protobuf"),
    };
    let mut resp = tiny_http::Response::from_data(body).with_status_code(reply.status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", ctype) {
        resp.add_header(h);
    }
    if reply.status == 401
        && let Ok(h) = tiny_http::Header::from_bytes("WWW-Authenticate", "Bearer")
    {
        resp.add_header(h);
    }
    if req.body_length().is_some_and(|n| n > DRAIN_LIMIT) {
        abandon(shared, req, resp);
        return;
    }
    if let Err(e) = req.respond(resp) {
        log::debug!("answering: {e}");
    }
}

/// Answer a request whose announced body is too big to drain, and leave its
/// connection behind.
///
/// Why: after `respond`, tiny_http drains the unread body and allocates the
/// whole remaining length at once to do so; for a hostile `Content-Length`
/// that allocation fails and aborts the process. `upgrade` writes the answer
/// and hands the connection over without touching the body; forgetting it
/// leaks one socket and one tiny_http thread. After [`MAX_ABANDONED`] of
/// those the process exits so the supervisor starts a clean one (the store
/// is durable, nothing is lost).
fn abandon(shared: &Shared, req: tiny_http::Request, resp: tiny_http::Response<Cursor<Vec<u8>>>) {
    let conn = req.upgrade("tend-refused", resp);
    std::mem::forget(conn);
    let n = shared.abandoned.fetch_add(1, Ordering::Relaxed) + 1;
    log::warn!("refused a request announcing an oversized body ({n} abandoned connections)");
    if n >= MAX_ABANDONED {
        log::error!("{n} connections abandoned; exiting to release them");
        std::process::exit(1);
    }
}

fn handle(shared: &Shared, req: &mut tiny_http::Request) -> Reply {
    if let Some(token) = &shared.token
        && !authorized(header(req, "Authorization"), token)
    {
        return Reply::refuse(401, "missing or wrong bearer token");
    }
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let Some(api) = Api::from_path(path) else {
        return Reply::refuse(404, format!("unknown path {path}"));
    };
    let method = req.method().as_str().to_ascii_uppercase();
    if method != api.method().name() {
        return Reply::refuse(
            405,
            format!("{} takes {}, not {method}", api.path(), api.method().name()),
        );
    }
    let body = match read_body(req) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut request = match decode(&body, encoding_of(req), api) {
        Ok(r) => r,
        Err(m) => return Reply::of(Response::new(Code::BadRequest, m)),
    };
    merge_query(&mut request, query, api);
    let mut response = match request.missing(api) {
        Some(p) => Response::new(
            Code::BadRequest,
            format!("missing required field: {}", p.name()),
        ),
        None => shared.service.call(api, &request),
    };
    response.response_id = request.request_id;
    Reply::of(response)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, Box<Reply>> {
    let too_large = || {
        Box::new(Reply::refuse(
            413,
            format!("request body larger than {MAX_BODY} bytes"),
        ))
    };
    // Checked before reading: never buffer more than the limit.
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Reply::of(
                Response::new(Code::RequestTimeout, "timed out reading the request body"),
            ),
            _ => Reply::refuse(400, format!("reading the request body: {e}")),
        })?;
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(body)
}

fn decode(body: &[u8], enc: Encoding, api: Api) -> Result<Request, String> {
    match enc {
        Encoding::Protobuf => {
            Request::decode(body, api).map_err(|e| format!("malformed protobuf body: {e}"))
        }
        Encoding::Json => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Request::default());
            }
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))?;
            Request::from_json(&v, api).map_err(|e| format!("malformed request: {e}"))
        }
    }
}

/// Fill parameters the body left empty from the query string
/// (`?group_name=g&config_name=c&request_id=r`).
fn merge_query(req: &mut Request, query: &str, api: Api) {
    for (k, v) in query_pairs(query) {
        let slot = match k.as_str() {
            "request_id" => &mut req.request_id,
            "group_name" if api.params().contains(&Param::GroupName) => &mut req.group_name,
            "config_name" if api.params().contains(&Param::ConfigName) => &mut req.config_name,
            "agent_id" if api.params().contains(&Param::AgentId) => &mut req.agent_id,
            _ => continue,
        };
        if slot.is_empty() {
            *slot = v;
        }
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------- service

/// The state behind the mutex.
struct Inner {
    state: State,
    store: Store,
    /// Last heartbeat per agent, in unix milliseconds (memory only).
    seen_ms: Table<u64>,
}

/// The API's semantics over the durable state.
struct Service {
    inner: Mutex<Inner>,
    interval_ms: u64,
    max_agents: usize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A request the state refuses: the seed's code and why.
#[derive(Debug)]
struct Refusal {
    code: Code,
    message: String,
}

impl From<Refusal> for Response {
    fn from(r: Refusal) -> Response {
        Response::new(r.code, r.message)
    }
}

fn fail(code: Code, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn accept(message: impl Into<String>) -> Response {
    Response::new(Code::Accept, message)
}

fn with(payload: Payload) -> Response {
    Response {
        payload,
        ..accept("")
    }
}

impl Service {
    fn new(store: Store, mut state: State, opts: &Options) -> Service {
        state
            .groups
            .get_or_insert_with(DEFAULT_GROUP, || AgentGroup {
                group_name: DEFAULT_GROUP.to_string(),
                description: "every agent".to_string(),
                tags: Vec::new(),
            });
        // Agents loaded from disk count as last seen at their recorded
        // heartbeat, so a long-dead agent shows offline after a restart.
        let mut seen_ms = Table::default();
        for a in state.agents.values() {
            let ms = u64::try_from(a.latest_heartbeat_time)
                .unwrap_or(0)
                .saturating_mul(1000);
            seen_ms.insert(a.agent_id.clone(), ms);
        }
        Service {
            inner: Mutex::new(Inner {
                state,
                store,
                seen_ms,
            }),
            interval_ms: opts.heartbeat_secs.saturating_mul(1000),
            max_agents: opts.max_agents,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Changes are made on a copy and swapped in whole, so a panic while
        // holding the lock cannot leave a half-applied change behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply `change` to a copy of the state, persist it, then make it
    /// current. The answer is only `Accept` once the change is on disk.
    fn mutate(&self, mut change: impl FnMut(&mut State) -> Result<String, Refusal>) -> Response {
        commit(&mut self.lock(), &mut change)
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.lock())
    }

    fn call(&self, api: Api, req: &Request) -> Response {
        match api {
            Api::CreateAgentGroup => self.mutate(|s| create_group(s, req)),
            Api::UpdateAgentGroup => self.mutate(|s| update_group(s, req)),
            Api::DeleteAgentGroup => self.mutate(|s| delete_group(s, &req.group_name)),
            Api::GetAgentGroup => self.read(|i| get_group(&i.state, &req.group_name)),
            Api::ListAgentGroups => self.read(|i| {
                with(Payload::AgentGroups(
                    i.state.groups.values().cloned().collect(),
                ))
            }),
            Api::CreateConfig => self.mutate(|s| create_config(s, req)),
            Api::UpdateConfig => self.mutate(|s| update_config(s, req)),
            Api::DeleteConfig => self.mutate(|s| delete_config(s, &req.config_name)),
            Api::GetConfig => self.read(|i| get_config(&i.state, &req.config_name)),
            Api::ListConfigs => self.read(|i| {
                with(Payload::Configs(
                    live_configs(&i.state).map(|c| c.config.clone()).collect(),
                ))
            }),
            Api::ApplyConfigToAgentGroup => self.apply(req),
            Api::RemoveConfigFromAgentGroup => self.mutate(|s| remove_config(s, req)),
            Api::GetAppliedConfigsForAgentGroup => {
                self.read(|i| applied_configs(&i.state, &req.group_name))
            }
            Api::GetAppliedAgentGroups => self.read(|i| applied_groups(&i.state, &req.config_name)),
            Api::ListAgents => self.read(|i| self.list_agents(i, &req.group_name)),
            Api::HeartBeat => self.heartbeat(req),
            Api::RunningStatistics => self.running_statistics(req),
            Api::Alarm => self.alarm(req),
            Api::GetConfigList => self.read(|i| get_config_list(&i.state, req)),
        }
    }

    /// Applying twice is not an error, and writes nothing the second time.
    fn apply(&self, req: &Request) -> Response {
        let already = self.read(|i| {
            check_group_and_config(&i.state, &req.group_name, &req.config_name).map(|()| {
                i.state
                    .applied
                    .get(&req.group_name)
                    .is_some_and(|s| s.contains_key(&req.config_name))
            })
        });
        match already {
            Err(r) => r.into(),
            Ok(true) => accept(format!(
                "config {} is already applied to agent group {}",
                req.config_name, req.group_name
            )),
            Ok(false) => self.mutate(|s| {
                check_group_and_config(s, &req.group_name, &req.config_name)?;
                s.applied
                    .get_or_insert_with(&req.group_name, Table::default)
                    .add(req.config_name.clone());
                Ok(format!(
                    "config {} applied to agent group {}",
                    req.config_name, req.group_name
                ))
            }),
        }
    }

    fn is_offline(&self, inner: &Inner, agent_id: &str, now: u64) -> bool {
        let last = inner.seen_ms.get(agent_id).copied().unwrap_or(0);
        now.saturating_sub(last) > self.interval_ms.saturating_mul(MISSED_BEATS)
    }

    fn list_agents(&self, inner: &Inner, group_name: &str) -> Response {
        let Some(group) = inner.state.groups.get(group_name) else {
            return group_not_exist(group_name).into();
        };
        let now = now_ms();
        let agents = inner
            .state
            .agents
            .values()
            .filter(|a| group_matches(group, a))
            .map(|a| {
                let mut a = a.clone();
                if self.is_offline(inner, &a.agent_id, now) {
                    a.running_status = "offline".to_string();
                } else if a.running_status.is_empty() {
                    a.running_status = "online".to_string();
                }
                a
            })
            .collect();
        with(Payload::Agents(agents))
    }

    fn heartbeat(&self, req: &Request) -> Response {
        let now = now_ms();
        let agent = Agent {
            agent_id: req.agent_id.clone(),
            agent_type: req.agent_type.clone(),
            ip: req.ip.clone(),
            version: req.agent_version.clone(),
            running_status: req.running_status.clone(),
            startup_time: req.startup_time,
            latest_heartbeat_time: i64::try_from(now / 1000).unwrap_or(i64::MAX),
            tags: req.tags.clone(),
            running_details: BTreeMap::new(),
        };
        let mut inner = self.lock();
        let full = inner.state.agents.len() >= self.max_agents;
        let response = match inner.state.agents.get_mut(&agent.agent_id) {
            Some(old) if same_registration(old, &agent) => {
                // Only the heartbeat itself changed: memory is enough.
                old.latest_heartbeat_time = agent.latest_heartbeat_time;
                old.running_status = agent.running_status.clone();
                accept("")
            }
            None if full => {
                return fail(
                    Code::ServerBusy,
                    format!("server is at its limit of {} agents", self.max_agents),
                )
                .into();
            }
            _ => commit(&mut inner, &mut |s: &mut State| {
                let mut agent = agent.clone();
                if let Some(old) = s.agents.get(&agent.agent_id) {
                    agent.running_details = old.running_details.clone();
                }
                s.agents.insert(agent.agent_id.clone(), agent);
                Ok(format!("agent {} registered", req.agent_id))
            }),
        };
        if response.code == Code::Accept {
            inner.seen_ms.insert(agent.agent_id, now);
        }
        response
    }

    fn running_statistics(&self, req: &Request) -> Response {
        let mut inner = self.lock();
        let Some(agent) = inner.state.agents.get_mut(&req.agent_id) else {
            return agent_not_exist(&req.agent_id).into();
        };
        let stats = req.running_details.clone().unwrap_or_default();
        let mut details = stats.extras;
        details.insert("cpu".to_string(), plain_decimal(stats.cpu));
        details.insert("memory".to_string(), stats.memory.to_string());
        agent.running_details = details;
        accept("")
    }

    fn alarm(&self, req: &Request) -> Response {
        if !self.read(|i| i.state.agents.contains_key(&req.agent_id)) {
            return agent_not_exist(&req.agent_id).into();
        }
        log::warn!(
            "alarm from agent {}: {}: {}",
            req.agent_id.escape_debug(),
            req.alarm_type.escape_debug(),
            req.detail.escape_debug()
        );
        accept("")
    }
}

/// `f` as Rust's `Display` writes it (`0.5`, `3`, `-0`, `0.0000001`, no
/// exponent), made from the shortest digits serde_json writes for it.
///
/// Why not `f.to_string()`: that is the only float `Display` in the binary
/// and brings some 10 KiB of core's float formatting with it.
fn plain_decimal(f: f32) -> String {
    if !f.is_finite() {
        // Statistics are checked finite when decoded; this is for completeness.
        return match (f.is_nan(), f < 0.0) {
            (true, _) => "NaN",
            (false, true) => "-inf",
            (false, false) => "inf",
        }
        .to_string();
    }
    let json = serde_json::to_string(&f).unwrap_or_default();
    let (negative, unsigned) = match json.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, json.as_str()),
    };
    let mut out = String::from(if negative { "-" } else { "" });
    let Some((mut digits, mut exp)) = shortest_digits(unsigned) else {
        out.push('0');
        return out;
    };
    // serde_json breaks a tie between two shortest candidates towards the
    // even one, `Display` upwards.
    if is_upward_tie(f, digits, exp) {
        digits += 1;
    }
    let mut text = digits.to_string();
    while text.len() > 1 && text.ends_with('0') {
        text.pop();
        exp += 1;
    }
    // Where the decimal point goes, counted in digits from the left.
    let point = i64::try_from(text.len()).unwrap_or(0) + exp;
    if point <= 0 {
        out.push_str("0.");
        for _ in point..0 {
            out.push('0');
        }
        out.push_str(&text);
    } else {
        let split = usize::try_from(point).unwrap_or(usize::MAX);
        match (text.get(..split), text.get(split..)) {
            (Some(whole), Some(part)) if !part.is_empty() => {
                out.push_str(whole);
                out.push('.');
                out.push_str(part);
            }
            _ => {
                out.push_str(&text);
                for _ in text.len()..split {
                    out.push('0');
                }
            }
        }
    }
    out
}

/// `D` and `t` with `text` = D × 10^t and D without trailing zeros, for
/// serde_json's float text (`175.07812`, `1e20`, `1.5e-7`); None for zero.
fn shortest_digits(text: &str) -> Option<(u64, i64)> {
    let (mantissa, exp) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut exp: i64 = exp.parse().ok()?;
    exp -= i64::try_from(frac.len()).ok()?;
    let all = [int, frac].concat();
    let significant = all.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    exp += i64::try_from(significant.len() - trimmed.len()).ok()?;
    let digits: u64 = trimmed.parse().ok()?;
    Some((digits, exp))
}

/// Whether `f` is exactly (`digits` + ½) × 10^`exp`, halfway between two
/// candidates of the same length.
fn is_upward_tie(f: f32, digits: u64, exp: i64) -> bool {
    let bits = f.abs().to_bits();
    let biased = i64::from(bits >> 23);
    let fraction = bits & 0x7f_ffff;
    // f = m × 2^e exactly.
    let (m, e) = if biased == 0 {
        (fraction, -149)
    } else {
        (fraction | 0x80_0000, biased - 150)
    };
    if m == 0 {
        return false;
    }
    let zeros = m.trailing_zeros();
    let (odd, e) = (u64::from(m >> zeros), e + i64::from(zeros));
    // (2D + 1) × 10^t / 2 = (2D + 1) × 5^t × 2^(t-1).
    let Some(mid) = digits.checked_mul(2).and_then(|d| d.checked_add(1)) else {
        return false;
    };
    let Some(five) = u32::try_from(exp.unsigned_abs())
        .ok()
        .and_then(|n| 5u64.checked_pow(n))
    else {
        return false;
    };
    if exp >= 0 {
        mid.checked_mul(five) == Some(odd) && e == exp - 1
    } else {
        mid % five == 0 && mid / five == odd && e == exp - 1
    }
}

/// Apply `change` to a copy of the state, persist it, then make it current.
/// The answer is only `Accept` once the change is on disk; on any refusal or
/// write error the current state is untouched.
///
/// `change` is a trait object so the function exists once in the binary,
/// not once per kind of change.
fn commit(
    inner: &mut Inner,
    change: &mut dyn FnMut(&mut State) -> Result<String, Refusal>,
) -> Response {
    let mut next = inner.state.clone();
    let message = match change(&mut next) {
        Ok(m) => m,
        Err(refusal) => return refusal.into(),
    };
    if let Err(e) = inner.store.save(&next) {
        log::error!("store: {e}");
        return fail(
            Code::InternalServerError,
            format!("could not save the change: {e}"),
        )
        .into();
    }
    inner.state = next;
    accept(message)
}

fn same_registration(a: &Agent, b: &Agent) -> bool {
    a.agent_type == b.agent_type
        && a.ip == b.ip
        && a.version == b.version
        && a.startup_time == b.startup_time
        && a.tags == b.tags
}

fn group_not_exist(name: &str) -> Refusal {
    fail(
        Code::AgentGroupNotExist,
        format!("agent group {name} does not exist"),
    )
}

fn config_not_exist(name: &str) -> Refusal {
    fail(
        Code::ConfigNotExist,
        format!("config {name} does not exist"),
    )
}

fn agent_not_exist(id: &str) -> Refusal {
    fail(
        Code::AgentNotExist,
        format!("agent {id} is not known; send a HeartBeat first"),
    )
}

/// `default` matches every agent; other groups when one of their tags is
/// one of the agent's.
fn group_matches(group: &AgentGroup, agent: &Agent) -> bool {
    group.group_name == DEFAULT_GROUP
        || group
            .tags
            .iter()
            .any(|t| agent.tags.get(&t.name) == Some(&t.value))
}

/// A config names the kind of agent it is written for (`agent_type`, e.g.
/// `tend` or `iLogtail`); one kind cannot run another's content, so an
/// agent of another type is not given it (an agent that has it is told it
/// was deleted). An empty `agent_type` suits every agent.
fn suits(config: &StoredConfig, agent: &Agent) -> bool {
    config.config.agent_type.is_empty() || config.config.agent_type == agent.agent_type
}

fn live_configs(state: &State) -> impl Iterator<Item = &StoredConfig> {
    state.configs.values().filter(|c| !c.deleted)
}

fn live_config<'a>(state: &'a State, name: &str) -> Option<&'a StoredConfig> {
    state.configs.get(name).filter(|c| !c.deleted)
}

fn group_param(req: &Request) -> Result<AgentGroup, Refusal> {
    let g = req.agent_group.clone().unwrap_or_default();
    if g.group_name.is_empty() {
        return Err(fail(
            Code::BadRequest,
            "missing required field: agent_group.group_name",
        ));
    }
    Ok(g)
}

fn create_group(s: &mut State, req: &Request) -> Result<String, Refusal> {
    let g = group_param(req)?;
    if s.groups.contains_key(&g.group_name) {
        return Err(fail(
            Code::AgentGroupAlreadyExist,
            format!("agent group {} already exists", g.group_name),
        ));
    }
    let msg = format!("agent group {} created", g.group_name);
    s.groups.insert(g.group_name.clone(), g);
    Ok(msg)
}

fn update_group(s: &mut State, req: &Request) -> Result<String, Refusal> {
    let g = group_param(req)?;
    let Some(slot) = s.groups.get_mut(&g.group_name) else {
        return Err(group_not_exist(&g.group_name));
    };
    let msg = format!("agent group {} updated", g.group_name);
    *slot = g;
    Ok(msg)
}

fn delete_group(s: &mut State, name: &str) -> Result<String, Refusal> {
    if name == DEFAULT_GROUP {
        return Err(fail(
            Code::InvalidParameter,
            "the default agent group cannot be deleted",
        ));
    }
    if !s.groups.contains_key(name) {
        return Err(group_not_exist(name));
    }
    if let Some(applied) = s.applied.get(name).filter(|a| !a.is_empty()) {
        return Err(fail(
            Code::InvalidParameter,
            format!(
                "agent group {name} still has configs applied ({}); remove them first",
                join(applied.keys())
            ),
        ));
    }
    s.groups.remove(name);
    s.applied.remove(name);
    Ok(format!("agent group {name} deleted"))
}

fn join<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn get_group(s: &State, name: &str) -> Response {
    match s.groups.get(name) {
        Some(g) => with(Payload::AgentGroup(g.clone())),
        None => group_not_exist(name).into(),
    }
}

fn config_param(req: &Request) -> Result<super::messages::Config, Refusal> {
    let c = req.config_detail.clone().unwrap_or_default();
    if c.config_name.is_empty() {
        return Err(fail(
            Code::BadRequest,
            "missing required field: config_detail.config_name",
        ));
    }
    Ok(c)
}

/// Versions never go back: a re-created config continues after its tombstone.
fn create_config(s: &mut State, req: &Request) -> Result<String, Refusal> {
    let c = config_param(req)?;
    let version = match s.configs.get(&c.config_name) {
        Some(old) if !old.deleted => {
            return Err(fail(
                Code::ConfigAlreadyExist,
                format!("config {} already exists", c.config_name),
            ));
        }
        Some(tombstone) => tombstone.version.saturating_add(1),
        None => 0,
    };
    let msg = format!("config {} created (version {version})", c.config_name);
    s.configs.insert(
        c.config_name.clone(),
        StoredConfig {
            config: c,
            version,
            deleted: false,
        },
    );
    Ok(msg)
}

fn update_config(s: &mut State, req: &Request) -> Result<String, Refusal> {
    let c = config_param(req)?;
    let Some(slot) = s.configs.get_mut(&c.config_name).filter(|c| !c.deleted) else {
        return Err(config_not_exist(&c.config_name));
    };
    slot.version = slot.version.saturating_add(1);
    let msg = format!(
        "config {} updated (version {})",
        c.config_name, slot.version
    );
    slot.config = c;
    Ok(msg)
}

fn groups_applying<'a>(s: &'a State, config: &'a str) -> impl Iterator<Item = &'a String> {
    s.applied
        .iter()
        .filter(move |(_, set)| set.contains_key(config))
        .map(|(g, _)| g)
}

fn delete_config(s: &mut State, name: &str) -> Result<String, Refusal> {
    if live_config(s, name).is_none() {
        return Err(config_not_exist(name));
    }
    let groups: Vec<&String> = groups_applying(s, name).collect();
    if !groups.is_empty() {
        return Err(fail(
            Code::InvalidParameter,
            format!(
                "config {name} is still applied to agent groups ({}); remove it from them first",
                join(groups)
            ),
        ));
    }
    if let Some(c) = s.configs.get_mut(name) {
        c.deleted = true;
        c.version = c.version.saturating_add(1);
    }
    Ok(format!("config {name} deleted"))
}

fn get_config(s: &State, name: &str) -> Response {
    match live_config(s, name) {
        Some(c) => with(Payload::Config(c.config.clone())),
        None => config_not_exist(name).into(),
    }
}

fn check_group_and_config(s: &State, group: &str, config: &str) -> Result<(), Refusal> {
    if !s.groups.contains_key(group) {
        return Err(group_not_exist(group));
    }
    if live_config(s, config).is_none() {
        return Err(config_not_exist(config));
    }
    Ok(())
}

fn remove_config(s: &mut State, req: &Request) -> Result<String, Refusal> {
    let (group, config) = (&req.group_name, &req.config_name);
    check_group_and_config(s, group, config)?;
    let removed = s
        .applied
        .get_mut(group)
        .is_some_and(|set| set.remove(config));
    if !removed {
        return Err(fail(
            Code::ConfigNotExist,
            format!("config {config} is not applied to agent group {group}"),
        ));
    }
    if s.applied.get(group).is_some_and(Table::is_empty) {
        s.applied.remove(group);
    }
    Ok(format!("config {config} removed from agent group {group}"))
}

fn applied_configs(s: &State, group: &str) -> Response {
    if !s.groups.contains_key(group) {
        return group_not_exist(group).into();
    }
    let names = s
        .applied
        .get(group)
        .map(|set| set.keys().cloned().collect())
        .unwrap_or_default();
    with(Payload::ConfigNames(names))
}

fn applied_groups(s: &State, config: &str) -> Response {
    if live_config(s, config).is_none() {
        return config_not_exist(config).into();
    }
    with(Payload::AgentGroupNames(
        groups_applying(s, config).cloned().collect(),
    ))
}

/// Compare what the agent has with what its groups should give it.
fn get_config_list(s: &State, req: &Request) -> Response {
    let Some(agent) = s.agents.get(&req.agent_id) else {
        return agent_not_exist(&req.agent_id).into();
    };
    // The live configs applied to one of the agent's groups, by name; an
    // entry is taken (set to None) once the agent's list has mentioned it.
    let mut wanted: Vec<(&str, Option<&StoredConfig>)> = Vec::new();
    for group in s.groups.values().filter(|g| group_matches(g, agent)) {
        for name in s
            .applied
            .get(&group.group_name)
            .into_iter()
            .flat_map(Table::keys)
        {
            if let Some(c) = live_config(s, name)
                && suits(c, agent)
                && let Err(i) = wanted.binary_search_by(|(n, _)| (*n).cmp(name))
            {
                wanted.insert(i, (name, Some(c)));
            }
        }
    }
    let mut infos = Vec::new();
    for (name, have) in &req.config_versions {
        let slot = wanted
            .binary_search_by(|(n, _)| (*n).cmp(name.as_str()))
            .ok()
            .and_then(|i| wanted.get_mut(i));
        let info = match slot.and_then(|(_, c)| c.take()) {
            None => ConfigUpdateInfo {
                config_name: name.clone(),
                update_status: UpdateStatus::Deleted,
                ..ConfigUpdateInfo::default()
            },
            Some(c) if c.version > *have => update_info(c, UpdateStatus::Modified),
            Some(c) => ConfigUpdateInfo {
                config_name: name.clone(),
                update_status: UpdateStatus::Same,
                config_version: c.version,
                content: String::new(),
            },
        };
        infos.push(info);
    }
    infos.extend(
        wanted
            .iter()
            .filter_map(|(_, c)| *c)
            .map(|c| update_info(c, UpdateStatus::New)),
    );
    with(Payload::ConfigUpdateInfos(infos))
}

fn update_info(c: &StoredConfig, status: UpdateStatus) -> ConfigUpdateInfo {
    ConfigUpdateInfo {
        config_name: c.config.config_name.clone(),
        update_status: status,
        config_version: c.version,
        content: c.config.content.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&args(&[
            "--listen",
            "inet://127.0.0.1:8899",
            "--store=/tmp/x",
            "--heartbeat-interval",
            "1",
        ]))
        .unwrap();
        assert_eq!(o.listen, "127.0.0.1:8899");
        assert_eq!(o.store, PathBuf::from("/tmp/x"));
        assert_eq!(o.heartbeat_secs, 1);
        assert!(Options::parse(&args(&["--store", "/x"])).is_err());
        assert!(Options::parse(&args(&["--listen", "unix:///x", "--store", "/x"])).is_err());
        assert!(
            Options::parse(&args(&[
                "--listen",
                "1.2.3.4:1",
                "--store",
                "/x",
                "--heartbeat-interval",
                "0"
            ]))
            .is_err()
        );
    }

    #[test]
    fn component_spec_runs_this_binary() {
        let spec = ConfigServerSpec {
            listen: "inet://0.0.0.0:8899".into(),
            store: PathBuf::from("/var/lib/tend/fleet"),
            token_file: Some(PathBuf::from("/etc/tend/token")),
        };
        let c = component_spec(&spec, Path::new("/usr/bin/tend"));
        assert_eq!(c.tag, "config-server");
        assert_eq!(
            c.argv,
            args(&[
                "/usr/bin/tend",
                "config-server",
                "--listen",
                "inet://0.0.0.0:8899",
                "--store",
                "/var/lib/tend/fleet",
                "--token-file",
                "/etc/tend/token"
            ])
        );
        assert_eq!(c.mode, Mode::Respawn);
        assert!(c.flags.precious);
    }

    #[test]
    fn plain_decimal_is_display() {
        let mut samples = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.5,
            0.1,
            1e-7,
            1.5e-7,
            123456.0,
            1e20,
            3.4028235e38,
            f32::MIN_POSITIVE,
            1e-45,
            99.99,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        samples.extend((0..=u32::MAX).step_by(7919).map(f32::from_bits));
        for f in samples {
            assert_eq!(plain_decimal(f), f.to_string(), "{:#x}", f.to_bits());
        }
    }

    #[test]
    fn query_strings_and_tokens() {
        assert_eq!(
            query_pairs("group_name=a%20b&x&config_name=c+d&bad=%zz"),
            vec![
                ("group_name".to_string(), "a b".to_string()),
                ("x".to_string(), String::new()),
                ("config_name".to_string(), "c d".to_string()),
                ("bad".to_string(), "%zz".to_string()),
            ]
        );
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(!authorized(Some("Bearer s3cre"), "s3cret"));
        assert!(!authorized(Some("Basic s3cret"), "s3cret"));
        assert!(!authorized(None, "s3cret"));
    }
}
