//! `tendctl` (the real binary, as `tend ctl` and through a `tendctl`
//! symlink) against a small pies-like API served by tiny_http on a UNIX
//! socket inside the test. The server records what it was asked, so the
//! tests check the exact requests tendctl sends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tend-ctl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: String,
    body: String,
    authorization: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Answers like tend would, for the paths tendctl uses.
fn answer(method: &str, url: &str, body: &str) -> (u16, String, Vec<(&'static str, &'static str)>) {
    let programs = json!([
        {"type": "component", "tag": "web", "mode": "respawn", "status": "running",
         "active": true, "PID": 4321, "command": "/usr/bin/httpd -f"},
        {"type": "component", "tag": "cron", "mode": "respawn", "status": "sleeping",
         "active": true, "wakeup": 75, "argv": ["crond", "-n"]}
    ]);
    let ok = json!({"status": "OK"}).to_string();
    match (method, url) {
        ("GET", u) if u.starts_with("/programs") => (200, programs.to_string(), vec![]),
        (_, "/programs") if body.contains("ghost") => (
            404,
            json!({"status": "ER", "message": "no component matches"}).to_string(),
            vec![],
        ),
        (_, "/programs") => (200, ok, vec![]),
        ("GET", "/instance") => (
            200,
            json!({"PID": 1, "argv": ["tend", "-c", "/etc/tend.conf"], "binary": "/usr/bin/tend",
                   "instance": "tend", "package": "tend", "version": "0.1.0"})
            .to_string(),
            vec![],
        ),
        ("GET", "/alive/web") => (200, "{}".into(), vec![]),
        ("GET", "/alive/cron") => (503, "{}".into(), vec![("Retry-After", "75")]),
        ("GET", u) if u.starts_with("/alive/") => (404, "{}".into(), vec![]),
        ("GET", "/metrics?format=prometheus") => (
            200,
            "tend_components 2\n".into(),
            vec![("Content-Type", "text/plain")],
        ),
        ("POST", "/api/config.reload") => (
            500,
            json!({"ok": false, "message": "/etc/tend.conf:3:1: unknown statement"}).to_string(),
            vec![],
        ),
        (_, u) if u.starts_with("/api/") => (200, json!({"ok": true}).to_string(), vec![]),
        ("PUT", "/runlevel") => (200, ok, vec![]),
        ("GET", "/runlevel") => (
            200,
            json!({"runlevel": "3", "prevlevel": "N"}).to_string(),
            vec![],
        ),
        ("GET", "/version") => (200, "\"0.1.0\"".into(), vec![]),
        _ => (
            404,
            json!({"status": "ER", "message": format!("no such path {url}")}).to_string(),
            vec![],
        ),
    }
}

fn start_server(dir: &Path) -> (PathBuf, Log, Arc<tiny_http::Server>) {
    let sock = dir.join("tend.sock");
    let server = Arc::new(tiny_http::Server::http_unix(&sock).unwrap());
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let (s, l) = (Arc::clone(&server), Arc::clone(&log));
    std::thread::spawn(move || {
        for mut rq in s.incoming_requests() {
            let mut body = String::new();
            let _ = rq.as_reader().read_to_string(&mut body);
            let authorization = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.as_str().to_string());
            let method = rq.method().as_str().to_string();
            let url = rq.url().to_string();
            let (status, text, headers) = answer(&method, &url, &body);
            l.lock().unwrap().push(Seen {
                method,
                url,
                body,
                authorization,
            });
            let mut resp = tiny_http::Response::from_string(text).with_status_code(status);
            for (k, v) in headers {
                resp.add_header(tiny_http::Header::from_bytes(k, v).unwrap());
            }
            let _ = rq.respond(resp);
        }
    });
    (sock, log, server)
}

