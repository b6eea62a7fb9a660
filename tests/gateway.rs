//! `tend gateway` against a real upstream: a tiny_http echo server on a UNIX
//! socket started by each test, and the real binary in front of it on TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

/// A private directory for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tend-gw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An upstream that answers every request with a JSON echo of what it saw:
/// method, url, headers (lowercase names) and body.
fn start_echo(dir: &Path) -> (PathBuf, Arc<tiny_http::Server>) {
    let sock = dir.join("tend.sock");
    let server = Arc::new(tiny_http::Server::http_unix(&sock).unwrap());
    // The gateway drops to `nobody` when the tests run as root.
    make_world_writable(&sock);
    let s = Arc::clone(&server);
    std::thread::spawn(move || {
        for mut rq in s.incoming_requests() {
            let mut body = String::new();
            let _ = rq.as_reader().read_to_string(&mut body);
            let mut headers = serde_json::Map::new();
            for h in rq.headers() {
                headers.insert(
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    Value::String(h.value.as_str().to_string()),
                );
            }
            let v = serde_json::json!({
                "method": rq.method().as_str(),
                "url": rq.url(),
                "headers": headers,
                "body": body,
            });
            let ct = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
            let leak = tiny_http::Header::from_bytes("X-Internal", "secret").unwrap();
            let resp = tiny_http::Response::from_string(v.to_string())
                .with_header(ct)
                .with_header(leak)
                .with_status_code(if rq.url() == "/teapot" { 418 } else { 200 });
            let _ = rq.respond(resp);
        }
    });
    (sock, server)
}

