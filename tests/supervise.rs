//! Config mode: respawn, throttling, stop escalation, dependency order,
//! reloads, return codes, startup and shutdown components.

mod common;
use common::*;

/// A component that logs "start TAG" and, on SIGTERM, "stop TAG", to LOG.
fn logger(tag: &str, extra: &str) -> String {
    format!(
        "component {tag} {{ command \"sh -c 'echo start {tag} >> $DIR/log; trap \\\"echo stop {tag} >> $DIR/log; exit 0\\\" TERM; while :; do sleep 0.2 & wait $!; done'\"; {extra} }}\n"
    )
}

#[test]
fn respawn_gives_a_new_pid() {
    let d = Daemon::start(
        "respawn",
        "component r { command \"sh -c 'echo $$ >> $DIR/pids; exec sleep 1000'\"; }",
    );
    let pids = d.dir.path("pids");
    assert!(
        wait_until(PATIENCE, || lines(&pids).len() == 1),
        "{}",
        d.log()
    );
    let first: i64 = lines(&pids)[0].parse().unwrap();
    // The shell may write its PID before tend's main loop records it.
    assert!(wait_until(PATIENCE, || d.pid_of("r") == Some(first)));
    // SAFETY: killing the component tend started for this test.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    assert!(
        wait_until(PATIENCE, || lines(&pids).len() == 2),
        "{}",
        d.log()
    );
    let second: i64 = lines(&pids)[1].parse().unwrap();
    assert_ne!(first, second);
    assert!(wait_until(PATIENCE, || d.pid_of("r") == Some(second)));
    assert_eq!(d.program("r")["restarts"], 1);
    assert_eq!(d.program("r")["exit_code"], 137);
}

#[test]
fn crash_loop_goes_to_sleeping() {
    let d = Daemon::start(
        "crash",
        "component c { command \"sh -c 'exit 1'\"; max-restarts 3; restart-window 60; sleep-time 300; }
         component p { command \"sh -c 'exit 1'\"; max-restarts 3; flags (precious); stop-timeout 1; }",
    );
    d.wait_status("c", "sleeping");
    let prog = d.program("c");
    let wakeup = prog["wakeup"].as_i64().expect("wakeup while sleeping");
    assert!(wakeup > 200 && wakeup <= 300, "{prog}");
    // A precious component never sleeps: it has restarted past the limit.
    assert!(wait_until(PATIENCE, || d.program("p")["restarts"]
        .as_i64()
        .unwrap_or(0)
        > 5));
    assert_ne!(d.status("p"), "sleeping");
    // The alive endpoint tells a sleeping component apart, with Retry-After.
    let alive = d.get("/alive/c");
    assert_eq!(alive.status, 503);
    assert!(alive.header("Retry-After").is_some());
}

#[test]
fn stop_timeout_escalates_to_sigkill() {
    let d = Daemon::start(
        "escalate",
        "component stubborn { command \"sh -c 'trap \\\"\\\" TERM; touch $DIR/ready; while :; do sleep 0.2; done'\"; stop-timeout 1; }",
    );
    assert!(wait_until(PATIENCE, || d.dir.path("ready").exists()));
    d.wait_status("stubborn", "running");
    let pid = d.pid_of("stubborn").unwrap();
    let r = d.call("DELETE", "/programs/stubborn", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "OK");
    d.wait_status("stubborn", "stopped");
    assert!(!alive(pid));
    assert_eq!(d.program("stubborn")["exit_code"], 128 + libc::SIGKILL);
    assert_eq!(d.program("stubborn")["active"], false);
    assert!(d.log().contains("SIGKILL"));
}

#[test]
fn dependencies_start_first_and_stop_last() {
    let conf = format!(
        "{}{}{}",
        logger("c", "prerequisites (b);"),
        logger("a", ""),
        logger("b", "prerequisites a;")
    );
    let mut d = Daemon::start("deps", &conf);
    for t in ["a", "b", "c"] {
        d.wait_status(t, "running");
    }
    let (a, b, c) = (
        d.pid_of("a").unwrap(),
        d.pid_of("b").unwrap(),
        d.pid_of("c").unwrap(),
    );
    assert!(a < b && b < c, "start order by PID: a={a} b={b} c={c}");
    let log = d.dir.path("log");
    assert!(wait_until(PATIENCE, || lines(&log).len() == 3));
    d.signal(libc::SIGTERM);
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0));
    let stops: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| l.starts_with("stop"))
        .collect();
    assert_eq!(stops, vec!["stop c", "stop b", "stop a"], "{}", d.log());
}

