//! `tend -- CMD`: tini-compatible container init, as PID 1 and not.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(tend_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tend")
}

#[test]
fn exit_status_is_the_commands() {
    assert_eq!(run(&["--", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(run(&["--", "true"]).status.code(), Some(0));
    // Without `--`, as tini allows.
    assert_eq!(run(&["sh", "-c", "exit 42"]).status.code(), Some(42));
}

#[test]
fn killed_command_gives_128_plus_signal() {
    assert_eq!(
        run(&["--", "sh", "-c", "kill -KILL $$"]).status.code(),
        Some(137)
    );
    assert_eq!(
        run(&["--", "sh", "-c", "kill -SEGV $$"]).status.code(),
        Some(139)
    );
}

#[test]
fn missing_command_is_127_with_a_message() {
    let out = run(&["--", "/nonexistent/tend-test-cmd"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tend-test-cmd"));
}

/// tini's `-e`: the listed statuses (143 is death by SIGTERM) become 0;
/// others pass through; a bad one is a usage error, not a silent default.
#[test]
fn remapped_exit_statuses_become_zero() {
    assert_eq!(
        run(&["-e", "143", "--", "sh", "-c", "kill -TERM $$"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["-e143", "-e", "3", "--", "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["-e", "143", "--", "sh", "-c", "exit 4"])
            .status
            .code(),
        Some(4)
    );
    let bad = run(&["-e", "256", "--", "true"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("0 to 255"));
}

/// tini's `-w`: each orphan reaped is reported; without it, tend is quiet.
#[test]
fn warn_on_reap_reports_orphans() {
    let script = "(sleep 0.1 &); sleep 0.5";
    let loud = run(&["-gw", "--", "sh", "-c", script]);
    assert_eq!(loud.status.code(), Some(0));
    let err = String::from_utf8_lossy(&loud.stderr);
    assert!(err.contains("reaped zombie process with pid"), "{err}");
    let quiet = run(&["--", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

/// tini's `-p`: when the process that started tend dies, tend gets the
/// signal, and SIGTERM then ends the command and tend.
#[test]
fn parent_death_signal_stops_tend() {
    let dir = TempDir::new("pdeath");
    let pidfile = dir.path("tend.pid");
    // The parent starts tend, records its PID and waits for its stdin.
    let script = format!(
        "{tend} -p SIGTERM -- sleep 1000 & echo $! > {p}; read _",
        tend = tend_bin(),
        p = pidfile.display()
    );
    let mut parent = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the parent shell");
    let patience = Duration::from_secs(20);
    assert!(wait_until(patience, || lines(&pidfile).len() == 1));
    let tend: i64 = lines(&pidfile)[0].parse().unwrap();
    // Running its command means tend is past its option handling.
    let has_child = || {
        std::fs::read_to_string(format!("/proc/{tend}/task/{tend}/children"))
            .is_ok_and(|c| !c.trim().is_empty())
    };
    assert!(wait_until(patience, has_child));
    parent.kill().unwrap();
    parent.wait().unwrap();
    assert!(
        wait_until(patience, || !alive(tend)),
        "tend {tend} outlived its parent"
    );
}

/// Each forwarded signal reaches the command, which reports it and exits.
#[test]
fn signals_are_forwarded() {
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        let dir = TempDir::new("fwd");
        let out = dir.path("got");
        let ready = dir.path("ready");
        let script = format!(
            "trap 'echo {name} > {out}; exit 7' {name}; touch {ready}; while :; do sleep 0.1; done",
            out = out.display(),
            ready = ready.display()
        );
        let mut child = Command::new(tend_bin())
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_until(PATIENCE, || ready.exists()),
            "command did not start"
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(7), "SIG{name}");
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), name);
    }
}

/// With -g the signal goes to the whole process group: a grandchild sees it too.
#[test]
fn group_forwarding_reaches_grandchildren() {
    let dir = TempDir::new("grp");
    let got = dir.path("got");
    let ready = dir.path("ready");
    let script = format!(
        "sh -c \"trap 'echo child > {got}; exit 0' TERM; touch {ready}; while :; do sleep 0.1; done\" & wait",
        got = got.display(),
        ready = ready.display()
    );
    let mut child = Command::new(tend_bin())
        .args(["-g", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(PATIENCE, || ready.exists()));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(
        wait_until(PATIENCE, || got.exists()),
        "grandchild did not get SIGTERM"
    );
}

/// Not PID 1: tend is a subreaper, so orphans of the command come back to
/// it and are reaped; none is left as a zombie.
#[test]
fn orphans_are_reaped_as_subreaper() {
    let dir = TempDir::new("sub");
    let pids = dir.path("pids");
    let script = format!(
        "for i in $(seq 1 50); do (sleep 0.3 & echo $! >> {p}) ; done; sleep 1.5",
        p = pids.display()
    );
    let out = run(&["--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0));
    let list = lines(&pids);
    assert_eq!(list.len(), 50);
    for pid in list {
        let pid: i64 = pid.parse().unwrap();
        assert!(!alive(pid), "orphan {pid} still there");
    }
}

/// As PID 1 of a PID namespace: 2,000 orphaned grandchildren, none left.
#[test]
fn pid1_reaps_2000_orphans() {
    if !is_root() {
        eprintln!("skipping pid1_reaps_2000_orphans: needs root for unshare --pid");
        return;
    }
    let script = "i=0; while [ $i -lt 2000 ]; do (sleep 0.2 &); i=$((i+1)); done; \
                  sleep 1.5; \
                  echo zombies=$(ps -eo stat= | grep -c '^Z') procs=$(ps -e --no-headers | wc -l) init=$(cat /proc/1/comm)";
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            tend_bin(),
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("zombies=0"), "{stdout}");
    assert!(stdout.contains("init=tend"), "{stdout}");
    // sh, ps, wc and their subshells at most: no leftovers of the storm.
    let procs: usize = stdout
        .split("procs=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(procs < 10, "{stdout}");
}

/// As PID 1, the exit status still propagates through unshare.
#[test]
fn pid1_exit_status_propagates() {
    if !is_root() {
        eprintln!("skipping pid1_exit_status_propagates: needs root for unshare --pid");
        return;
    }
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            tend_bin(),
            "--",
            "sh",
            "-c",
            "exit 9",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    let _ = Duration::from_secs(0);
}
