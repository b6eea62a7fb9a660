//! `tend --check -c FILE`: the real binary on good and bad configuration files.
//!
//! Contract: exit 0 for a valid file; exit 1 for an invalid one, with every
//! error printed to stderr as `FILE:LINE:COL: message`, one per line.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test (tests run in parallel).
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tend-config-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Write `files` (relative name, text) into a fresh directory.
fn write_files(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(name);
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write config");
    }
    dir
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check(file: &Path) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
        .arg("--check")
        .arg("-c")
        .arg(file)
        .output()
        .expect("run tend --check");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Assert exit 1 and that each `(line, col, message)` is on its own stderr line.
fn assert_errors(file: &Path, expected: &[(usize, usize, &str)]) -> Outcome {
    let out = check(file);
    assert_eq!(
        out.code,
        Some(1),
        "expected exit 1 for {}; stdout:\n{}\nstderr:\n{}",
        file.display(),
        out.stdout,
        out.stderr
    );
    for (line, col, message) in expected {
        let want = format!("{}:{line}:{col}: {message}", file.display());
        assert!(
            out.stderr.lines().any(|l| l.trim_end() == want),
            "stderr lacks the line\n  {want}\nstderr was:\n{}",
            out.stderr
        );
    }
    out
}

fn assert_valid(file: &Path) {
    let out = check(file);
    assert_eq!(
        out.code,
        Some(0),
        "expected exit 0 for {}; stdout:\n{}\nstderr:\n{}",
        file.display(),
        out.stdout,
        out.stderr
    );
    let prefix = format!("{}:", file.display());
    assert!(
        !out.stderr.lines().any(|l| l.starts_with(&prefix)),
        "no errors expected, stderr:\n{}",
        out.stderr
    );
}

