//! A small synchronous HTTP/1.1 client over UNIX and TCP sockets.
//!
//! Used by `tendctl`, the gateway (to relay to the UNIX control socket), the
//! fleet agent and the tests. [`request`] makes one request per connection
//! (`Connection: close`): the control API is low-volume, and a fresh
//! connection per call keeps callers free of pooling state. (The gateway,
//! which relays every TCP request over kept connections, runs its own
//! non-blocking loop and uses only the message helpers here.) Every read
//! and write runs against one overall deadline, and response bodies are
//! capped, so a hung or hostile server costs the caller at most `timeout`
//! and a bounded amount of memory.
//!
//! The HTTP/1.1 framing helpers ([`read_head`], [`read_body`]) are shared with
//! the gateway, which parses requests with the same limits.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Largest response body [`request`] accepts.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// Largest status line plus headers accepted, in bytes.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most of an announced body length allocated before it arrives.
const PREALLOCATE: usize = 64 * 1024;

/// Largest number of header lines accepted.
pub(crate) const MAX_HEADERS: usize = 100;

/// Where a server listens: parsed from `unix:///path`, `http://host:port` or
/// `inet://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A UNIX stream socket at this path.
    Unix(PathBuf),
    /// A TCP address; `host` is a name or an address without brackets.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl Endpoint {
    /// Parse a URL naming an endpoint. A path after `host:port` other than
    /// `/` is refused: the endpoint is where to connect, the request path is
    /// given per request.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a UNIX socket URL needs an absolute path (unix:///path)",
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if url.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(url)));
        }
        let (rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
            (r, Some(80))
        } else if let Some(r) = url.strip_prefix("inet://") {
            (r, None)
        } else if url.starts_with("https://") {
            return Err(bad("https is not supported; use a TLS terminating proxy"));
        } else {
            return Err(bad(
                "expected unix:///path, http://host:port or inet://host:port",
            ));
        };
        let authority = match rest.find('/') {
            Some(i) if rest.get(i..) == Some("/") => rest.get(..i).unwrap_or(rest),
            Some(_) => return Err(bad("the URL must not contain a path")),
            None => rest,
        };
        let (host, port) = split_host_port(authority).map_err(&bad)?;
        let port = match (port, default_port) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => return Err(bad("missing port (inet://host:port)")),
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        Ok(Endpoint::Tcp { host, port })
    }

    /// The value of the `Host` header for requests to this endpoint.
    pub fn host_header(&self) -> String {
        match self {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp { host, port } => format!("{}:{port}", bracket(host)),
        }
    }

    fn connect(&self, deadline: Instant) -> Result<Stream, ClientError> {
        let fail = |source: io::Error| ClientError::Connect {
            endpoint: self.to_string(),
            source,
        };
        match self {
            // A local connect either succeeds or fails at once (a full backlog
            // gives EAGAIN), so it needs no timeout of its own.
            Endpoint::Unix(path) => UnixStream::connect(path).map(Stream::Unix).map_err(fail),
            Endpoint::Tcp { host, port } => {
                let addrs = (host.as_str(), *port).to_socket_addrs().map_err(fail)?;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
                for addr in addrs {
                    let left = remaining(deadline).ok_or_else(|| ClientError::TimedOut {
                        endpoint: self.to_string(),
                    })?;
                    match TcpStream::connect_timeout(&addr, left) {
                        Ok(s) => {
                            // Small requests and answers: Nagle only adds latency.
                            s.set_nodelay(true).ok();
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(fail(last))
            }
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { host, port } => write!(f, "http://{}:{port}", bracket(host)),
        }
    }
}

/// `[v6]` for IPv6 literals, the host itself otherwise.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Split `host[:port]` or `[v6][:port]`; the host comes back unbracketed.
pub(crate) fn split_host_port(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in host")?;
        let host = rest.get(..end).unwrap_or("");
        let after = rest.get(end + 1..).unwrap_or("");
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err("junk after ']' in host"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("IPv6 addresses need brackets"),
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| "bad port number")?),
        None => None,
    };
    Ok((host.to_string(), port))
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The first value of header `name` (case-insensitive) in a header list.
pub(crate) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The endpoint URL could not be understood.
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request line or header would break the message framing.
    BadRequest(String),
    /// Connecting failed.
    Connect {
        /// The endpoint, as a URL.
        endpoint: String,
        /// The OS error.
        source: io::Error,
    },
    /// Sending or receiving failed after connecting.
    Io {
        /// The endpoint, as a URL.
        endpoint: String,
        /// The OS error.
        source: io::Error,
    },
    /// The deadline passed.
    TimedOut {
        /// The endpoint, as a URL.
        endpoint: String,
    },
    /// The server's answer is not valid HTTP/1.x.
    Malformed {
        /// The endpoint, as a URL.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The answer is larger than allowed.
    TooLarge {
        /// The endpoint, as a URL.
        endpoint: String,
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadUrl { url, reason } => write!(f, "bad URL {url:?}: {reason}"),
            ClientError::BadRequest(why) => write!(f, "bad request: {why}"),
            ClientError::Connect { endpoint, source } => {
                write!(f, "cannot connect to {endpoint}: {}", io_message(source))
            }
            ClientError::Io { endpoint, source } => {
                write!(f, "connection to {endpoint} failed: {}", io_message(source))
            }
            ClientError::TimedOut { endpoint } => write!(f, "{endpoint} did not answer in time"),
            ClientError::Malformed { endpoint, reason } => {
                write!(f, "malformed answer from {endpoint}: {reason}")
            }
            ClientError::TooLarge { endpoint, limit } => {
                write!(f, "answer from {endpoint} is larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The OS message without Rust's " (os error N)" suffix.
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s.get(..i).unwrap_or(&s).to_string(),
        None => s,
    }
}

/// Send one request and read the whole answer, with at most
/// [`MAX_RESPONSE_BODY`] bytes of body. `path` is the path and query string.
/// `timeout` bounds the whole exchange, connect included.
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    request_with_limit(
        endpoint,
        method,
        path,
        headers,
        body,
        timeout,
        MAX_RESPONSE_BODY,
    )
}

/// [`request`] with a caller-chosen cap on the response body.
pub fn request_with_limit(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let head = format_request(endpoint, method, path, headers, body.len(), false)?;
    let stream = endpoint.connect(deadline)?;
    let mut conn = Deadlined::new(stream, deadline);
    let name = endpoint.to_string();
    let io_err = |e: io::Error| classify_io(&name, e);
    conn.write_all(head.as_bytes()).map_err(io_err)?;
    conn.write_all(body).map_err(io_err)?;
    conn.flush().map_err(io_err)?;
    let mut reader = BufReader::new(conn);
    read_response(&mut reader, method, max_body).map_err(|e| message_error(&name, max_body, e))
}

/// A [`MessageError`] met while talking to `endpoint`, as a [`ClientError`].
pub(crate) fn message_error(endpoint: &str, max_body: usize, e: MessageError) -> ClientError {
    match e {
        MessageError::Io(e) => classify_io(endpoint, e),
        MessageError::TooLarge => ClientError::TooLarge {
            endpoint: endpoint.to_string(),
            limit: max_body,
        },
        MessageError::Malformed(reason) => ClientError::Malformed {
            endpoint: endpoint.to_string(),
            reason: reason.to_string(),
        },
        MessageError::Closed => ClientError::Malformed {
            endpoint: endpoint.to_string(),
            reason: "connection closed before a complete answer".to_string(),
        },
    }
}

/// Turn an I/O error into a timeout or a plain I/O failure.
fn classify_io(endpoint: &str, e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ClientError::TimedOut {
            endpoint: endpoint.to_string(),
        },
        _ => ClientError::Io {
            endpoint: endpoint.to_string(),
            source: e,
        },
    }
}

/// The request line and headers, checked so no caller-supplied text can
/// split the message (request smuggling through CR/LF or spaces).
pub(crate) fn format_request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: usize,
    keep_alive: bool,
) -> Result<String, ClientError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ClientError::BadRequest(format!("bad method {method:?}")));
    }
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ClientError::BadRequest(format!("bad path {path:?}")));
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\nContent-Length: {body_len}\r\n",
        endpoint.host_header()
    );
    for (name, value) in headers {
        if !is_token(name) || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ClientError::BadRequest(format!("bad header {name:?}")));
        }
        let lower = name.to_ascii_lowercase();
        // Framing headers are ours to set.
        if matches!(
            lower.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    Ok(head)
}

