//! The gateway's private socket: a direct HTTP/1.1 server in which the
//! thread that reads a request also answers it.
//!
//! Why not tiny_http here: through tiny_http every request crosses three
//! threads (its connection thread parses it, a worker answers it, and the
//! connection thread waits for the worker to drop it before reading on).
//! Every TCP request of the API comes through this socket, and on a small
//! machine those hand-offs cost more than the answer itself. Here one
//! thread per connection reads, routes and answers.
//!
//! Only the gateway is served: the socket belongs to its user (mode 0600),
//! and every request must carry the per-boot secret, checked before any body
//! is read. Requests are parsed by the strict, bounded reader of
//! [`crate::client`] (capped head, header count and body), every request has
//! a deadline, and at most [`MAX_CONNS`] connections are served at once.

use super::http::{Event, Mailbox, SocketPolicy, check_gateway, render_head};
use super::reply;
use super::{ApiRequest, ApiResponse, MAX_BODY, route};
use crate::client::{self, Framing, MessageError};
use crate::shared::Shared;
use std::fs;
use std::io::{self, BufReader, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Connections served at once. The gateway keeps one per client connection
/// (32 by default) and may open a second while retrying a stale one.
const MAX_CONNS: usize = 64;

/// Time a connection that has not yet proven the secret has to send its
/// first request head: other processes of the gateway's user can connect,
/// and must not hold connection slots.
const FIRST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for a request (head and body) on a proven connection,
/// counted from the end of the previous answer, so it includes idling. The
/// gateway keeps its upstream connection for as long as its client's
/// (idle at most 10 s between requests), so this must be well above that:
/// a connection closed under the gateway costs a retry or a 502.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Time allowed for writing an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed `accept` (EMFILE…), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serve `listener` (bound at `path` by the caller) until `events` says
/// stop; then close every connection and remove the socket file.
pub(super) fn serve(
    shared: Arc<Shared>,
    policy: Arc<SocketPolicy>,
    listener: UnixListener,
    path: &Path,
    events: &Mailbox<Event>,
) {
    let conns = Arc::new(Conns::default());
    let listener = Arc::new(listener);
    let acceptor = {
        let (conns, listener) = (Arc::clone(&conns), Arc::clone(&listener));
        thread::Builder::new()
            .name("api-gw-accept".into())
            .spawn(move || accept_loop(&listener, &conns, &shared, &policy))
    };
    let acceptor = match acceptor {
        Ok(handle) => Some(handle),
        Err(e) => {
            log::error!("gateway socket {}: no accept thread: {e}", path.display());
            None
        }
    };
    // Nothing but Stop is ever sent here: an accept error does not end the loop.
    events.recv();
    conns.stopping.store(true, Ordering::SeqCst);
    // Wakes the blocked `accept` (it fails with EINVAL on Linux).
    // SAFETY: shutdown on a descriptor the listener owns and keeps open.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
    if let Some(handle) = acceptor {
        let _ = handle.join();
    }
    conns.close_all();
    let _ = fs::remove_file(path);
}

/// The live connections, so that stopping can end them.
#[derive(Default)]
struct Conns {
    stopping: AtomicBool,
    next_id: AtomicU64,
    /// Id and a handle of each live connection (for `shutdown` only).
    live: Mutex<Vec<(u64, UnixStream)>>,
}

impl Conns {
    /// Register a connection; `None` when full or stopping.
    fn enter(self: &Arc<Self>, stream: &UnixStream) -> Option<ConnGuard> {
        let handle = stream.try_clone().ok()?;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.len() >= MAX_CONNS || self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        live.push((id, handle));
        Some(ConnGuard {
            conns: Arc::clone(self),
            id,
        })
    }

    /// Stop reading on every connection: idle ones end at once, busy ones
    /// after writing their answer.
    fn close_all(&self) {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        for (_, stream) in live.iter() {
            let _ = stream.shutdown(Shutdown::Read);
        }
    }
}

/// Unregisters a connection when its thread ends, however it ends.
struct ConnGuard {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut live = self.conns.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|(id, _)| *id != self.id);
    }
}

/// Accept until stopping; a thread per connection, at most [`MAX_CONNS`].
fn accept_loop(
    listener: &UnixListener,
    conns: &Arc<Conns>,
    shared: &Arc<Shared>,
    policy: &Arc<SocketPolicy>,
) {
    loop {
        let accepted = listener.accept();
        if conns.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("gateway socket: accept failed: {e}");
                thread::sleep(ACCEPT_PAUSE);
                continue;
            }
        };
        let Some(guard) = conns.enter(&stream) else {
            log::warn!("gateway socket: too many connections; closing a new one");
            continue;
        };
        let (shared, policy) = (Arc::clone(shared), Arc::clone(policy));
        let spawned = thread::Builder::new()
            .name("api-gw-conn".into())
            .spawn(move || {
                // A panic must cost one connection, never PID 1.
                let served = catch_unwind(AssertUnwindSafe(|| {
                    serve_connection(stream, &shared, &policy, &guard.conns.stopping);
                }));
                drop(guard);
                if served.is_err() {
                    log::error!("panic while serving the gateway socket");
                }
            });
        if let Err(e) = spawned {
            // The closure (and its guard) was dropped: the registry is right.
            log::error!("gateway socket: cannot start a connection thread: {e}");
        }
    }
}

