//! The UNIX-socket server: tiny_http on a std `UnixListener`, answered by a
//! small fixed pool of worker threads that call [`super::route`]. (The
//! gateway's private socket is served without tiny_http: see
//! `gateway_socket.rs`.)
//!
//! Two tiny_http 0.12 traits shape this file:
//!
//! - Its accept thread gives up for good on the first `accept` error (EMFILE,
//!   ENOMEM…), so a supervisor thread notices the error a worker receives and
//!   binds the socket again. (For the same reason the listener gets no
//!   `SO_RCVTIMEO`: a timed-out `accept` would end the accept thread after
//!   every idle period. AF_UNIX sockets do not inherit it anyway.)
//! - A request body left unread is drained when the request is dropped, into
//!   a buffer of the *announced* remaining length: an absurd `Content-Length`
//!   aborts the process. Oversized requests are therefore answered without
//!   ever dropping their body reader in the usual way (see [`refuse_oversized`]).

use super::reply;
use super::{ApiRequest, ApiResponse, MAX_BODY, route};
use crate::shared::Shared;
use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};
use tiny_http::Server;

/// Worker threads per socket. Answers are quick (the main loop replies at
/// once), so two keep the API responsive while one is stuck on a slow
/// client's body; each extra thread costs PID 1 its resident stack pages.
/// (tiny_http adds its own accept thread and connection pool.)
const WORKERS: usize = 2;

/// How long `shutdown` waits for workers busy with a request.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Pause between attempts to listen again after `accept` failed.
const REBIND_PAUSE: Duration = Duration::from_secs(1);

/// Oversized bodies up to this size are drained on a thread of their own;
/// beyond it the drain buffer itself could fail to allocate (see the module doc).
const DRAIN_LIMIT: usize = 64 << 20;

/// What the supervisor thread waits for.
#[derive(Debug)]
pub(super) enum Event {
    /// `shutdown` was called.
    Stop,
    /// tiny_http's accept thread died with this error.
    AcceptFailed(io::Error),
}

/// A queue that one thread waits on: what an `mpsc` channel gives here,
/// without a copy of the channel code per message type in the binary.
#[derive(Debug)]
pub(super) struct Mailbox<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }
    }
}

