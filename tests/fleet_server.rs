//! The fleet ConfigServer, end to end: the real `tend config-server` process on
//! a free port with a temporary store, driven over real HTTP in both encodings.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tend::fleet::messages::{
    AgentGroup, AgentGroupTag, Api, Code, Config, Payload, Request, Response, RunningStatistics,
    UpdateStatus,
};

const DEADLINE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ helpers

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tend-fleet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `tend config-server`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl Server {
    fn start(store: &Path, extra: &[&str]) -> Server {
        // The port is free when picked but another test may take it before
        // the server binds; then the server exits at once and we pick again.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(env!("CARGO_BIN_EXE_tend"))
                .arg("config-server")
                .arg("--listen")
                .arg(format!("inet://127.0.0.1:{port}"))
                .arg("--store")
                .arg(store)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut s = Server {
                child,
                port,
                store: store.to_path_buf(),
            };
            if s.wait_ready() {
                return s;
            }
        }
        panic!("config-server could not start on any port");
    }

    /// Wait until the server accepts; false when it exited first.
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(start.elapsed() < DEADLINE, "config-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn kill9(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn restart(&mut self, extra: &[&str]) {
        self.kill9();
        *self = Server::start(&self.store.clone(), extra);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Minimal HTTP/1.1 client (Connection: close); stops at Content-Length,
/// decodes chunked bodies.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> HttpResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().unwrap();
        while rest.len() < len {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed inside the body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        s.read_to_end(&mut rest).unwrap();
        if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            dechunk(&rest)
        } else {
            rest
        }
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(data, b"\r\n") {
        let size_line = std::str::from_utf8(&data[..i]).unwrap();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[i + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");

/// A JSON call at the API's own path and method.
fn call(port: u16, api: Api, body: Value) -> (u16, Value) {
    call_at(port, api.method().name(), api.path(), body)
}

fn call_at(port: u16, method: &str, path: &str, body: Value) -> (u16, Value) {
    // `Value::Null` stands for "no body at all".
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let r = http(port, method, path, &[JSON], body.as_bytes());
    assert_eq!(content_type(&r), "application/json");
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {:?}",
            String::from_utf8_lossy(&r.body)
        )
    });
    assert!(v["code"].is_string() && v["message"].is_string(), "{v}");
    (r.status, v)
}