/// An HTTP token (header names, methods).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Read a status line, headers and body; skips interim `1xx` answers.
fn read_response<R: BufRead>(
    r: &mut R,
    method: &str,
    max_body: usize,
) -> Result<Response, MessageError> {
    read_response_framed(r, method, max_body).map(|(resp, _)| resp)
}

/// [`read_response`], also telling whether the connection may carry another
/// request: an HTTP/1.1 answer with a known length and no `Connection: close`.
fn read_response_framed<R: BufRead>(
    r: &mut R,
    method: &str,
    max_body: usize,
) -> Result<(Response, bool), MessageError> {
    loop {
        let (line, headers) = read_head(r, MAX_HEAD, MAX_HEADERS)?.ok_or(MessageError::Closed)?;
        let status = parse_status_line(&line)?;
        if (100..200).contains(&status) {
            continue;
        }
        let framing = if method == "HEAD" || status == 204 || status == 304 {
            Framing::Empty
        } else {
            message_framing(&headers, Framing::UntilClose)?
        };
        let body = read_body(r, framing, max_body)?;
        let reusable = line.starts_with("HTTP/1.1 ")
            && framing != Framing::UntilClose
            && !header_value(&headers, "connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let resp = Response {
            status,
            headers,
            body,
        };
        return Ok((resp, reusable));
    }
}

