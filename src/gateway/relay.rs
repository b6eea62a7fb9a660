//! The gateway's connections, all served by one thread around `epoll`.
//!
//! Why one thread and not one per connection (as before): a relayed request
//! made its connection thread sleep and be woken twice, for the client's
//! request and for the daemon's answer. On a 2-CPU machine those context
//! switches and the wake-ups behind them were about half of the gateway's
//! CPU time per request (perf: `finish_task_switch`, `sock_def_readable`).
//! One thread that sleeps only when no connection has work serves many
//! requests per wake-up under load, and none at all when idle.
//!
//! Every socket is non-blocking and registered edge-triggered for input
//! only; output interest is added only while an answer does not fit in the
//! socket, so a request costs one read and one write on each side and no
//! `epoll_ctl`. A read that does not fill the buffer drained the socket (a
//! later arrival raises a new edge), so no read is made just to see
//! `EAGAIN`. Each connection has one deadline for its current phase; the
//! wait sleeps until the nearest, or forever when no connection is open.
//!
//! Limits are those of the thread-per-connection gateway: at most
//! `max_conns` clients (then 503), a head of [`MAX_REQUEST_HEAD`] bytes and
//! [`client::MAX_HEADERS`] lines, a body of `max_body` (413 before reading
//! it when announced), deadlines for the head, the body, the daemon's
//! answer and the client's reading of it.

use super::framing::{self, Chunked};
use super::{
    BODY_TIMEOUT, Gateway, HEAD_TIMEOUT, MAX_RELAYED_ANSWER, MAX_REQUEST_HEAD,
    MAX_REQUESTS_PER_CONN, Refusal, RequestLine, Rights, UPSTREAM_TIMEOUT, WRITE_TIMEOUT,
};
use crate::client::{self, ClientError, Endpoint, Framing, MessageError};
use std::io;
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Token of the listening socket (connection tokens never reach it).
const LISTENER: u64 = u64::MAX;
/// Events taken from the kernel per wait.
const EVENTS: usize = 64;
/// Bytes asked of a client socket per read: a typical request many times.
const CLIENT_READ: usize = 16 * 1024;
/// Bytes asked of the daemon's socket per read: a typical answer at once.
const UPSTREAM_READ: usize = 64 * 1024;
/// Buffers grown past this by a large message are given back afterwards.
const KEPT_CAPACITY: usize = 64 * 1024;
/// How much a refused client may still send while its connection closes.
const LINGER_BYTES: usize = 64 * 1024;
/// How long a refused client has to take its answer and stop sending.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (EMFILE…), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serve `listener` forever.
pub(super) fn serve(listener: &TcpListener, gw: &Gateway) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot make the listener non-blocking: {e}"))?;
    let poller = Poller::new().map_err(|e| format!("epoll_create1: {e}"))?;
    // Level-triggered: a connection left in the backlog is seen again.
    poller
        .add(listener.as_raw_fd(), LISTENER, libc::EPOLLIN as u32)
        .map_err(|e| format!("cannot watch the listener: {e}"))?;
    let mut lp = Loop {
        listener,
        gw,
        poller,
        conns: Vec::new(),
        free: Vec::new(),
        generation: 0,
        live: 0,
    };
    loop {
        lp.turn();
    }
}

/// An `epoll` instance.
struct Poller(OwnedFd);

/// Input and hang-ups, edge-triggered.
const INPUT: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// [`INPUT`] and room to write, while an answer waits for room.
const INPUT_OUTPUT: u32 = INPUT | libc::EPOLLOUT as u32;