fn make_world_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    if let Some(parent) = p.parent() {
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies the gateway's log to ours and reports once it says it listens on
/// `port`.
fn listening_line(stderr: ChildStderr, port: u16) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let wanted = format!("gateway listening on 127.0.0.1:{port}");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains(&wanted) {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// The gateway process; killed when dropped.
struct Gateway {
    child: Child,
    port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(upstream: &Path, extra: &[&str]) -> Gateway {
        // The free port may be taken by a parallel test before the gateway
        // binds it; the gateway then exits, and we try another port.
        for _ in 0..5 {
            if let Some(gw) = Gateway::try_start(upstream, extra) {
                return gw;
            }
        }
        panic!("gateway exited before listening, five times");
    }

    /// Starts a gateway on a free port and waits for it to say it listens
    /// there. A port that merely answers could be a parallel test's gateway
    /// that took it first.
    fn try_start(upstream: &Path, extra: &[&str]) -> Option<Gateway> {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tend"))
            .arg("gateway")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--upstream")
            .arg(upstream)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let listening = listening_line(child.stderr.take().unwrap(), port);
        let gw = Gateway { child, port };
        // The sender is dropped without a word when the gateway exits.
        listening
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .map(|()| gw)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Send raw bytes, read until the gateway closes; (status, head, body).
    fn raw(&self, bytes: &[u8]) -> (u16, String, String) {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse(&String::from_utf8_lossy(&out))
    }

    /// A request with `Connection: close` and the given extra header lines.
    fn send(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        );
        self.raw(req.as_bytes())
    }

    /// Like `send` with a correct Host header.
    fn ok_send(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> (u16, String, String) {
        let h = format!("Host: {}\r\n{headers}", self.host());
        self.send(method, path, &h, body)
    }
}

fn parse(text: &str) -> (u16, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn relays_method_path_body_and_rights() {
    let dir = test_dir("relay");
    let (sock, _srv) = start_echo(&dir);
    let gw = Gateway::start(&sock, &[]);
    let (status, head, body) = gw.ok_send(
        "PUT",
        "/programs?sel=%7B%7D",
        "Content-Type: application/json\r\nAuthorization: Bearer x\r\nX-Tend-Access: admin\r\nX-Forwarded-For: 6.6.6.6\r\n",
        "{\"op\":\"component\",\"arg\":\"web\"}",
    );
    assert_eq!(status, 200, "{head}\n{body}");
    let v = json(&body);
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["url"], "/programs?sel=%7B%7D");
    assert_eq!(v["body"], "{\"op\":\"component\",\"arg\":\"web\"}");
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(v["headers"]["x-tend-access"], "admin");
    assert_eq!(v["headers"]["content-type"], "application/json");
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    assert!(
        !head.contains("X-Internal"),
        "internal headers must not leak: {head}"
    );

    // Status codes pass through; HEAD gets headers only.
    assert_eq!(gw.ok_send("GET", "/teapot", "", "").0, 418);
    let (status, head, body) = gw.ok_send("HEAD", "/x", "", "");
    assert_eq!(status, 200);
    assert!(
        body.is_empty() && head.contains("Content-Length: "),
        "{head}"
    );
}

#[test]
fn keeps_connections_alive() {
    let dir = test_dir("keepalive");
    let (sock, _srv) = start_echo(&dir);
    let gw = Gateway::start(&sock, &[]);
    let ep = tend::client::Endpoint::parse(&format!("http://{}", gw.host())).unwrap();
    // The library client, as tendctl uses it.
    let r =
        tend::client::request(&ep, "POST", "/a?b=c", &[], b"xyz", Duration::from_secs(30)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["body"], "xyz");

    let mut s = gw.connect();
    let one = format!("GET /first HTTP/1.1\r\nHost: {}\r\n\r\n", gw.host());
    let two = format!(
        "GET /second HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gw.host()
    );
    s.write_all(one.as_bytes()).unwrap();
    s.write_all(two.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
    assert!(out.contains("/first") && out.contains("/second"), "{out}");
}

/// Requests arrive in pieces of any size: several in one segment
/// (pipelined), or a byte at a time. The gateway's one thread must find
/// each whole request, answer them in order, and serve other clients while
/// one dribbles.
#[test]
fn serves_pipelined_and_dribbled_requests_without_stalling_others() {
    let dir = test_dir("pieces");
    let (sock, _srv) = start_echo(&dir);
    let gw = Gateway::start(&sock, &[]);
    let host = gw.host();
    let url_of = |answer: &str| json(parse(answer).2.as_str())["url"].clone();

    // Three requests (one with a chunked body) in one write.
    let mut s = gw.connect();
    let batch = format!(
        "GET /one HTTP/1.1\r\nHost: {host}\r\n\r\n\
         POST /two HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
         GET /three HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    s.write_all(batch.as_bytes()).unwrap();
    assert_eq!(url_of(&read_one_answer(&mut s)), "/one");
    let two = read_one_answer(&mut s);
    assert_eq!(url_of(&two), "/two");
    assert_eq!(json(parse(&two).2.as_str())["body"], "abcde");
    assert_eq!(url_of(&read_one_answer(&mut s)), "/three");

    // A request sent a byte at a time, body included, on a kept connection;
    // meanwhile another client is served at once.
    let slow = format!("PUT /slow HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello");
    let (first, rest) = slow.as_bytes().split_at(slow.len() / 2);
    for b in first {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut other = gw.connect();
    other
        .write_all(format!("GET /other HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(url_of(&read_one_answer(&mut other)), "/other");
    for b in rest {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let answer = read_one_answer(&mut s);
    assert_eq!(url_of(&answer), "/slow");
    assert_eq!(json(parse(&answer).2.as_str())["body"], "hello");
}

#[test]
fn refuses_foreign_host_and_origin() {
    let dir = test_dir("host");
    let (sock, _srv) = start_echo(&dir);
    let gw = Gateway::start(&sock, &["--name", "tend.example"]);
    let port = gw.port;
    let (status, _, body) = gw.send("GET", "/", &format!("Host: evil.com:{port}\r\n"), "");
    assert_eq!(status, 403);
    let v = json(&body);
    assert_eq!(v["status"], "ER");
    assert!(v["message"].as_str().unwrap().contains("evil.com"), "{v}");
    assert_eq!(gw.send("GET", "/", "", "").0, 400, "missing Host");
    let two_hosts = format!("Host: {}\r\nHost: evil.com:{port}\r\n", gw.host());
    assert_eq!(gw.send("GET", "/", &two_hosts, "").0, 400);
    assert_eq!(
        gw.send("GET", "/", &format!("Host: tend.example:{port}\r\n"), "")
            .0,
        200
    );
    assert_eq!(
        gw.send("GET", "/", &format!("Host: localhost:{port}\r\n"), "")
            .0,
        200
    );

    let evil = "Origin: http://evil.com\r\n";
    assert_eq!(gw.ok_send("GET", "/programs", evil, "").0, 200);
    let (status, _, body) = gw.ok_send("DELETE", "/programs", evil, "true");
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        gw.ok_send("GET", "/api/processes.killWorkers", evil, "").0,
        403
    );
    let same = format!("Origin: http://{}\r\n", gw.host());
    assert_eq!(gw.ok_send("DELETE", "/programs", &same, "true").0, 200);
}

#[test]
fn checks_credentials_and_read_only_rights() {
    let dir = test_dir("auth");
    let (sock, _srv) = start_echo(&dir);
    let token = dir.join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let users = dir.join("users");
    std::fs::write(
        &users,
        format!(
            "admin:{}\nviewer:{}:ro\n",
            tend::gateway::sha256_hex(b"adminpw"),
            tend::gateway::sha256_hex(b"look")
        ),
    )
    .unwrap();
    let gw = Gateway::start(
        &sock,
        &[
            "--token-file",
            token.to_str().unwrap(),
            "--basic-auth-file",
            users.to_str().unwrap(),
        ],
    );
    let (status, head, body) = gw.ok_send("GET", "/programs", "", "");
    assert_eq!(status, 401);
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");
    assert_eq!(json(&body)["status"], "ER");
    assert_eq!(
        gw.ok_send("GET", "/", "Authorization: Bearer wrong\r\n", "")
            .0,
        401
    );

    let (status, _, body) = gw.ok_send(
        "PUT",
        "/programs",
        "Authorization: Bearer s3cret-token\r\n",
        "true",
    );
    assert_eq!(status, 200);
    assert_eq!(json(&body)["headers"]["x-tend-access"], "admin");

    // admin:adminpw
    let admin = "Authorization: Basic YWRtaW46YWRtaW5wdw==\r\n";
    assert_eq!(gw.ok_send("POST", "/programs", admin, "true").0, 200);
    // viewer:look is read-only.
    let viewer = "Authorization: Basic dmlld2VyOmxvb2s=\r\n";
    let (status, _, body) = gw.ok_send("GET", "/programs", viewer, "");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["headers"]["x-tend-access"], "read");
    assert_eq!(gw.ok_send("PUT", "/programs", viewer, "true").0, 403);
    assert_eq!(gw.ok_send("GET", "/api/config.reload", viewer, "").0, 403);
    assert_eq!(
        gw.ok_send("GET", "/updateConfig?log_level=debug", viewer, "")
            .0,
        403
    );
    // viewer with admin's password
    assert_eq!(
        gw.ok_send(
            "GET",
            "/",
            "Authorization: Basic dmlld2VyOmFkbWlucHc=\r\n",
            ""
        )
        .0,
        401
    );
}

#[test]
fn applies_allow_and_deny_lists() {
    let dir = test_dir("allow");
    let (sock, _srv) = start_echo(&dir);
    let denied = Gateway::start(&sock, &["--deny", "127.0.0.0/8"]);
    let (status, _, body) = denied.ok_send("GET", "/", "", "");
    assert_eq!(status, 403, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    let not_allowed = Gateway::start(&sock, &["--allow", "10.0.0.0/8,192.168.0.0/16"]);
    assert_eq!(not_allowed.ok_send("GET", "/", "", "").0, 403);
    let allowed = Gateway::start(&sock, &["--allow", "10.0.0.0/8,127.0.0.1"]);
    assert_eq!(allowed.ok_send("GET", "/", "", "").0, 200);
}

#[test]
fn refuses_oversize_bodies_and_survives() {
    let dir = test_dir("size");
    let (sock, _srv) = start_echo(&dir);
    let mut gw = Gateway::start(&sock, &["--max-body", "1000"]);
    // A huge announced length is refused before a byte of body is read.
    let huge = format!(
        "POST /programs HTTP/1.1\r\nHost: {}\r\nContent-Length: 999999999999999999\r\n\r\nabc",
        gw.host()
    );
    let (status, _, body) = gw.raw(huge.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert_eq!(json(&body)["status"], "ER");
    let over = "x".repeat(1001);
    assert_eq!(gw.ok_send("POST", "/p", "", &over).0, 413);
    let at_limit = "x".repeat(1000);
    let (status, _, body) = gw.ok_send("POST", "/p", "", &at_limit);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["body"].as_str().unwrap().len(), 1000);

    // Chunked bodies are counted as they arrive.
    let mut chunked = format!(
        "POST /p HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        gw.host()
    );
    for _ in 0..3 {
        chunked.push_str(&format!("190\r\n{}\r\n", "y".repeat(400)));
    }
    chunked.push_str("0\r\n\r\n");
    assert_eq!(gw.raw(chunked.as_bytes()).0, 413);
    let small = format!(
        "POST /p HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        gw.host()
    );
    let (status, _, body) = gw.raw(small.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(json(&body)["body"], "hello");

    // Smuggling shapes are refused.
    let conflicting = format!(
        "POST /p HTTP/1.1\r\nHost: {}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        gw.host()
    );
    assert_eq!(gw.raw(conflicting.as_bytes()).0, 400);
    assert!(gw.alive(), "the gateway must survive");
    assert_eq!(gw.ok_send("GET", "/still", "", "").0, 200);
}

#[test]
fn survives_garbage_and_huge_heads() {
    let dir = test_dir("garbage");
    let (sock, _srv) = start_echo(&dir);
    let mut gw = Gateway::start(&sock, &[]);
    let mut junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    junk.extend_from_slice(b"\r\n\r\n");
    let (status, _, _) = gw.raw(&junk);
    assert!(status == 400 || status == 0, "got {status}");
    assert_eq!(gw.raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").0, 505);
    assert_eq!(
        gw.raw(b"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n").0,
        400
    );
    let mut big = format!("GET / HTTP/1.1\r\nHost: {}\r\n", gw.host());
    for i in 0..2000 {
        big.push_str(&format!("X-Filler-{i}: {}\r\n", "z".repeat(50)));
    }
    big.push_str("\r\n");
    assert_eq!(gw.raw(big.as_bytes()).0, 431);
    // A client that connects and leaves at once.
    drop(gw.connect());
    assert!(gw.alive());
    assert_eq!(gw.ok_send("GET", "/after", "", "").0, 200);
}

#[test]
fn times_out_slow_clients_and_caps_connections() {
    let dir = test_dir("slow");
    let (sock, _srv) = start_echo(&dir);
    let mut gw = Gateway::start(&sock, &["--max-conns", "2"]);
    // Slowloris connections that never finish their head. The third
    // connection is over the cap: 503 at once. Poll, opening more slow
    // connections, because the gateway frees a slot only once it has seen a
    // connection end (the readiness probe's, for one).
    let slowloris = || {
        let mut s = gw.connect();
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127").unwrap();
        s
    };
    let mut slow: Vec<TcpStream> = vec![slowloris(), slowloris()];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = gw.ok_send("GET", "/", "", "");
        if status == 503 {
            assert_eq!(json(&body)["status"], "ER");
            break;
        }
        assert!(Instant::now() < deadline, "never saw 503, last {status}");
        slow.push(slowloris());
    }
    // The slow ones are cut off by the head timeout (10 s in the gateway).
    for s in &mut slow {
        let started = Instant::now();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(
            r.is_ok(),
            "the gateway should close, not leave us to time out: {r:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(29));
    }
    // Slots are free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.ok_send("GET", "/", "", "").0 != 200 {
        assert!(Instant::now() < deadline, "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gw.alive());
}

#[test]
fn answers_502_when_tend_is_down() {
    let dir = test_dir("down");
    let gw = Gateway::start(&dir.join("absent.sock"), &[]);
    let (status, _, body) = gw.ok_send("GET", "/programs", "", "");
    assert_eq!(status, 502);
    let v = json(&body);
    assert_eq!(v["status"], "ER");
    assert!(
        v["message"].as_str().unwrap().contains("absent.sock"),
        "{v}"
    );
}

#[test]
fn drops_root_privileges() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let dir = test_dir("privs");
    let (sock, _srv) = start_echo(&dir);
    let gw = Gateway::start(&sock, &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert!(uids.iter().all(|u| *u != "0"), "still root: {uid_line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id())).unwrap();
    let as_line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    assert!(as_line.contains("268435456"), "{as_line}");
    // And it still relays through the world-writable test socket.
    assert_eq!(gw.ok_send("GET", "/", "", "").0, 200);
}

/// The real daemon behind the real gateway: many requests on one kept
/// connection all answered, and the daemon's private gateway socket
/// refusing whoever lacks the per-boot secret, before reading a body.
#[test]
fn real_daemon_serves_its_gateway_socket_to_the_gateway_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::TempDir::new("gw-real");
    // The gateway runs as `nobody` and must reach its socket in here.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.write(
        "tend.conf",
        "component a { command \"/bin/sleep 100000\"; }\n",
    );
    let port = free_port();
    let inet = format!("inet://127.0.0.1:{port}");
    let d = common::Daemon::start_with(dir, &["-c", conf.to_str().unwrap(), "--control", &inet]);
    let host = format!("127.0.0.1:{port}");
    let get = |s: &mut TcpStream| -> String {
        let req = format!("GET /programs HTTP/1.1\r\nHost: {host}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        read_one_answer(s)
    };
    assert!(
        common::wait_until(common::PATIENCE, || TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                get(&mut s).starts_with("HTTP/1.1 200")
            })),
        "the gateway never answered; log:\n{}",
        d.log()
    );
    // Well past the old 100 requests per connection, on one connection.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    for i in 0..150 {
        let answer = get(&mut s);
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
        assert!(answer.contains("\"tag\":\"a\""), "request {i}: {answer}");
        assert!(
            answer.contains("Connection: keep-alive"),
            "request {i}: {answer}"
        );
    }
    // Straight to the private socket, without the secret: refused, closed.
    let private = d.dir.path("tend-gateway-1.sock");
    let mut u = std::os::unix::net::UnixStream::connect(&private).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    u.write_all(
        b"PUT /programs HTTP/1.1\r\nX-Tend-Access: admin\r\nContent-Length: 100000\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    u.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    // And the component was not touched.
    let again = get(&mut s);
    assert!(again.contains("\"restarts\":0"), "{again}");
}

/// Read one Content-Length framed answer (head and body) from a kept connection.
fn read_one_answer(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}