/// `HTTP/1.x NNN reason` → NNN.
pub(crate) fn parse_status_line(line: &str) -> Result<u16, MessageError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(MessageError::Malformed("not an HTTP/1.x status line"));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 {
        return Err(MessageError::Malformed("bad status code"));
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..600).contains(c))
        .ok_or(MessageError::Malformed("bad status code"))
}

/// What went wrong reading an HTTP message.
#[derive(Debug)]
pub(crate) enum MessageError {
    /// The socket failed (timeouts included).
    Io(io::Error),
    /// The peer closed the connection in the middle of a message.
    Closed,
    /// Over a size limit.
    TooLarge,
    /// Not valid HTTP/1.1.
    Malformed(&'static str),
}

impl From<io::Error> for MessageError {
    fn from(e: io::Error) -> Self {
        MessageError::Io(e)
    }
}

/// How the length of a message body is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
}

/// The framing the headers announce; `otherwise` when they announce none.
/// Conflicting or unparsable lengths are refused: they are the raw material
/// of request smuggling.
pub(crate) fn message_framing(
    headers: &[(String, String)],
    otherwise: Framing,
) -> Result<Framing, MessageError> {
    let mut te = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    if let Some((_, v)) = te.next() {
        if te.next().is_some() || !v.trim().eq_ignore_ascii_case("chunked") {
            return Err(MessageError::Malformed("unsupported transfer-encoding"));
        }
        return Ok(Framing::Chunked);
    }
    let mut length: Option<u64> = None;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let v = v.trim();
        if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessageError::Malformed("bad content-length"));
        }
        let n = v
            .parse::<u64>()
            .map_err(|_| MessageError::Malformed("bad content-length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(MessageError::Malformed("conflicting content-length"));
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => otherwise,
    })
}

