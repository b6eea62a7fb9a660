//! `tend gateway`: serves an `inet://` listener by relaying to the UNIX control socket.
//!
//! PID 1 never parses HTTP from the network (see design.md, Security). Each
//! TCP listener is served by this separate, unprivileged, resource-limited
//! process, which tend supervises as a precious component. It checks every
//! request (client address, `Host`, `Origin`, credentials, size) and relays
//! the survivors to the daemon's UNIX socket, telling it the caller's rights
//! in `X-Tend-Access`.
//!
//! Why not tiny_http here: tiny_http 0.12 accepts connections on its own
//! thread and spawns a thread per connection with no cap, has no header
//! limits and aborts the process when a request with a huge announced
//! `Content-Length` is dropped unread (its body reader allocates the whole
//! remaining length). None of that can be fixed from outside, so the gateway
//! parses requests itself with the strict, bounded HTTP/1.1 reader shared
//! with [`crate::client`]: capped head and body sizes, per-request deadlines
//! (slowloris), a hard cap on concurrent connections (one thread each).

mod framing;
mod relay;

use crate::client::{self, ClientError, Endpoint, Framing, Response};
use crate::config::{ComponentSpec, Control, ListenUrl, Mode, Stdio, Throttle};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default cap on a request body.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default cap on concurrent connections.
const DEFAULT_MAX_CONNS: usize = 32;
/// Address-space limit of the gateway process.
const ADDRESS_SPACE_LIMIT: u64 = 256 * 1024 * 1024;
/// Largest answer relayed from the daemon.
const MAX_RELAYED_ANSWER: usize = 8 * 1024 * 1024;
/// Largest request head (request line plus headers).
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Time allowed for a request head to arrive, and for an idle keep-alive connection.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request body to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for writing an answer to the client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the daemon to answer (stopping components can take a while).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests served on one keep-alive connection before it is closed. Each
/// reconnect costs an upstream connection (and a thread) in the daemon, so
/// the cap is high enough (nginx's default) to make them rare under load.
const MAX_REQUESTS_PER_CONN: usize = 1000;

/// Run the gateway with its arguments; returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    crate::spawn::die_with_parent();
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let opts = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("tend gateway: {e}\n{USAGE}");
            return 2;
        }
    };
    match run(opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tend gateway: {e}");
            // tend restarts a precious component at once: pause so a
            // persistent failure (port in use, bad file) does not spin.
            std::thread::sleep(Duration::from_secs(1));
            1
        }
    }
}

const USAGE: &str = "\
usage: tend gateway --listen HOST:PORT --upstream /path/to/unix.sock
         [--token-file F] [--basic-auth-file F] [--allow CIDR,...] [--deny CIDR,...]
         [--name HOST]... [--user USER] [--max-conns N] [--max-body BYTES]
Serves a TCP listener for tend's control API, relaying each request to the
daemon's UNIX socket after address, Host/Origin, credential and size checks.
";

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    listen: String,
    upstream: PathBuf,
    token_file: Option<PathBuf>,
    basic_auth_file: Option<PathBuf>,
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    names: Vec<String>,
    user: Option<String>,
    max_conns: usize,
    max_body: usize,
}

/// Parse arguments; `Ok(None)` for `--help`.
fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut o = Options {
        listen: String::new(),
        upstream: PathBuf::new(),
        token_file: None,
        basic_auth_file: None,
        allow: Vec::new(),
        deny: Vec::new(),
        names: Vec::new(),
        user: None,
        max_conns: DEFAULT_MAX_CONNS,
        max_body: DEFAULT_MAX_BODY,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--listen" => {
                let v = value()?;
                listen = Some(v.strip_prefix("inet://").unwrap_or(&v).to_string());
            }
            "--upstream" => {
                let v = value()?;
                upstream = Some(PathBuf::from(v.strip_prefix("unix://").unwrap_or(&v)));
            }
            "--token-file" => o.token_file = Some(PathBuf::from(value()?)),
            "--basic-auth-file" => o.basic_auth_file = Some(PathBuf::from(value()?)),
            "--allow" => o.allow.extend(parse_cidr_list(&value()?)?),
            "--deny" => o.deny.extend(parse_cidr_list(&value()?)?),
            "--name" => o.names.push(value()?.to_ascii_lowercase()),
            "--user" => o.user = Some(value()?),
            "--max-conns" => o.max_conns = parse_count(flag, &value()?)?,
            "--max-body" => o.max_body = parse_count(flag, &value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    o.listen = listen.ok_or("--listen HOST:PORT is required")?;
    o.upstream = upstream.ok_or("--upstream /path/to/unix.sock is required")?;
    let (_, port) = client::split_host_port(&o.listen).map_err(|e| format!("--listen: {e}"))?;
    if port.is_none() {
        return Err("--listen needs a port (HOST:PORT)".to_string());
    }
    Ok(Some(o))
}

