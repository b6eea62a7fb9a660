//! `route()` end to end on a state built by hand, with a stand-in main loop
//! that records the requests the API makes and answers them.

use super::{ApiRequest, ApiResponse, route};
use crate::config::{ComponentSpec, Config, Mode};
use crate::shared::{Refusal, Reply, Request, Shared, ShutdownKind, State};
use crate::table::{Component, Kind, Origin, Status};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

fn component(tag: &str, status: Status) -> Component {
    let spec = ComponentSpec::new(tag, vec![format!("/bin/{tag}"), "-x".to_string()]);
    let mut c = Component::new(spec, Kind::Component, Origin::Config);
    c.status = status;
    c
}

/// web running, db sleeping, off stopped and inactive, hook a running command.
fn table() -> Vec<Component> {
    let mut web = component("web", Status::Running);
    web.pid = Some(4242);
    web.restarts = 2;
    web.exit_code = Some(1);
    web.started = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    web.started_at = Some(Instant::now());
    web.spec.prerequisites = vec!["db".to_string()];
    let mut db = component("db", Status::Sleeping);
    db.wakeup = Some(Instant::now() + Duration::from_secs(30));
    db.spec.runlevels = "2345".to_string();
    let mut off = component("off", Status::Stopped);
    off.active = false;
    let mut hook = component("hook", Status::Running);
    hook.kind = Kind::Command;
    hook.spec.mode = Mode::Once;
    vec![web, db, off, hook]
}

fn shared_with(config: Config) -> Arc<Shared> {
    let mut state = State::new(config, None, vec!["tend".into(), "-c".into(), "x".into()]);
    state.table.components = table();
    Shared::new(state).unwrap()
}

fn shared() -> Arc<Shared> {
    shared_with(Config::default())
}