impl<T> Mailbox<T> {
    fn send(&self, item: T) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(item);
        self.ready.notify_one();
    }

    /// The next item, waiting as long as it takes.
    pub(super) fn recv(&self) -> T {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = queue.pop_front() {
                return item;
            }
            queue = self
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The next item, or None when none came within `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut queue, _) = self
            .ready
            .wait_timeout_while(queue, timeout, |q| q.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        queue.pop_front()
    }
}

/// A running API server; [`ApiServer::shutdown`] stops it and removes the socket.
#[derive(Debug)]
pub struct ApiServer {
    events: Arc<Mailbox<Event>>,
    supervisor: Option<thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Stop answering, wait briefly for requests in progress, and remove the
    /// socket file. Returns within a few seconds even if a worker is stuck.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.events.send(Event::Stop);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who may use a socket beyond root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketPolicy {
    /// Hand the socket to this uid/gid (mode stays 0600): the gateway's
    /// socket belongs to the unprivileged user the gateway runs as.
    pub owner: Option<(u32, u32)>,
    /// Every request must carry this value in [`GATEWAY_HEADER`]. Any process
    /// of the gateway's user can connect to its socket; only the gateway,
    /// which got the secret from tend in its (non-dumpable) environment, can
    /// be served on it.
    pub gateway_secret: Option<String>,
}

/// Header the gateway proves itself with on its socket.
pub const GATEWAY_HEADER: &str = "X-Tend-Gateway";

/// Serve the API on a UNIX socket at `path` (mode 0600). A stale socket file
/// left by a dead process is replaced; a live server or a non-socket file at
/// `path` is an error.
pub fn serve_unix(shared: Arc<Shared>, path: &Path) -> io::Result<ApiServer> {
    serve_unix_with(shared, path, SocketPolicy::default())
}

/// [`serve_unix`] with an owner and gateway secret for the socket.
pub fn serve_unix_with(
    shared: Arc<Shared>,
    path: &Path,
    policy: SocketPolicy,
) -> io::Result<ApiServer> {
    let policy = Arc::new(policy);
    let events = Arc::new(Mailbox::default());
    let path = path.to_path_buf();
    let inbox = Arc::clone(&events);
    let supervisor = if policy.gateway_secret.is_some() {
        // The gateway's socket carries every TCP request: served without
        // tiny_http's thread hand-offs (see gateway_socket.rs).
        let listener = listen(&path, &policy)?;
        thread::Builder::new()
            .name("api-gateway".into())
            .spawn(move || super::gateway_socket::serve(shared, policy, listener, &path, &inbox))?
    } else {
        let server = bind(&path, &policy)?;
        thread::Builder::new()
            .name("api-supervisor".into())
            .spawn(move || supervise(&shared, &policy, &path, server, &inbox))?
    };
    Ok(ApiServer {
        events,
        supervisor: Some(supervisor),
    })
}

/// Bind the socket and start tiny_http on it.
fn bind(path: &Path, policy: &SocketPolicy) -> io::Result<Server> {
    let listener = listen(path, policy)?;
    Server::from_listener(listener, None).map_err(|e| io::Error::other(e.to_string()))
}

/// Bind the socket with its mode and owner.
fn listen(path: &Path, policy: &SocketPolicy) -> io::Result<UnixListener> {
    remove_stale(path)?;
    let listener = UnixListener::bind(path)?;
    let secured = fs::set_permissions(path, fs::Permissions::from_mode(0o600)).and_then(|()| {
        match policy.owner {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    });
    if let Err(e) = secured {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: another server is listening there", path.display()),
        ));
    }
    fs::remove_file(path)
}

/// Run worker generations until told to stop; start a new one on a fresh
/// socket whenever tiny_http's accept thread dies.
fn supervise(
    shared: &Arc<Shared>,
    policy: &Arc<SocketPolicy>,
    path: &Path,
    first: Server,
    events: &Arc<Mailbox<Event>>,
) {
    let mut server = Arc::new(first);
    loop {
        let workers = Workers::start(shared, policy, &server, events);
        let event = events.recv();
        workers.retire(&server);
        let Event::AcceptFailed(error) = event else {
            close(server, path);
            return;
        };
        log::error!(
            "control socket {}: accept failed ({error}); listening again",
            path.display()
        );
        // Dropping a tiny_http server removes the socket file by name, which
        // would later delete the new socket; keep the dead one forever instead.
        std::mem::forget(Arc::clone(&server));
        match rebind(path, policy, events) {
            Some(fresh) => server = Arc::new(fresh),
            None => {
                let _ = fs::remove_file(path);
                return;
            }
        }
    }
}

/// Bind again until it works; `None` when told to stop meanwhile.
fn rebind(path: &Path, policy: &SocketPolicy, events: &Mailbox<Event>) -> Option<Server> {
    loop {
        match events.recv_timeout(REBIND_PAUSE) {
            Some(Event::Stop) => return None,
            Some(Event::AcceptFailed(_)) | None => {}
        }
        match bind(path, policy) {
            Ok(server) => return Some(server),
            Err(e) => log::error!("control socket {}: {e}", path.display()),
        }
    }
}

/// Stop the server for good and make sure the socket file is gone.
fn close(server: Arc<Server>, path: &Path) {
    match Arc::try_unwrap(server) {
        // Dropping stops the accept thread and removes the socket file.
        Ok(server) => drop(server),
        Err(still_used) => {
            // A worker is stuck in a request. Its late drop must not remove a
            // socket a new server may have bound meanwhile: never drop it.
            std::mem::forget(still_used);
            let _ = fs::remove_file(path);
        }
    }
}

/// One generation of worker threads sharing a server.
struct Workers {
    retiring: Arc<AtomicBool>,
    /// Gets one `()` per worker that left.
    done: Arc<Mailbox<()>>,
    count: usize,
}

impl Workers {
    fn start(
        shared: &Arc<Shared>,
        policy: &Arc<SocketPolicy>,
        server: &Arc<Server>,
        events: &Arc<Mailbox<Event>>,
    ) -> Workers {
        let retiring = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mailbox::default());
        let mut count = 0;
        for i in 0..WORKERS {
            let (shared, server, events) = (shared.clone(), server.clone(), events.clone());
            let policy = policy.clone();
            let (retiring, done_tx) = (retiring.clone(), Arc::clone(&done));
            let spawned = thread::Builder::new()
                .name(format!("api-worker-{i}"))
                .spawn(move || {
                    work(&shared, &policy, &server, &retiring, &events);
                    done_tx.send(());
                });
            match spawned {
                Ok(_) => count += 1,
                Err(e) => log::error!("cannot start an API worker: {e}"),
            }
        }
        Workers {
            retiring,
            done,
            count,
        }
    }

    /// Make every worker leave once its current request is answered; wait a
    /// little for them.
    fn retire(self, server: &Server) {
        self.retiring.store(true, Ordering::SeqCst);
        for _ in 0..self.count {
            server.unblock();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for _ in 0..self.count {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_none() {
                log::warn!("an API worker is still busy; leaving it behind");
                return;
            }
        }
    }
}

/// A worker: answer requests until unblocked or the accept thread dies.
fn work(
    shared: &Shared,
    policy: &SocketPolicy,
    server: &Server,
    retiring: &AtomicBool,
    events: &Mailbox<Event>,
) {
    loop {
        match server.recv() {
            Ok(request) => {
                // A panic must cost one answer, never the thread (or PID 1).
                if catch_unwind(AssertUnwindSafe(|| serve_one(shared, policy, request))).is_err() {
                    log::error!("panic while answering an API request");
                }
            }
            Err(e) => {
                if !retiring.load(Ordering::SeqCst) {
                    events.send(Event::AcceptFailed(e));
                }
                return;
            }
        }
    }
}

/// Answer one tiny_http request.
fn serve_one(shared: &Shared, policy: &SocketPolicy, mut request: tiny_http::Request) {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        refuse_oversized(request);
        return;
    }
    let mut api_request = match convert(&mut request) {
        Ok(r) => r,
        Err(response) => {
            // The body may be partly unread (an endless chunked one).
            respond_before_body(request, response);
            return;
        }
    };
    if let Err(response) = check_gateway(policy, &mut api_request) {
        respond(request, response);
        return;
    }
    let response =
        catch_unwind(AssertUnwindSafe(|| route(shared, &api_request))).unwrap_or_else(|_| {
            log::error!(
                "panic while routing {} {}",
                api_request.method,
                api_request.url
            );
            reply::pies_error(500, "internal error")
        });
    respond(request, response);
}

/// On a gateway socket, only the gateway (holding the secret) is served;
/// the proof is removed before routing.
pub(super) fn check_gateway(
    policy: &SocketPolicy,
    request: &mut ApiRequest,
) -> Result<(), ApiResponse> {
    let Some(secret) = &policy.gateway_secret else {
        return Ok(());
    };
    let presented = request
        .header(GATEWAY_HEADER)
        .map(str::to_string)
        .unwrap_or_default();
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(GATEWAY_HEADER));
    if constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(reply::pies_error(
            403,
            "this socket serves the tend gateway only",
        ))
    }
}

/// Compare without an early exit, so timing does not reveal the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn too_large() -> ApiResponse {
    reply::pies_error(413, format!("request body larger than {MAX_BODY} bytes"))
}

/// Read a request into plain data; the body is read only up to [`MAX_BODY`].
fn convert(request: &mut tiny_http::Request) -> Result<ApiRequest, ApiResponse> {
    let headers = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let mut body = Vec::new();
    // `take` bounds chunked bodies, whose length nobody announced.
    let limit = u64::try_from(MAX_BODY)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if let Err(e) = request.as_reader().take(limit).read_to_end(&mut body) {
        return Err(reply::pies_error(400, format!("cannot read the body: {e}")));
    }
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(ApiRequest {
        method: request.method().as_str().to_string(),
        url: request.url().to_string(),
        headers,
        body,
    })
}

/// Answer a request whose announced body is too large, without reading it.
fn refuse_oversized(request: tiny_http::Request) {
    let announced = request.body_length().unwrap_or(0);
    if announced <= DRAIN_LIMIT {
        // Dropping the request drains the body; do that off the worker pool
        // so a client that never sends it does not hold a worker.
        let spawned = thread::Builder::new()
            .name("api-drain".into())
            .spawn(move || respond_before_body(request, too_large()));
        if let Err(e) = spawned {
            log::error!("cannot start a drain thread: {e}");
        }
        return;
    }
    log::warn!("refused a request announcing a {announced}-byte body");
    // Answer through `upgrade`, which hands over the body reader, and never
    // drop that reader: its drop would allocate the announced length. This
    // leaks the connection, which is cheaper than aborting PID 1.
    let mut stream = request.upgrade("tend-refused", tiny_http::Response::empty(413));
    let _ = stream.flush();
    std::mem::forget(stream);
}

/// Answer a request whose body was not read, through tiny_http's own
/// `respond`: it writes the answer first and drains the body after, where
/// [`respond`] would drain first (dropping the request) and answer a client
/// that waits for the answer before sending its body never.
fn respond_before_body(request: tiny_http::Request, response: ApiResponse) {
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in &response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    if let Err(e) = request.respond(out) {
        log::debug!("could not send an API answer: {e}");
    }
}

/// Send an answer to a request whose body was read.
fn respond(request: tiny_http::Request, response: ApiResponse) {
    let answer = render(&request, &response);
    // One write for head and body: tiny_http's own `respond` goes through a
    // 1 KiB buffer and an 8 KiB copy loop, three writes for a typical
    // `/programs` answer, each waking the reader (the gateway) again.
    let mut writer = request.into_writer();
    if let Err(e) = writer.write_all(&answer).and_then(|()| writer.flush()) {
        log::debug!("could not send an API answer: {e}");
    }
}

/// The whole HTTP/1.1 answer to a tiny_http request as bytes.
fn render(request: &tiny_http::Request, response: &ApiResponse) -> Vec<u8> {
    let mut out = render_head(response, closes_after(request));
    if request.method() != &tiny_http::Method::Head {
        out.extend_from_slice(&response.body);
    }
    out
}

/// The status line and headers of an answer, with its `Content-Length`.
/// Headers that could break the framing (CR, LF) are dropped; `close`
/// announces that the connection ends after it.
pub(super) fn render_head(response: &ApiResponse, close: bool) -> Vec<u8> {
    let status = tiny_http::StatusCode(response.status);
    let mut out = Vec::with_capacity(256);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        status.default_reason_phrase()
    );
    for (name, value) in &response.headers {
        let framing = |t: &str| t.bytes().any(|b| b == b'\r' || b == b'\n');
        if framing(name) || framing(value) || name.eq_ignore_ascii_case("content-length") {
            log::warn!("dropped an invalid response header {name}");
            continue;
        }
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n", response.body.len());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Will tiny_http close the connection after this request? Then say so.
fn closes_after(request: &tiny_http::Request) -> bool {
    let connection = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str().to_ascii_lowercase());
    let http10 = *request.http_version() == tiny_http::HTTPVersion(1, 0);
    match connection.as_deref() {
        Some(v) if v.contains("close") => true,
        Some(v) if v.contains("keep-alive") => false,
        _ => http10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ComponentSpec, Config};
    use crate::shared::State;
    use crate::table::{Component, Kind, Origin};
    use std::io::BufRead;

    fn temp_socket(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tend-api-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("api.sock")
    }

    fn shared() -> Arc<Shared> {
        let mut state = State::new(Config::default(), None, vec!["tend".into()]);
        for tag in ["web", "db"] {
            let spec = ComponentSpec::new(tag, vec!["/bin/true".into()]);
            state
                .table
                .components
                .push(Component::new(spec, Kind::Component, Origin::Config));
        }
        Shared::new(state).unwrap()
    }

    fn connect(path: &Path) -> UnixStream {
        let stream = UnixStream::connect(path).unwrap();
        // Generous: only bounds a broken test.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    /// Send a raw request and read the whole answer (the request asks the
    /// server to close the connection).
    fn exchange(path: &Path, raw: &[u8]) -> String {
        let mut stream = connect(path);
        stream.write_all(raw).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    /// Read only the status line and headers.
    fn head_of(stream: &UnixStream) -> String {
        let mut reader = io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                return head;
            }
            head.push_str(&line);
        }
    }

    fn get(path: &Path, url: &str) -> String {
        exchange(
            path,
            format!("GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    #[test]
    fn mailboxes_deliver_in_order_and_time_out() {
        let mailbox = Arc::new(Mailbox::default());
        assert_eq!(mailbox.recv_timeout(Duration::from_millis(5)), None);
        let sender = Arc::clone(&mailbox);
        let t = thread::spawn(move || {
            sender.send(1);
            sender.send(2);
        });
        assert_eq!(mailbox.recv(), 1);
        assert_eq!(mailbox.recv_timeout(Duration::from_secs(60)), Some(2));
        t.join().unwrap();
    }

    #[test]
    fn answers_on_a_private_socket_and_cleans_up() {
        let path = temp_socket("basic");
        let server = serve_unix(shared(), &path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let answer = get(&path, "/version");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("application/json"), "{answer}");
        assert!(answer.contains("\"name\":\"tend\""), "{answer}");
        let answer = get(&path, "/nope");
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        server.shutdown();
        assert!(!path.exists(), "socket file left behind");
    }

    #[test]
    fn reads_bodies_beyond_the_small_buffer() {
        let path = temp_socket("body");
        let server = serve_unix(shared(), &path).unwrap();
        // Over 1 KiB, so tiny_http streams it instead of buffering it.
        let body = format!("{:<2000}", r#"{"op":"component","arg":"db"}"#);
        let raw = format!(
            "GET /programs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = exchange(&path, raw.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"tag\":\"db\""), "{answer}");
        assert!(!answer.contains("\"tag\":\"web\""), "{answer}");
        server.shutdown();
    }

    #[test]
    fn oversized_bodies_are_refused_unread() {
        let path = temp_socket("big");
        let server = serve_unix(shared(), &path).unwrap();
        // Announced but never sent: a slightly oversized body…
        let mut stream = connect(&path);
        let raw = format!(
            "PUT /programs HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        stream.write_all(raw.as_bytes()).unwrap();
        let head = head_of(&stream);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        drop(stream);
        // …and an absurd one, which must not abort the process.
        let mut stream = connect(&path);
        stream
            .write_all(
                b"PUT /programs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n",
            )
            .unwrap();
        let head = head_of(&stream);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        drop(stream);
        // A chunked body, whose size nobody announced.
        let mut stream = connect(&path);
        let chunk = vec![b' '; MAX_BODY + 10];
        let mut raw = format!(
            "PUT /programs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            chunk.len()
        )
        .into_bytes();
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        stream.write_all(&raw).unwrap();
        let head = head_of(&stream);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        drop(stream);
        // Still serving.
        assert!(get(&path, "/version").starts_with("HTTP/1.1 200"));
        server.shutdown();
    }

    #[test]
    fn stale_sockets_are_replaced_but_nothing_else() {
        let path = temp_socket("stale");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = serve_unix(shared(), &path).unwrap();
        assert!(get(&path, "/version").starts_with("HTTP/1.1 200"));
        // A live server is not stolen from.
        let err = serve_unix(shared(), &path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        server.shutdown();
        // A regular file is not deleted.
        fs::write(&path, "precious").unwrap();
        let err = serve_unix(shared(), &path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn serves_many_clients_at_once() {
        let path = temp_socket("many");
        let server = serve_unix(shared(), &path).unwrap();
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let path = path.clone();
                thread::spawn(move || get(&path, "/programs"))
            })
            .collect();
        for c in clients {
            let answer = c.join().unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        server.shutdown();
    }
}