fn tendctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tend"))
        .arg("ctl")
        .arg("--url")
        .arg(format!("unix://{}", sock.display()))
        .args(args)
        .env_remove("TEND_URL")
        .env_remove("TEND_TOKEN")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last(log: &Log) -> Seen {
    log.lock()
        .unwrap()
        .last()
        .cloned()
        .expect("no request reached the server")
}

/// Percent-decoding, to read back the selector from the query string.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn list_prints_a_table_and_sends_the_selector() {
    let dir = test_dir("list");
    let (sock, log, _srv) = start_server(&dir);
    let out = tendctl(&sock, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last(&log).url, "/programs");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TAG", "FL", "PID", "WAKEUP", "COMMAND"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["web", "CR", "4321", "-", "/usr/bin/httpd", "-f"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["cron", "Cs", "N/A", "in", "1m15s", "crond", "-n"]
    );

    let out = tendctl(
        &sock,
        &[
            "list", "status", "running", "and", "not", "(web", "or", "db)",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = last(&log);
    assert_eq!(seen.method, "GET");
    let (path, query) = seen
        .url
        .split_once('?')
        .expect("selector in the query string");
    assert_eq!(path, "/programs");
    let selector: Value = serde_json::from_str(&url_decode(query)).unwrap();
    assert_eq!(
        selector,
        json!({"op": "and", "arg": [
            {"op": "status", "arg": "running"},
            {"op": "not", "arg": {"op": "or", "arg": [
                {"op": "component", "arg": "web"}, {"op": "component", "arg": "db"}]}}
        ]})
    );

    let out = tendctl(&sock, &["--json", "list", "web"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["tag"], "web");
}

#[test]
fn start_stop_restart_send_the_selector_as_body() {
    let dir = test_dir("actions");
    let (sock, log, _srv) = start_server(&dir);
    for (cmd, method) in [("start", "PUT"), ("stop", "DELETE"), ("restart", "POST")] {
        let out = tendctl(&sock, &[cmd, "web", "db"]);
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
        let seen = last(&log);
        assert_eq!(
            (seen.method.as_str(), seen.url.as_str()),
            (method, "/programs")
        );
        let body: Value = serde_json::from_str(&seen.body).unwrap();
        assert_eq!(
            body,
            json!({"op": "or", "arg": [{"op": "component", "arg": "web"}, {"op": "component", "arg": "db"}]})
        );
    }
    let out = tendctl(&sock, &["restart", "all"]);
    assert!(out.status.success());
    assert_eq!(last(&log).body, "true");

    // The server's message is shown, and the exit status says it failed.
    let out = tendctl(&sock, &["stop", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no component matches"),
        "{}",
        stderr(&out)
    );

    // A bad selector never reaches the server.
    let before = log.lock().unwrap().len();
    let out = tendctl(&sock, &["stop", "status", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown status"), "{}", stderr(&out));
    let out = tendctl(&sock, &["stop"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(log.lock().unwrap().len(), before);
}

#[test]
fn instance_reload_runlevel_and_raw_commands() {
    let dir = test_dir("misc");
    let (sock, log, _srv) = start_server(&dir);
    let out = tendctl(&sock, &["id"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("argv: tend -c /etc/tend.conf"),
        "{}",
        stdout(&out)
    );
    let out = tendctl(&sock, &["id", "pid", "version"]);
    assert_eq!(stdout(&out), "PID: 1\nversion: 0.1.0\n");
    let out = tendctl(&sock, &["id", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));

    let out = tendctl(&sock, &["reload", "--graceful"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = last(&log);
    assert_eq!(
        (seen.method.as_str(), seen.url.as_str()),
        ("POST", "/api/config.gracefulReload")
    );
    let out = tendctl(&sock, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/etc/tend.conf:3:1: unknown statement"),
        "{}",
        stderr(&out)
    );

    let out = tendctl(&sock, &["shutdown"]);
    assert!(out.status.success());
    assert_eq!(last(&log).url, "/api/processes.killWorkers");

    let out = tendctl(&sock, &["telinit", "s"]);
    assert!(out.status.success());
    let seen = last(&log);
    assert_eq!(
        (seen.method.as_str(), seen.url.as_str()),
        ("PUT", "/runlevel")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen.body).unwrap(),
        json!({"runlevel": "S"})
    );
    let out = tendctl(&sock, &["reboot"]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_str::<Value>(&last(&log).body).unwrap(),
        json!({"runlevel": "6"})
    );
    let out = tendctl(&sock, &["telinit"]);
    assert!(stdout(&out).contains("runlevel: 3"), "{}", stdout(&out));

    let out = tendctl(&sock, &["metrics"]);
    assert_eq!(stdout(&out), "tend_components 2\n");
    let out = tendctl(&sock, &["get", "/version"]);
    assert_eq!(stdout(&out), "\"0.1.0\"\n");
    let out = tendctl(&sock, &["get", "/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no such path"));
}

#[test]
fn alive_exit_status_fits_a_health_check() {
    let dir = test_dir("alive");
    let (sock, log, _srv) = start_server(&dir);
    assert_eq!(tendctl(&sock, &["alive", "web"]).status.code(), Some(0));
    assert_eq!(last(&log).url, "/alive/web");
    let out = tendctl(&sock, &["alive", "cron"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("sleeping, next try in 75s"),
        "{}",
        stderr(&out)
    );
    let out = tendctl(&sock, &["alive", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such component"));
}

#[test]
fn connection_errors_are_clear() {
    let dir = test_dir("noconn");
    let sock = dir.join("absent.sock");
    let out = tendctl(&sock, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot connect to unix://{}", sock.display()))
            && err.contains("No such file or directory")
            && err.contains("is tend running?"),
        "{err}"
    );
    // alive is a health check: no tend, not alive.
    assert_eq!(tendctl(&sock, &["alive", "web"]).status.code(), Some(1));

    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
        .args(["ctl", "--url", "ftp://x", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad URL"), "{}", stderr(&out));
}

#[test]
fn symlink_env_url_and_credentials() {
    let dir = test_dir("symlink");
    let (sock, log, _srv) = start_server(&dir);
    let link = dir.join("tendctl");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tend"), &link).unwrap();
    let out = Command::new(&link)
        .args(["--token", "t0k", "start", "web"])
        .env("TEND_URL", format!("unix://{}", sock.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last(&log).authorization.as_deref(), Some("Bearer t0k"));

    let out = Command::new(&link)
        .args(["--user", "admin:secret", "list"])
        .env("TEND_URL", format!("unix://{}", sock.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        last(&log).authorization.as_deref(),
        Some("Basic YWRtaW46c2VjcmV0")
    );

    let out = Command::new(&link).arg("--version").output().unwrap();
    assert!(stdout(&out).starts_with("tendctl (tend) "));
    let out = Command::new(&link).arg("--help").output().unwrap();
    assert!(out.status.success() && stdout(&out).contains("alive TAG"));
    let out = Command::new(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn talks_to_the_gateway_over_tcp() {
    let dir = test_dir("tcp");
    let (sock, log, _srv) = start_server(&dir);
    {
        use std::os::unix::fs::PermissionsExt;
        // The gateway runs as nobody when the tests run as root.
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let token = dir.join("token");
    std::fs::write(&token, "gw-token").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gw = Command::new(env!("CARGO_BIN_EXE_tend"))
        .args([
            "gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--token-file",
        ])
        .arg(&token)
        .arg("--upstream")
        .arg(&sock)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tend"))
            .args(["ctl", "--url", &url])
            .args(args)
            .env_remove("TEND_TOKEN")
            .output()
            .unwrap()
    };
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));
    let out = run(&["--token", "gw-token", "stop", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = last(&log);
    assert_eq!(
        (seen.method.as_str(), seen.url.as_str()),
        ("DELETE", "/programs")
    );
    let _ = gw.kill();
    let _ = gw.wait();
}