/// A stand-in for the main loop: records every request and answers it.
struct FakeLoop {
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeLoop {
    fn start(shared: &Arc<Shared>, answer: fn(&Request) -> Reply) -> FakeLoop {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, sh) = (seen.clone(), stop.clone(), shared.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let requests = sh.lock().take_requests();
                for (request, reply) in requests {
                    // Record before answering: the caller checks right after.
                    let answer = answer(&request);
                    s.lock().unwrap().push(request);
                    reply.send(answer);
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        FakeLoop {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn ok(shared: &Arc<Shared>) -> FakeLoop {
        FakeLoop::start(shared, |_| Ok(()))
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn call(shared: &Shared, method: &str, url: &str) -> ApiResponse {
    route(shared, &ApiRequest::new(method, url))
}

fn call_body(shared: &Shared, method: &str, url: &str, body: &str) -> ApiResponse {
    let mut req = ApiRequest::new(method, url);
    req.body = body.as_bytes().to_vec();
    route(shared, &req)
}

fn call_headers(shared: &Shared, method: &str, url: &str, headers: &[(&str, &str)]) -> ApiResponse {
    let mut req = ApiRequest::new(method, url);
    req.headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    route(shared, &req)
}

fn tags(r: &ApiResponse) -> Vec<String> {
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tag"].as_str().unwrap().to_string())
        .collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- generic routing ----

#[test]
fn index_lists_every_path() {
    let s = shared();
    let r = call(&s, "GET", "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let map = r.json();
    for path in [
        "/",
        "/programs",
        "/alive",
        "/instance",
        "/conf/files",
        "/conf/runtime",
        "/runlevel",
        "/environ",
        "/api/processes.interruptWorkers",
        "/api/config.reload",
        "/version",
        "/recentStartTime",
        "/configs",
        "/config",
        "/updateConfig",
        "/metrics",
    ] {
        assert!(map[path].is_string(), "{path} missing from the index");
    }
}

#[test]
fn unknown_paths_are_404_json() {
    let s = shared();
    let r = call(&s, "GET", "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "ER");
    assert!(r.json()["message"].as_str().unwrap().contains("/nope"));
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let s = shared();
    let r = call(&s, "DELETE", "/version");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET"));
    assert_eq!(r.json()["status"], "ER");
    let r = call(&s, "DELETE", "/api/config.reload");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, POST, PUT"));
    assert_eq!(r.json()["ok"], false);
    let r = call(&s, "GET", "/conf/runtime");
    assert_eq!(r.status, 405);
}

#[test]
fn head_is_answered_like_get() {
    let s = shared();
    assert_eq!(call(&s, "HEAD", "/version").status, 200);
}

// ---- /programs ----

#[test]
fn programs_describe_every_component() {
    let s = shared();
    let r = call(&s, "GET", "/programs");
    assert_eq!(r.status, 200);
    let list = r.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    let web = &list[0];
    assert_eq!(web["type"], "component");
    assert_eq!(web["tag"], "web");
    assert_eq!(web["mode"], "respawn");
    assert_eq!(web["status"], "running");
    assert_eq!(web["active"], true);
    assert_eq!(web["PID"], 4242);
    assert_eq!(web["argv"], json!(["/bin/web", "-x"]));
    assert_eq!(web["command"], "/bin/web -x");
    assert_eq!(web["restarts"], 2);
    assert_eq!(web["exit_code"], 1);
    assert_eq!(web["started"], 1_700_000_000u64);
    assert_eq!(web["prerequisites"], json!(["db"]));
    assert!(web.get("wakeup").is_none());
    assert!(web.get("runlevels").is_none());
    assert!(web.get("URL").is_none());
    let db = &list[1];
    assert_eq!(db["status"], "sleeping");
    assert!(db.get("PID").is_none());
    let wakeup = db["wakeup"].as_u64().unwrap();
    assert!((1..=30).contains(&wakeup), "wakeup {wakeup}");
    assert_eq!(db["runlevels"], "2345");
    assert!(db.get("exit_code").is_none());
    assert!(db.get("started").is_none());
    assert_eq!(list[2]["active"], false);
    assert_eq!(list[3]["type"], "command");
    assert_eq!(list[3]["mode"], "once");
}

#[test]
fn programs_selectors_come_from_body_query_or_path() {
    let s = shared();
    assert_eq!(tags(&call(&s, "GET", "/programs/web")), ["web"]);
    assert!(tags(&call(&s, "GET", "/programs/hook")).is_empty());
    assert!(tags(&call(&s, "GET", "/programs/nope")).is_empty());
    let q = encode(r#"{"op":"status","arg":"running"}"#);
    assert_eq!(
        tags(&call(&s, "GET", &format!("/programs?{q}"))),
        ["web", "hook"]
    );
    // The body wins over the query.
    let r = call_body(
        &s,
        "GET",
        &format!("/programs?{q}"),
        r#"{"op":"not","arg":{"op":"active"}}"#,
    );
    assert_eq!(tags(&r), ["off"]);
    // A blank body does not count.
    assert_eq!(tags(&call_body(&s, "GET", "/programs/db", " \n")), ["db"]);
    assert!(tags(&call_body(&s, "GET", "/programs", "null")).is_empty());
}

#[test]
fn malformed_selectors_are_400_naming_the_problem() {
    let s = shared();
    let r = call_body(&s, "GET", "/programs", r#"{"op":"foo"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"status": "ER", "message": "selector: unknown op `foo`"})
    );
    let r = call_body(&s, "PUT", "/programs", r#"{"op":"and","arg":1}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "selector: `and` needs an array in `arg`"
    );
    let r = call(&s, "GET", "/programs?%7B%22op");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("selector: invalid JSON at line 1")
    );
    let r = call(&s, "GET", "/programs?%zz");
    assert_eq!(r.status, 400);
}

#[test]
fn programs_mutations_ask_the_main_loop() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    let r = call(&s, "PUT", "/programs/off");
    assert_eq!((r.status, r.json()), (200, json!({"status": "OK"})));
    let r = call_body(
        &s,
        "DELETE",
        "/programs",
        r#"{"op":"status","arg":"running"}"#,
    );
    assert_eq!(r.status, 200);
    let r = call(&s, "POST", "/programs/web");
    assert_eq!(r.status, 200);
    // Nothing selected: nothing to do, still OK.
    let r = call(&s, "DELETE", "/programs/nope");
    assert_eq!((r.status, r.json()), (200, json!({"status": "OK"})));
    assert_eq!(
        fake.seen(),
        vec![
            Request::Start(vec!["off".into()]),
            Request::Stop(vec!["web".into(), "hook".into()]),
            Request::Restart(vec!["web".into()]),
        ]
    );
}

#[test]
fn no_selector_at_all_selects_everything() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    assert_eq!(call(&s, "POST", "/programs").status, 200);
    assert_eq!(
        fake.seen(),
        vec![Request::Restart(vec![
            "web".into(),
            "db".into(),
            "off".into(),
            "hook".into()
        ])]
    );
}

#[test]
fn refusals_become_pies_errors() {
    let s = shared();
    let _fake = FakeLoop::start(&s, |_| Err(Refusal::new(409, "`web` is stopping")));
    let r = call(&s, "PUT", "/programs/web");
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json(),
        json!({"status": "ER", "message": "`web` is stopping"})
    );
}

#[test]
fn shutting_down_refuses_changes() {
    let s = shared();
    s.lock().shutting_down = true;
    let r = call(&s, "PUT", "/programs/web");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "ER");
}

// ---- /alive ----

#[test]
fn alive_reports_through_the_status_code() {
    let s = shared();
    assert_eq!(call(&s, "GET", "/alive/web").status, 200);
    let r = call(&s, "GET", "/alive/db");
    assert_eq!(r.status, 503);
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry));
    let r = call(&s, "GET", "/alive/off");
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_none());
    assert_eq!(call(&s, "GET", "/alive/nope").status, 404);
    assert_eq!(call(&s, "GET", "/alive").status, 403);
    assert_eq!(call(&s, "GET", "/alive/").status, 403);
    assert_eq!(call(&s, "PUT", "/alive/web").status, 405);
}

// ---- /instance, /conf ----

#[test]
fn instance_describes_tend() {
    let s = shared();
    let r = call(&s, "GET", "/instance");
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["PID"], std::process::id());
    assert_eq!(info["argv"], json!(["tend", "-c", "x"]));
    assert_eq!(info["version"], crate::VERSION);
    assert_eq!(info["package"], "tend");
    assert_eq!(info["instance"], "tend");
    assert!(info["binary"].as_str().is_some_and(|b| !b.is_empty()));
    let r = call(&s, "GET", "/instance/argv");
    assert_eq!(r.json(), json!({"argv": ["tend", "-c", "x"]}));
    assert_eq!(call(&s, "GET", "/instance/bogus").status, 404);
}

#[test]
fn instance_shutdown_and_reexec() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    assert_eq!(call(&s, "DELETE", "/instance/PID").status, 200);
    assert_eq!(call(&s, "PUT", "/instance/PID").status, 200);
    assert_eq!(call(&s, "POST", "/instance").status, 200);
    assert_eq!(call(&s, "DELETE", "/instance/other").status, 404);
    assert_eq!(
        fake.seen(),
        vec![
            Request::Shutdown(ShutdownKind::Exit),
            Request::Reexec,
            Request::Reexec
        ]
    );
}

