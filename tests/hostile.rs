//! "No input may break the daemon": hostile clients against the real tend,
//! over TCP through the `tend gateway` child and, where meaningful, straight
//! at the in-process UNIX socket.
//!
//! After every case the same checks run (see [`Target::check_after`]): tend
//! is alive with the same PID, its components kept their PIDs, its resident
//! memory stays under 8 MiB, and once the gateway accepts again (it may have
//! been restarted, which must then show in tend's log) a fresh TCP client
//! gets `GET /version` answered within 1 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Resident memory tend may use after any case.
const MAX_RSS_KIB: u64 = 8 * 1024;
/// Resident size of tend's own code and read-only data in a release build
/// (about 1.2 MiB measured, plus margin). A debug build maps over 4 MiB of
/// code; the excess is not charged to the budget, so the check means the
/// same in both profiles. Everything else (heap, stacks, libc) is charged.
const RELEASE_CODE_KIB: u64 = 1536;
/// Time a fresh client may wait for an answer once the gateway accepts again.
const FRESH_ANSWER: Duration = Duration::from_secs(1);
/// Bounds every read of a hostile exchange, so no case can hang the test.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Raise the soft open-file limit to the hard one: the idle-connection case
/// holds over a thousand sockets.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A tend with two long-running components, its API on a UNIX socket and
/// on a TCP port served by the gateway.
struct Target {
    d: Daemon,
    port: u16,
    /// Component tag → PID, the gateway excluded.
    pids: BTreeMap<String, i64>,
    /// The gateway's PID when last checked.
    gateway: i64,
}

impl Target {
    fn start(name: &str) -> Target {
        raise_nofile();
        let dir = TempDir::new(name);
        // The gateway runs as `nobody` and must reach its socket in here.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = dir.write(
            "tend.conf",
            "component alpha { command \"/bin/sleep 100000\"; }\n\
             component beta { command \"/bin/sleep 100000\"; stop-timeout 1; }\n",
        );
        let port = free_port();
        let conf = conf.display().to_string();
        let inet = format!("inet://127.0.0.1:{port}");
        let d = Daemon::start_with(dir, &["-c", &conf, "--control", &inet]);
        let mut t = Target {
            d,
            port,
            pids: BTreeMap::new(),
            gateway: 0,
        };
        assert!(
            wait_until(PATIENCE, || t
                .fresh_get("/version")
                .is_ok_and(|r| r.0 == 200)
                && t.pids_now().len() == 3),
            "the gateway never answered; log:\n{}",
            t.d.log()
        );
        let mut now = t.pids_now();
        t.gateway = now.remove("gateway").unwrap();
        t.pids = now;
        assert_eq!(t.pids.len(), 2, "{:?}", t.pids);
        t
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn tcp(&self) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    }

    fn unix(&self) -> UnixStream {
        let s = UnixStream::connect(&self.d.sock).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// One GET over a new TCP connection: (status, body).
    fn fresh_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = self.tcp()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        );
        s.write_all(req.as_bytes())?;
        read_reply(&mut s).ok_or_else(|| std::io::Error::other("no complete answer"))
    }

    /// Every row of `/programs` (over the UNIX socket) that has a PID.
    fn pids_now(&self) -> BTreeMap<String, i64> {
        let Ok(r) = http(&self.d.sock, "GET", "/programs", "") else {
            return BTreeMap::new();
        };
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == "running")
            .filter_map(|c| Some((c["tag"].as_str()?.to_string(), c["PID"].as_i64()?)))
            .collect()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.d.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// VmRSS as charged to the budget (see [`RELEASE_CODE_KIB`]).
    fn charged_rss_kib(&self) -> u64 {
        let rss = self.rss_kib();
        if !cfg!(debug_assertions) {
            return rss;
        }
        rss - exe_rss_kib(self.d.pid()).saturating_sub(RELEASE_CODE_KIB)
    }

    /// The checks that follow every hostile case.
    fn check_after(&mut self, case: &str) {
        assert!(
            alive(i64::from(self.d.pid())),
            "{case}: tend died; log:\n{}",
            self.d.log()
        );
        let r = http(&self.d.sock, "GET", "/instance", "")
            .unwrap_or_else(|e| panic!("{case}: UNIX socket dead: {e}\nlog:\n{}", self.d.log()));
        assert_eq!(
            r.json()["PID"].as_i64(),
            Some(i64::from(self.d.pid())),
            "{case}: another tend answers"
        );
        let mut now = self.pids_now();
        let gateway_now = now.remove("gateway");
        assert_eq!(
            now,
            self.pids,
            "{case}: components were touched; log:\n{}",
            self.d.log()
        );
        let rss = self.rss_kib();
        let charged = self.charged_rss_kib();
        assert!(
            charged < MAX_RSS_KIB,
            "{case}: tend's VmRSS is {rss} KiB, {charged} KiB charged (limit {MAX_RSS_KIB})"
        );
        // The gateway may have been restarted: wait until one runs and accepts.
        let accepting = wait_until(PATIENCE, || {
            self.pids_now().contains_key("gateway") && self.tcp().is_ok()
        });
        assert!(
            accepting,
            "{case}: the gateway does not accept again; log:\n{}",
            self.d.log()
        );
        let started = Instant::now();
        let answer = self.fresh_get("/version");
        let took = started.elapsed();
        assert!(
            matches!(answer, Ok((200, _))),
            "{case}: fresh client got {answer:?}; log:\n{}",
            self.d.log()
        );
        assert!(
            took < FRESH_ANSWER,
            "{case}: a fresh client waited {took:?} for /version"
        );
        let gateway = self.pids_now().get("gateway").copied().unwrap_or(0);
        if gateway_now != Some(self.gateway) || gateway != self.gateway {
            let old = self.gateway;
            let log = self.d.log();
            assert!(
                log.contains(&format!("gateway (pid {old}) exited")),
                "{case}: the gateway changed from {old} to {gateway} unlogged; log:\n{log}"
            );
            eprintln!("{case}: the gateway was restarted ({old} -> {gateway})");
            self.gateway = gateway;
        }
        eprintln!("{case}: ok (VmRSS {rss} KiB, {charged} KiB charged, fresh answer in {took:?})");
    }
}