/// A socket whose reads must finish before a movable deadline (see
/// [`client::wait_readable`] for why `poll` and not `SO_RCVTIMEO`).
struct DeadlineReader {
    stream: UnixStream,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        client::wait_readable(&self.stream, self.deadline)?;
        self.stream.read(buf)
    }
}

/// Serve the requests of one connection until it closes, errs or asks to close.
fn serve_connection(stream: UnixStream, shared: &Shared, policy: &SocketPolicy, stop: &AtomicBool) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    if writer.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        return;
    }
    let mut reader = BufReader::with_capacity(
        16 * 1024,
        DeadlineReader {
            stream,
            deadline: Instant::now() + FIRST_HEAD_TIMEOUT,
        },
    );
    loop {
        let (response, keep_alive, head_only) = match read_request(&mut reader, policy) {
            Ok(Some(r)) => {
                let answer = catch_unwind(AssertUnwindSafe(|| route(shared, &r.request)))
                    .unwrap_or_else(|_| {
                        log::error!("panic while routing {} {}", r.request.method, r.request.url);
                        reply::pies_error(500, "internal error")
                    });
                (answer, r.keep_alive, r.request.method == "HEAD")
            }
            Ok(None) => return,
            Err(refusal) => (refusal, false, false),
        };
        let keep_alive = keep_alive && !stop.load(Ordering::SeqCst);
        // One write for head and body: one wake-up of the gateway.
        let head = render_head(&response, !keep_alive);
        let body = if head_only { &[][..] } else { &response.body };
        if client::write_head_and_body(&mut writer, &head, body).is_err() || !keep_alive {
            return;
        }
        reader.get_mut().deadline = Instant::now() + REQUEST_TIMEOUT;
    }
}

/// A request read in full, and whether the connection may carry another.
struct Incoming {
    request: ApiRequest,
    keep_alive: bool,
}

/// Read one request. `Ok(None)`: the peer closed or went silent, nothing
/// to answer. `Err`: the answer to give before closing.
fn read_request<R: io::BufRead>(
    reader: &mut R,
    policy: &SocketPolicy,
) -> Result<Option<Incoming>, ApiResponse> {
    let (line, headers) = match client::read_head(reader, client::MAX_HEAD, client::MAX_HEADERS) {
        Ok(Some(head)) => head,
        Ok(None) | Err(MessageError::Io(_) | MessageError::Closed) => return Ok(None),
        Err(MessageError::TooLarge) => {
            return Err(reply::pies_error(431, "request head too large"));
        }
        Err(MessageError::Malformed(why)) => return Err(reply::pies_error(400, why)),
    };
    let (method, url, http10) = parse_request_line(&line)?;
    let keep_alive = wants_keep_alive(http10, client::header_value(&headers, "connection"));
    let framing = client::message_framing(&headers, Framing::Empty)
        .map_err(|_| reply::pies_error(400, "bad Content-Length or Transfer-Encoding"))?;
    let mut request = ApiRequest {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body: Vec::new(),
    };
    // Before the body: a stranger must not make us read a megabyte.
    check_gateway(policy, &mut request)?;
    request.body = match client::read_body(reader, framing, MAX_BODY) {
        Ok(body) => body,
        Err(MessageError::TooLarge) => {
            return Err(reply::pies_error(
                413,
                format!("request body larger than {MAX_BODY} bytes"),
            ));
        }
        Err(MessageError::Malformed(why)) => return Err(reply::pies_error(400, why)),
        Err(MessageError::Io(_) | MessageError::Closed) => return Ok(None),
    };
    Ok(Some(Incoming {
        request,
        keep_alive,
    }))
}

/// `METHOD TARGET HTTP/1.x` → (method, target, is HTTP/1.0).
fn parse_request_line(line: &str) -> Result<(&str, &str, bool), ApiResponse> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reply::pies_error(400, "malformed request line"));
    };
    if !client::is_token(method) || !target.starts_with('/') {
        return Err(reply::pies_error(400, "malformed request line"));
    }
    match version {
        "HTTP/1.1" => Ok((method, target, false)),
        "HTTP/1.0" => Ok((method, target, true)),
        _ => Err(reply::pies_error(505, "only HTTP/1.0 and HTTP/1.1")),
    }
}