fn parse_count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag}: expected a positive number, got {v:?}"))
}

fn parse_cidr_list(v: &str) -> Result<Vec<Cidr>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Cidr::parse)
        .collect()
}

/// Bind, drop privileges, limit resources, serve forever.
fn run(opts: Options) -> Result<(), String> {
    // Credentials are read while still privileged: the files are typically root's.
    let access = Access::load(opts.token_file.as_deref(), opts.basic_auth_file.as_deref())?;
    let listener = TcpListener::bind(&opts.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let secret = std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty());
    harden(opts.user.as_deref())?;
    let (listen_host, _) = client::split_host_port(&opts.listen).unwrap_or_default();
    let gw = Gateway {
        hosts: HostRules {
            listen_host: listen_host.to_ascii_lowercase(),
            port: local.port(),
            names: opts.names.clone(),
        },
        allow: opts.allow,
        deny: opts.deny,
        access,
        upstream: Endpoint::Unix(opts.upstream),
        max_body: opts.max_body,
        max_conns: opts.max_conns,
        secret,
    };
    log::info!("gateway listening on {local}");
    relay::serve(&listener, &gw)
}

/// What serving a connection needs: the rules, read-only.
struct Gateway {
    hosts: HostRules,
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    access: Access,
    upstream: Endpoint,
    max_body: usize,
    max_conns: usize,
    /// Proof of identity on the daemon's gateway socket (from
    /// [`SECRET_ENV`]); `None` when run by hand against an ordinary socket.
    secret: Option<String>,
}

/// Environment variable through which the daemon hands the gateway the
/// secret its upstream socket demands.
pub const SECRET_ENV: &str = "TEND_GATEWAY_SECRET";

/// Answer 503 to a connection over the cap. This runs on the event loop,
/// so it never waits: it drains only what already arrived (so the
/// close is a FIN, not a RST that could destroy the answer) and closes.
fn refuse_busy(mut stream: TcpStream) {
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .ok();
    let body = error_body("too many connections");
    let mut answer = Vec::new();
    render_response(&mut answer, 503, &[], body.as_bytes(), false, false);
    let _ = stream.write_all(&answer);
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match stream.read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

/// A refusal to answer with a JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    /// HTTP status.
    status: u16,
    /// Human-readable reason, sent as `message`.
    message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The parts of a request line.
struct RequestLine {
    method: String,
    target: String,
    http10: bool,
}

fn parse_request_line(line: &str) -> Result<RequestLine, Refusal> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::new(400, "malformed request line"));
    };
    if !client::is_token(method) {
        return Err(Refusal::new(400, "malformed method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(Refusal::new(
            400,
            "the request target must be an absolute path",
        ));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(Refusal::new(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ));
        }
    };
    Ok(RequestLine {
        method: method.to_string(),
        target: target.to_string(),
        http10,
    })
}