#[test]
fn conf_files_and_runtime() {
    let config = Config {
        files: vec![
            PathBuf::from("/etc/tend.conf"),
            PathBuf::from("/etc/tend.d/a"),
        ],
        ..Config::default()
    };
    let s = shared_with(config);
    let r = call(&s, "GET", "/conf/files");
    assert_eq!(
        r.json(),
        json!([
            {"file": "/etc/tend.conf", "syntax": "pies"},
            {"file": "/etc/tend.d/a", "syntax": "pies"}
        ])
    );
    let _fake = FakeLoop::start(&s, |r| match r {
        Request::Reload { graceful: true } => {
            Err(Refusal::new(400, "/etc/tend.conf:3:1: unknown statement"))
        }
        _ => Ok(()),
    });
    let r = call(&s, "PUT", "/conf/runtime");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "/etc/tend.conf:3:1: unknown statement");
}

// ---- /runlevel, /environ ----

#[test]
fn runlevel_needs_init_mode() {
    let s = shared();
    assert_eq!(call(&s, "GET", "/runlevel").status, 404);
    assert_eq!(call(&s, "GET", "/environ").status, 404);
}

#[test]
fn runlevel_reads_and_switches() {
    let config = Config {
        initdefault: Some('3'),
        ..Config::default()
    };
    let s = shared_with(config);
    {
        let mut state = s.lock();
        state.init_mode = true;
        state.runlevel = '3';
    }
    let r = call(&s, "GET", "/runlevel");
    assert_eq!(r.json(), json!({"runlevel": "3", "initdefault": "3"}));
    let fake = FakeLoop::ok(&s);
    assert_eq!(
        call_body(&s, "PUT", "/runlevel", r#"{"runlevel":"2"}"#).status,
        200
    );
    assert_eq!(
        call_body(&s, "PUT", "/runlevel", r#"{"runlevel":0}"#).status,
        200
    );
    assert_eq!(
        call_body(&s, "PUT", "/runlevel", r#"{"runlevel":"6"}"#).status,
        200
    );
    let pies_path = format!("/runlevel/{}", encode(r#"{"runlevel":"S"}"#));
    assert_eq!(call(&s, "PUT", &pies_path).status, 200);
    let r = call_body(&s, "PUT", "/runlevel", r#"{"runlevel":"9"}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not a runlevel")
    );
    assert_eq!(call_body(&s, "PUT", "/runlevel", "{}").status, 400);
    assert_eq!(call_body(&s, "PUT", "/runlevel", "nonsense").status, 400);
    assert_eq!(
        fake.seen(),
        vec![
            Request::Runlevel('2'),
            Request::Shutdown(ShutdownKind::Poweroff),
            Request::Shutdown(ShutdownKind::Reboot),
            Request::Runlevel('S'),
        ]
    );
}

#[test]
fn environ_in_init_mode() {
    let s = shared();
    s.lock().init_mode = true;
    let r = call(&s, "GET", "/environ");
    assert_eq!(r.status, 200);
    let path = std::env::var("PATH").unwrap_or_default();
    let all = r.json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(&format!("PATH={path}")))
    );
    let r = call(&s, "GET", "/environ/PATH");
    assert_eq!(r.json(), json!({"status": "OK", "value": path}));
    assert_eq!(
        call(&s, "GET", "/environ/TEND_SURELY_UNSET_VAR").status,
        404
    );
    let r = call_headers(&s, "GET", "/environ", &[("X-Tend-Access", "read")]);
    assert_eq!(r.status, 403);
}

// ---- RPC ----

#[test]
fn rpc_endpoints_ask_the_main_loop() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    for (method, path) in [
        ("GET", "/api/processes.interruptWorkers"),
        ("POST", "/api/processes.killWorkers"),
        ("PUT", "/api/processes.flushBuffersAndKillWorkers"),
        ("GET", "/api/plugins.flushBuffers"),
        ("GET", "/api/config.gracefulReload"),
        ("POST", "/api/config.reload"),
    ] {
        let r = call(&s, method, path);
        assert_eq!((r.status, r.json()), (200, json!({"ok": true})), "{path}");
    }
    assert_eq!(
        fake.seen(),
        vec![
            Request::Shutdown(ShutdownKind::Exit),
            Request::Shutdown(ShutdownKind::Exit),
            Request::Shutdown(ShutdownKind::FlushAndExit),
            Request::Flush,
            Request::Reload { graceful: true },
            Request::Reload { graceful: false },
        ]
    );
}

#[test]
fn rpc_refusals_are_ok_false() {
    let s = shared();
    let _fake = FakeLoop::start(&s, |_| Err(Refusal::new(400, "bad config")));
    let r = call(&s, "GET", "/api/config.reload");
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"ok": false, "message": "bad config"}));
}