#[test]
fn startup_finishes_before_others_and_shutdown_runs_last() {
    let conf = "component s { mode startup; command \"sh -c 'sleep 0.5; echo startup >> $DIR/log'\"; }
                component r { command \"sh -c 'echo respawn >> $DIR/log; trap \\\"echo stop >> $DIR/log; exit 0\\\" TERM; while :; do sleep 0.2 & wait $!; done'\"; }
                component bye { mode shutdown; command \"sh -c 'echo shutdown >> $DIR/log'\"; }";
    let mut d = Daemon::start("phases", conf);
    d.wait_status("r", "running");
    assert_eq!(d.status("s"), "finished");
    assert_eq!(d.status("bye"), "stopped");
    // "running" means exec'd; wait until r's shell has set its trap.
    assert!(wait_until(PATIENCE, || lines(&d.dir.path("log")).len() == 2));
    d.signal(libc::SIGINT);
    d.wait_exit();
    assert_eq!(
        lines(&d.dir.path("log")),
        vec!["startup", "respawn", "stop", "shutdown"]
    );
}

#[test]
fn graceful_reload_keeps_unchanged_pids() {
    let conf = "component keep { command \"sleep 1000\"; }
                component change { command \"sleep 1000\"; }
                component remove { command \"sleep 1000\"; }";
    let d = Daemon::start("graceful", conf);
    for t in ["keep", "change", "remove"] {
        d.wait_status(t, "running");
    }
    let keep = d.pid_of("keep").unwrap();
    let change = d.pid_of("change").unwrap();
    let removed = d.pid_of("remove").unwrap();
    d.dir.write(
        "tend.conf",
        "component keep { command \"sleep 1000\"; }
         component change { command \"sleep 2000\"; }
         component add { command \"sleep 1000\"; }",
    );
    d.signal(libc::SIGUSR2);
    d.wait_status("add", "running");
    assert!(wait_until(PATIENCE, || d
        .pid_of("change")
        .is_some_and(|p| p != change)));
    assert!(wait_until(PATIENCE, || d.get("/programs/remove").json()
        == serde_json::json!([])));
    assert!(!alive(removed));
    assert!(!alive(change));
    assert_eq!(d.pid_of("keep"), Some(keep));
    assert_eq!(d.program("change")["command"], "sleep 2000");
}

#[test]
fn full_reload_restarts_everything() {
    let d = Daemon::start("full", "component x { command \"sleep 1000\"; }");
    d.wait_status("x", "running");
    let before = d.pid_of("x").unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(PATIENCE, || d.pid_of("x").is_some_and(|p| p != before)),
        "{}",
        d.log()
    );
    assert!(!alive(before));
}

#[test]
fn invalid_reload_keeps_the_old_config() {
    let d = Daemon::start("badreload", "component x { command \"sleep 1000\"; }");
    d.wait_status("x", "running");
    let before = d.pid_of("x").unwrap();
    d.dir.write(
        "tend.conf",
        "component x { comand \"sleep 5\"; }\ncomponent y { }",
    );
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(PATIENCE, || d.log().contains("reload refused")),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("tend.conf:1:"),
        "errors name file and line: {}",
        d.log()
    );
    let r = d.call("POST", "/api/config.reload", "");
    assert!(r.status >= 400, "{}", r.body);
    assert_eq!(r.json()["ok"], false);
    assert!(r.json()["message"].as_str().unwrap().contains("comand"));
    let r = d.call("POST", "/api/config.gracefulReload", "");
    assert_eq!(r.json()["ok"], false);
    assert_eq!(d.pid_of("x"), Some(before));
    assert_eq!(d.get("/programs/y").json(), serde_json::json!([]));
}

#[test]
fn return_code_actions() {
    let conf = "component off { command \"sh -c 'exit 3'\"; return-code 3 { action disable; } }
                component ex { command \"sh -c 'exit 4'\"; return-code 4 { action disable; exec \"echo ran $TEND_EXIT_CODE > $DIR/exec\"; } }";
    let d = Daemon::start("retcode", conf);
    assert!(
        wait_until(PATIENCE, || d.program("off")["active"] == false),
        "{}",
        d.log()
    );
    assert_eq!(d.status("off"), "stopped");
    assert_eq!(d.program("off")["restarts"], 0);
    assert!(wait_until(PATIENCE, || std::fs::read_to_string(
        d.dir.path("exec")
    )
    .is_ok_and(|s| s.trim() == "ran 4")));
}

#[test]
fn return_code_shutdown_ends_tend() {
    let mut d = Daemon::start(
        "retshut",
        "component main { command \"sh -c 'sleep 0.3; exit 5'\"; return-code 5 { action shutdown; } }
         component other { command \"sleep 1000\"; }",
    );
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn flush_signal_on_sigusr1_and_rpc() {
    let conf = "component f { command \"sh -c 'trap \\\"echo flushed >> $DIR/flush\\\" USR1; touch $DIR/ready; while :; do sleep 0.2 & wait $!; done'\"; flush-signal USR1; }
                component n { command \"sleep 1000\"; }";
    let d = Daemon::start("flush", conf);
    assert!(wait_until(PATIENCE, || d.dir.path("ready").exists()));
    d.wait_status("n", "running");
    let n = d.pid_of("n").unwrap();
    d.signal(libc::SIGUSR1);
    assert!(
        wait_until(PATIENCE, || lines(&d.dir.path("flush")).len() == 1),
        "{}",
        d.log()
    );
    let r = d.call("POST", "/api/plugins.flushBuffers", "");
    assert_eq!(r.json(), serde_json::json!({"ok": true}));
    assert!(wait_until(PATIENCE, || lines(&d.dir.path("flush")).len() == 2));
    // A component without a flush signal is left alone.
    assert_eq!(d.pid_of("n"), Some(n));
}

#[test]
fn once_component_finishes_and_api_can_rerun_it() {
    let d = Daemon::start(
        "once",
        "component o { mode once; command \"sh -c 'echo ran >> $DIR/runs'\"; }",
    );
    d.wait_status("o", "finished");
    assert_eq!(lines(&d.dir.path("runs")).len(), 1);
    let r = d.call("PUT", "/programs/o", "");
    assert_eq!(r.json()["status"], "OK");
    assert!(wait_until(PATIENCE, || lines(&d.dir.path("runs")).len() == 2));
    d.wait_status("o", "finished");
}

#[test]
fn disabled_component_starts_on_request() {
    let d = Daemon::start(
        "disabled",
        "component z { command \"sleep 1000\"; flags (disable); }",
    );
    assert_eq!(d.status("z"), "stopped");
    assert_eq!(d.program("z")["active"], false);
    d.call("PUT", "/programs/z", "");
    d.wait_status("z", "running");
    assert_eq!(d.program("z")["active"], true);
}

#[test]
fn inittab_file_runs_in_order() {
    let dir = TempDir::new("inittab");
    let log = dir.path("log");
    let tab = dir.write(
        "inittab",
        &format!(
            "# BusyBox style\n::sysinit:/bin/sh -c 'echo sysinit >> {l}'\n::wait:/bin/sh -c 'echo wait >> {l}'\n::respawn:/bin/sh -c 'echo respawn >> {l}; exec sleep 1000'\n::ctrlaltdel:/bin/sh -c 'echo cad >> {l}'\n",
            l = log.display()
        ),
    );
    let d = Daemon::start_with(dir, &["-c", tab.to_str().unwrap()]);
    assert!(
        wait_until(PATIENCE, || lines(&log).len() == 3),
        "{}",
        d.log()
    );
    assert_eq!(lines(&log), vec!["sysinit", "wait", "respawn"]);
    let progs = d.get("/programs").json();
    let modes: Vec<&str> = progs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["mode"].as_str())
        .collect();
    assert!(
        modes.contains(&"ctrlaltdel") && modes.contains(&"sysinit"),
        "{progs}"
    );
}

#[test]
fn tend_without_config_file_explains() {
    let out = std::process::Command::new(tend_bin())
        .args(["-c", "/nonexistent/tend.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tend.conf"));
}

/// BusyBox `askfirst`: the prompt appears on the line's terminal and the
/// command runs only after Enter. The terminal is a pseudo-terminal whose
/// master side plays the user.
#[test]
fn askfirst_waits_for_enter_on_its_terminal() {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a master fd we own;
    // ptsname_r writes at most the buffer's length.
    let (mut master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let slave = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        (std::fs::File::from_raw_fd(fd), slave)
    };
    let dir = TempDir::new("askfirst");
    let ran = dir.path("ran");
    let tab = dir.write(
        "inittab",
        &format!(
            "{slave}::askfirst:/bin/sh -c 'echo yes > {}; exec sleep 1000'\n",
            ran.display()
        ),
    );
    let d = Daemon::start_with(dir, &["-c", tab.to_str().unwrap()]);
    // Read what the terminal shows (non-blocking, with a deadline) until
    // the prompt is complete.
    // SAFETY: fcntl on the master fd we own.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut shown = Vec::new();
    let prompted = wait_until(PATIENCE, || {
        let mut buf = [0u8; 256];
        if let Ok(n) = master.read(&mut buf) {
            shown.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&shown).contains("Please press Enter to activate this console. ")
    });
    assert!(
        prompted,
        "no prompt; terminal showed {:?}; log: {}",
        String::from_utf8_lossy(&shown),
        d.log()
    );
    // Nobody pressed Enter yet: the command has not run.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!ran.exists(), "ran before Enter");
    master.write_all(b"\n").unwrap();
    assert!(wait_until(PATIENCE, || ran.exists()), "{}", d.log());
}

/// Listeners are bound at start: a reload that changes `control` says it
/// takes effect at the next restart, and the running socket keeps working.
#[test]
fn reload_with_changed_control_says_it_needs_a_restart() {
    let d = Daemon::start("ctlreload", "component x { command \"sleep 1000\"; }");
    d.wait_status("x", "running");
    let extra = d.dir.path("extra.sock");
    d.dir.write(
        "tend.conf",
        &format!(
            "control {{ socket \"unix://{}\"; }}\ncomponent x {{ command \"sleep 1000\"; }}\n",
            extra.display()
        ),
    );
    d.signal(libc::SIGUSR2);
    assert!(
        wait_until(PATIENCE, || d.log().contains("`control` settings changed")),
        "{}",
        d.log()
    );
    assert_eq!(d.get("/programs/x").status, 200);
    assert!(!extra.exists());
}