/// Every check that needs only the head: address, Host, size, credentials, Origin.
fn check_request(
    req: &RequestLine,
    headers: &[(String, String)],
    peer: IpAddr,
    gw: &Gateway,
) -> Result<(Rights, Framing), Refusal> {
    if !address_allowed(peer, &gw.allow, &gw.deny) {
        return Err(Refusal::new(403, format!("address {peer} is not allowed")));
    }
    let host = single_header(headers, "host")?;
    let origin = single_header(headers, "origin")?;
    let path = req.target.split('?').next().unwrap_or("");
    gw.hosts.check(&req.method, path, host, origin)?;
    let framing = match client::message_framing(headers, Framing::Empty) {
        Ok(f) => f,
        Err(_) => return Err(Refusal::new(400, "bad Content-Length or Transfer-Encoding")),
    };
    if let Framing::Length(n) = framing {
        if n > u64::try_from(gw.max_body).unwrap_or(u64::MAX) {
            return Err(Refusal::new(
                413,
                format!(
                    "request body of {n} bytes is over the limit of {}",
                    gw.max_body
                ),
            ));
        }
    }
    let rights = gw
        .access
        .authenticate(client::header_value(headers, "authorization"))?;
    if rights == Rights::Read && is_mutating(&req.method, path) {
        return Err(Refusal::new(
            403,
            "read-only access: this request changes state",
        ));
    }
    Ok((rights, framing))
}

/// The value of a header that may appear at most once (two `Host`s are an attack).
fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, Refusal> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(Refusal::new(400, format!("more than one {name} header")));
    }
    Ok(first)
}

fn wants_keep_alive(req: &RequestLine, headers: &[(String, String)]) -> bool {
    let conn = client::header_value(headers, "connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    if req.http10 {
        conn.contains("keep-alive")
    } else {
        !conn.contains("close")
    }
}

/// The request to send the daemon: the client's method (HEAD as GET, so
/// the answer carries its real length), target and body, with the caller's
/// address and rights and the proof of identity the daemon's socket wants.
fn upstream_message(
    req: &RequestLine,
    headers: &[(String, String)],
    body: &[u8],
    peer: IpAddr,
    rights: Rights,
    gw: &Gateway,
) -> Result<Vec<u8>, ClientError> {
    let peer_text = peer.to_string();
    let mut forward: Vec<(&str, &str)> = vec![
        ("X-Forwarded-For", &peer_text),
        ("X-Tend-Access", rights.as_str()),
    ];
    for name in ["Content-Type", "Accept"] {
        if let Some(v) = client::header_value(headers, name) {
            forward.push((name, v));
        }
    }
    if let Some(secret) = &gw.secret {
        forward.push((crate::api::GATEWAY_HEADER, secret));
    }
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        &req.method
    };
    let head = client::format_request(
        &gw.upstream,
        method,
        &req.target,
        &forward,
        body.len(),
        true,
    )?;
    let mut message = Vec::with_capacity(head.len() + body.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(body);
    Ok(message)
}

/// The daemon's answer as given to the client: its status, the headers
/// worth passing on, its body.
fn relayed_answer(resp: Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let kept = resp
        .headers
        .into_iter()
        .filter(|(n, _)| {
            RELAYED_ANSWER_HEADERS
                .iter()
                .any(|k| n.eq_ignore_ascii_case(k))
        })
        .collect();
    (resp.status, kept, resp.body)
}

/// Answer headers worth passing on; framing headers are the gateway's own.
const RELAYED_ANSWER_HEADERS: [&str; 5] = [
    "Content-Type",
    "Retry-After",
    "Allow",
    "Location",
    "Cache-Control",
];

/// `{"status":"ER","message":…}`.
fn error_body(message: &str) -> String {
    serde_json::json!({ "status": "ER", "message": message }).to_string()
}