// ---- access ----

#[test]
fn read_only_relays_cannot_change_anything() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    let read = [("X-Tend-Access", "read")];
    assert_eq!(call_headers(&s, "GET", "/programs", &read).status, 200);
    assert_eq!(call_headers(&s, "GET", "/metrics", &read).status, 200);
    let r = call_headers(&s, "PUT", "/programs/web", &read);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["status"], "ER");
    let r = call_headers(&s, "GET", "/api/config.reload", &read);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["ok"], false);
    assert_eq!(
        call_headers(&s, "GET", "/updateConfig?max_restarts=1", &read).status,
        403
    );
    assert_eq!(
        call_headers(&s, "GET", "/version", &[("X-Tend-Access", "x")]).status,
        403
    );
    let admin = [("X-Tend-Access", "admin")];
    assert_eq!(call_headers(&s, "PUT", "/programs/off", &admin).status, 200);
    assert_eq!(fake.seen(), vec![Request::Start(vec!["off".into()])]);
    assert_eq!(s.lock().tunables.max_restarts, 10);
}

#[test]
fn foreign_origins_cannot_change_anything() {
    let s = shared();
    let fake = FakeLoop::ok(&s);
    let foreign = [("Host", "localhost"), ("Origin", "http://evil.example")];
    assert_eq!(
        call_headers(&s, "PUT", "/programs/web", &foreign).status,
        403
    );
    assert_eq!(
        call_headers(&s, "GET", "/api/config.reload", &foreign).status,
        403
    );
    assert_eq!(call_headers(&s, "GET", "/programs", &foreign).status, 200);
    let same = [("Host", "localhost"), ("Origin", "http://localhost")];
    assert_eq!(call_headers(&s, "PUT", "/programs/off", &same).status, 200);
    assert_eq!(fake.seen(), vec![Request::Start(vec!["off".into()])]);
}