impl Poller {
    fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes flags only; the descriptor is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(Poller(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn control(&self, op: libc::c_int, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: a valid epoll descriptor and event struct for the call.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn add(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, token, events)
    }

    fn modify(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, events)
    }

    /// Wait for events, at most `timeout_ms` (-1: forever).
    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: libc::c_int) -> io::Result<usize> {
        let max = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the buffer holds `max` events and outlives the call.
        let n =
            unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

/// One end of a relay: a socket with what was read from it and not yet
/// used, and what is to be written to it.
struct Side<S> {
    stream: S,
    input: Vec<u8>,
    /// An edge said input may be waiting (cleared by a read that did not
    /// fill its buffer).
    readable: bool,
    /// The peer finished sending.
    eof: bool,
    output: Vec<u8>,
    written: usize,
    /// `EPOLLOUT` is registered (only while output waits for room).
    wants_room: bool,
}

impl<S: AsRawFd> Side<S> {
    fn new(stream: S, readable: bool) -> Side<S> {
        Side {
            stream,
            input: Vec::new(),
            readable,
            eof: false,
            output: Vec::new(),
            written: 0,
            wants_room: false,
        }
    }

    /// One read of at most `chunk` bytes, if input may be waiting.
    /// Returns whether anything new is known (bytes or the end).
    fn fill(&mut self, chunk: usize) -> io::Result<bool> {
        if !self.readable || self.eof {
            return Ok(false);
        }
        self.input.reserve(chunk);
        let spare = self.input.spare_capacity_mut();
        let len = spare.len().min(chunk);
        let into = spare.as_mut_ptr();
        loop {
            // SAFETY: reads at most `len` bytes into the vector's spare
            // capacity, which nothing else touches during the call.
            let n = unsafe { libc::read(self.stream.as_raw_fd(), into.cast(), len) };
            match usize::try_from(n) {
                Ok(0) => {
                    self.eof = true;
                    self.readable = false;
                    return Ok(true);
                }
                Ok(n) => {
                    let filled = self.input.len() + n;
                    // SAFETY: the kernel initialised these `n` bytes.
                    unsafe { self.input.set_len(filled) };
                    self.readable = n == len;
                    return Ok(true);
                }
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::Interrupted => {}
                        io::ErrorKind::WouldBlock => {
                            self.readable = false;
                            return Ok(false);
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    /// Write pending output. `Ok(true)`: all of it is out; `Ok(false)`: the
    /// socket is full and `EPOLLOUT` is registered to say when to go on.
    fn flush(&mut self, poller: &Poller, token: u64) -> io::Result<bool> {
        while let Some(rest) = self.output.get(self.written..).filter(|r| !r.is_empty()) {
            // SAFETY: writes from a live slice of `rest.len()` bytes.
            let n =
                unsafe { libc::write(self.stream.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            match usize::try_from(n) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::Interrupted => {}
                        io::ErrorKind::WouldBlock => {
                            if !self.wants_room {
                                poller.modify(self.stream.as_raw_fd(), token, INPUT_OUTPUT)?;
                                self.wants_room = true;
                            }
                            return Ok(false);
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        if self.wants_room {
            poller.modify(self.stream.as_raw_fd(), token, INPUT)?;
            self.wants_room = false;
        }
        Ok(true)
    }

    /// Whether output is still waiting to be written.
    fn output_pending(&self) -> bool {
        self.written < self.output.len()
    }

    /// Forget what was written, keeping moderate buffers for the next message.
    fn reset_output(&mut self) {
        self.output.clear();
        self.written = 0;
        if self.output.capacity() > KEPT_CAPACITY {
            self.output = Vec::new();
        }
    }

    /// Drop the first `n` bytes of input.
    fn consume(&mut self, n: usize) {
        if n >= self.input.len() {
            self.input.clear();
        } else {
            self.input.drain(..n);
        }
        if self.input.is_empty() && self.input.capacity() > KEPT_CAPACITY {
            self.input = Vec::new();
        }
    }
}

/// The daemon's side of a connection.
struct Upstream {
    side: Side<UnixStream>,
    /// It carried an answer before: a failure may just mean it went stale.
    reused: bool,
}

/// What a connection is doing.
enum Phase {
    /// Waiting for a request head (or idle between requests).
    Head,
    /// Head accepted: its body is arriving.
    Body(Box<Pending>),
    /// Request sent (or being sent) to the daemon: its answer is arriving.
    Relay(Box<Relaying>),
    /// Writing the answer; then the next request, or the end.
    Answer { keep_alive: bool },
    /// Writing a refusal; then [`Phase::Linger`].
    Refusing,
    /// Refused: drain what the client still sends, then close.
    Linger { left: usize },
}

/// A request whose head passed every check, waiting for its body.
struct Pending {
    req: RequestLine,
    headers: Vec<(String, String)>,
    rights: Rights,
    framing: Framing,
    keep_alive: bool,
    body: Vec<u8>,
    chunked: Chunked,
}

/// A request relayed to the daemon.
struct Relaying {
    /// For the log and for reading the answer.
    method: String,
    target: String,
    head_only: bool,
    keep_alive: bool,
    /// Already retried once on a fresh connection.
    retried: bool,
}

/// One client connection.
struct Conn {
    generation: u32,
    client: Side<TcpStream>,
    peer: IpAddr,
    upstream: Option<Upstream>,
    phase: Phase,
    deadline: Instant,
    served: usize,
    /// Where the search for the end of the head stopped.
    head_scan: usize,
}

/// What a step of a connection leads to.
enum Step {
    /// Something changed: step again.
    Again,
    /// Nothing to do until an event or the deadline.
    Wait,
    /// The connection is over.
    Close,
}

/// The event loop's state.
struct Loop<'a> {
    listener: &'a TcpListener,
    gw: &'a Gateway,
    poller: Poller,
    /// Connections by slot; a token names the slot, its generation and side.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u32,
    live: usize,
}

/// The token of a connection's client (`upstream` false) or daemon side.
fn token(slot: usize, generation: u32, upstream: bool) -> u64 {
    let slot = u64::try_from(slot).unwrap_or(0) & 0x7fff_ffff;
    (u64::from(generation) << 32) | (slot << 1) | u64::from(upstream)
}

/// (slot, generation, upstream) of a connection token.
fn untoken(token: u64) -> (usize, u32, bool) {
    let slot = usize::try_from((token >> 1) & 0x7fff_ffff).unwrap_or(usize::MAX);
    let generation = u32::try_from(token >> 32).unwrap_or(0);
    (slot, generation, token & 1 == 1)
}

impl Loop<'_> {
    /// Wait for events (or the nearest deadline) and handle them.
    fn turn(&mut self) {
        let timeout = self.wait_ms(Instant::now());
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        let n = match self.poller.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                log::warn!("epoll_wait failed: {e}");
                std::thread::sleep(ACCEPT_PAUSE);
                0
            }
        };
        for ev in events.iter().take(n) {
            let token = ev.u64;
            if token == LISTENER {
                self.accept_all();
            } else {
                self.on_event(token);
            }
        }
        self.expire(Instant::now());
    }

    /// Milliseconds until the nearest deadline, rounded up; -1 for none.
    fn wait_ms(&self, now: Instant) -> libc::c_int {
        let Some(nearest) = self.conns.iter().flatten().map(|c| c.deadline).min() else {
            return -1;
        };
        let left = nearest.saturating_duration_since(now);
        libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
    }

    /// Accept every waiting connection; 503 to those over the cap.
    fn accept_all(&mut self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(ACCEPT_PAUSE);
                    return;
                }
            };
            if self.live >= self.gw.max_conns {
                super::refuse_busy(stream);
                continue;
            }
            if let Err(e) = self.open(stream, super::canonical_ip(peer.ip())) {
                log::warn!("cannot serve a connection from {peer}: {e}");
            }
        }
    }

    /// Register a new client connection and serve what it already sent.
    fn open(&mut self, stream: TcpStream, peer: IpAddr) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true).ok();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        if let Err(e) = self
            .poller
            .add(stream.as_raw_fd(), token(slot, generation, false), INPUT)
        {
            self.free.push(slot);
            return Err(e);
        }
        let conn = Conn {
            generation,
            // Bytes may have arrived before the registration raised no edge.
            client: Side::new(stream, true),
            peer,
            upstream: None,
            phase: Phase::Head,
            deadline: Instant::now() + HEAD_TIMEOUT,
            served: 0,
            head_scan: 0,
        };
        if let Some(place) = self.conns.get_mut(slot) {
            *place = Some(conn);
        }
        self.live += 1;
        self.advance(slot);
        Ok(())
    }

    /// An event for a connection: note what it says, then go on with it.
    fn on_event(&mut self, token: u64) {
        let (slot, generation, upstream) = untoken(token);
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        // An event queued for a connection closed earlier in this batch.
        if conn.generation != generation {
            return;
        }
        if upstream {
            if let Some(up) = conn.upstream.as_mut() {
                up.side.readable = true;
            }
        } else {
            conn.client.readable = true;
        }
        self.advance(slot);
    }

    /// Step a connection until it must wait; close it if it is over.
    fn advance(&mut self, slot: usize) {
        let now = Instant::now();
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let ctx = Ctx {
            gw: self.gw,
            poller: &self.poller,
            slot,
            now,
        };
        loop {
            match ctx.step(conn) {
                Step::Again => {}
                Step::Wait => return,
                Step::Close => break,
            }
        }
        self.close(slot);
    }

    /// Close every connection whose deadline has passed (after its last word).
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.deadline > now {
                continue;
            }
            let ctx = Ctx {
                gw: self.gw,
                poller: &self.poller,
                slot,
                now,
            };
            if ctx.timed_out(conn) {
                self.advance(slot);
            } else {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(place) = self.conns.get_mut(slot) {
            if place.take().is_some() {
                // Closing the sockets removes them from the epoll set.
                self.live = self.live.saturating_sub(1);
                self.free.push(slot);
            }
        }
    }
}

/// What stepping a connection needs from the loop.
struct Ctx<'a> {
    gw: &'a Gateway,
    poller: &'a Poller,
    slot: usize,
    now: Instant,
}