/// Append a complete answer with `Content-Length` framing to `out` (head
/// and body together: one write, one segment for a small answer). An
/// answer to HEAD (`head_only`) announces the body's length but leaves it out.
fn render_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    use std::fmt::Write as _;
    let mut head = String::with_capacity(160);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    let mut typed = false;
    for (name, value) in headers {
        // Values came through our own parser (no CR/LF), but stay defensive.
        if value.contains(['\r', '\n']) || !client::is_token(name) {
            continue;
        }
        typed |= name.eq_ignore_ascii_case("content-type");
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !typed {
        head.push_str("Content-Type: application/json\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nX-Content-Type-Options: nosniff\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let body = if head_only { &[][..] } else { body };
    out.reserve(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------
// Host and Origin checks (DNS rebinding, CSRF)

/// Which `Host` values a listener answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRules {
    /// The host part of `--listen`, lowercase.
    listen_host: String,
    /// The port actually bound.
    port: u16,
    /// Extra names (`--name`), lowercase.
    names: Vec<String>,
}

impl HostRules {
    /// Refuse a foreign `Host` (DNS rebinding), and a foreign `Origin` on a
    /// request that changes state (CSRF).
    fn check(
        &self,
        method: &str,
        path: &str,
        host: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), Refusal> {
        let host = host.ok_or_else(|| Refusal::new(400, "missing Host header"))?;
        if !self.host_allowed(host) {
            return Err(Refusal::new(
                403,
                format!("Host {host:?} is not a name of this listener (use --name to add one)"),
            ));
        }
        if let Some(origin) = origin {
            if is_mutating(method, path) && !same_origin(origin, host) {
                return Err(Refusal::new(
                    403,
                    format!("cross-origin request from {origin:?} refused"),
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Ok((name, port)) = client::split_host_port(host) else {
            return false;
        };
        if port.unwrap_or(80) != self.port {
            return false;
        }
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        // An IP literal cannot be the product of DNS rebinding, which always
        // carries the attacker's domain name in Host.
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name == self.listen_host
            || self.names.iter().any(|n| n == name)
    }
}

/// `Origin` (`scheme://host[:port]`) names the same authority as `Host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // includes the opaque origin "null"
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let (Ok((oh, op)), Ok((hh, hp))) = (
        client::split_host_port(authority),
        client::split_host_port(host),
    ) else {
        return false;
    };
    oh.eq_ignore_ascii_case(&hh) && op.unwrap_or(default_port) == hp.unwrap_or(default_port)
}

/// Requests that change state: every method but GET/HEAD/OPTIONS, and the
/// RPC and tunable endpoints, which act on GET too (Fluentd and Pegasus style).
fn is_mutating(method: &str, path: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
        || path.starts_with("/api/")
        || path == "/updateConfig"
        || path.starts_with("/updateConfig/")
}

/// Host and Origin checks for the daemon's own listeners: `Err` carries the
/// HTTP status (400 or 403) and a message for a `{"status":"ER"}` answer.
///
/// `listen` is the listener's `host:port`; `names` are extra accepted host
/// names (lowercase). `host`/`origin` are the request's headers, if sent.
/// `path` is the request path without the query string.
pub fn check_local_request(
    method: &str,
    path: &str,
    host: Option<&str>,
    origin: Option<&str>,
    listen: &str,
    names: &[String],
) -> Result<(), (u16, String)> {
    let (listen_host, port) = client::split_host_port(listen).unwrap_or_default();
    let rules = HostRules {
        listen_host: listen_host.to_ascii_lowercase(),
        port: port.unwrap_or(80),
        names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
    };
    rules
        .check(method, path, host, origin)
        .map_err(|r| (r.status, r.message))
}

// ---------------------------------------------------------------------------
// Client addresses

/// An address block: `10.0.0.0/8`, `::1`, `fe80::/10`, `192.0.2.7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("bad address or CIDR block {s:?}");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr = canonical_ip(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, seen on dual-stack sockets) as plain IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Deny wins; an empty allow list allows everyone not denied.
fn address_allowed(ip: IpAddr, allow: &[Cidr], deny: &[Cidr]) -> bool {
    !deny.iter().any(|c| c.contains(ip))
        && (allow.is_empty() || allow.iter().any(|c| c.contains(ip)))
}

// ---------------------------------------------------------------------------
// Credentials

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rights {
    /// Everything.
    Admin,
    /// Only requests that change nothing.
    Read,
}

impl Rights {
    fn as_str(self) -> &'static str {
        match self {
            Rights::Admin => "admin",
            Rights::Read => "read",
        }
    }
}

/// One line of the Basic credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BasicUser {
    name: String,
    sha256: [u8; 32],
    rights: Rights,
}

/// The configured credentials; none configured means everyone is admin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Access {
    /// SHA-256 of the bearer token (compared hashed: constant time, no length leak).
    token_sha256: Option<[u8; 32]>,
    users: Vec<BasicUser>,
    basic_configured: bool,
}

impl Access {
    fn load(token_file: Option<&Path>, basic_file: Option<&Path>) -> Result<Access, String> {
        let mut access = Access::default();
        if let Some(f) = token_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read token file {}: {e}", f.display()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("token file {} is empty", f.display()));
            }
            access.token_sha256 = Some(sha256(token.as_bytes()));
        }
        if let Some(f) = basic_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read credentials file {}: {e}", f.display()))?;
            access.users = parse_basic_file(&text).map_err(|e| format!("{}:{e}", f.display()))?;
            access.basic_configured = true;
        }
        Ok(access)
    }

    fn configured(&self) -> bool {
        self.token_sha256.is_some() || self.basic_configured
    }

    /// The caller's rights from its `Authorization` header.
    fn authenticate(&self, authorization: Option<&str>) -> Result<Rights, Refusal> {
        if !self.configured() {
            return Ok(Rights::Admin);
        }
        let denied = || Refusal::new(401, "missing or wrong credentials");
        let value = authorization.ok_or_else(denied)?;
        let (scheme, cred) = value.split_once(' ').ok_or_else(denied)?;
        let cred = cred.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let want = self.token_sha256.ok_or_else(denied)?;
            return if constant_time_eq(&sha256(cred.as_bytes()), &want) {
                Ok(Rights::Admin)
            } else {
                Err(denied())
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64_decode(cred).ok_or_else(denied)?;
            let (user, pass) = split_at_byte(&decoded, b':').ok_or_else(denied)?;
            let hash = sha256(pass);
            // Hash compared against every entry so timing does not reveal user names.
            let mut found = None;
            for u in &self.users {
                let matches = constant_time_eq(&hash, &u.sha256);
                if u.name.as_bytes() == user && matches {
                    found = Some(u.rights);
                }
            }
            return found.ok_or_else(denied);
        }
        Err(denied())
    }
}