// ---- introspection ----

#[test]
fn version_and_start_time() {
    let s = shared();
    let v = call(&s, "GET", "/version").json();
    assert_eq!(v["Version"], crate::VERSION);
    assert_eq!(v["name"], "tend");
    assert!(v["GitCommit"].is_string());
    s.lock().started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let t = call(&s, "GET", "/recentStartTime").json();
    assert_eq!(t, json!({"RecentStartTime": "2023-11-14 22:13:20"}));
}

#[test]
fn configs_list_the_tunables() {
    let s = shared();
    let all = call(&s, "GET", "/configs").json();
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "log_level",
            "max_restarts",
            "restart_window",
            "shutdown_timeout",
            "sleep_time"
        ]
    );
    let one = call(&s, "GET", "/config?name=max_restarts");
    assert_eq!(one.status, 200);
    assert_eq!(
        one.json(),
        json!({
            "name": "max_restarts",
            "section": "throttle",
            "type": "FV_UINT32",
            "tags": "flag_tag::FT_MUTABLE",
            "description": "Starts allowed within restart_window before a component sleeps.",
            "value": "10",
        })
    );
    assert_eq!(all["max_restarts"], one.json());
    assert_eq!(call(&s, "GET", "/config?name=nope").status, 404);
    assert_eq!(call(&s, "GET", "/config").status, 400);
}

#[test]
fn update_config_changes_tunables() {
    let s = shared();
    let r = call(&s, "GET", "/updateConfig?max_restarts=3");
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"update_status": "ERR_OK"}))
    );
    assert_eq!(s.lock().tunables.max_restarts, 3);
    let r = call(&s, "POST", "/updateConfig?sleep_time=9");
    assert_eq!(r.status, 200);
    assert_eq!(s.lock().tunables.sleep_time, Duration::from_secs(9));
    let r = call(&s, "GET", "/updateConfig?shutdown_timeout=0");
    assert_eq!(r.status, 200);
    assert_eq!(s.lock().tunables.shutdown_timeout, Duration::ZERO);
    assert_eq!(
        call(&s, "GET", "/config?name=sleep_time").json()["value"],
        "9"
    );

    let r = call(&s, "GET", "/updateConfig?foo=1");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"update_status": "ERR_INVALID_PARAMETERS: unknown config `foo`"})
    );
    let r = call(&s, "GET", "/updateConfig?max_restarts=-1");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["update_status"]
            .as_str()
            .unwrap()
            .starts_with("ERR_INVALID_PARAMETERS: max_restarts:")
    );
    assert_eq!(call(&s, "GET", "/updateConfig").status, 400);
    assert_eq!(call(&s, "GET", "/updateConfig?a=1&b=2").status, 400);
    assert_eq!(
        call(&s, "GET", "/updateConfig?restart_window=0").status,
        400
    );
    assert_eq!(s.lock().tunables.max_restarts, 3);
}