fn content_type(r: &HttpResponse) -> String {
    r.headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A protobuf call, decoded with the crate's codec.
fn call_pb(port: u16, api: Api, req: &Request) -> (u16, Response) {
    let r = http(
        port,
        api.method().name(),
        api.path(),
        &[PROTO],
        &req.encode(api),
    );
    assert_eq!(content_type(&r), "application/x-protobuf");
    (r.status, Response::decode(&r.body, api.payload()).unwrap())
}

fn expect(got: (u16, Value), status: u16, code: &str) -> Value {
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert_eq!(got.0, status, "{}", got.1);
    got.1
}

fn group(name: &str, tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({"group_name": name, "description": "d", "tags": tags})
}

fn config(name: &str, content: &str) -> Value {
    json!({"config_name": name, "agent_type": "tend", "description": "", "content": content})
}

fn heartbeat(port: u16, id: &str, tags: &[(&str, &str)]) -> (u16, Value) {
    let tags: BTreeMap<&str, &str> = tags.iter().copied().collect();
    call(
        port,
        Api::HeartBeat,
        json!({"agent_id": id, "agent_type": "tend", "agent_version": "0.1",
               "ip": "10.0.0.1", "tags": tags, "running_status": "running",
               "startup_time": 1_700_000_000}),
    )
}

fn statuses(v: &Value) -> BTreeMap<String, (String, i64)> {
    v["config_update_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["config_name"].as_str().unwrap().to_string(),
                (
                    i["update_status"].as_str().unwrap().to_string(),
                    i["config_version"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

fn config_list(port: u16, agent: &str, have: Value) -> BTreeMap<String, (String, i64)> {
    let v = expect(
        call(
            port,
            Api::GetConfigList,
            json!({"agent_id": agent, "config_versions": have}),
        ),
        200,
        "Accept",
    );
    statuses(&v)
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

// -------------------------------------------------------------------- tests

#[test]
fn user_api_json() {
    let dir = temp_dir("user-json");
    let srv = Server::start(&dir, &[]);
    let p = srv.port;

    // The default group exists from the start and cannot go.
    let v = expect(call(p, Api::ListAgentGroups, json!({})), 200, "Accept");
    assert_eq!(v["agent_groups"][0]["group_name"], "default");
    let v = expect(
        call(p, Api::DeleteAgentGroup, json!({"group_name": "default"})),
        400,
        "InvalidParameter",
    );
    assert!(v["message"].as_str().unwrap().contains("default"));

    // Groups.
    let v = expect(
        call(
            p,
            Api::CreateAgentGroup,
            json!({"request_id": "req-7", "agent_group": group("web", &[("role", "web")])}),
        ),
        200,
        "Accept",
    );
    assert_eq!(v["response_id"], "req-7");
    expect(
        call(
            p,
            Api::CreateAgentGroup,
            json!({"agent_group": group("web", &[])}),
        ),
        400,
        "AgentGroupAlreadyExist",
    );
    let v = expect(
        call(p, Api::GetAgentGroup, json!({"group_name": "web"})),
        200,
        "Accept",
    );
    assert_eq!(v["agent_group"]["tags"][0]["value"], "web");
    assert!(
        v.get("response_id").is_none(),
        "no request_id, no response_id: {v}"
    );
    expect(
        call(
            p,
            Api::UpdateAgentGroup,
            json!({"agent_group": group("web", &[("role", "front")])}),
        ),
        200,
        "Accept",
    );
    // Name-only calls take a query string too.
    let v = expect(
        call_at(
            p,
            "GET",
            "/User/GetAgentGroup/?group_name=web&request_id=q1",
            Value::Null,
        ),
        200,
        "Accept",
    );
    assert_eq!(v["agent_group"]["tags"][0]["value"], "front");
    assert_eq!(v["response_id"], "q1");
    expect(
        call(
            p,
            Api::UpdateAgentGroup,
            json!({"agent_group": group("nope", &[])}),
        ),
        404,
        "AgentGroupNotExist",
    );
    expect(
        call(p, Api::GetAgentGroup, json!({"group_name": "nope"})),
        404,
        "AgentGroupNotExist",
    );
    expect(
        call(p, Api::DeleteAgentGroup, json!({"group_name": "nope"})),
        404,
        "AgentGroupNotExist",
    );
    let v = expect(call(p, Api::ListAgentGroups, json!({})), 200, "Accept");
    assert_eq!(v["agent_groups"].as_array().unwrap().len(), 2);

    // Configs.
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("c1", "one")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("c1", "again")}),
        ),
        400,
        "ConfigAlreadyExist",
    );
    expect(
        call(
            p,
            Api::UpdateConfig,
            json!({"config_detail": config("c1", "two")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::UpdateConfig,
            json!({"config_detail": config("zz", "x")}),
        ),
        404,
        "ConfigNotExist",
    );
    let v = expect(
        call(p, Api::GetConfig, json!({"config_name": "c1"})),
        200,
        "Accept",
    );
    assert_eq!(v["config_detail"]["content"], "two");
    assert_eq!(v["config_detail"]["agent_type"], "tend");
    expect(
        call(p, Api::GetConfig, json!({"config_name": "zz"})),
        404,
        "ConfigNotExist",
    );
    let v = expect(call(p, Api::ListConfigs, json!({})), 200, "Accept");
    assert_eq!(v["config_details"].as_array().unwrap().len(), 1);

    // Apply / remove.
    let apply = json!({"group_name": "web", "config_name": "c1"});
    expect(
        call(p, Api::ApplyConfigToAgentGroup, apply.clone()),
        200,
        "Accept",
    );
    expect(
        call(p, Api::ApplyConfigToAgentGroup, apply.clone()),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "nope", "config_name": "c1"}),
        ),
        404,
        "AgentGroupNotExist",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "web", "config_name": "zz"}),
        ),
        404,
        "ConfigNotExist",
    );
    let v = expect(
        call(
            p,
            Api::GetAppliedConfigsForAgentGroup,
            json!({"group_name": "web"}),
        ),
        200,
        "Accept",
    );
    assert_eq!(names(&v, "config_names"), ["c1"]);
    let v = expect(
        call(p, Api::GetAppliedAgentGroups, json!({"config_name": "c1"})),
        200,
        "Accept",
    );
    assert_eq!(names(&v, "agent_group_names"), ["web"]);
    expect(
        call(
            p,
            Api::GetAppliedConfigsForAgentGroup,
            json!({"group_name": "nope"}),
        ),
        404,
        "AgentGroupNotExist",
    );
    expect(
        call(p, Api::GetAppliedAgentGroups, json!({"config_name": "zz"})),
        404,
        "ConfigNotExist",
    );

    // Deleting what is still in use is refused, with a message that says why.
    let v = expect(
        call(p, Api::DeleteConfig, json!({"config_name": "c1"})),
        400,
        "InvalidParameter",
    );
    assert!(v["message"].as_str().unwrap().contains("web"), "{v}");
    let v = expect(
        call(p, Api::DeleteAgentGroup, json!({"group_name": "web"})),
        400,
        "InvalidParameter",
    );
    assert!(v["message"].as_str().unwrap().contains("c1"), "{v}");

    expect(
        call(p, Api::RemoveConfigFromAgentGroup, apply.clone()),
        200,
        "Accept",
    );
    expect(
        call(p, Api::RemoveConfigFromAgentGroup, apply.clone()),
        404,
        "ConfigNotExist",
    );
    let v = expect(
        call(
            p,
            Api::GetAppliedConfigsForAgentGroup,
            json!({"group_name": "web"}),
        ),
        200,
        "Accept",
    );
    assert_eq!(names(&v, "config_names"), Vec::<String>::new());
    expect(
        call_at(
            p,
            "DELETE",
            "/User/DeleteConfig?config_name=c1",
            Value::Null,
        ),
        200,
        "Accept",
    );
    expect(
        call(p, Api::DeleteConfig, json!({"config_name": "c1"})),
        404,
        "ConfigNotExist",
    );
    expect(
        call(p, Api::DeleteAgentGroup, json!({"group_name": "web"})),
        200,
        "Accept",
    );
    let v = expect(call(p, Api::ListConfigs, json!({})), 200, "Accept");
    assert_eq!(v["config_details"], json!([]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn routing_methods_and_bad_requests() {
    let dir = temp_dir("routing");
    let srv = Server::start(&dir, &[]);
    let p = srv.port;

    // Every path answers on its method, with or without a trailing slash.
    for api in Api::ALL {
        for path in [api.path().to_string(), format!("{}/", api.path())] {
            let (status, v) = call_at(p, api.method().name(), &path, json!({}));
            assert_ne!(status, 404, "{path}: {v}");
            assert_ne!(status, 405, "{path}: {v}");
            if !api.required().is_empty() {
                assert_eq!(v["code"], "BadRequest", "{path}: {v}");
                let field = api.required()[0].name();
                assert!(
                    v["message"].as_str().unwrap().contains(field),
                    "{path}: {v}"
                );
                assert_eq!(status, 400);
            }
        }
        let wrong = if api.method().name() == "GET" {
            "POST"
        } else {
            "GET"
        };
        let (status, v) = call_at(p, wrong, api.path(), json!({}));
        assert_eq!(status, 405, "{wrong} {}: {v}", api.path());
    }
    expect(
        call_at(p, "GET", "/User/Nothing", json!({})),
        404,
        "BadRequest",
    );

    // A GET carries its parameters in the body just as well.
    expect(
        call_at(
            p,
            "GET",
            "/User/GetAgentGroup",
            json!({"group_name": "default"}),
        ),
        200,
        "Accept",
    );

    // Malformed bodies are BadRequest, in the encoding of the request.
    let r = http(p, "POST", "/User/CreateConfig", &[JSON], b"{not json");
    assert_eq!(r.status, 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "BadRequest");
    let bad = json!({"config_detail": {"config_name": 5}});
    let v = expect(call(p, Api::CreateConfig, bad), 400, "BadRequest");
    assert!(
        v["message"].as_str().unwrap().contains("config_name"),
        "{v}"
    );
    let v = expect(
        call(p, Api::CreateConfig, json!({"config_detail": {}})),
        400,
        "BadRequest",
    );
    assert!(
        v["message"].as_str().unwrap().contains("config_name"),
        "{v}"
    );
    expect(call(p, Api::CreateConfig, json!([1, 2])), 400, "BadRequest");

    for body in [
        vec![0x0a, 0x05, b'a'],                   // length past the end
        vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], // huge length
        vec![0x08, 0x80, 0x80],                   // truncated varint
        vec![0x0b],                               // group wire type
    ] {
        let r = http(p, "POST", "/User/CreateConfig", &[PROTO], &body);
        assert_eq!(r.status, 400);
        let resp = Response::decode(&r.body, Api::CreateConfig.payload()).unwrap();
        assert_eq!(resp.code, Code::BadRequest);
    }

    // Oversized bodies are refused from the header, before reading.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(
        b"POST /User/CreateConfig HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Connection: close\r\nContent-Length: 5000000\r\n\r\n{",
    )
    .unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 413);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "BadRequest");
    drop(s);

    // A hostile length (tiny_http would allocate it to drain the body) is
    // refused too, and does not take the server down.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(
        b"POST /User/CreateConfig HTTP/1.1\r\nHost: x\r\n\
          Content-Length: 99999999999999999\r\n\r\nabc",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before the head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    drop(s);

    // The server is still fine.
    expect(call(p, Api::ListConfigs, json!({})), 200, "Accept");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn protobuf_encoding() {
    let dir = temp_dir("protobuf");
    let srv = Server::start(&dir, &[]);
    let p = srv.port;

    let req = Request {
        request_id: "pb-1".into(),
        agent_group: Some(AgentGroup {
            group_name: "db".into(),
            description: "databases".into(),
            tags: vec![AgentGroupTag {
                name: "role".into(),
                value: "db".into(),
            }],
        }),
        ..Request::default()
    };
    let (status, resp) = call_pb(p, Api::CreateAgentGroup, &req);
    assert_eq!((status, resp.code), (200, Code::Accept));
    assert_eq!(resp.response_id, "pb-1");
    let (status, resp) = call_pb(p, Api::CreateAgentGroup, &req);
    assert_eq!((status, resp.code), (400, Code::AgentGroupAlreadyExist));

    let get = Request {
        group_name: "db".into(),
        ..Request::default()
    };
    let (_, resp) = call_pb(p, Api::GetAgentGroup, &get);
    assert_eq!(
        resp.payload,
        Payload::AgentGroup(req.agent_group.clone().unwrap())
    );

    let cfg = Config {
        config_name: "pg".into(),
        agent_type: "tend".into(),
        description: "postgres".into(),
        content: "component pg { command \"/bin/sleep 1000\"; }".into(),
    };
    let create = Request {
        config_detail: Some(cfg.clone()),
        ..Request::default()
    };
    assert_eq!(call_pb(p, Api::CreateConfig, &create).1.code, Code::Accept);
    let (_, resp) = call_pb(p, Api::ListConfigs, &Request::default());
    assert_eq!(resp.payload, Payload::Configs(vec![cfg.clone()]));
    let names = Request {
        group_name: "db".into(),
        config_name: "pg".into(),
        ..Request::default()
    };
    assert_eq!(
        call_pb(p, Api::ApplyConfigToAgentGroup, &names).1.code,
        Code::Accept
    );
    let (_, resp) = call_pb(p, Api::GetAppliedAgentGroups, &names);
    assert_eq!(resp.payload, Payload::AgentGroupNames(vec!["db".into()]));
    let (status, resp) = call_pb(
        p,
        Api::GetConfig,
        &Request {
            config_name: "nope".into(),
            ..Request::default()
        },
    );
    assert_eq!((status, resp.code), (404, Code::ConfigNotExist));
    let (status, resp) = call_pb(p, Api::GetConfig, &Request::default());
    assert_eq!((status, resp.code), (400, Code::BadRequest));
    assert!(resp.message.contains("config_name"));

    // The agent side in protobuf.
    let hb = Request {
        request_id: "hb".into(),
        agent_id: "pb-agent".into(),
        agent_type: "tend".into(),
        agent_version: "0.1".into(),
        ip: "10.1.1.1".into(),
        tags: BTreeMap::from([("role".to_string(), "db".to_string())]),
        running_status: "running".into(),
        startup_time: 1_700_000_000,
        ..Request::default()
    };
    let (status, resp) = call_pb(p, Api::HeartBeat, &hb);
    assert_eq!(
        (status, resp.code, resp.response_id.as_str()),
        (200, Code::Accept, "hb")
    );
    let stats = Request {
        agent_id: "pb-agent".into(),
        running_details: Some(RunningStatistics {
            cpu: 0.5,
            memory: 4096,
            extras: BTreeMap::from([("configs".to_string(), "1".to_string())]),
        }),
        ..Request::default()
    };
    assert_eq!(
        call_pb(p, Api::RunningStatistics, &stats).1.code,
        Code::Accept
    );
    let alarm = Request {
        agent_id: "pb-agent".into(),
        alarm_type: "reload".into(),
        detail: "bad".into(),
        ..Request::default()
    };
    assert_eq!(call_pb(p, Api::Alarm, &alarm).1.code, Code::Accept);
    let pull = Request {
        agent_id: "pb-agent".into(),
        config_versions: BTreeMap::from([("gone".to_string(), 4)]),
        ..Request::default()
    };
    let (_, resp) = call_pb(p, Api::GetConfigList, &pull);
    let Payload::ConfigUpdateInfos(infos) = resp.payload else {
        panic!("no infos: {resp:?}");
    };
    assert_eq!(infos.len(), 2, "{infos:?}");
    assert_eq!(infos[0].config_name, "gone");
    assert_eq!(infos[0].update_status, UpdateStatus::Deleted);
    assert_eq!(infos[1].config_name, "pg");
    assert_eq!(infos[1].update_status, UpdateStatus::New);
    assert_eq!(infos[1].content, cfg.content);

    let (_, resp) = call_pb(p, Api::ListAgents, &names);
    let Payload::Agents(agents) = resp.payload else {
        panic!("no agents: {resp:?}");
    };
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent_id, "pb-agent");
    assert_eq!(agents[0].version, "0.1");
    assert_eq!(agents[0].running_details["memory"], "4096");
    assert_eq!(agents[0].running_details["configs"], "1");
    assert!(agents[0].latest_heartbeat_time > 0);

    // Unknown fields in a request are skipped: append field 99.
    let mut body = get.encode(Api::GetAgentGroup);
    body.extend_from_slice(&[0x9a, 0x06, 0x03, b'x', b'y', b'z']);
    let r = http(p, "GET", Api::GetAgentGroup.path(), &[PROTO], &body);
    assert_eq!(r.status, 200);
    let resp = Response::decode(&r.body, Api::GetAgentGroup.payload()).unwrap();
    assert_eq!(resp.code, Code::Accept);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn versions_and_config_list() {
    let dir = temp_dir("versions");
    let srv = Server::start(&dir, &[]);
    let p = srv.port;

    expect(
        call(
            p,
            Api::CreateAgentGroup,
            json!({"agent_group": group("web", &[("role", "web")])}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("all", "a0")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("front", "f0")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "default", "config_name": "all"}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "web", "config_name": "front"}),
        ),
        200,
        "Accept",
    );

    // Unknown agents cannot pull, report or alarm.
    expect(
        call(
            p,
            Api::GetConfigList,
            json!({"agent_id": "ghost", "config_versions": {}}),
        ),
        404,
        "AgentNotExist",
    );
    expect(
        call(
            p,
            Api::Alarm,
            json!({"agent_id": "ghost", "type": "t", "detail": "d"}),
        ),
        404,
        "AgentNotExist",
    );
    expect(
        call(
            p,
            Api::RunningStatistics,
            json!({"agent_id": "ghost", "running_details": {"cpu": 1.0}}),
        ),
        404,
        "AgentNotExist",
    );

    expect(heartbeat(p, "web-1", &[("role", "web")]), 200, "Accept");
    expect(heartbeat(p, "db-1", &[("role", "db")]), 200, "Accept");

    // NEW for everything its groups give it; tags decide the groups.
    let l = config_list(p, "web-1", json!({}));
    assert_eq!(l["all"], ("NEW".to_string(), 0));
    assert_eq!(l["front"], ("NEW".to_string(), 0));
    let l = config_list(p, "db-1", json!({}));
    assert_eq!(l.keys().collect::<Vec<_>>(), ["all"]);

    // SAME when current; int64 as a string is accepted (protojson style).
    let l = config_list(p, "web-1", json!({"all": 0, "front": "0"}));
    assert_eq!(l["all"], ("SAME".to_string(), 0));
    assert_eq!(l["front"], ("SAME".to_string(), 0));

    // MODIFIED after an update, with the new content.
    expect(
        call(
            p,
            Api::UpdateConfig,
            json!({"config_detail": config("front", "f1")}),
        ),
        200,
        "Accept",
    );
    let v = expect(
        call(
            p,
            Api::GetConfigList,
            json!({"agent_id": "web-1", "config_versions": {"all": 0, "front": 0}}),
        ),
        200,
        "Accept",
    );
    let front = v["config_update_infos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["config_name"] == "front")
        .unwrap()
        .clone();
    assert_eq!(front["update_status"], "MODIFIED");
    assert_eq!(front["config_version"], 1);
    assert_eq!(front["content"], "f1");

    // DELETED once removed from its group, and once deleted.
    expect(
        call(
            p,
            Api::RemoveConfigFromAgentGroup,
            json!({"group_name": "web", "config_name": "front"}),
        ),
        200,
        "Accept",
    );
    let l = config_list(p, "web-1", json!({"all": 0, "front": 1}));
    assert_eq!(l["front"].0, "DELETED");
    assert_eq!(l["all"].0, "SAME");
    expect(
        call(p, Api::DeleteConfig, json!({"config_name": "front"})),
        200,
        "Accept",
    );

    // A re-created config continues the count: versions never go back.
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("front", "f2")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "web", "config_name": "front"}),
        ),
        200,
        "Accept",
    );
    let l = config_list(p, "web-1", json!({"all": 0, "front": 1}));
    let (status, version) = &l["front"];
    assert_eq!(status, "MODIFIED");
    assert!(*version > 1, "version went back to {version}");

    // A tag change moves the agent between groups.
    expect(heartbeat(p, "web-1", &[("role", "db")]), 200, "Accept");
    let l = config_list(p, "web-1", json!({"all": 0, "front": *version}));
    assert_eq!(l["front"].0, "DELETED");
    let v = expect(
        call(p, Api::ListAgents, json!({"group_name": "web"})),
        200,
        "Accept",
    );
    assert_eq!(v["agents"], json!([]));
    let v = expect(
        call(p, Api::ListAgents, json!({"group_name": "default"})),
        200,
        "Accept",
    );
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
    expect(
        call(p, Api::ListAgents, json!({"group_name": "nope"})),
        404,
        "AgentGroupNotExist",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A config is given only to agents of the type it names; one that names
/// none suits all. (A tend agent cannot run an iLogtail pipeline.)
#[test]
fn configs_follow_agent_type() {
    let dir = temp_dir("agent-type");
    let srv = Server::start(&dir, &[]);
    let p = srv.port;
    let typed = |name: &str, agent_type: &str| {
        json!({"config_detail": {"config_name": name, "agent_type": agent_type,
                                 "description": "", "content": "c"}})
    };
    for (name, kind) in [
        ("for-tend", "tend"),
        ("for-logtail", "iLogtail"),
        ("any", ""),
    ] {
        expect(call(p, Api::CreateConfig, typed(name, kind)), 200, "Accept");
        expect(
            call(
                p,
                Api::ApplyConfigToAgentGroup,
                json!({"group_name": "default", "config_name": name}),
            ),
            200,
            "Accept",
        );
    }
    expect(heartbeat(p, "board-1", &[]), 200, "Accept");
    let logtail = json!({"agent_id": "lt-1", "agent_type": "iLogtail", "agent_version": "1",
                         "ip": "10.0.0.2", "tags": {}, "running_status": "running",
                         "startup_time": 1_700_000_000});
    expect(call(p, Api::HeartBeat, logtail), 200, "Accept");

    let l = config_list(p, "board-1", json!({}));
    assert_eq!(l.keys().collect::<Vec<_>>(), ["any", "for-tend"]);
    let l = config_list(p, "lt-1", json!({}));
    assert_eq!(l.keys().collect::<Vec<_>>(), ["any", "for-logtail"]);

    // Retyping a config takes it away from the agents it no longer suits.
    expect(
        call(p, Api::UpdateConfig, typed("for-tend", "iLogtail")),
        200,
        "Accept",
    );
    let l = config_list(p, "board-1", json!({"any": 0, "for-tend": 0}));
    assert_eq!(l["for-tend"].0, "DELETED");
    assert_eq!(l["any"].0, "SAME");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offline_after_three_missed_heartbeats() {
    let dir = temp_dir("offline");
    let srv = Server::start(&dir, &["--heartbeat-interval", "1"]);
    let p = srv.port;
    let status = || {
        let v = expect(
            call(p, Api::ListAgents, json!({"group_name": "default"})),
            200,
            "Accept",
        );
        v["agents"][0]["running_status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    expect(heartbeat(p, "a", &[]), 200, "Accept");
    assert_eq!(status(), "running");
    let start = Instant::now();
    while status() != "offline" {
        assert!(start.elapsed() < DEADLINE, "never went offline");
        std::thread::sleep(Duration::from_millis(200));
    }
    expect(heartbeat(p, "a", &[]), 200, "Accept");
    assert_eq!(status(), "running");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigkill_keeps_everything_acknowledged() {
    let dir = temp_dir("sigkill");
    let mut srv = Server::start(&dir, &[]);
    let p = srv.port;
    expect(
        call(
            p,
            Api::CreateAgentGroup,
            json!({"agent_group": group("g", &[("k", "v")])}),
        ),
        200,
        "Accept",
    );
    for i in 0..20 {
        expect(
            call(
                p,
                Api::CreateConfig,
                json!({"config_detail": config(&format!("c{i}"), "x")}),
            ),
            200,
            "Accept",
        );
    }
    expect(
        call(
            p,
            Api::UpdateConfig,
            json!({"config_detail": config("c0", "y")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(p, Api::DeleteConfig, json!({"config_name": "c1"})),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "g", "config_name": "c2"}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "g", "config_name": "c0"}),
        ),
        200,
        "Accept",
    );
    expect(heartbeat(p, "agent-9", &[("k", "v")]), 200, "Accept");

    srv.restart(&[]);
    let p = srv.port;
    let v = expect(
        call(p, Api::GetAgentGroup, json!({"group_name": "g"})),
        200,
        "Accept",
    );
    assert_eq!(v["agent_group"]["tags"][0]["name"], "k");
    let v = expect(call(p, Api::ListConfigs, json!({})), 200, "Accept");
    assert_eq!(v["config_details"].as_array().unwrap().len(), 19);
    let v = expect(
        call(p, Api::GetConfig, json!({"config_name": "c0"})),
        200,
        "Accept",
    );
    assert_eq!(v["config_detail"]["content"], "y");
    expect(
        call(p, Api::GetConfig, json!({"config_name": "c1"})),
        404,
        "ConfigNotExist",
    );
    let v = expect(
        call(p, Api::GetAppliedAgentGroups, json!({"config_name": "c2"})),
        200,
        "Accept",
    );
    assert_eq!(names(&v, "agent_group_names"), ["g"]);
    // The agent's registration survived; versions continue where they were.
    let l = config_list(p, "agent-9", json!({"c0": 0}));
    assert_eq!(l["c0"], ("MODIFIED".to_string(), 1));
    assert_eq!(l["c2"], ("NEW".to_string(), 0));
    expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("c1", "z")}),
        ),
        200,
        "Accept",
    );
    expect(
        call(
            p,
            Api::ApplyConfigToAgentGroup,
            json!({"group_name": "g", "config_name": "c1"}),
        ),
        200,
        "Accept",
    );
    let l = config_list(p, "agent-9", json!({}));
    assert_eq!(l["c1"], ("NEW".to_string(), 2));

    // Kill in the middle of a stream of writes: every answered one is kept.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..1000 {
            let body = json!({"config_detail": config(&format!("s{i}"), "x")}).to_string();
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", p)) else {
                break;
            };
            let head = format!(
                "POST /User/CreateConfig HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(head.as_bytes()).is_err() {
                break;
            }
            let mut out = String::new();
            if s.read_to_string(&mut out).is_err() || !out.contains("\"Accept\"") {
                break;
            }
            acked.push(i);
            let _ = tx.send(i);
        }
        acked
    });
    // Kill once a few writes are through, while the stream goes on.
    for _ in 0..5 {
        rx.recv_timeout(DEADLINE).expect("no write acknowledged");
    }
    srv.kill9();
    let acked = writer.join().unwrap();
    assert!(acked.len() >= 5);
    srv = Server::start(&dir, &[]);
    let p = srv.port;
    for i in acked {
        expect(
            call(p, Api::GetConfig, json!({"config_name": format!("s{i}")})),
            200,
            "Accept",
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_store_file_stops_startup() {
    let dir = temp_dir("torn");
    let mut srv = Server::start(&dir, &[]);
    expect(
        call(
            srv.port,
            Api::CreateConfig,
            json!({"config_detail": config("keep", "me")}),
        ),
        200,
        "Accept",
    );
    srv.kill9();
    let state = dir.join("state.json");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, &good[..good.len() - 3]).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
        .args([
            "config-server",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--store",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "started on a torn store");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt") && err.contains("state.json"),
        "{err}"
    );
    // The damaged file is left for the operator, not replaced.
    assert_eq!(std::fs::read(&state).unwrap(), &good[..good.len() - 3]);

    // Restored, the server starts with the data.
    std::fs::write(&state, &good).unwrap();
    let srv = Server::start(&dir, &[]);
    expect(
        call(srv.port, Api::GetConfig, json!({"config_name": "keep"})),
        200,
        "Accept",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bearer_token_is_required_when_configured() {
    let dir = temp_dir("token");
    let token = dir.join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let store = dir.join("store");
    let srv = Server::start(&store, &["--token-file", token.to_str().unwrap()]);
    let p = srv.port;
    let r = http(p, "GET", "/User/ListConfigs", &[JSON], b"");
    assert_eq!(r.status, 401);
    let r = http(
        p,
        "GET",
        "/User/ListConfigs",
        &[JSON, ("Authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = http(
        p,
        "GET",
        "/User/ListConfigs",
        &[JSON, ("Authorization", "Bearer s3cret")],
        b"",
    );
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "Accept");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_busy_and_internal_error() {
    let dir = temp_dir("limits");
    let store = dir.join("store");
    let srv = Server::start(&store, &["--max-agents", "1"]);
    let p = srv.port;
    expect(heartbeat(p, "one", &[]), 200, "Accept");
    expect(heartbeat(p, "one", &[]), 200, "Accept");
    expect(heartbeat(p, "two", &[]), 503, "ServerBusy");

    // The store vanishing under the server makes writes fail loudly, and
    // nothing unsaved is served.
    std::fs::remove_dir_all(&store).unwrap();
    let v = expect(
        call(
            p,
            Api::CreateConfig,
            json!({"config_detail": config("lost", "x")}),
        ),
        500,
        "InternalServerError",
    );
    assert!(v["message"].as_str().unwrap().contains("state.json"), "{v}");
    expect(
        call(p, Api::GetConfig, json!({"config_name": "lost"})),
        404,
        "ConfigNotExist",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