/// Resident KiB of the mappings of a process's own executable file.
fn exe_rss_kib(pid: i32) -> u64 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut ours = false;
    let mut total = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: "start-end perms offset dev inode [path]".
            ours = line.split_whitespace().nth(5) == Some(exe.as_str());
        } else if ours {
            if let Some(kib) = line.strip_prefix("Rss:") {
                total += kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    total
}

/// Read one HTTP answer (Content-Length framed, or up to EOF).
fn read_reply(s: &mut impl Read) -> Option<(u16, String)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok());
            let body_start = end + 4;
            match len {
                Some(n) if raw.len() >= body_start + n => {
                    let body = String::from_utf8_lossy(&raw[body_start..body_start + n]);
                    return Some((status, body.into_owned()));
                }
                _ => {}
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((
        status,
        String::from_utf8_lossy(&raw[end + 4..]).into_owned(),
    ))
}

/// Send bytes (ignoring a server that hangs up), half-close, and read what
/// comes back until the server closes or the timeout.
fn throw(s: &mut (impl Read + Write), bytes: &[u8], half_close: impl FnOnce()) -> Vec<u8> {
    let _ = s.write_all(bytes);
    half_close();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn throw_tcp(t: &Target, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut s) = t.tcp() else {
        return Vec::new();
    };
    let c = s.try_clone().unwrap();
    throw(&mut s, bytes, || {
        let _ = c.shutdown(Shutdown::Write);
    })
}

fn throw_unix(t: &Target, bytes: &[u8]) -> Vec<u8> {
    let mut s = t.unix();
    let c = s.try_clone().unwrap();
    throw(&mut s, bytes, || {
        let _ = c.shutdown(Shutdown::Write);
    })
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer.get(..answer.len().min(64))?);
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// Replace every `Host: x` by `Host: HOST`.
fn with_host(bytes: &[u8], host: &str) -> Vec<u8> {
    let host = format!("Host: {host}");
    let mut v = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(7).position(|w| w == b"Host: x") {
        v.extend_from_slice(&rest[..i]);
        v.extend_from_slice(host.as_bytes());
        rest = &rest[i + 7..];
    }
    v.extend_from_slice(rest);
    v
}

/// One hostile request: (name, method, path bytes, extra header bytes,
/// body, whether it must be refused with 400).
type Hostile = (&'static str, &'static str, Vec<u8>, Vec<u8>, Vec<u8>, bool);