#[test]
fn update_config_sets_the_log_level() {
    let s = shared();
    let before = log::max_level();
    let r = call(&s, "GET", "/updateConfig?log_level=TRACE");
    assert_eq!(r.status, 200);
    assert_eq!(s.lock().tunables.log_level, "trace");
    assert_eq!(log::max_level(), log::LevelFilter::Trace);
    assert_eq!(call(&s, "GET", "/updateConfig?log_level=loud").status, 400);
    log::set_max_level(before);
}

// ---- /metrics ----

fn entity<'a>(list: &'a Value, kind: &str, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == kind && e["id"] == id)
        .unwrap_or_else(|| panic!("no {kind} {id} in {list}"))
}

fn metric(e: &Value, name: &str) -> Value {
    e["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["value"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn metrics_json_entities() {
    let s = shared();
    s.lock().stats.reaped_orphans = 7;
    let r = call(&s, "GET", "/metrics");
    assert_eq!(r.status, 200);
    let all = r.json();
    assert_eq!(all.as_array().unwrap().len(), 5);
    let web = entity(&all, "component", "web");
    assert_eq!(web["attributes"]["status"], "running");
    assert_eq!(web["attributes"]["mode"], "respawn");
    assert_eq!(metric(web, "up"), 1);
    assert_eq!(metric(web, "restarts_total"), 2);
    assert_eq!(metric(web, "last_exit_code"), 1);
    assert_eq!(
        web["metrics"][0].as_object().unwrap().len(),
        2,
        "brief: name and value"
    );
    let db = entity(&all, "component", "db");
    assert_eq!(metric(db, "up"), 0);
    assert_eq!(metric(db, "uptime_seconds"), 0);
    assert_eq!(metric(db, "last_exit_code"), Value::Null);
    let server = entity(&all, "server", "tend");
    assert_eq!(metric(server, "reaped_orphans_total"), 7);
    assert_eq!(metric(server, "components"), 4);
    assert!(metric(server, "resident_memory_bytes").as_u64().unwrap() > 0);
    assert!(metric(server, "threads").as_u64().unwrap() >= 1);
    assert!(metric(server, "open_fds").as_u64().unwrap() >= 1);
}

#[test]
fn metrics_filters() {
    let s = shared();
    let get = |q: &str| call(&s, "GET", &format!("/metrics?{q}")).json();
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&get("types=server")), ["tend"]);
    assert_eq!(ids(&get("ids=web,db")), ["web", "db"]);
    assert_eq!(ids(&get("attributes=status,running")), ["web", "hook"]);
    assert_eq!(
        ids(&get("attributes=status,sleeping,active,false")),
        ["db", "off"]
    );
    let only_up = get("metrics=up");
    assert_eq!(ids(&only_up), ["web", "db", "off", "hook"]);
    assert_eq!(only_up[0]["metrics"].as_array().unwrap().len(), 1);
    let detail = get("ids=web&detail=true&metrics=up");
    assert_eq!(
        detail[0]["metrics"][0],
        json!({"type": "gauge", "name": "up", "unit": "boolean",
               "desc": "1 when the component's process is running.", "value": 1})
    );
    let fields = get("ids=web&with_metric_fields=value&metrics=up");
    assert_eq!(fields[0]["metrics"][0], json!({"value": 1}));
    let r = call(&s, "GET", "/metrics?attributes=x");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("metrics:")
    );
}