/// Read one CRLF (or bare LF) terminated line of at most `max` bytes,
/// without the line end. `Ok(None)` means the peer closed before sending
/// anything.
pub(crate) fn read_line<R: BufRead>(r: &mut R, max: usize) -> Result<Option<String>, MessageError> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    r.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > max {
            MessageError::TooLarge
        } else {
            MessageError::Closed
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| MessageError::Malformed("line is not UTF-8"))
}

/// A start line and its headers.
pub(crate) type Head = (String, Vec<(String, String)>);

/// Read a start line and headers: at most `max_bytes` in all and
/// `max_headers` header lines. `Ok(None)`: the peer closed cleanly before
/// the first byte (the normal end of a keep-alive connection).
pub(crate) fn read_head<R: BufRead>(
    r: &mut R,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Option<Head>, MessageError> {
    let mut budget = max_bytes;
    // Tolerate empty lines before a request (RFC 9112 §2.2), within budget.
    let start = loop {
        let line = match read_line(r, budget)? {
            Some(l) => l,
            None => return Ok(None),
        };
        budget = budget.saturating_sub(line.len() + 2);
        if budget == 0 {
            return Err(MessageError::TooLarge);
        }
        if !line.is_empty() {
            break line;
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, budget)?.ok_or(MessageError::Closed)?;
        budget = budget.saturating_sub(line.len() + 2);
        if line.is_empty() {
            return Ok(Some((start, headers)));
        }
        if budget == 0 || headers.len() >= max_headers {
            return Err(MessageError::TooLarge);
        }
        headers.push(parse_header(&line)?);
    }
}

/// `Name: value` → (name, trimmed value). Obsolete line folding is refused.
fn parse_header(line: &str) -> Result<(String, String), MessageError> {
    let (name, value) = line
        .split_once(':')
        .ok_or(MessageError::Malformed("header line without ':'"))?;
    if !is_token(name) {
        return Err(MessageError::Malformed("bad header name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Read a body framed as announced, refusing more than `limit` bytes.
pub(crate) fn read_body<R: BufRead>(
    r: &mut R,
    framing: Framing,
    limit: usize,
) -> Result<Vec<u8>, MessageError> {
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(n) => {
            if n > limit64 {
                return Err(MessageError::TooLarge);
            }
            // Room for the announced length at once (growing by doubling
            // cost several reallocations per answer), but not more than a
            // buffer's worth before any of it arrived.
            let announced = usize::try_from(n).unwrap_or(limit);
            let mut body = Vec::with_capacity(announced.min(PREALLOCATE));
            r.by_ref().take(n).read_to_end(&mut body)?;
            if u64::try_from(body.len()).unwrap_or(u64::MAX) != n {
                return Err(MessageError::Closed);
            }
            Ok(body)
        }
        Framing::UntilClose => {
            let mut body = Vec::new();
            r.by_ref()
                .take(limit64.saturating_add(1))
                .read_to_end(&mut body)?;
            if body.len() > limit {
                return Err(MessageError::TooLarge);
            }
            Ok(body)
        }
        Framing::Chunked => read_chunked(r, limit),
    }
}

/// Decode a chunked body (chunk extensions ignored, trailers discarded).
fn read_chunked<R: BufRead>(r: &mut R, limit: usize) -> Result<Vec<u8>, MessageError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r, 1024)?.ok_or(MessageError::Closed)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        if size_text.is_empty()
            || size_text.len() > 15
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(MessageError::Malformed("bad chunk size"));
        }
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| MessageError::Malformed("bad chunk size"))?;
        if size == 0 {
            break;
        }
        let room = limit.saturating_sub(body.len());
        if size > u64::try_from(room).unwrap_or(u64::MAX) {
            return Err(MessageError::TooLarge);
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if u64::try_from(body.len() - before).unwrap_or(u64::MAX) != size {
            return Err(MessageError::Closed);
        }
        match read_line(r, 2)? {
            Some(l) if l.is_empty() => {}
            Some(_) => return Err(MessageError::Malformed("chunk not followed by CRLF")),
            None => return Err(MessageError::Closed),
        }
    }
    // Trailers: read and discard, bounded.
    for _ in 0..=MAX_HEADERS {
        match read_line(r, 8192)? {
            Some(l) if l.is_empty() => return Ok(body),
            Some(_) => {}
            None => return Err(MessageError::Closed),
        }
    }
    Err(MessageError::TooLarge)
}