/// A small deterministic generator for garbage (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// --------------------------------------------------------------------- cases

#[test]
fn huge_content_length_then_close() {
    let mut t = Target::start("hostile-cl");
    for (method, path) in [
        ("POST", "/programs"),
        ("PUT", "/programs/alpha"),
        ("GET", "/"),
    ] {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 1000000000000\r\n\r\n{{\"op\"",
            t.host()
        );
        // Announce, send a few bytes of the "body", and hang up at once.
        if let Ok(mut s) = t.tcp() {
            let _ = s.write_all(req.as_bytes());
        }
        t.check_after(&format!(
            "TCP {method} {path} with Content-Length: 1e12, closed"
        ));
        // The same, waiting for the answer: it is a refusal, never a relay.
        let answer = throw_tcp(&t, req.as_bytes());
        assert_eq!(
            status_of(&answer),
            Some(413),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        t.check_after(&format!(
            "TCP {method} {path} with Content-Length: 1e12, read"
        ));
    }
    // Straight at tend's own (tiny_http) socket, whose body reader would
    // allocate the announced length if it were ever dropped unread. Up to
    // 64 MiB tend drains the body off its worker pool; for larger ones see
    // `unix_socket_absurd_content_length_leaks_nothing` below.
    for len in ["2000000", "60000000"] {
        unix_huge_content_length(&mut t, len);
    }
}

/// Announce a `len`-byte body on tend's own socket and hang up, then again
/// reading the answer, which must be 413; the checks follow each.
fn unix_huge_content_length(t: &mut Target, len: &str) {
    let req =
        format!("DELETE /programs HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n[[[");
    {
        let mut s = t.unix();
        let _ = s.write_all(req.as_bytes());
    }
    t.check_after(&format!("UNIX Content-Length: {len}, closed"));
    let mut s = t.unix();
    let _ = s.write_all(req.as_bytes());
    let answer = read_reply(&mut s);
    assert_eq!(answer.map(|a| a.0), Some(413), "UNIX Content-Length: {len}");
    drop(s);
    t.check_after(&format!("UNIX Content-Length: {len}, read"));
}

/// Known bug, left for the API owner (see the fault-tests report): tiny_http
/// 0.12 aborts the process if a request whose announced body is unread is
/// dropped (it allocates the remaining length), so `api/http.rs` answers
/// such requests through `upgrade` and `mem::forget`s the connection. That
/// leaks two fds and a tiny_http pool thread per request, blocked forever;
/// and tiny_http's pool can queue the next connection behind a thread that
/// never comes back, so a legitimate client may then hang (seen as a 30 s
/// timeout in `check_after`). Fixing it needs tend's own bounded reader on
/// the UNIX socket instead of tiny_http's, which is beyond a minimal change.
#[test]
#[ignore = "known bug: each absurd Content-Length on the UNIX socket leaks a thread"]
fn unix_socket_absurd_content_length_leaks_nothing() {
    let mut t = Target::start("hostile-cl-unix");
    let threads = |t: &Target| {
        std::fs::read_to_string(format!("/proc/{}/status", t.d.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = threads(&t);
    for _ in 0..4 {
        for len in ["1000000000000", "18446744073709551615"] {
            unix_huge_content_length(&mut t, len);
        }
    }
    // tiny_http's pool retires idle threads after 5 s.
    let settled = wait_until(PATIENCE, || threads(&t) <= before + 2);
    assert!(
        settled,
        "tend went from {before} to {} threads",
        threads(&t)
    );
}

#[test]
fn sixty_four_mib_header_line() {
    let mut t = Target::start("hostile-longhead");
    const TOTAL: usize = 64 << 20;
    let mut s = t.tcp().unwrap();
    let head = format!("GET /version HTTP/1.1\r\nHost: {}\r\nX-Long: ", t.host());
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < TOTAL {
        match s.write(&chunk) {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    drop(s);
    eprintln!("sent {sent} bytes of the header line before the gateway hung up");
    assert!(
        sent < TOTAL,
        "the gateway swallowed a {TOTAL}-byte header line without hanging up"
    );
    t.check_after("64 MiB header line over TCP");
}

#[test]
fn idle_connections_and_slowloris() {
    let mut t = Target::start("hostile-idle");
    let request_start = format!("GET /version HTTP/1.1\r\nHost: {}\r\nX-Slow: ", t.host());
    let mut slow = Vec::new();
    for _ in 0..50 {
        if let Ok(mut s) = t.tcp() {
            if s.write_all(request_start.as_bytes()).is_ok() {
                s.set_nonblocking(true).unwrap();
                slow.push(s);
            }
        }
    }
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        match t.tcp() {
            Ok(s) => idle.push(s),
            Err(_) => refused += 1,
        }
    }
    eprintln!(
        "holding {} idle and {} slowloris connections ({refused} connects failed)",
        idle.len(),
        slow.len()
    );
    // Trickle one header byte every 100 ms for 4 s; tend itself must keep
    // answering on its UNIX socket meanwhile.
    for round in 0..40 {
        for s in &mut slow {
            let _ = s.write(b"x");
        }
        if round % 10 == 5 {
            let r = t.d.get("/version");
            assert_eq!(r.status, 200, "tend stopped answering under the flood");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(slow);
    drop(idle);
    t.check_after("1000 idle connections + 50 slowloris");
}

#[test]
fn garbage_bytes() {
    let mut t = Target::start("hostile-garbage");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame, then a HEADERS frame of noise.
    h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    h2.extend_from_slice(&[0, 0, 16, 1, 5, 0, 0, 0, 1]);
    h2.extend_from_slice(&rng.bytes(16));
    let many_headers: String = (0..10_000).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random binary", rng.bytes(256 * 1024)),
        ("HTTP/2 preface", h2),
        ("lone CRLFs", b"\r\n".repeat(100_000)),
        ("lone LFs then a request", {
            let mut v = b"\n".repeat(50_000);
            v.extend_from_slice(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n");
            v
        }),
        ("NUL bytes", vec![0u8; 100_000]),
        ("request line without spaces", b"GET/versionHTTP/1.1\r\n\r\n".to_vec()),
        ("bogus version", b"GET /version HTTP/9.9\r\nHost: x\r\n\r\n".to_vec()),
        ("header without colon", b"GET /version HTTP/1.1\r\nnonsense\r\n\r\n".to_vec()),
        (
            "10,000 headers",
            format!("GET /version HTTP/1.1\r\n{many_headers}\r\n").into_bytes(),
        ),
        (
            "bad chunked body",
            b"PUT /programs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\xff\r\n"
                .to_vec(),
        ),
        (
            "conflicting framing",
            b"PUT /programs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 70\r\nTransfer-Encoding: chunked\r\n\r\nabc"
                .to_vec(),
        ),
        ("negative length", b"PUT /programs HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec()),
    ];
    for (name, bytes) in &cases {
        // The gateway checks Host, so patch it in where a request names one.
        let bytes = with_host(bytes, &t.host());
        let answer = throw_tcp(&t, &bytes);
        eprintln!("TCP {name}: answered {:?}", status_of(&answer));
        t.check_after(&format!("TCP garbage: {name}"));
    }
    for (name, bytes) in &cases {
        let answer = throw_unix(&t, bytes);
        eprintln!("UNIX {name}: answered {:?}", status_of(&answer));
        t.check_after(&format!("UNIX garbage: {name}"));
    }
}

#[test]
fn invalid_utf8_and_deeply_nested_json() {
    let mut t = Target::start("hostile-utf8");
    let nested_arrays = "[".repeat(100_000);
    let nested_nots = format!(
        "{}true{}",
        "{\"op\":\"not\",\"arg\":".repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(
        nested_nots.len() < 1 << 20,
        "must stay under the body limit"
    );
    let cases: Vec<Hostile> = vec![
        (
            "path",
            "GET",
            b"/programs/\xff\xfe\xc0\xaf".to_vec(),
            vec![],
            vec![],
            false,
        ),
        (
            "path with %FF",
            "DELETE",
            b"/programs/%ff%fe".to_vec(),
            vec![],
            vec![],
            false,
        ),
        (
            "header",
            "GET",
            b"/programs".to_vec(),
            b"X-Bad: \xff\xfe\xc0\xaf\r\n".to_vec(),
            vec![],
            false,
        ),
        (
            "content type",
            "DELETE",
            b"/programs".to_vec(),
            b"Content-Type: \xff\r\n".to_vec(),
            b"null".to_vec(),
            false,
        ),
        (
            "body",
            "DELETE",
            b"/programs".to_vec(),
            vec![],
            b"\xff\xfe{\"op\":\"\xc0\"}".to_vec(),
            true,
        ),
        (
            "body in a string",
            "PUT",
            b"/programs".to_vec(),
            vec![],
            b"{\"op\":\"component\",\"arg\":\"\xff\"}".to_vec(),
            true,
        ),
        (
            "100,000 [",
            "GET",
            b"/programs".to_vec(),
            vec![],
            nested_arrays.clone().into_bytes(),
            true,
        ),
        (
            "100,000 [ on DELETE",
            "DELETE",
            b"/programs".to_vec(),
            vec![],
            nested_arrays.into_bytes(),
            true,
        ),
        (
            "50,000 nested not",
            "DELETE",
            b"/programs".to_vec(),
            vec![],
            nested_nots.into_bytes(),
            true,
        ),
    ];
    for (name, method, path, extra, body, refused) in &cases {
        for over in ["TCP", "UNIX"] {
            let host = if over == "TCP" {
                t.host()
            } else {
                "localhost".to_string()
            };
            let mut req = format!("{method} ").into_bytes();
            req.extend_from_slice(path);
            req.extend_from_slice(
                format!(
                    " HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            req.extend_from_slice(extra);
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(body);
            let answer = if over == "TCP" {
                throw_tcp(&t, &req)
            } else {
                throw_unix(&t, &req)
            };
            let status = status_of(&answer);
            eprintln!("{over} invalid {name}: answered {status:?}");
            if *refused {
                assert_eq!(
                    status,
                    Some(400),
                    "{over} {name}: {:?}",
                    String::from_utf8_lossy(&answer[..answer.len().min(300)])
                );
            }
            t.check_after(&format!("{over} invalid {name}"));
        }
    }
    // A selector nested in the query string, on tend's own socket (the
    // gateway refuses such a long head before it reaches tend).
    let query = "%5B".repeat(100_000);
    let req =
        format!("GET /programs?{query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let answer = throw_unix(&t, req.as_bytes());
    assert_eq!(status_of(&answer), Some(400), "nested query selector");
    t.check_after("UNIX 100,000 [ in the query string");
    let answer = throw_tcp(&t, req.replace("localhost", &t.host()).as_bytes());
    assert_eq!(
        status_of(&answer),
        Some(431),
        "over-long head through the gateway"
    );
    t.check_after("TCP 100,000 [ in the query string");
}

#[test]
fn ten_thousand_requests() {
    let mut t = Target::start("hostile-10k");
    const TOTAL: usize = 10_000;
    const CLIENTS: usize = 4;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (addr, host) = (t.addr(), t.host());
            std::thread::spawn(move || keep_alive_client(addr, &host, TOTAL / CLIENTS, k, deadline))
        })
        .collect();
    let mut answered = 0;
    let mut connections = 0;
    for w in workers {
        let (n, c) = w.join().unwrap();
        answered += n;
        connections += c;
    }
    eprintln!(
        "{answered} requests on {connections} connections in {:?}",
        started.elapsed()
    );
    assert_eq!(answered, TOTAL, "not every request was answered in time");
    t.check_after("10,000 requests");
}

/// Send `n` requests on keep-alive connections, reconnecting whenever the
/// gateway closes one; returns (answered with 200, connections used).
fn keep_alive_client(
    addr: SocketAddr,
    host: &str,
    n: usize,
    k: usize,
    deadline: Instant,
) -> (usize, usize) {
    let mut done = 0;
    let mut connections = 0;
    while done < n && Instant::now() < deadline {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        connections += 1;
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        while done < n && Instant::now() < deadline {
            let path = if (done + k) % 10 == 0 {
                "/programs"
            } else {
                "/version"
            };
            let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            if s.write_all(req.as_bytes()).is_err() {
                break;
            }
            match read_keep_alive(&mut reader) {
                Some((200, close)) => {
                    done += 1;
                    if close {
                        break;
                    }
                }
                Some((status, _)) => panic!("GET {path} answered {status}"),
                None => break,
            }
        }
    }
    (done, connections)
}

/// Read one answer from a keep-alive connection: (status, server closes).
fn read_keep_alive(r: &mut impl std::io::BufRead) -> Option<(u16, bool)> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    let mut close = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        }
        if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((status, close))
}
