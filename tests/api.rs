//! The control API over the real socket of the real daemon: pies `/programs`,
//! `/alive`, `/instance`, the Fluentd RPCs, the Pegasus introspection and
//! what malformed or hostile requests must not do to tend.

mod common;
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A daemon asked to stop with SIGTERM when the test ends, so its
/// components go with it (a SIGKILLed tend would leave them behind).
struct Tend(Daemon);

impl std::ops::Deref for Tend {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.0
    }
}

impl std::ops::DerefMut for Tend {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.0
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if let Ok(None) = self.0.child.try_wait() {
            self.0.signal(libc::SIGTERM);
            wait_until(PATIENCE, || !matches!(self.0.child.try_wait(), Ok(None)));
        }
    }
}

/// `tend --control unix://DIR/tend.sock -- sleep 1000` (no config file needed).
fn container_daemon(name: &str) -> Tend {
    let dir = TempDir::new(name);
    let sock = dir.path("tend.sock");
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let child = Command::new(tend_bin())
        .arg("--control")
        .arg(format!("unix://{}", sock.display()))
        .args(["--", "sleep", "1000"])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start tend");
    let d = Tend(Daemon { child, sock, dir });
    assert!(
        wait_until(PATIENCE, || http(&d.sock, "GET", "/version", "").is_ok()),
        "tend did not come up; log:\n{}",
        d.log()
    );
    d
}

fn call_with(d: &Tend, method: &str, path: &str, headers: &str) -> Reply {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n{headers}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut s, &mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Reply {
        status,
        headers: Vec::new(),
        body,
    }
}

#[test]
fn introspection_and_instance() {
    let d = container_daemon("api-introspect");
    let mode = std::fs::metadata(&d.sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket must be private");

    let index = d.get("/").json();
    for path in [
        "/programs",
        "/alive",
        "/metrics",
        "/api/config.reload",
        "/updateConfig",
    ] {
        assert!(index[path].is_string(), "{path} missing from {index}");
    }
    let v = d.get("/version").json();
    assert_eq!(v["name"], "tend");
    assert!(v["Version"].is_string());
    let t = d.get("/recentStartTime").json();
    let t = t["RecentStartTime"].as_str().unwrap().to_string();
    assert_eq!(t.len(), 19, "{t}");
    assert_eq!(&t[4..5], "-");
    assert_eq!(&t[10..11], " ");

    let i = d.get("/instance").json();
    assert_eq!(i["PID"], d.pid());
    assert_eq!(i["package"], "tend");
    assert!(i["argv"].as_array().unwrap().iter().any(|a| a == "sleep"));
    assert_eq!(d.get("/instance/PID").json(), json!({"PID": d.pid()}));

    let r = d.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "ER");
    let r = d.call("DELETE", "/metrics", "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET"));
}

#[test]
fn programs_alive_and_metrics_of_a_running_command() {
    let d = container_daemon("api-programs");
    assert!(
        wait_until(PATIENCE, || d.get("/programs").json()[0]["status"]
            == "running"),
        "{}",
        d.log()
    );
    let list = d.get("/programs").json();
    let desc = &list[0];
    let tag = desc["tag"].as_str().unwrap().to_string();
    let pid = desc["PID"].as_i64().unwrap();
    assert!(alive(pid));
    assert_eq!(desc["argv"], json!(["sleep", "1000"]));
    assert_eq!(d.get(&format!("/programs/{tag}")).json()[0]["PID"], pid);
    let q = "%7B%22op%22%3A%22status%22%2C%22arg%22%3A%22stopped%22%7D";
    assert_eq!(d.get(&format!("/programs?{q}")).json(), json!([]));
    let r = d.call("GET", "/programs", r#"{"op":"bogus"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "selector: unknown op `bogus`");

    assert_eq!(d.get(&format!("/alive/{tag}")).status, 200);
    assert_eq!(d.get("/alive/nope").status, 404);

    let text = d.get("/metrics?format=prometheus").body;
    assert!(
        text.lines()
            .any(|l| l == format!("tend_component_up{{tag=\"{tag}\"}} 1")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("tend_open_fds ")),
        "{text}"
    );
    let m = d.get("/metrics?types=server&metrics=threads").json();
    assert_eq!(m[0]["id"], "tend");
    assert!(m[0]["metrics"][0]["value"].as_i64().unwrap() >= 1);
}

#[test]
fn runtime_configs_update() {
    let d = container_daemon("api-configs");
    let r = d.get("/updateConfig?max_restarts=4");
    assert_eq!(r.json(), json!({"update_status": "ERR_OK"}));
    assert_eq!(d.get("/config?name=max_restarts").json()["value"], "4");
    let r = d.get("/updateConfig?foo=1");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["update_status"],
        "ERR_INVALID_PARAMETERS: unknown config `foo`"
    );
    assert_eq!(d.get("/configs").json().as_object().unwrap().len(), 5);
}

