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