fn split_at_byte(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|b| *b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `user:sha256-hex[:ro]` lines; `#` comments and blank lines skipped.
fn parse_basic_file(text: &str) -> Result<Vec<BasicUser>, String> {
    let mut users = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let lineno = i + 1;
        let mut parts = line.split(':');
        let (Some(name), Some(hex)) = (parts.next(), parts.next()) else {
            return Err(format!("{lineno}: expected user:sha256-hex[:ro]"));
        };
        let rights = match parts.next() {
            None => Rights::Admin,
            Some("ro") => Rights::Read,
            Some("rw") => Rights::Admin,
            Some(other) => return Err(format!("{lineno}: unknown access {other:?} (ro or rw)")),
        };
        if parts.next().is_some() || name.is_empty() {
            return Err(format!("{lineno}: expected user:sha256-hex[:ro]"));
        }
        let sha256 = parse_hex32(hex)
            .ok_or_else(|| format!("{lineno}: the password hash must be 64 hex digits (sha256)"))?;
        users.push(BasicUser {
            name: name.to_string(),
            sha256,
            rights,
        });
    }
    Ok(users)
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Standard base64 (RFC 4648) with optional padding; `None` if invalid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    for chunk in s.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for c in chunk {
            acc = (acc << 6) | value(*c)?;
        }
        // 4 chars → 3 bytes, 3 → 2, 2 → 1: left-align the bits in 24.
        let (n, shifted) = match chunk.len() {
            4 => (3, acc),
            3 => (2, acc << 6),
            _ => (1, acc << 12),
        };
        let b = shifted.to_be_bytes();
        out.extend_from_slice(b.get(1..1 + n)?);
    }
    Some(out)
}