/// Write `head` then `body` with as few `writev` calls as the socket
/// allows (one for a small answer): one wake-up of the reader, one packet,
/// and no copy of the body into a buffer of its own.
pub(crate) fn write_head_and_body<W: Write>(w: &mut W, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut done = 0usize;
    let total = head.len().saturating_add(body.len());
    while done < total {
        let written = match head.get(done..) {
            Some(rest) if !rest.is_empty() => {
                w.write_vectored(&[io::IoSlice::new(rest), io::IoSlice::new(body)])
            }
            _ => w.write(
                body.get(done.saturating_sub(head.len())..)
                    .unwrap_or_default(),
            ),
        };
        match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done = done.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Time left before `deadline`, `None` once it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// A connected socket of either family.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// A socket timeout kept close to a deadline with few `setsockopt` calls.
///
/// A socket timeout is relative to the start of each call, so it must be
/// re-set as the deadline nears; doing it before every read and write cost
/// more than the reads and writes on a busy keep-alive connection. It is
/// re-set only when a call started now would end more than 1/32 of the time
/// left before or after the deadline.
#[derive(Debug, Default)]
pub(crate) struct Armed(Option<Duration>);

impl Armed {
    /// The timeout to set before a call, or `None` if the one set will do.
    /// Fails once the deadline has passed.
    pub(crate) fn update(&mut self, deadline: Instant) -> io::Result<Option<Duration>> {
        let now = Instant::now();
        let left = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?;
        if let Some(timeout) = self.0 {
            let end = now + timeout;
            let drift = if end > deadline {
                end - deadline
            } else {
                deadline - end
            };
            if drift <= left / 32 {
                return Ok(None);
            }
        }
        self.0 = Some(left);
        Ok(Some(left))
    }

    /// Forget the timeout (after setting it failed).
    pub(crate) fn reset(&mut self) {
        self.0 = None;
    }
}

/// A socket whose every read and write must finish before one deadline.
struct Deadlined {
    stream: Stream,
    deadline: Instant,
    read_armed: Armed,
    write_armed: Armed,
}

impl Deadlined {
    fn new(stream: Stream, deadline: Instant) -> Deadlined {
        Deadlined {
            stream,
            deadline,
            read_armed: Armed::default(),
            write_armed: Armed::default(),
        }
    }

    /// Arm the read (or write) timeout with the time left.
    fn arm(&mut self, write: bool) -> io::Result<()> {
        let armed = if write {
            &mut self.write_armed
        } else {
            &mut self.read_armed
        };
        let Some(left) = armed.update(self.deadline)? else {
            return Ok(());
        };
        let set = match (&self.stream, write) {
            (Stream::Unix(s), false) => s.set_read_timeout(Some(left)),
            (Stream::Tcp(s), false) => s.set_read_timeout(Some(left)),
            (Stream::Unix(s), true) => s.set_write_timeout(Some(left)),
            (Stream::Tcp(s), true) => s.set_write_timeout(Some(left)),
        };
        if set.is_err() {
            armed.reset();
        }
        set
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Stream::Unix(s) = &mut self.stream {
            wait_readable(s, self.deadline)?;
            return s.read(buf);
        }
        self.arm(false)?;
        match &mut self.stream {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

/// Wait until `fd` has something to read (or an error or hang-up to
/// report), at most until `deadline`.
///
/// For AF_UNIX sockets this replaces a blocking `recv` under `SO_RCVTIMEO`:
/// a thread blocked in `recv` is woken whenever the peer consumes what it
/// sent (the kernel's write-space wake-up is not filtered by event for it),
/// so a request/answer exchange woke each side once for nothing. `poll`
/// waits for input only, and needs no `setsockopt` to keep a deadline.
pub(crate) fn wait_readable(fd: &impl AsRawFd, deadline: Instant) -> io::Result<()> {
    loop {
        let left = remaining(deadline)
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?;
        // Round up, so a wait never ends just before the deadline.
        let ms = left.as_nanos().div_ceil(1_000_000);
        let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return Ok(()),
            0 => {}
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(true)?;
        match &mut self.stream {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::Arc;

    /// Accepts at most 3 bytes per call, vectored or not.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn head_and_body_survive_partial_writes() {
        let mut w = Trickle(Vec::new());
        write_head_and_body(&mut w, b"HEAD\r\n\r\n", b"the body").unwrap();
        assert_eq!(w.0, b"HEAD\r\n\r\nthe body");
        let mut w = Trickle(Vec::new());
        write_head_and_body(&mut w, b"", b"").unwrap();
        assert!(w.0.is_empty());
        // One vectored write when the socket takes it all.
        let mut v = Vec::new();
        write_head_and_body(&mut v, b"ab", b"cd").unwrap();
        assert_eq!(v, b"abcd");
    }

    #[test]
    fn waiting_for_input_keeps_the_deadline() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        let err = wait_readable(&a, soon).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        b.write_all(b"x").unwrap();
        let later = Instant::now() + Duration::from_secs(30);
        wait_readable(&a, later).unwrap();
        // A hang-up is something to read too (end of file).
        drop(b);
        let (c, d) = UnixStream::pair().unwrap();
        drop(d);
        wait_readable(&c, later).unwrap();
    }

    fn temp_sock(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tend-client-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.sock");
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A tiny_http server that answers every request with a JSON echo of it.
    fn echo_server(server: tiny_http::Server) -> Arc<tiny_http::Server> {
        let server = Arc::new(server);
        let s = Arc::clone(&server);
        std::thread::spawn(move || {
            for mut rq in s.incoming_requests() {
                let mut body = String::new();
                rq.as_reader().read_to_string(&mut body).unwrap();
                let headers: Vec<_> = rq
                    .headers()
                    .iter()
                    .map(|h| format!("{}: {}", h.field, h.value))
                    .collect();
                let v = serde_json::json!({
                    "method": rq.method().to_string(),
                    "url": rq.url(),
                    "headers": headers,
                    "body": body,
                });
                let status = if rq.url() == "/missing" { 404 } else { 200 };
                let resp = tiny_http::Response::from_string(v.to_string()).with_status_code(status);
                if rq.url() == "/big" {
                    let big = vec![b'x'; 300_000];
                    let resp = tiny_http::Response::new(
                        tiny_http::StatusCode(200),
                        vec![],
                        Cursor::new(big),
                        None, // no length: tiny_http chunks it
                        None,
                    );
                    rq.respond(resp).unwrap();
                } else {
                    rq.respond(resp).unwrap();
                }
            }
        });
        server
    }
    #[test]
    fn armed_timeout_is_reset_only_when_it_drifts() {
        let mut armed = Armed::default();
        let deadline = Instant::now() + Duration::from_secs(100);
        assert!(armed.update(deadline).unwrap().is_some());
        assert_eq!(armed.update(deadline).unwrap(), None);
        assert!(
            armed
                .update(deadline + Duration::from_secs(50))
                .unwrap()
                .is_some()
        );
        assert!(armed.update(deadline).unwrap().is_some());
        armed.reset();
        assert!(armed.update(deadline).unwrap().is_some());
        assert!(armed.update(Instant::now()).is_err());
    }

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///run/tend.sock").unwrap(),
            Endpoint::Unix(PathBuf::from("/run/tend.sock"))
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8899").unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 8899
            }
        );
        assert_eq!(
            Endpoint::parse("inet://[::1]:24444/").unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 24444
            }
        );
        assert_eq!(
            Endpoint::parse("http://example.org").unwrap().host_header(),
            "example.org:80"
        );
        assert_eq!(
            Endpoint::parse("inet://[::1]:5").unwrap().to_string(),
            "http://[::1]:5"
        );
        for bad in [
            "unix://relative",
            "inet://host",
            "ftp://x",
            "https://x:1",
            "http://x:99999",
            "http://x:1/path",
            "http://:80",
            "inet://::1:80",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn unix_round_trip_with_body_and_headers() {
        let path = temp_sock("unix");
        let _server = echo_server(tiny_http::Server::http_unix(&path).unwrap());
        let ep = Endpoint::parse(&format!("unix://{}", path.display())).unwrap();
        let r = request(
            &ep,
            "PUT",
            "/programs?x=1",
            &[("X-Test", "yes"), ("Content-Type", "application/json")],
            b"{\"op\":\"all\"}",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let v = r.json().unwrap();
        assert_eq!(v["method"], "PUT");
        assert_eq!(v["url"], "/programs?x=1");
        assert_eq!(v["body"], "{\"op\":\"all\"}");
        let headers = v["headers"].to_string();
        assert!(headers.contains("X-Test: yes"), "{headers}");
        assert!(headers.contains("Host: localhost"), "{headers}");
    }

    #[test]
    fn tcp_round_trip_status_and_chunked() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let _server = echo_server(server);
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let r = request(&ep, "GET", "/missing", &[], b"", Duration::from_secs(10)).unwrap();
        assert_eq!(r.status, 404);
        assert!(
            r.json().unwrap()["headers"]
                .to_string()
                .contains(&format!("Host: 127.0.0.1:{port}"))
        );
        let big = request(&ep, "GET", "/big", &[], b"", Duration::from_secs(10)).unwrap();
        assert_eq!(big.body.len(), 300_000);
        let err = request_with_limit(&ep, "GET", "/big", &[], b"", Duration::from_secs(10), 1000)
            .unwrap_err();
        assert!(
            matches!(err, ClientError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn connect_error_names_the_endpoint() {
        let path = temp_sock("absent");
        let ep = Endpoint::Unix(path.clone());
        let err = request(&ep, "GET", "/", &[], b"", Duration::from_secs(5)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ClientError::Connect { .. }));
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("No such file"),
            "{msg}"
        );
    }

    #[test]
    fn silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ep = Endpoint::parse(&format!("inet://127.0.0.1:{port}")).unwrap();
        // Accepted by the kernel backlog, never answered.
        let err = request(&ep, "GET", "/", &[], b"", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ClientError::TimedOut { .. }), "{err}");
        drop(listener);
    }

    #[test]
    fn refuses_header_injection() {
        let ep = Endpoint::Unix(PathBuf::from("/nonexistent"));
        for (name, value) in [("X", "a\r\nEvil: 1"), ("Bad Name", "v"), ("", "v")] {
            let err = request(
                &ep,
                "GET",
                "/",
                &[(name, value)],
                b"",
                Duration::from_secs(1),
            )
            .unwrap_err();
            assert!(matches!(err, ClientError::BadRequest(_)), "{err}");
        }
        let err = request(&ep, "GET", "/a b", &[], b"", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ClientError::BadRequest(_)));
    }

    fn parse(raw: &[u8], method: &str) -> Result<Response, MessageError> {
        read_response(&mut Cursor::new(raw.to_vec()), method, 1 << 20)
    }

    #[test]
    fn parses_framings() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", "GET").unwrap();
        assert_eq!(r.body, b"abc");
        let r = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n",
            "POST",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"abcde"[..]));
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\nuntil close", "GET").unwrap();
        assert_eq!(r.body, b"until close");
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD").unwrap();
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), Some("9"));
    }

    #[test]
    fn refuses_malformed_answers() {
        let cases: [&[u8]; 9] = [
            b"",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                parse(raw, "GET").is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            huge.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        huge.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&huge, "GET"), Err(MessageError::TooLarge)));
    }
}
