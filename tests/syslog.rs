//! Component output bound for syslog (`stdout syslog PRIORITY`): it reaches
//! the syslog socket, `/dev/log`, and falls back to tend's standard error
//! where nothing listens there. Each test runs tend in its own mount
//! namespace with a private /dev (so it needs root), where /dev/log is the
//! test's own socket or is missing.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str =
    "component s { mode once; command \"sh -c 'echo hello-syslog; echo oops >&2'\";
                      stdout syslog info; stderr syslog err; }";

/// Start tend in a new mount namespace whose /dev is empty but for null and,
/// when given, a /dev/log pointing at `log_socket`.
fn start_in_private_dev(dir: &TempDir, log_socket: Option<&std::path::Path>) -> Child {
    let conf = dir.write("tend.conf", CONFIG);
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    let script = "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 \
                  && { [ -z \"$LOGSOCK\" ] || ln -s \"$LOGSOCK\" /dev/log; } && exec \"$@\"";
    let sock = dir.path("tend.sock");
    let child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(tend_bin())
        .arg("-c")
        .arg(&conf)
        .arg("--control")
        .arg(format!("unix://{}", sock.display()))
        .env(
            "LOGSOCK",
            log_socket.map(|p| p.as_os_str()).unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start unshare");
    assert!(
        wait_until(PATIENCE, || http(&sock, "GET", "/version", "").is_ok()),
        "tend did not come up: {}",
        std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default()
    );
    child
}

fn stop(mut child: Child) {
    // SAFETY: signalling the tend we started (unshare and sh exec'd into it).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[test]
fn lines_reach_the_syslog_socket_with_priority_and_tag() {
    if skip_unless_root(
        "lines_reach_the_syslog_socket",
        "a mount namespace with a private /dev",
    ) {
        return;
    }
    let dir = TempDir::new("syslog");
    let path = dir.path("log.sock");
    let syslogd = UnixDatagram::bind(&path).unwrap();
    syslogd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let tend = start_in_private_dev(&dir, Some(&path));
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while got.len() < 2 && Instant::now() < deadline {
        let mut buf = [0u8; 2048];
        if let Ok(n) = syslogd.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    stop(tend);
    // Facility daemon (3 << 3) with info (6) and err (3).
    let info = got.iter().find(|m| m.contains("s: hello-syslog"));
    let err = got.iter().find(|m| m.contains("s: oops"));
    assert!(
        info.is_some_and(|m| m.starts_with("<30>") && m.contains(" tend[")),
        "{got:?}"
    );
    assert!(err.is_some_and(|m| m.starts_with("<27>")), "{got:?}");
}

#[test]
fn lines_go_to_stderr_when_nothing_listens() {
    if skip_unless_root(
        "lines_go_to_stderr_when_nothing_listens",
        "a mount namespace with a private /dev",
    ) {
        return;
    }
    let dir = TempDir::new("nosyslog");
    let tend = start_in_private_dev(&dir, None);
    let log = dir.path("tend.log");
    let both = wait_until(PATIENCE, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("s: hello-syslog") && text.contains("s: oops")
    });
    stop(tend);
    assert!(
        both,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