/// SHA-256 (FIPS 180-4).
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let bit_len = u64::try_from(data.len())
        .unwrap_or(u64::MAX)
        .wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (wi, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *wi = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (o, word) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Lowercase hex of a SHA-256 digest, as written in the Basic credentials
/// file (`printf %s PASSWORD | sha256sum`).
pub fn sha256_hex(data: &[u8]) -> String {
    sha256(data).iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Privileges and limits

/// Drop root (to `user`, default `nobody`) and cap resources.
fn harden(user: Option<&str>) -> Result<(), String> {
    // SAFETY: plain syscalls with valid arguments; no memory is shared.
    unsafe {
        // No setuid binary run from here may regain privileges.
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        drop_privileges(user.unwrap_or("nobody"))?;
    } else if let Some(u) = user {
        log::warn!("not running as root: ignoring --user {u}");
    }
    limit_memory();
    // Other processes of the same (shared, unprivileged) user must not read
    // our environment or memory: the upstream secret is there.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    Ok(())
}

/// Switch to `user` for good: supplementary groups, group, then user.
fn drop_privileges(user: &str) -> Result<(), String> {
    let (uid, gid) = lookup_user(user)?;
    // SAFETY: setgroups reads one gid from a valid pointer; the others take ids.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(format!("setgroups: {}", io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!("setgid({gid}): {}", io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!("setuid({uid}): {}", io::Error::last_os_error()));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err("privileges could be regained after setuid".to_string());
        }
    }
    Ok(())
}

/// The (uid, gid) a gateway started by root with `--user user` runs as
/// (default `nobody`). The daemon needs it to hand the gateway an upstream
/// socket it can connect to (`chown`), since the gateway connects after
/// dropping root.
pub fn gateway_ids(user: Option<&str>) -> Result<(libc::uid_t, libc::gid_t), String> {
    lookup_user(user.unwrap_or("nobody"))
}

/// (uid, gid) of a user name or number. A number without a passwd entry
/// uses the same number as group (the `nobody` of minimal images is 65534).
fn lookup_user(user: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    match crate::spawn::lookup_user(user) {
        Ok(u) => Ok((u.uid, u.gid)),
        // Minimal images may lack a passwd entry for the traditional nobody.
        Err(_) if user == "nobody" => Ok((65534, 65534)),
        Err(e) => Err(e.to_string()),
    }
}

/// Cap the address space so a flood costs an allocation failure (and a
/// restart by tend) rather than the machine's memory; keep glibc from
/// reserving 64 MiB arenas per thread inside that budget.
fn limit_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let lim = libc::rlimit {
        rlim_cur: ADDRESS_SPACE_LIMIT,
        rlim_max: ADDRESS_SPACE_LIMIT,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) } != 0 {
        log::warn!("cannot set RLIMIT_AS: {}", io::Error::last_os_error());
    }
}

// ---------------------------------------------------------------------------
// Supervision

