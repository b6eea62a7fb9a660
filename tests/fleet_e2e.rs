//! End to end on loopback: one ConfigServer, two agents in different groups.
//! Configs created, applied, changed and removed through the User API show
//! up as started, restarted and stopped components on the right agents.

mod common;
use common::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tend::client::{self, Endpoint};
use tend::fleet::messages::{Api, Config as FleetConfig, Request, Response};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(dir: &TempDir, port: u16) -> Child {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.path("server.log"))
        .unwrap();
    let child = Command::new(tend_bin())
        .args([
            "config-server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
        ])
        .arg(dir.path("store"))
        .args(["--heartbeat-interval", "1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    assert!(wait_until(PATIENCE, || client::request(
        &ep,
        "GET",
        "/User/ListAgentGroups",
        &[],
        b"",
        Duration::from_secs(2)
    )
    .is_ok()));
    child
}

fn user(port: u16, method: &str, path: &str, body: Value) -> (u16, Value) {
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let r = client::request(
        &ep,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

/// A User API call in protobuf, answered in kind.
fn user_pb(port: u16, api: Api, req: &Request) -> (u16, Response) {
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let method = format!("{:?}", api.method()).to_uppercase();
    let r = client::request(
        &ep,
        &method,
        api.path(),
        &[("Content-Type", "application/x-protobuf")],
        &req.encode(api),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.header("Content-Type"), Some("application/x-protobuf"));
    (r.status, Response::decode(&r.body, api.payload()).unwrap())
}

fn agent_config(dir: &TempDir, name: &str, port: u16, tags: &str) -> String {
    format!(
        "agent {{ server \"http://127.0.0.1:{port}\"; id {name}; tags ({tags}); interval 1; cache \"{}\"; }}\n",
        dir.path(&format!("cache-{name}")).display()
    )
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn configs_flow_from_server_to_the_right_agents() {
    let shared = TempDir::new("fleet-e2e");
    let port = free_port();
    let mut server = start_server(&shared, port);

    // Group `web` matches agents tagged role=web; `default` matches all.
    let (s, v) = user(
        port,
        "POST",
        "/User/CreateAgentGroup",
        json!({"agent_group": {"group_name": "web", "description": "web boards", "tags": [{"name": "role", "value": "web"}]}}),
    );
    assert_eq!((s, v["code"].as_str()), (200, Some("Accept")), "{v}");
    let (s, _) = user(
        port,
        "POST",
        "/User/CreateConfig",
        json!({"config_detail": {"config_name": "webapp", "agent_type": "tend", "content": "component webapp { command \"sleep 1001\"; }"}}),
    );
    assert_eq!(s, 200);
    let (s, _) = user(
        port,
        "POST",
        "/User/CreateConfig",
        json!({"config_detail": {"config_name": "common", "agent_type": "tend", "content": "component common { command \"sleep 1002\"; }"}}),
    );
    assert_eq!(s, 200);
    assert_eq!(
        user(
            port,
            "PUT",
            "/User/ApplyConfigToAgentGroup",
            json!({"group_name": "web", "config_name": "webapp"})
        )
        .0,
        200
    );
    assert_eq!(
        user(
            port,
            "PUT",
            "/User/ApplyConfigToAgentGroup",
            json!({"group_name": "default", "config_name": "common"})
        )
        .0,
        200
    );

    let web = Daemon::start(
        "fleet-web",
        &agent_config(&shared, "web1", port, "role=web"),
    );
    let db = Daemon::start("fleet-db", &agent_config(&shared, "db1", port, "role=db"));

    web.wait_status("webapp", "running");
    web.wait_status("common", "running");
    db.wait_status("common", "running");
    assert_eq!(
        db.get("/programs/webapp").json(),
        json!([]),
        "db must not get the web config"
    );

    // Both agents are listed by the server, online.
    let (_, agents) = user(
        port,
        "GET",
        "/User/ListAgents",
        json!({"group_name": "default"}),
    );
    let ids: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    assert!(ids.contains(&"web1") && ids.contains(&"db1"), "{agents}");

    // Modify: the component restarts with the new command.
    let old = web.pid_of("webapp").unwrap();
    let common_pid = web.pid_of("common").unwrap();
    // This update travels as protobuf.
    let update = Request {
        request_id: "pb-1".into(),
        config_detail: Some(FleetConfig {
            config_name: "webapp".into(),
            agent_type: "tend".into(),
            description: String::new(),
            content: "component webapp { command \"sleep 1003\"; }".into(),
        }),
        ..Request::default()
    };
    let (status, answer) = user_pb(port, Api::UpdateConfig, &update);
    assert_eq!(status, 200);
    assert_eq!(answer.response_id, "pb-1");
    assert_eq!(answer.code.name(), "Accept");
    assert!(
        wait_until(PATIENCE, || web.program("webapp")["command"]
            == "sleep 1003"
            && web.status("webapp") == "running"),
        "{}",
        web.log()
    );
    assert!(!alive(old));
    assert_eq!(
        web.pid_of("common"),
        Some(common_pid),
        "unchanged config keeps its PID"
    );

    // A config that does not parse is refused by the agent and alarmed; nothing changes.
    let running = web.pid_of("webapp").unwrap();
    assert_eq!(user(port, "PUT", "/User/UpdateConfig", json!({"config_detail": {"config_name": "webapp", "agent_type": "tend", "content": "component webapp { comand x; }"}})).0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(web.pid_of("webapp"), Some(running));

    // Remove from the group: the component stops and leaves the table.
    assert_eq!(
        user(
            port,
            "DELETE",
            "/User/RemoveConfigFromAgentGroup",
            json!({"group_name": "web", "config_name": "webapp"})
        )
        .0,
        200
    );
    assert!(
        wait_until(PATIENCE, || web.get("/programs/webapp").json() == json!([])),
        "{}",
        web.log()
    );
    assert!(!alive(running));

    // The server dies hard and comes back with everything it acknowledged.
    kill9(&mut server);
    let mut server = start_server(&shared, port);
    let (_, groups) = user(
        port,
        "GET",
        "/User/GetAppliedConfigsForAgentGroup",
        json!({"group_name": "default"}),
    );
    assert_eq!(groups["config_names"], json!(["common"]), "{groups}");

    // An agent restarted while the server is down boots from its cache.
    kill9(&mut server);
    drop(db);
    let db2 = Daemon::start("fleet-db2", &agent_config(&shared, "db1", port, "role=db"));
    db2.wait_status("common", "running");
    assert_eq!(db2.program("common")["command"], "sleep 1002");
}