#[test]
fn read_only_and_foreign_origin_requests_change_nothing() {
    let d = container_daemon("api-access");
    let r = call_with(
        &d,
        "GET",
        "/api/processes.killWorkers",
        "X-Tend-Access: read\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call_with(
        &d,
        "PUT",
        "/instance/PID",
        "Origin: http://evil.example\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call_with(&d, "GET", "/programs", "X-Tend-Access: read\r\n");
    assert_eq!(r.status, 200);
    // tend is still there and unchanged.
    assert_eq!(d.get("/instance/PID").json()["PID"], d.pid());
}

#[test]
fn hostile_requests_do_not_hurt_tend() {
    let d = container_daemon("api-hostile");
    // An absurd announced body: refused unread (tiny_http would otherwise
    // allocate it when dropping the request, aborting PID 1).
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"PUT /programs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n")
        .unwrap();
    let mut status = String::new();
    BufReader::new(&s).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // Garbage and half requests.
    for junk in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET",
        b"GET / HTTP/9.9\r\n\r\n",
    ] {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        let _ = s.write_all(junk);
    }
    // Deeply nested selectors are bounded.
    let deep = format!(
        "{}true{}",
        r#"{"op":"not","arg":"#.repeat(100),
        "}".repeat(100)
    );
    assert_eq!(d.call("GET", "/programs", &deep).status, 400);
    // Many clients at once.
    let sock = d.sock.clone();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || http(&sock, "GET", "/metrics", "").map(|r| r.status))
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), 200);
    }
    assert_eq!(d.get("/version").status, 200, "{}", d.log());
}

#[test]
fn kill_workers_rpc_stops_tend() {
    let mut d = container_daemon("api-kill");
    let r = d.call("POST", "/api/processes.killWorkers", "");
    assert_eq!((r.status, r.json()), (200, json!({"ok": true})));
    d.wait_exit();
    assert!(!d.sock.exists(), "socket file left behind");
}

#[test]
fn delete_instance_stops_tend() {
    let mut d = container_daemon("api-delete-instance");
    let r = d.call("DELETE", "/instance/PID", "");
    assert_eq!((r.status, r.json()), (200, json!({"status": "OK"})));
    d.wait_exit();
}

// ---- with a configuration file ----

const TWO: &str = "component a { command \"sleep 1000\"; }\n\
                   component b { command \"sleep 1000\"; }\n";