#[test]
fn metrics_prometheus_text() {
    let s = shared();
    let r = call(&s, "GET", "/metrics?format=prometheus");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "# TYPE tend_component_up gauge",
        "tend_component_up{tag=\"web\"} 1",
        "tend_component_up{tag=\"db\"} 0",
        "# TYPE tend_component_restarts_total counter",
        "tend_component_restarts_total{tag=\"web\"} 2",
        "tend_component_last_exit_code{tag=\"web\"} 1",
        "tend_reaped_orphans_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    for prefix in [
        "tend_component_uptime_seconds{tag=\"web\"} ",
        "tend_resident_memory_bytes ",
        "tend_threads ",
        "tend_open_fds ",
        "tend_uptime_seconds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "missing {prefix:?}"
        );
    }
    // Each family is declared once, before its samples.
    assert_eq!(text.matches("# TYPE tend_component_up ").count(), 1);
}

// ---- robustness ----

/// A tiny deterministic generator (xorshift64*), enough to shake the router.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn junk(&mut self, max: u64) -> String {
        let n = self.next() % (max + 1);
        (0..n)
            .map(|_| {
                let b = (self.next() % 96) as u8 + 32;
                b as char
            })
            .collect()
    }
}

#[test]
fn route_never_panics_on_odd_requests() {
    let s = shared();
    let _fake = FakeLoop::ok(&s);
    let level = log::max_level();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "", "get"];
    let mut paths: Vec<&str> = super::router::ROUTES.iter().map(|r| r.path).collect();
    paths.extend([
        "/programs/web",
        "/alive/db",
        "/instance/argv",
        "//",
        "",
        "?",
        "%",
    ]);
    let suffixes = [
        "",
        "/",
        "/%zz",
        "/%2F",
        "?",
        "?%7B",
        "?name=log_level",
        "?a=1&b",
        "/x/y",
    ];
    let bodies = [
        "",
        "{",
        "null",
        "[]",
        r#"{"op":"and","arg":[{"op":"not"}]}"#,
        r#"{"runlevel":"3"}"#,
        r#"{"op":"status","arg":"running"}"#,
        "\u{0}\u{1}",
    ];
    let headers = [
        ("X-Tend-Access", "read"),
        ("X-Tend-Access", "admin"),
        ("X-Tend-Access", ""),
        ("Origin", "null"),
        ("Origin", "http://localhost"),
        ("Host", "localhost"),
    ];
    for _ in 0..3000 {
        let mut req = ApiRequest::new(
            rng.pick(&methods),
            &format!("{}{}{}", rng.pick(&paths), rng.pick(&suffixes), rng.junk(6)),
        );
        req.body = format!("{}{}", rng.pick(&bodies), rng.junk(4)).into_bytes();
        for _ in 0..rng.next() % 3 {
            let (n, v) = headers[(rng.next() % headers.len() as u64) as usize];
            req.headers.push((n.to_string(), v.to_string()));
        }
        let r = route(&s, &req);
        assert!((200..600).contains(&r.status), "{req:?} -> {r:?}");
        let content_type = r.header("Content-Type").unwrap_or("");
        if content_type == "application/json" {
            assert_ne!(r.json(), Value::Null, "{req:?} gave no JSON");
        }
    }
    log::set_max_level(level);
}

// ---- hand-written JSON ----

#[test]
fn written_answers_are_what_serde_json_writes() {
    let config = Config {
        initdefault: Some('3'),
        files: vec![PathBuf::from("/etc/tend.conf"), PathBuf::from("/x/\"q\"")],
        ..Config::default()
    };
    let s = shared_with(config);
    s.lock().init_mode = true;
    let urls = [
        "/instance",
        "/instance/PID",
        "/instance/argv",
        "/instance/nope",
        "/conf/files",
        "/runlevel",
        "/environ",
        "/environ/PATH",
        "/environ/TEND_SURELY_UNSET_VAR",
        "/version",
        "/recentStartTime",
        "/configs",
        "/config?name=sleep_time",
        "/config?name=nope",
        "/updateConfig?a=1&b=2",
        "/metrics?detail=true",
    ];
    for url in urls {
        let r = call(&s, "GET", url);
        let body = String::from_utf8(r.body.clone()).unwrap();
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::to_string(&value).unwrap(), "{url}");
    }
}
