//! What a component's process gets: environment, directory, umask, limits,
//! credentials, standard streams; and the daemon's pidfile.

mod common;
use common::*;

#[test]
fn component_runs_with_its_settings() {
    let user = if is_root() { "user nobody;" } else { "" };
    let conf = format!(
        "pidfile $DIR/tend.pid;
         component s {{
           mode once;
           command \"sh -c 'echo env=$GREETING home=${{HOME:-unset}} path=${{PATH:-unset}}; echo cwd=$(pwd); echo umask=$(umask); echo nofile=$(ulimit -n); echo uid=$(id -u); echo err >&2; read line; echo stdin=[$line]'\";
           chdir $DIR;
           umask 027;
           limits \"n64\";
           env {{ clear; keep PATH; set \"GREETING=hello\"; }}
           stdout file $DIR/out.log;
           stderr file $DIR/err.log;
           flags (nullinput);
           {user}
         }}"
    );
    let d = Daemon::start("spawn", &conf);
    d.wait_status("s", "finished");
    let out = std::fs::read_to_string(d.dir.path("out.log")).unwrap();
    assert!(out.contains("env=hello home=unset"), "{out}");
    assert!(!out.contains("path=unset"), "PATH was kept: {out}");
    assert!(out.contains(&format!("cwd={}", d.dir.0.display())), "{out}");
    assert!(out.contains("umask=0027"), "{out}");
    assert!(out.contains("nofile=64"), "{out}");
    assert!(out.contains("stdin=[]"), "{out}");
    if is_root() {
        assert!(out.contains("uid=65534"), "{out}");
    }
    assert_eq!(
        std::fs::read_to_string(d.dir.path("err.log"))
            .unwrap()
            .trim(),
        "err"
    );
    assert_eq!(
        std::fs::read_to_string(d.dir.path("tend.pid"))
            .unwrap()
            .trim(),
        d.pid().to_string()
    );
}

#[test]
fn unknown_user_fails_the_component_not_tend() {
    let d = Daemon::start(
        "baduser",
        "component bad { mode once; command \"true\"; user no-such-user-xyz; }
         component good { command \"sleep 1000\"; }",
    );
    d.wait_status("good", "running");
    d.wait_status("bad", "finished");
    assert_eq!(d.program("bad")["exit_code"], 127);
    assert!(d.log().contains("no-such-user-xyz"), "{}", d.log());
}

#[test]
fn each_component_gets_its_own_session() {
    let d = Daemon::start(
        "session",
        "component s { mode once; command \"sh -c 'ps -o sid=,pgid= -p $$ > $DIR/ids; echo $$ >> $DIR/ids'\"; }",
    );
    d.wait_status("s", "finished");
    let text = std::fs::read_to_string(d.dir.path("ids")).unwrap();
    let mut words = text.split_whitespace();
    let (sid, pgid, pid) = (
        words.next().unwrap(),
        words.next().unwrap(),
        words.next().unwrap(),
    );
    assert_eq!(sid, pid, "setsid: {text}");
    assert_eq!(pgid, pid, "{text}");
}

/// Children get an empty signal mask and default dispositions back, even
/// though tend blocks its signals and the Rust runtime ignores SIGPIPE.
#[test]
fn children_get_a_clean_signal_state() {
    let d = Daemon::start(
        "sigstate",
        "component s { mode once; command \"sh -c 'exec grep -E ^Sig[BI] /proc/self/status > $DIR/sig'\"; }",
    );
    d.wait_status("s", "finished");
    let text = std::fs::read_to_string(d.dir.path("sig")).unwrap();
    for line in text.lines() {
        let mask = line.split_whitespace().nth(1).unwrap();
        assert!(mask.chars().all(|c| c == '0'), "{line}");
    }
    assert_eq!(text.lines().count(), 2, "{text}");
}

/// The program is looked up in the component's own PATH (as execvp would
/// in the child), and a script without `#!` runs through /bin/sh.
#[test]
fn program_is_found_in_the_components_path_and_scripts_run() {
    let dir = TempDir::new("spawnpath");
    let bin = dir.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("hello-tend");
    std::fs::write(&script, "echo from-script \"$@\" > \"$OUT\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = format!(
        "component s {{ mode once; command \"hello-tend a b\";
           env {{ set \"PATH={}:/usr/bin:/bin\"; set \"OUT=$DIR/out\"; }} }}",
        bin.display()
    );
    let d = Daemon::start("spawnpath", &conf);
    d.wait_status("s", "finished");
    assert_eq!(d.program("s")["exit_code"], 0, "{}", d.log());
    let out = std::fs::read_to_string(d.dir.path("out")).unwrap();
    assert_eq!(out.trim(), "from-script a b");
}

/// A start that fails in the child (missing directory, missing program)
/// is reported with the component's tag and the step, and tend goes on.
#[test]
fn failed_starts_name_the_component_and_the_step() {
    let d = Daemon::start(
        "spawnfail",
        "component nodir { mode once; command \"true\"; chdir /no/such/dir/xyz; }
         component noprog { mode once; command \"no-such-program-xyz\"; }
         component good { command \"sleep 1000\"; }",
    );
    d.wait_status("good", "running");
    d.wait_status("nodir", "finished");
    d.wait_status("noprog", "finished");
    assert_eq!(d.program("nodir")["exit_code"], 127);
    assert_eq!(d.program("noprog")["exit_code"], 127);
    let log = d.log();
    assert!(log.contains("nodir: changing directory for true"), "{log}");
    assert!(
        log.contains("noprog: executing no-such-program-xyz"),
        "{log}"
    );
}

/// A variable in tend's own environment that is not UTF-8 (PID 1 gets its
/// environment from the kernel command line) must not stop components from
/// starting; it is left out of theirs.
#[test]
fn non_utf8_environment_does_not_stop_starts() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("envbytes");
    let conf = dir.write(
        "tend.conf",
        &format!(
            "component s {{ mode once; command \"sh -c 'env > {}/env'\"; }}",
            dir.0.display()
        ),
    );
    let out = dir.path("env");
    let d = Daemon::start_with_env(
        dir,
        &["-c", conf.to_str().unwrap()],
        &[
            (OsStr::new("TEND_BAD_BYTES"), OsStr::from_bytes(b"\xff\xfe")),
            (OsStr::new("TEND_GOOD"), OsStr::new("yes")),
        ],
    );
    d.wait_status("s", "finished");
    assert_eq!(d.program("s")["exit_code"], 0, "{}", d.log());
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(env.contains("TEND_GOOD=yes"), "{env}");
    assert!(!env.contains("TEND_BAD_BYTES"), "{env}");
}