/// HTTP/1.1 keeps the connection unless told to close; 1.0 only when asked.
fn wants_keep_alive(http10: bool, connection: Option<&str>) -> bool {
    let connection = connection.unwrap_or("").to_ascii_lowercase();
    if http10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    fn policy() -> SocketPolicy {
        SocketPolicy {
            owner: None,
            gateway_secret: Some("s3cret".into()),
        }
    }

    fn read(raw: &str) -> Result<Option<Incoming>, ApiResponse> {
        let mut r = io::Cursor::new(raw.as_bytes().to_vec());
        read_request(&mut r, &policy())
    }

    #[test]
    fn reads_a_proven_request_and_strips_the_proof() {
        let got = read(
            "POST /programs?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Tend-Gateway: s3cret\r\n\
             X-Tend-Access: read\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.request.method, "POST");
        assert_eq!(got.request.url, "/programs?x=1");
        assert_eq!(got.request.body, b"{}");
        assert_eq!(got.request.header("x-tend-access"), Some("read"));
        assert_eq!(got.request.header("x-tend-gateway"), None);
        assert!(got.keep_alive);
    }

    #[test]
    fn refuses_strangers_before_their_body() {
        let err = read("PUT /programs HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .err()
            .unwrap();
        assert_eq!(err.status, 403);
        let err = read("GET / HTTP/1.1\r\nX-Tend-Gateway: wrong\r\n\r\n")
            .err()
            .unwrap();
        assert_eq!(err.status, 403);
    }

    #[test]
    fn refuses_malformed_and_oversized_requests() {
        let proof = "X-Tend-Gateway: s3cret\r\n";
        let status = |raw: String| read(&raw).err().map(|r| r.status);
        assert_eq!(status("GET /\r\n\r\n".into()), Some(400));
        assert_eq!(status("GET x HTTP/1.1\r\n\r\n".into()), Some(400));
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n".into()), Some(505));
        assert_eq!(
            status(format!(
                "PUT / HTTP/1.1\r\n{proof}Content-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )),
            Some(413)
        );
        assert_eq!(
            status(format!(
                "PUT / HTTP/1.1\r\n{proof}Content-Length: 1\r\nContent-Length: 2\r\n\r\n"
            )),
            Some(400)
        );
        let huge = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(client::MAX_HEAD)
        );
        assert_eq!(status(huge), Some(431));
        // A peer that closes mid-body gets nothing.
        let cut = format!("PUT / HTTP/1.1\r\n{proof}Content-Length: 10\r\n\r\nabc");
        assert!(matches!(read(&cut), Ok(None)));
        assert!(matches!(read(""), Ok(None)));
    }

    #[test]
    fn connection_rules() {
        assert!(wants_keep_alive(false, None));
        assert!(!wants_keep_alive(false, Some("Close")));
        assert!(!wants_keep_alive(true, None));
        assert!(wants_keep_alive(true, Some("keep-alive")));
        let got = read("GET / HTTP/1.0\r\nX-Tend-Gateway: s3cret\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!got.keep_alive);
    }

    #[test]
    fn serves_keep_alive_and_stops_cleanly() {
        use crate::config::Config;
        use crate::shared::State;
        let dir = std::env::temp_dir().join(format!("tend-gwsock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gw.sock");
        let shared = Shared::new(State::new(Config::default(), None, vec!["tend".into()])).unwrap();
        let server = super::super::serve_unix_with(shared, &path, policy()).unwrap();
        let stream = UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..3 {
            writer
                .write_all(b"GET /version HTTP/1.1\r\nX-Tend-Gateway: s3cret\r\n\r\n")
                .unwrap();
            let (line, headers) = client::read_head(&mut reader, 65536, 100).unwrap().unwrap();
            assert!(line.starts_with("HTTP/1.1 200"), "{line}");
            let framing = client::message_framing(&headers, Framing::UntilClose).unwrap();
            let body = client::read_body(&mut reader, framing, 1 << 20).unwrap();
            assert!(String::from_utf8_lossy(&body).contains("\"name\":\"tend\""));
        }
        // A body far larger than the read buffer, on the same connection.
        let body = vec![b' '; 200 * 1024];
        let head = format!(
            "GET /version HTTP/1.1\r\nX-Tend-Gateway: s3cret\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(&body).unwrap();
        let (line, headers) = client::read_head(&mut reader, 65536, 100).unwrap().unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let framing = client::message_framing(&headers, Framing::UntilClose).unwrap();
        let answer = client::read_body(&mut reader, framing, 1 << 20).unwrap();
        assert!(String::from_utf8_lossy(&answer).contains("\"name\":\"tend\""));
        // A stranger is answered 403 and closed.
        let mut other = UnixStream::connect(&path).unwrap();
        other
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        other.write_all(b"GET /version HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        server.shutdown();
        assert!(!path.exists(), "socket file left behind");
        // The kept connection was closed by the shutdown.
        let mut line = String::new();
        assert_eq!(reader.read_line(&mut line).unwrap_or(0), 0, "{line}");
        let _ = fs::remove_dir_all(&dir);
    }
}