impl Ctx<'_> {
    fn client_token(&self, conn: &Conn) -> u64 {
        token(self.slot, conn.generation, false)
    }

    fn upstream_token(&self, conn: &Conn) -> u64 {
        token(self.slot, conn.generation, true)
    }

    /// Make what progress the connection's phase allows.
    fn step(&self, conn: &mut Conn) -> Step {
        match &conn.phase {
            Phase::Head => self.read_head(conn),
            Phase::Body(_) => self.read_body(conn),
            Phase::Relay(_) => self.read_answer(conn),
            Phase::Answer { keep_alive } => {
                let keep_alive = *keep_alive;
                self.write_answer(conn, keep_alive)
            }
            Phase::Refusing => self.write_refusal(conn),
            Phase::Linger { left } => {
                let left = *left;
                self.linger(conn, left)
            }
        }
    }

    /// More client input, or wait for it (or close at its end).
    fn more_input(&self, conn: &mut Conn) -> Step {
        match conn.client.fill(CLIENT_READ) {
            Ok(true) => Step::Again,
            Ok(false) if conn.client.eof => Step::Close,
            Ok(false) => Step::Wait,
            Err(_) => Step::Close,
        }
    }

    /// Look for a whole request head; check it and go on to its body.
    fn read_head(&self, conn: &mut Conn) -> Step {
        let blank = framing::leading_blank_lines(&conn.client.input);
        if blank > 0 {
            conn.client.consume(blank);
            conn.head_scan = 0;
        }
        let Some(end) = framing::head_end(&conn.client.input, &mut conn.head_scan) else {
            if conn.client.input.len() > MAX_REQUEST_HEAD {
                return self.refuse(conn, &Refusal::new(431, "request head too large"));
            }
            if conn.client.eof {
                return Step::Close;
            }
            return self.more_input(conn);
        };
        let mut head = conn.client.input.get(..end).unwrap_or_default();
        let parsed = client::read_head(&mut head, MAX_REQUEST_HEAD, client::MAX_HEADERS);
        conn.client.consume(end);
        conn.head_scan = 0;
        let (line, headers) = match parsed {
            Ok(Some(h)) => h,
            Ok(None) | Err(MessageError::Io(_) | MessageError::Closed) => {
                return self.refuse(conn, &Refusal::new(400, "malformed request head"));
            }
            Err(MessageError::TooLarge) => {
                return self.refuse(conn, &Refusal::new(431, "request head too large"));
            }
            Err(MessageError::Malformed(why)) => {
                return self.refuse(conn, &Refusal::new(400, why));
            }
        };
        self.accept_head(conn, line, headers)
    }

    /// Check a parsed head; answer `100 Continue` if asked; expect the body.
    fn accept_head(&self, conn: &mut Conn, line: String, headers: Vec<(String, String)>) -> Step {
        let req = match super::parse_request_line(&line) {
            Ok(r) => r,
            Err(r) => return self.refuse(conn, &r),
        };
        let (rights, framing) = match super::check_request(&req, &headers, conn.peer, self.gw) {
            Ok(c) => c,
            Err(r) => {
                log::info!(
                    "refused {} {} from {}: {}",
                    req.method,
                    req.target,
                    conn.peer,
                    r.message
                );
                return self.refuse(conn, &r);
            }
        };
        if client::header_value(&headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            conn.client
                .output
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        // The last answer on a connection must say so, or a keep-alive
        // client sends its next request into a closing socket.
        let last = conn.served + 1 >= MAX_REQUESTS_PER_CONN;
        let keep_alive = !last && super::wants_keep_alive(&req, &headers);
        conn.phase = Phase::Body(Box::new(Pending {
            req,
            headers,
            rights,
            framing,
            keep_alive,
            body: Vec::new(),
            chunked: Chunked::default(),
        }));
        conn.deadline = self.now + BODY_TIMEOUT;
        Step::Again
    }

    /// Gather the body as it arrives; relay the request once it is whole.
    fn read_body(&self, conn: &mut Conn) -> Step {
        if conn.client.output_pending() {
            // `100 Continue`: the client may wait for it before sending.
            match conn.client.flush(self.poller, self.client_token(conn)) {
                Ok(_) => {}
                Err(_) => return Step::Close,
            }
        }
        let Phase::Body(p) = &mut conn.phase else {
            return Step::Close;
        };
        let complete = match p.framing {
            Framing::Empty | Framing::UntilClose => true,
            Framing::Length(n) => {
                let want = usize::try_from(n).unwrap_or(usize::MAX);
                if conn.client.input.len() >= want {
                    p.body = conn.client.input.get(..want).unwrap_or_default().to_vec();
                    conn.client.consume(want);
                    true
                } else {
                    false
                }
            }
            Framing::Chunked => {
                match p
                    .chunked
                    .feed(&conn.client.input, &mut p.body, self.gw.max_body)
                {
                    Ok((used, done)) => {
                        conn.client.consume(used);
                        done
                    }
                    Err(MessageError::TooLarge) => {
                        return self.refuse(conn, &Refusal::new(413, "request body too large"));
                    }
                    Err(MessageError::Malformed(why)) => {
                        return self.refuse(conn, &Refusal::new(400, why));
                    }
                    Err(_) => return Step::Close,
                }
            }
        };
        if !complete {
            return self.more_input(conn);
        }
        let Phase::Body(p) = std::mem::replace(&mut conn.phase, Phase::Head) else {
            return Step::Close;
        };
        self.relay(conn, *p)
    }

    /// Send a whole request to the daemon (connecting if need be).
    fn relay(&self, conn: &mut Conn, p: Pending) -> Step {
        conn.deadline = self.now + UPSTREAM_TIMEOUT;
        let relaying = Relaying {
            method: p.req.method.clone(),
            target: p.req.target.clone(),
            head_only: p.req.method == "HEAD",
            keep_alive: p.keep_alive,
            retried: false,
        };
        let message = match super::upstream_message(
            &p.req, &p.headers, &p.body, conn.peer, p.rights, self.gw,
        ) {
            Ok(m) => m,
            Err(e) => return self.answer_failure(conn, &relaying, &e),
        };
        if conn.upstream.is_none() {
            match self.connect(conn) {
                Ok(up) => conn.upstream = Some(up),
                Err(e) => return self.answer_failure(conn, &relaying, &e),
            }
        }
        if let Some(up) = conn.upstream.as_mut() {
            up.side.reset_output();
            up.side.output = message;
        }
        conn.phase = Phase::Relay(Box::new(relaying));
        Step::Again
    }

    /// A fresh connection to the daemon, registered for its answers.
    fn connect(&self, conn: &Conn) -> Result<Upstream, ClientError> {
        let Endpoint::Unix(path) = &self.gw.upstream else {
            return Err(ClientError::BadRequest(
                "the gateway relays to a UNIX socket only".into(),
            ));
        };
        let fail = |source: io::Error| ClientError::Connect {
            endpoint: self.gw.upstream.to_string(),
            source,
        };
        // A local connect either succeeds or fails at once.
        let stream = UnixStream::connect(path).map_err(fail)?;
        stream.set_nonblocking(true).map_err(fail)?;
        self.poller
            .add(stream.as_raw_fd(), self.upstream_token(conn), INPUT)
            .map_err(fail)?;
        Ok(Upstream {
            side: Side::new(stream, false),
            reused: false,
        })
    }

    /// Send the request and gather the daemon's answer; pass it on once whole.
    fn read_answer(&self, conn: &mut Conn) -> Step {
        let up_token = self.upstream_token(conn);
        let Some(up) = conn.upstream.as_mut() else {
            return Step::Close;
        };
        let Phase::Relay(r) = &conn.phase else {
            return Step::Close;
        };
        let method = if r.head_only {
            "GET"
        } else {
            r.method.as_str()
        };
        let sent = up.side.written > 0;
        let outcome = match up.side.flush(self.poller, up_token) {
            Err(e) => Err(MessageError::Io(e)),
            Ok(_) => framing::answer(&up.side.input, up.side.eof, method, MAX_RELAYED_ANSWER),
        };
        match outcome {
            Ok(Some(answer)) => {
                let clean = answer.reusable && answer.used == up.side.input.len();
                up.side.consume(answer.used);
                up.reused = true;
                if !clean {
                    // Bytes past the answer would be read as the next one.
                    conn.upstream = None;
                }
                let Phase::Relay(r) = std::mem::replace(&mut conn.phase, Phase::Head) else {
                    return Step::Close;
                };
                let (status, headers, body) = super::relayed_answer(answer.response);
                self.answer(conn, &r, status, &headers, &body)
            }
            Ok(None) => match up.side.fill(UPSTREAM_READ) {
                Ok(true) => Step::Again,
                Ok(false) => Step::Wait,
                Err(e) => self.upstream_failed(conn, MessageError::Io(e), sent),
            },
            Err(e) => self.upstream_failed(conn, e, sent),
        }
    }

    /// The daemon's connection failed: retry once on a fresh one if it was
    /// a kept connection gone stale and repeating is harmless (GET/HEAD, or
    /// nothing sent), else answer 502.
    fn upstream_failed(&self, conn: &mut Conn, e: MessageError, sent: bool) -> Step {
        let Some(up) = conn.upstream.take() else {
            return Step::Close;
        };
        let Phase::Relay(r) = &mut conn.phase else {
            return Step::Close;
        };
        let stale = matches!(&e, MessageError::Closed)
            || matches!(&e, MessageError::Io(io) if io.kind() != io::ErrorKind::TimedOut);
        let harmless = matches!(r.method.as_str(), "GET" | "HEAD") || !sent;
        if up.reused && stale && harmless && !r.retried {
            r.retried = true;
            log::debug!(
                "kept connection to {} failed ({e:?}): retrying",
                self.gw.upstream
            );
            match self.connect(conn) {
                Ok(mut fresh) => {
                    fresh.side.output = up.side.output;
                    conn.upstream = Some(fresh);
                    return Step::Again;
                }
                Err(ce) => return self.fail_relay(conn, &ce),
            }
        }
        let ce = client::message_error(&self.gw.upstream.to_string(), MAX_RELAYED_ANSWER, e);
        self.fail_relay(conn, &ce)
    }

    /// Answer 502 for the request being relayed.
    fn fail_relay(&self, conn: &mut Conn, e: &ClientError) -> Step {
        let Phase::Relay(r) = std::mem::replace(&mut conn.phase, Phase::Head) else {
            return Step::Close;
        };
        self.answer_failure(conn, &r, e)
    }

    /// Answer 502: the daemon could not be asked.
    fn answer_failure(&self, conn: &mut Conn, r: &Relaying, e: &ClientError) -> Step {
        log::warn!("relay of {} {} failed: {e}", r.method, r.target);
        conn.upstream = None;
        let body = super::error_body(&format!("tend is not answering: {e}"));
        self.answer(conn, r, 502, &[], body.as_bytes())
    }

    /// Queue the answer for the client and go on writing it.
    fn answer(
        &self,
        conn: &mut Conn,
        r: &Relaying,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Step {
        super::render_response(
            &mut conn.client.output,
            status,
            headers,
            body,
            r.keep_alive,
            r.head_only,
        );
        conn.phase = Phase::Answer {
            keep_alive: r.keep_alive,
        };
        conn.deadline = self.now + WRITE_TIMEOUT;
        Step::Again
    }

    /// Write the answer; then wait for the next request, or close.
    fn write_answer(&self, conn: &mut Conn, keep_alive: bool) -> Step {
        match conn.client.flush(self.poller, self.client_token(conn)) {
            Ok(true) => {}
            Ok(false) => return Step::Wait,
            Err(_) => return Step::Close,
        }
        conn.client.reset_output();
        if let Some(up) = conn.upstream.as_mut() {
            up.side.reset_output();
        }
        if !keep_alive {
            return Step::Close;
        }
        conn.served += 1;
        conn.phase = Phase::Head;
        conn.deadline = self.now + HEAD_TIMEOUT;
        Step::Again
    }

    /// Answer a refusal with `Connection: close`, then linger.
    fn refuse(&self, conn: &mut Conn, r: &Refusal) -> Step {
        let mut extra = Vec::new();
        if r.status == 401 {
            extra.push((
                "WWW-Authenticate".to_string(),
                "Basic realm=\"tend\", charset=\"UTF-8\"".to_string(),
            ));
        }
        let body = super::error_body(&r.message);
        conn.client.reset_output();
        super::render_response(
            &mut conn.client.output,
            r.status,
            &extra,
            body.as_bytes(),
            false,
            false,
        );
        conn.upstream = None;
        conn.phase = Phase::Refusing;
        conn.deadline = self.now + WRITE_TIMEOUT;
        Step::Again
    }

    /// Write the refusal, stop sending, and drain what the client still
    /// sends: closing with unread data makes the kernel send RST, which
    /// can destroy the answer before the client reads it.
    fn write_refusal(&self, conn: &mut Conn) -> Step {
        match conn.client.flush(self.poller, self.client_token(conn)) {
            Ok(true) => {}
            Ok(false) => return Step::Wait,
            Err(_) => return Step::Close,
        }
        let _ = conn.client.stream.shutdown(Shutdown::Write);
        conn.phase = Phase::Linger {
            left: LINGER_BYTES.saturating_sub(conn.client.input.len()),
        };
        conn.client.input.clear();
        conn.deadline = self.now + LINGER_TIMEOUT;
        Step::Again
    }

    /// Discard input until the client closes, sent enough, or the deadline.
    fn linger(&self, conn: &mut Conn, left: usize) -> Step {
        if left == 0 || conn.client.eof {
            return Step::Close;
        }
        match conn.client.fill(CLIENT_READ.min(left)) {
            Ok(true) => {
                let got = conn.client.input.len();
                conn.client.input.clear();
                conn.phase = Phase::Linger {
                    left: left.saturating_sub(got),
                };
                Step::Again
            }
            Ok(false) => Step::Wait,
            Err(_) => Step::Close,
        }
    }

    /// The connection's deadline passed. Returns true when it still has
    /// something to say (a 502 for a daemon that did not answer in time),
    /// false when it is to be closed.
    fn timed_out(&self, conn: &mut Conn) -> bool {
        if !matches!(conn.phase, Phase::Relay(_)) {
            return false;
        }
        // A late answer would be taken for the next one: drop the connection.
        conn.upstream = None;
        let e = ClientError::TimedOut {
            endpoint: self.gw.upstream.to_string(),
        };
        let Phase::Relay(r) = std::mem::replace(&mut conn.phase, Phase::Head) else {
            return false;
        };
        self.answer_failure(conn, &r, &e);
        true
    }
}