/// The supervised child spec for the gateway serving `listen`
/// (`inet://host:port` or `host:port`) in front of the UNIX socket `upstream`.
///
/// The tag is `gateway` for the first `inet://` listener of `control` and
/// `gateway-N` for the N-th. It respawns, is precious (never put to sleep)
/// and is restarted at once.
pub fn component_spec(
    control: &Control,
    listen: &str,
    upstream: &Path,
    exe: &Path,
) -> ComponentSpec {
    let bare = listen.strip_prefix("inet://").unwrap_or(listen);
    let index = control
        .sockets
        .iter()
        .filter_map(|s| match s {
            ListenUrl::Inet(a) => Some(a.strip_prefix("inet://").unwrap_or(a)),
            ListenUrl::Unix(_) => None,
        })
        .position(|a| a == bare)
        .unwrap_or(0);
    let tag = if index == 0 {
        "gateway".to_string()
    } else {
        format!("gateway-{}", index + 1)
    };
    let mut argv = vec![
        exe.display().to_string(),
        "gateway".to_string(),
        "--listen".to_string(),
        bare.to_string(),
        "--upstream".to_string(),
        upstream.display().to_string(),
    ];
    let mut opt = |flag: &str, value: String| {
        argv.push(flag.to_string());
        argv.push(value);
    };
    if let Some(f) = &control.token_file {
        opt("--token-file", f.display().to_string());
    }
    if let Some(f) = &control.basic_auth_file {
        opt("--basic-auth-file", f.display().to_string());
    }
    if !control.allow.is_empty() {
        opt("--allow", control.allow.join(","));
    }
    if !control.deny.is_empty() {
        opt("--deny", control.deny.join(","));
    }
    for name in &control.names {
        opt("--name", name.clone());
    }
    if let Some(u) = &control.gateway_user {
        opt("--user", u.clone());
    }
    let mut spec = ComponentSpec::new(&tag, argv);
    spec.mode = Mode::Respawn;
    spec.flags.precious = true;
    spec.flags.nullinput = true;
    spec.stdin = Stdio::Null;
    spec.stop_timeout = Duration::from_secs(2);
    spec.throttle = Throttle {
        max_restarts: u32::MAX,
        window: Duration::from_secs(1),
        sleep: Duration::ZERO,
    };
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 32]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_fips_vectors() {
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(sha256(b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        );
        assert_eq!(
            hex(sha256(&vec![b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        // Lengths around the padding boundary (55, 56, 64 bytes).
        assert_eq!(sha256_hex(&[b'x'; 55]), hex(sha256(&[b'x'; 55])),);
        assert_ne!(sha256(&[0u8; 55]), sha256(&[0u8; 56]));
        assert_ne!(sha256(&[0u8; 63]), sha256(&[0u8; 64]));
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("YWRtaW46c2VjcmV0").unwrap(), b"admin:secret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("Y*==").is_none());
    }

    #[test]
    fn cidr_matching() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(
            Cidr::parse("fe80::/10")
                .unwrap()
                .contains("fe80::1".parse().unwrap())
        );
        assert!(
            !Cidr::parse("fe80::/10")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.1/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let allow = parse_cidr_list("127.0.0.0/8, ::1").unwrap();
        let deny = parse_cidr_list("127.0.0.2").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(address_allowed(ip("127.0.0.1"), &allow, &deny));
        assert!(!address_allowed(ip("127.0.0.2"), &allow, &deny));
        assert!(!address_allowed(ip("192.0.2.1"), &allow, &deny));
        assert!(address_allowed(ip("192.0.2.1"), &[], &deny));
    }

    #[test]
    fn host_and_origin_rules() {
        let names = vec!["tend.example".to_string()];
        let check = |m: &str, p: &str, h: Option<&str>, o: Option<&str>| {
            check_local_request(m, p, h, o, "0.0.0.0:24444", &names)
        };
        assert!(check("GET", "/", Some("127.0.0.1:24444"), None).is_ok());
        assert!(check("GET", "/", Some("localhost:24444"), None).is_ok());
        assert!(check("GET", "/", Some("[::1]:24444"), None).is_ok());
        assert!(check("GET", "/", Some("TEND.example.:24444"), None).is_ok());
        assert!(check("GET", "/", Some("192.0.2.5:24444"), None).is_ok());
        assert_eq!(
            check("GET", "/", Some("evil.com:24444"), None)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(
            check("GET", "/", Some("localhost:1"), None).unwrap_err().0,
            403
        );
        assert_eq!(
            check("GET", "/", Some("localhost"), None).unwrap_err().0,
            403
        );
        assert_eq!(check("GET", "/", None, None).unwrap_err().0, 400);
        // CSRF: foreign origins may read but not act.
        let evil = Some("http://evil.com");
        assert!(check("GET", "/programs", Some("localhost:24444"), evil).is_ok());
        assert!(check("PUT", "/programs", Some("localhost:24444"), evil).is_err());
        assert!(check("GET", "/api/config.reload", Some("localhost:24444"), evil).is_err());
        assert!(check("GET", "/updateConfig", Some("localhost:24444"), evil).is_err());
        assert!(check("POST", "/programs", Some("localhost:24444"), Some("null")).is_err());
        assert!(
            check(
                "POST",
                "/programs",
                Some("localhost:24444"),
                Some("http://LOCALHOST:24444")
            )
            .is_ok()
        );
        assert!(
            check_local_request("GET", "/", Some("localhost"), None, "127.0.0.1:80", &[]).is_ok()
        );
    }

    #[test]
    fn credentials() {
        let text = format!(
            "# comment\n\nadmin:{}\nviewer:{}:ro\n",
            sha256_hex(b"secret"),
            sha256_hex(b"look")
        );
        let access = Access {
            token_sha256: Some(sha256(b"tok")),
            users: parse_basic_file(&text).unwrap(),
            basic_configured: true,
        };
        assert_eq!(access.authenticate(Some("Bearer tok")), Ok(Rights::Admin));
        assert_eq!(access.authenticate(Some("bearer  tok ")), Ok(Rights::Admin));
        assert_eq!(
            access.authenticate(Some("Bearer tok2")).unwrap_err().status,
            401
        );
        assert_eq!(access.authenticate(None).unwrap_err().status, 401);
        // admin:secret, viewer:look, admin:wrong
        assert_eq!(
            access.authenticate(Some("Basic YWRtaW46c2VjcmV0")),
            Ok(Rights::Admin)
        );
        assert_eq!(
            access.authenticate(Some("Basic dmlld2VyOmxvb2s=")),
            Ok(Rights::Read)
        );
        assert!(access.authenticate(Some("Basic YWRtaW46d3Jvbmc=")).is_err());
        assert!(access.authenticate(Some("Basic !!!")).is_err());
        assert!(access.authenticate(Some("Digest x")).is_err());
        assert_eq!(Access::default().authenticate(None), Ok(Rights::Admin));
        assert!(parse_basic_file("nohash\n").is_err());
        assert!(parse_basic_file("u:abcd\n").is_err());
        assert!(parse_basic_file(&format!("u:{}:rx\n", sha256_hex(b""))).is_err());
    }

    #[test]
    fn arguments() {
        let args: Vec<String> = [
            "--listen",
            "inet://127.0.0.1:24444",
            "--upstream=unix:///run/tend.sock",
            "--allow",
            "10.0.0.0/8,127.0.0.1",
            "--name",
            "Box",
            "--max-body",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = parse_args(&args).unwrap().unwrap();
        assert_eq!(o.listen, "127.0.0.1:24444");
        assert_eq!(o.upstream, PathBuf::from("/run/tend.sock"));
        assert_eq!(o.allow.len(), 2);
        assert_eq!(o.names, vec!["box".to_string()]);
        assert_eq!(o.max_body, 100);
        assert!(parse_args(&["--listen".into()]).is_err());
        assert!(parse_args(&["--listen".into(), "x:1".into()]).is_err());
        assert!(parse_args(&["--listen=h".into(), "--upstream=/s".into()]).is_err());
        assert!(parse_args(&["--bogus".into()]).is_err());
        assert_eq!(parse_args(&["--help".into()]).unwrap(), None);
    }

    #[test]
    fn component_spec_builds_the_child() {
        let control = Control {
            sockets: vec![
                ListenUrl::Unix(PathBuf::from("/run/tend.sock")),
                ListenUrl::Inet("inet://0.0.0.0:24444".into()),
                ListenUrl::Inet("inet://127.0.0.1:24445".into()),
            ],
            allow: vec!["10.0.0.0/8".into()],
            token_file: Some(PathBuf::from("/etc/tend.token")),
            names: vec!["box".into()],
            ..Control::default()
        };
        let exe = Path::new("/usr/bin/tend");
        let up = Path::new("/run/tend.sock");
        let first = component_spec(&control, "inet://0.0.0.0:24444", up, exe);
        assert_eq!(first.tag, "gateway");
        assert!(first.flags.precious);
        assert_eq!(first.mode, Mode::Respawn);
        assert_eq!(
            first.argv,
            [
                "/usr/bin/tend",
                "gateway",
                "--listen",
                "0.0.0.0:24444",
                "--upstream",
                "/run/tend.sock",
                "--token-file",
                "/etc/tend.token",
                "--allow",
                "10.0.0.0/8",
                "--name",
                "box"
            ]
        );
        // The argv it builds parses back.
        assert!(parse_args(&first.argv[2..]).unwrap().is_some());
        assert_eq!(gateway_ids(Some("root")), Ok((0, 0)));
        assert_eq!(gateway_ids(Some("4242")), Ok((4242, 4242)));
        assert!(gateway_ids(None).is_ok());
        assert!(gateway_ids(Some("no-such-user-here")).is_err());
        let second = component_spec(&control, "127.0.0.1:24445", up, exe);
        assert_eq!(second.tag, "gateway-2");
    }
}