#[test]
fn programs_start_stop_restart() {
    let d = Tend(Daemon::start("api-ssr", TWO));
    d.wait_status("a", "running");
    d.wait_status("b", "running");
    let first = d.pid_of("a").unwrap();

    let r = d.call("DELETE", "/programs/a", "");
    assert_eq!((r.status, r.json()), (200, json!({"status": "OK"})));
    d.wait_status("a", "stopped");
    assert_eq!(d.program("a")["active"], false);
    assert!(wait_until(PATIENCE, || !alive(first)));
    assert_eq!(d.get("/alive/a").status, 503);
    assert_eq!(d.status("b"), "running");

    let r = d.call("PUT", "/programs/a", "");
    assert_eq!(r.status, 200);
    d.wait_status("a", "running");
    let second = d.pid_of("a").unwrap();
    assert_ne!(first, second);

    // Restart by a selector in the body.
    let r = d.call("POST", "/programs", r#"{"op":"component","arg":"a"}"#);
    assert_eq!(r.status, 200);
    assert!(
        wait_until(PATIENCE, || d.pid_of("a").is_some_and(|p| p != second)),
        "{}",
        d.log()
    );
    // Selecting nothing is fine.
    assert_eq!(d.call("DELETE", "/programs", "false").status, 200);
    assert_eq!(d.status("b"), "running");
}

#[test]
fn reload_rpcs_refuse_an_invalid_file() {
    let d = Tend(Daemon::start("api-reload", TWO));
    d.wait_status("a", "running");
    let conf = d.dir.path("tend.conf");
    std::fs::write(&conf, "component a { bogus-statement; }\n").unwrap();
    let r = d.call("POST", "/api/config.reload", "");
    assert!(r.status >= 400, "{} {}", r.status, r.body);
    assert_eq!(r.json()["ok"], false);
    assert!(r.json()["message"].is_string());
    assert_eq!(d.call("PUT", "/conf/runtime", "").json()["status"], "ER");
    assert_eq!(d.status("a"), "running");

    // A valid file adds a component gracefully.
    std::fs::write(
        &conf,
        format!("{TWO}component c {{ command \"sleep 1000\"; }}\n"),
    )
    .unwrap();
    let a = d.pid_of("a");
    let r = d.call("GET", "/api/config.gracefulReload", "");
    assert_eq!((r.status, r.json()), (200, json!({"ok": true})));
    d.wait_status("c", "running");
    assert_eq!(
        d.pid_of("a"),
        a,
        "graceful reload restarted an unchanged component"
    );
    let files = d.get("/conf/files").json();
    assert_eq!(files[0]["file"], conf.display().to_string());
}

/// A reload that changes the `control` block serves the new sockets at
/// once and closes the removed ones, TCP included (through a new gateway);
/// the components keep running.
#[test]
fn reload_applies_changed_listeners() {
    let dir = TempDir::new("api-relisten");
    // The gateway runs as `nobody` and must reach its socket in here.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (a, b) = (dir.path("a.sock"), dir.path("b.sock"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = |sockets: &[String]| {
        let lines: String = sockets
            .iter()
            .map(|s| format!("socket \"{s}\"; "))
            .collect();
        format!("control {{ {lines} }}\ncomponent w {{ command \"sleep 1000\"; }}\n")
    };
    let path = dir.write("tend.conf", &conf(&[format!("unix://{}", a.display())]));
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let mut tend = Command::new(tend_bin())
        .arg("-c")
        .arg(&path)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default();
    let pid_of_w = |sock: &std::path::Path| {
        http(sock, "GET", "/programs/w", "")
            .ok()
            .and_then(|r| r.json()[0]["PID"].as_i64())
    };
    assert!(wait_until(PATIENCE, || pid_of_w(&a).is_some()), "{}", log());
    let before = pid_of_w(&a);

    dir.write(
        "tend.conf",
        &conf(&[
            format!("unix://{}", b.display()),
            format!("inet://127.0.0.1:{port}"),
        ]),
    );
    let r = http(&a, "PUT", "/conf/runtime", "").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        wait_until(PATIENCE, || pid_of_w(&b).is_some()),
        "b.sock never served; log:\n{}",
        log()
    );
    assert!(
        wait_until(PATIENCE, || !a.exists()),
        "a.sock is still there"
    );
    assert!(http(&a, "GET", "/version", "").is_err());
    assert_eq!(pid_of_w(&b), before, "the component was restarted");
    // The new TCP listener answers through its gateway.
    let via_tcp = || {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let req = format!(
            "GET /programs/w HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        s.write_all(req.as_bytes()).is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
            && answer.contains("\"tag\":\"w\"")
    };
    assert!(
        wait_until(PATIENCE, via_tcp),
        "TCP never served; log:\n{}",
        log()
    );

    // Back to UNIX only: the gateway and its port go away.
    dir.write("tend.conf", &conf(&[format!("unix://{}", b.display())]));
    let r = http(&b, "PUT", "/conf/runtime", "").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        wait_until(PATIENCE, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "the gateway still listens; log:\n{}",
        log()
    );
    assert_eq!(pid_of_w(&b), before);
    // SIGTERM, not SIGKILL: tend stops its component before it exits.
    // SAFETY: signalling the tend we started.
    unsafe { libc::kill(tend.id() as i32, libc::SIGTERM) };
    let _ = tend.wait();
    assert!(
        before.is_some_and(|pid| !alive(pid)),
        "the component outlived tend"
    );
}