const GOOD: &str = r#"# A complete, valid configuration.
shutdown-timeout 5;
max-restarts 5; restart-window 1m; sleep-time 30s;
control { socket "unix:///run/tend-test.sock"; socket inet://127.0.0.1:24444; allow (127.0.0.1); }
component db  { command "/usr/bin/postgres -D /var/lib/pg"; user postgres; stop-timeout 30; }
component web {
  command "/usr/bin/httpd -f";   mode respawn;   prerequisites (db);
  chdir /srv;  umask 022;  limits "n1024";
  env { clear; keep HOME; set "PORT=8080"; }
  stdout file /var/log/web.log;  stderr syslog err;
  flags (siggroup, nullinput);  flush-signal USR1;
  return-code 75 { action restart; }  return-code EX_CONFIG SIGKILL { action disable; }
}
include conf.d;
"#;

#[test]
fn valid_files_pass() {
    let dir = write_files(
        "valid",
        &[
            ("tend.conf", GOOD),
            (
                "conf.d/10-worker.conf",
                "component worker { command \"/bin/sleep 1000\"; prerequisites web; }\n",
            ),
            ("conf.d/README", "not a config file {"),
        ],
    );
    assert_valid(&dir.join("tend.conf"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn syntax_errors_are_all_reported() {
    let dir = write_files(
        "syntax",
        &[(
            "tend.conf",
            "component a {\n  command /bin/a\n}\ncomponent b { command (x, y; }\n}\npidfile \"/x",
        )],
    );
    let out = assert_errors(
        &dir.join("tend.conf"),
        &[
            (3, 1, "missing `;` before `}`"),
            (4, 23, "`(` is never closed by `)`"),
            (5, 1, "unexpected `}` with no block open"),
            (6, 9, "string is never closed by `\"`"),
        ],
    );
    let count = out
        .stderr
        .lines()
        .filter(|l| l.contains("tend.conf:"))
        .count();
    assert_eq!(count, 4, "exactly four errors expected:\n{}", out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_statements_are_suggested() {
    let dir = write_files(
        "unknown",
        &[(
            "tend.conf",
            "shutdown-timout 5;\ncomponent web {\n  comand \"/bin/x\";\n  command /bin/x;\n  stdout fiel /x;\n}\n",
        )],
    );
    assert_errors(
        &dir.join("tend.conf"),
        &[
            (
                1,
                1,
                "unknown statement `shutdown-timout`; did you mean `shutdown-timeout`?",
            ),
            (3, 3, "unknown statement `comand`; did you mean `command`?"),
            (
                5,
                10,
                "unknown destination `fiel`: expected file PATH, syslog PRIORITY, tty PATH, inherit or null; did you mean `file`?",
            ),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_values_are_reported_at_the_value() {
    let dir = write_files(
        "values",
        &[(
            "tend.conf",
            "shutdown-timeout soon;\ncomponent a {\n  command \"x 'y\";\n  mode respwn;\n  umask 999;\n  stop-signal TREM;\n  return-code 300 { action restart; }\n}\n",
        )],
    );
    assert_errors(
        &dir.join("tend.conf"),
        &[
            (
                1,
                18,
                "invalid duration `soon`: expected a number of seconds, optionally with a unit (500ms, 5s, 2m, 1h)",
            ),
            (3, 11, "unterminated `'` in command"),
            (4, 8, "unknown mode `respwn`; did you mean `respawn`?"),
            (
                5,
                9,
                "invalid umask `999`: expected octal digits such as 022",
            ),
            (6, 15, "unknown signal `TREM`; did you mean `TERM`?"),
            (7, 15, "exit code `300` is out of range 0-255"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn component_validation_errors() {
    let dir = write_files(
        "validation",
        &[(
            "tend.conf",
            "component a { mode once; }\n\
             component web { command x; prerequisites (dbx); }\n\
             component web { command y; }\n\
             component self { command x; prerequisites self; }\n\
             component p { command x; prerequisites q; }\n\
             component q { command x; prerequisites p; }\n",
        )],
    );
    let file = dir.join("tend.conf");
    assert_errors(
        &file,
        &[
            (1, 1, "component `a` has no `command` statement"),
            (
                2,
                43,
                "component `web` requires `dbx`, which is not defined",
            ),
            (
                3,
                1,
                &format!(
                    "duplicate component `web`; first defined at {}:2:1",
                    file.display()
                ),
            ),
            (4, 43, "component `self` lists itself as a prerequisite"),
            (5, 1, "dependency cycle: p -> q -> p"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_errors() {
    let dir = write_files(
        "include",
        &[
            ("tend.conf", "include a.conf;\ninclude missing.conf;\n"),
            ("a.conf", "component a { command a; }\ninclude b.conf;\n"),
            ("b.conf", "\n  comand x;\ninclude a.conf;\n"),
        ],
    );
    let main = dir.join("tend.conf");
    let out = assert_errors(&main, &[]);
    let a = dir.join("a.conf");
    let b = dir.join("b.conf");
    let want_loop = format!(
        "{}:3:9: include loop: {} -> {} -> {}",
        b.display(),
        a.display(),
        b.display(),
        a.display()
    );
    let want_unknown = format!(
        "{}:2:3: unknown statement `comand`; did you mean `command` (only valid inside a `component` block)?",
        b.display()
    );
    let want_missing = format!(
        "{}:2:9: cannot read `{}`: ",
        main.display(),
        dir.join("missing.conf").display()
    );
    for want in [&want_loop, &want_unknown] {
        assert!(
            out.stderr.lines().any(|l| l.trim_end() == want.as_str()),
            "stderr lacks\n  {want}\nstderr was:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.lines().any(|l| l.starts_with(&want_missing)),
        "stderr lacks\n  {want_missing}…\nstderr was:\n{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn global_block_errors() {
    let dir = write_files(
        "globals",
        &[(
            "tend.conf",
            "control {\n  socket http://x:1;\n  allow (bogus);\n}\nconfig-server { store /s; }\nagent { server http://h:1; tags (novalue); }\n",
        )],
    );
    assert_errors(
        &dir.join("tend.conf"),
        &[
            (
                2,
                10,
                "invalid socket `http://x:1`: expected unix:///PATH or inet://HOST:PORT",
            ),
            (
                3,
                10,
                "invalid address `bogus`: expected an IP address or CIDR such as 10.0.0.0/8",
            ),
            (5, 1, "`config-server` needs a `listen` statement"),
            (6, 34, "invalid tag `novalue`: expected NAME=VALUE"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_file_fails() {
    let dir = temp_dir("missing");
    let file = dir.join("absent.conf");
    let out = check(&file);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(&file.display().to_string()),
        "stderr should name the file:\n{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inittab_files() {
    let good = "::sysinit:/etc/init.d/rcS\n::askfirst:-/bin/sh\ntty2::askfirst:-/bin/sh\n\
                ::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/umount -a -r\n";
    let dir = write_files(
        "inittab",
        &[
            ("good/inittab", good),
            (
                "bad/inittab",
                "id:3:initdefault:\na:2:respawn\nb:2:respwan:/bin/b\nc:2x:once:/bin/c\n",
            ),
        ],
    );
    assert_valid(&dir.join("good/inittab"));
    assert_errors(
        &dir.join("bad/inittab"),
        &[
            (
                2,
                1,
                "expected 4 fields `id:runlevels:action:process`, found 3",
            ),
            (3, 5, "unknown action `respwan`; did you mean `respawn`?"),
            (4, 3, "invalid runlevel `x`: expected 0-9, a-c or S"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file name that is not UTF-8 (possible on the kernel command line of
/// PID 1) is an ordinary "cannot read" error, not a panic (exit 101).
#[test]
fn non_utf8_argument_is_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = temp_dir("non-utf8");
    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
        .arg("--check")
        .arg("-c")
        .arg(dir.join(std::ffi::OsStr::from_bytes(b"missing-\xff.conf")))
        .output()
        .expect("run tend");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing-"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
