//! tendctl against the real daemon over its UNIX socket.

mod common;
use common::*;
use std::process::Command;

fn ctl(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tend_bin())
        .arg("ctl")
        .arg("--url")
        .arg(format!("unix://{}", d.sock.display()))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_stop_start_alive_and_reload() {
    let d = Daemon::start(
        "ctl",
        "component web { command \"sleep 1000\"; }\ncomponent db { command \"sleep 1000\"; }\ncomponent job { mode once; command \"true\"; }",
    );
    d.wait_status("web", "running");
    d.wait_status("job", "finished");

    let (code, out, _) = ctl(&d, &["list"]);
    assert_eq!(code, 0);
    for tag in ["web", "db", "job"] {
        assert!(out.contains(tag), "{out}");
    }
    let (code, out, _) = ctl(&d, &["list", "mode", "once"]);
    assert_eq!(code, 0);
    assert!(out.contains("job") && !out.contains("web"), "{out}");

    assert_eq!(ctl(&d, &["alive", "web"]).0, 0);
    let (code, _, _) = ctl(&d, &["stop", "web"]);
    assert_eq!(code, 0);
    d.wait_status("web", "stopped");
    assert_eq!(ctl(&d, &["alive", "web"]).0, 1);
    assert_eq!(ctl(&d, &["alive", "nosuch"]).0, 1);
    assert_eq!(ctl(&d, &["start", "web"]).0, 0);
    d.wait_status("web", "running");

    d.wait_status("db", "running");
    let db = d.pid_of("db").unwrap();
    assert_eq!(ctl(&d, &["restart", "db"]).0, 0);
    assert!(wait_until(PATIENCE, || d
        .pid_of("db")
        .is_some_and(|p| p != db)));

    let (code, out, _) = ctl(&d, &["--json", "id"]);
    assert_eq!(code, 0);
    let id: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(id["PID"], d.pid());

    assert_eq!(ctl(&d, &["reload", "--graceful"]).0, 0);
    let (code, out, _) = ctl(&d, &["metrics"]);
    assert_eq!(code, 0);
    assert!(out.contains("tend_component_up"), "{out}");

    // A selector matching nothing changes nothing (pies semantics).
    assert_eq!(ctl(&d, &["stop", "nosuch"]).0, 0);
    d.wait_status("web", "running");
    // A malformed condition is a usage error.
    assert_eq!(ctl(&d, &["list", "status"]).0, 2);
}

#[test]
fn unreachable_daemon_is_a_clear_error() {
    let out = Command::new(tend_bin())
        .args(["ctl", "--url", "unix:///nonexistent/tend.sock", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/tend.sock"), "{err}");
}

#[test]
fn reexec_keeps_the_pid_and_restarts_components() {
    let d = Daemon::start("reexec", "component x { command \"sleep 1000\"; }");
    d.wait_status("x", "running");
    let before = d.pid_of("x").unwrap();
    // pies spells it literally: PUT /instance/PID.
    let r = d.call("PUT", "/instance/PID", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        // While tend re-executes, the socket goes away and comes back:
        // failed or empty answers in between are expected.
        wait_until(PATIENCE, || http(&d.sock, "GET", "/programs/x", "")
            .ok()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .and_then(|v| v[0]["PID"].as_i64())
            .is_some_and(|p| p != before)),
        "{}",
        d.log()
    );
    assert!(!alive(before));
    let id = d.get("/instance").json();
    assert_eq!(id["PID"], d.pid(), "same process after re-exec");
}
