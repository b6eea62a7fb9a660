//! tend as real init (PID 1 of a PID namespace, `--init`): shutdown ends
//! with reboot(2), which ends the namespace; ctrlaltdel on SIGINT; BusyBox's
//! `halt` and `poweroff` (SIGUSR1, SIGUSR2).

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// Start tend as PID 1 in a new PID namespace; returns unshare and tend's outer PID.
fn start_init(dir: &TempDir, conf: &str) -> (Child, i32) {
    let conf = dir.write(
        "tend.conf",
        &conf.replace("$DIR", &dir.0.display().to_string()),
    );
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let child = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            tend_bin(),
            "--init",
            "-c",
        ])
        .arg(&conf)
        .arg("--control")
        .arg(format!("unix://{}", dir.path("tend.sock").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut inner = 0;
    assert!(wait_until(PATIENCE, || {
        let list = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .map(|d| {
                d.filter_map(|t| t.ok())
                    .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                    .collect::<String>()
            })
            .unwrap_or_default();
        inner = list
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        inner != 0 && dir.path("tend.sock").exists()
    }));
    (child, inner)
}

#[test]
fn sigterm_as_init_stops_components_runs_shutdown_and_reboots() {
    if skip_unless_root("sigterm_as_init", "unshare --pid") {
        return;
    }
    let dir = TempDir::new("init-reboot");
    let (mut unshare, tend) = start_init(
        &dir,
        "component r { command \"sh -c 'echo up >> $DIR/log; trap \\\"echo down >> $DIR/log; exit 0\\\" TERM; while :; do sleep 0.2 & wait $!; done'\"; }
         component bye { mode shutdown; command \"sh -c 'echo bye >> $DIR/log'\"; }",
    );
    assert!(wait_until(PATIENCE, || lines(&dir.path("log")) == vec!["up"]));
    // SAFETY: signalling the tend we started.
    unsafe { libc::kill(tend, libc::SIGTERM) };
    let status = unshare.wait().unwrap();
    // reboot(2) with RB_AUTOBOOT in a PID namespace kills its init with SIGHUP,
    // which unshare passes on as its own status.
    assert!(
        status.signal() == Some(libc::SIGHUP) || status.code() == Some(128 + libc::SIGHUP),
        "{status:?}; log:\n{}",
        std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default()
    );
    assert_eq!(lines(&dir.path("log")), vec!["up", "down", "bye"]);
}

#[test]
fn telinit_0_powers_off() {
    if skip_unless_root("telinit_0_powers_off", "unshare --pid") {
        return;
    }
    let dir = TempDir::new("init-poweroff");
    let (mut unshare, _) = start_init(&dir, "component r { command \"sleep 1000\"; }");
    let r = http(
        &dir.path("tend.sock"),
        "PUT",
        "/runlevel",
        "{\"runlevel\":\"0\"}",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let status = unshare.wait().unwrap();
    // Power-off and halt end the namespace with SIGINT.
    assert!(
        status.signal() == Some(libc::SIGINT) || status.code() == Some(128 + libc::SIGINT),
        "{status:?}"
    );
}

#[test]
fn sigint_as_init_runs_ctrlaltdel() {
    if skip_unless_root("sigint_as_init_runs_ctrlaltdel", "unshare --pid") {
        return;
    }
    let dir = TempDir::new("init-cad");
    let (mut unshare, tend) = start_init(
        &dir,
        "component cad { mode ctrlaltdel; command \"sh -c 'echo cad >> $DIR/log'\"; }
         component r { command \"sleep 1000\"; }",
    );
    assert!(wait_until(PATIENCE, || http(
        &dir.path("tend.sock"),
        "GET",
        "/programs/r",
        ""
    )
    .is_ok_and(|r| r.body.contains("running"))));
    assert!(
        lines(&dir.path("log")).is_empty(),
        "ctrlaltdel must wait for SIGINT"
    );
    // SAFETY: signalling the tend we started.
    unsafe { libc::kill(tend, libc::SIGINT) };
    assert!(wait_until(PATIENCE, || lines(&dir.path("log")) == vec!["cad"]));
    // tend is still running: SIGINT as init does not shut down.
    assert!(unshare.try_wait().unwrap().is_none());
    unsafe { libc::kill(tend, libc::SIGKILL) };
    let _ = unshare.wait();
}

/// How the namespace ended, waiting at most PATIENCE (then it is killed,
/// so a wrong answer fails the test instead of hanging it).
fn wait_end(unshare: &mut Child, tend: i32) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(PATIENCE, || {
        status = unshare.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        // SAFETY: signalling the tend we started.
        unsafe { libc::kill(tend, libc::SIGKILL) };
        let _ = unshare.wait();
    }
    status
}

/// Halt and power-off end a PID namespace with SIGINT.
fn ended_by_halt(status: Option<ExitStatus>) -> bool {
    status.is_some_and(|s| s.signal() == Some(libc::SIGINT) || s.code() == Some(128 + libc::SIGINT))
}

/// The real `busybox poweroff`, run on the board, signals PID 1 with
/// SIGUSR2: tend stops its components and powers off (it must not take
/// it for a graceful reload).
#[test]
fn busybox_poweroff_powers_off() {
    if skip_unless_root("busybox_poweroff_powers_off", "unshare --pid") {
        return;
    }
    if Command::new("busybox").arg("true").status().is_err() {
        eprintln!("busybox_poweroff_powers_off: skipped, busybox is not installed");
        return;
    }
    let dir = TempDir::new("init-bb-poweroff");
    let (mut unshare, tend) = start_init(
        &dir,
        "component r { command \"sh -c 'trap \\\"echo down >> $DIR/log; exit 0\\\" TERM; while :; do sleep 0.2 & wait $!; done'\"; }
         component off { mode once; command \"sh -c 'while [ ! -e $DIR/go ]; do sleep 0.1; done; busybox poweroff'\"; }",
    );
    std::fs::write(dir.path("go"), "").unwrap();
    let status = wait_end(&mut unshare, tend);
    assert!(
        ended_by_halt(status),
        "{status:?}; log:\n{}",
        std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default()
    );
    assert_eq!(lines(&dir.path("log")), vec!["down"]);
}

/// BusyBox's `halt` sends SIGUSR1 to init.
#[test]
fn sigusr1_as_init_halts() {
    if skip_unless_root("sigusr1_as_init_halts", "unshare --pid") {
        return;
    }
    let dir = TempDir::new("init-halt");
    let (mut unshare, tend) = start_init(&dir, "component r { command \"sleep 1000\"; }");
    // SAFETY: signalling the tend we started.
    unsafe { libc::kill(tend, libc::SIGUSR1) };
    let status = wait_end(&mut unshare, tend);
    assert!(ended_by_halt(status), "{status:?}");
    assert!(
        std::fs::read_to_string(dir.path("tend.log"))
            .unwrap_or_default()
            .contains("received SIGUSR1")
    );
}

/// As the system init, SIGHUP re-reads the configuration the way BusyBox
/// and SysV init re-read their inittab: new entries start, unchanged ones
/// keep their process.
#[test]
fn sighup_as_init_reloads_gracefully() {
    if skip_unless_root("sighup_as_init_reloads_gracefully", "unshare --pid") {
        return;
    }
    let dir = TempDir::new("init-hup");
    let (mut unshare, tend) = start_init(&dir, "component r { command \"sleep 1000\"; }");
    let sock = dir.path("tend.sock");
    let pid_of = |tag: &str| {
        http(&sock, "GET", &format!("/programs/{tag}"), "")
            .ok()
            .and_then(|r| r.json()[0]["PID"].as_i64())
    };
    assert!(wait_until(PATIENCE, || pid_of("r").is_some()));
    let before = pid_of("r");
    dir.write(
        "tend.conf",
        "component r { command \"sleep 1000\"; }\ncomponent added { command \"sleep 1000\"; }",
    );
    // SAFETY: signalling the tend we started.
    unsafe { libc::kill(tend, libc::SIGHUP) };
    assert!(wait_until(PATIENCE, || pid_of("added").is_some()));
    assert_eq!(pid_of("r"), before, "an unchanged component was restarted");
    // SAFETY: as above.
    unsafe { libc::kill(tend, libc::SIGKILL) };
    let _ = unshare.wait();
}
