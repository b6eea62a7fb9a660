//! Tests of the pies-style parser (included from `parser.rs`).

use super::*;
use crate::config::{ExitMatch, Flags, Limit, Throttle};

fn parse_t(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, Path::new("t.conf"))
}

fn ok(text: &str) -> Config {
    match parse_t(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

/// Every error as `line:col: message` (the file is always t.conf here).
fn errs(text: &str) -> Vec<String> {
    match parse_t(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => {
            e.0.iter()
                .map(|e| {
                    assert_eq!(e.file, Path::new("t.conf"));
                    format!("{}:{}: {}", e.line, e.col, e.message)
                })
                .collect()
        }
    }
}

fn one_err(text: &str) -> String {
    let e = errs(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap_or_default()
}

fn comp<'a>(c: &'a Config, tag: &str) -> &'a ComponentSpec {
    c.components
        .iter()
        .find(|s| s.tag == tag)
        .unwrap_or_else(|| panic!("no component {tag}"))
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tend-parser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

const DESIGN_EXAMPLE: &str = r#"
shutdown-timeout 5;
control { socket "unix:///run/tend.sock"; }   # default; "inet://127.0.0.1:24444" also works
component db  { command "/usr/bin/postgres -D /var/lib/pg"; user postgres; stop-timeout 30; }
component web {
  command "/usr/bin/httpd -f";   mode respawn;   prerequisites (db);
  chdir /srv;  umask 022;  limits "n1024";
  env { clear; keep HOME; set "PORT=8080"; }
  stdout file /var/log/web.log;  stderr syslog err;
  flags (siggroup, nullinput);  flush-signal USR1;
  return-code 75 { action restart; }  return-code 1 { action disable; }
}
"#;

#[test]
fn design_example() {
    let c = ok(DESIGN_EXAMPLE);
    assert_eq!(c.files, vec![PathBuf::from("t.conf")]);
    assert!(!c.inittab);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
    assert_eq!(
        c.control.sockets,
        vec![ListenUrl::Unix("/run/tend.sock".into())]
    );
    assert_eq!(c.components.len(), 2);
    let db = comp(&c, "db");
    assert_eq!(db.argv, vec!["/usr/bin/postgres", "-D", "/var/lib/pg"]);
    assert_eq!(db.command, "/usr/bin/postgres -D /var/lib/pg");
    assert_eq!(db.user.as_deref(), Some("postgres"));
    assert_eq!(db.stop_timeout, Duration::from_secs(30));
    assert_eq!(
        db.origin,
        Location {
            file: "t.conf".into(),
            line: 4,
            col: 1
        }
    );
    let web = comp(&c, "web");
    assert_eq!(web.argv, vec!["/usr/bin/httpd", "-f"]);
    assert_eq!(web.mode, Mode::Respawn);
    assert_eq!(web.prerequisites, vec!["db"]);
    assert_eq!(web.chdir, Some(PathBuf::from("/srv")));
    assert_eq!(web.umask, Some(0o22));
    assert_eq!(
        web.limits,
        vec![Limit {
            resource: libc::RLIMIT_NOFILE as i32,
            value: 1024
        }]
    );
    assert_eq!(
        web.env,
        EnvSpec {
            clear: true,
            keep: vec!["HOME".into()],
            set: vec![("PORT".into(), "8080".into())],
            unset: vec![],
        }
    );
    assert_eq!(web.stdout, Stdio::File("/var/log/web.log".into()));
    assert_eq!(web.stderr, Stdio::Syslog(libc::LOG_ERR));
    assert_eq!(web.stdin, Stdio::Null, "nullinput sets stdin to null");
    assert_eq!(
        web.flags,
        Flags {
            siggroup: true,
            nullinput: true,
            ..Flags::default()
        }
    );
    assert_eq!(web.flush_signal, Some(libc::SIGUSR1));
    assert_eq!(web.stop_signal, libc::SIGTERM);
    assert_eq!(
        web.return_codes,
        vec![
            ReturnCode {
                codes: vec![ExitMatch::Code(75)],
                action: Some(ExitAction::Restart),
                exec: None
            },
            ReturnCode {
                codes: vec![ExitMatch::Code(1)],
                action: Some(ExitAction::Disable),
                exec: None
            },
        ]
    );
    assert_eq!(web.origin.line, 5);
}

#[test]
fn empty_file_is_the_default_config() {
    let c = ok("# nothing\n// here\n/* at all */\n");
    assert_eq!(
        c,
        Config {
            files: vec!["t.conf".into()],
            ..Config::default()
        }
    );
}

#[test]
fn globals() {
    let c = ok(
        "shutdown-timeout 500ms;\npidfile /run/tend.pid;\nstate-directory \"/var/lib/tend\";\n\
                max-restarts 3; restart-window 2m; sleep-time 1h;",
    );
    assert_eq!(c.shutdown_timeout, Duration::from_millis(500));
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/tend.pid")));
    assert_eq!(c.state_directory, Some(PathBuf::from("/var/lib/tend")));
    assert_eq!(
        c.throttle,
        Throttle {
            max_restarts: 3,
            window: Duration::from_secs(120),
            sleep: Duration::from_secs(3600)
        }
    );
    assert_eq!(
        ok("shutdown-timeout 2m;").shutdown_timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        ok("shutdown-timeout 7s;").shutdown_timeout,
        Duration::from_secs(7)
    );
}

#[test]
fn throttle_inheritance_ignores_order() {
    let c = ok("component a { command x; }\n\
                component b { command x; max-restarts 1; sleep-time 5s; }\n\
                max-restarts 4; restart-window 30s; sleep-time 60;\n\
                component c { command x; restart-window 1s; }");
    assert_eq!(
        comp(&c, "a").throttle,
        Throttle {
            max_restarts: 4,
            window: Duration::from_secs(30),
            sleep: Duration::from_secs(60)
        }
    );
    assert_eq!(
        comp(&c, "b").throttle,
        Throttle {
            max_restarts: 1,
            window: Duration::from_secs(30),
            sleep: Duration::from_secs(5)
        }
    );
    assert_eq!(
        comp(&c, "c").throttle,
        Throttle {
            max_restarts: 4,
            window: Duration::from_secs(1),
            sleep: Duration::from_secs(60)
        }
    );
    // No globals: the model's defaults.
    assert_eq!(
        comp(&ok("component a { command x; }"), "a").throttle,
        Throttle::default()
    );
}

#[test]
fn control_block() {
    let c = ok(r#"control {
        socket unix:///tmp/a.sock;
        socket "inet://127.0.0.1:24444";
        allow (127.0.0.1, 10.0.0.0/8);
        deny 10.1.0.0/16;
        token-file /etc/tend/token;
        basic-auth-file /etc/tend/users;
        name host.example;
        name (a.example, b.example);
        gateway-user tend;
    }"#);
    assert_eq!(
        c.control,
        Control {
            sockets: vec![
                ListenUrl::Unix("/tmp/a.sock".into()),
                ListenUrl::Inet("127.0.0.1:24444".into())
            ],
            allow: vec!["127.0.0.1".into(), "10.0.0.0/8".into()],
            deny: vec!["10.1.0.0/16".into()],
            token_file: Some("/etc/tend/token".into()),
            basic_auth_file: Some("/etc/tend/users".into()),
            names: vec![
                "host.example".into(),
                "a.example".into(),
                "b.example".into()
            ],
            gateway_user: Some("tend".into()),
        }
    );
    // No socket in the block: the default socket stays.
    let c = ok("control { token-file /t; }");
    assert_eq!(c.control.sockets, Control::default().sockets);
    assert_eq!(ok("").control, Control::default());
}

#[test]
fn control_errors() {
    assert_eq!(
        errs("control {\n  socket http://x:1;\n  allow (1.2.3.4, bogus);\n  tokenfile /t;\n}"),
        vec![
            "2:10: invalid socket `http://x:1`: expected unix:///PATH or inet://HOST:PORT",
            "3:19: invalid address `bogus`: expected an IP address or CIDR such as 10.0.0.0/8",
            "4:3: unknown statement `tokenfile`; did you mean `token-file`?",
        ]
    );
    assert_eq!(
        errs("control { socket inet://h:99999; }\ncontrol { }"),
        vec![
            "1:18: invalid socket `inet://h:99999`: invalid port `99999`",
            "2:1: `control` is already set at t.conf:1:1",
        ]
    );
    assert_eq!(one_err("control;"), "1:1: `control` needs a block `{ … }`");
    assert_eq!(
        one_err("control x { }"),
        "1:9: unexpected `x` in `control` statement"
    );
}

#[test]
fn config_server_block() {
    let c =
        ok("config-server { listen \"inet://0.0.0.0:8899\"; store /var/lib/cs; token-file /t; }");
    assert_eq!(
        c.config_server,
        Some(ConfigServerSpec {
            listen: "inet://0.0.0.0:8899".into(),
            store: "/var/lib/cs".into(),
            token_file: Some("/t".into()),
        })
    );
    assert_eq!(
        errs("config-server {\n}"),
        vec![
            "1:1: `config-server` needs a `listen` statement",
            "1:1: `config-server` needs a `store` statement",
        ]
    );
    assert_eq!(
        one_err("config-server { listen unix:///x; store /s; }"),
        "1:24: invalid listen address `unix:///x`: the config server needs inet://HOST:PORT"
    );
}

#[test]
fn agent_block() {
    let c = ok(
        "agent { server http://cs:8899; id node1; tags (os=linux, role=web); \
                interval 30s; token-file /t; cache /var/cache/tend; }",
    );
    assert_eq!(
        c.agent,
        Some(AgentSpec {
            server: "http://cs:8899".into(),
            id: Some("node1".into()),
            tags: vec![("os".into(), "linux".into()), ("role".into(), "web".into())],
            interval: Duration::from_secs(30),
            token_file: Some("/t".into()),
            cache: Some("/var/cache/tend".into()),
        })
    );
    let c = ok("agent { server \"http://10.0.0.1:80/\"; }");
    let a = c.agent.expect("agent");
    assert_eq!(a.interval, Duration::from_secs(10));
    assert_eq!(a.id, None);
    assert_eq!(
        errs("agent {\n id x;\n tags (novalue);\n interval 0;\n}\nagent { server https://x:1; }"),
        vec![
            "1:1: `agent` needs a `server` statement",
            "3:8: invalid tag `novalue`: expected NAME=VALUE",
            "4:2: `interval` must be more than 0",
            "6:1: `agent` is already set at t.conf:1:1",
        ]
    );
    assert_eq!(
        one_err("agent { server https://x:1; }"),
        "1:16: invalid server `https://x:1`: expected http://HOST:PORT"
    );
}

#[test]
fn every_component_statement() {
    let c = ok(r#"
component all {
    command "/bin/sh -c 'echo \"hi\"; exit 3'";
    mode once;
    prerequisites first;
    prerequisites (first, second);
    user nobody; group nogroup;
    chdir "/tmp";
    umask 0027;
    limits "n64 c0" A1G;
    limits (t10, u-);
    env { clear; keep (HOME, "LC_*"); keep PATH; set "A=1" "B=x=y"; set C=; unset D E; }
    stdin file /dev/zero;
    stdout null;
    stderr inherit;
    flags (disable, precious);
    flags siggroup;
    stop-signal SIGINT;
    flush-signal 10;
    stop-timeout 1500ms;
    max-restarts 2; restart-window 10; sleep-time 1m;
    return-code (EX_USAGE, 2) SIGKILL { action shutdown; exec "/bin/logger died"; }
    runlevels "2345";
}
component first { command a; }
component second { command b; mode startup; }
"#);
    let a = comp(&c, "all");
    assert_eq!(a.argv, vec!["/bin/sh", "-c", "echo \"hi\"; exit 3"]);
    assert_eq!(a.mode, Mode::Once);
    assert_eq!(a.prerequisites, vec!["first", "second"]);
    assert_eq!(a.user.as_deref(), Some("nobody"));
    assert_eq!(a.group.as_deref(), Some("nogroup"));
    assert_eq!(a.chdir, Some(PathBuf::from("/tmp")));
    assert_eq!(a.umask, Some(0o27));
    let lim = |r, v: u64| Limit {
        resource: r as i32,
        value: v,
    };
    assert_eq!(
        a.limits,
        vec![
            lim(libc::RLIMIT_NOFILE, 64),
            lim(libc::RLIMIT_CORE, 0),
            lim(libc::RLIMIT_AS, 1 << 30),
            lim(libc::RLIMIT_CPU, 10),
            lim(libc::RLIMIT_NPROC, u64::MAX),
        ]
    );
    assert_eq!(
        a.env,
        EnvSpec {
            clear: true,
            keep: vec!["HOME".into(), "LC_*".into(), "PATH".into()],
            set: vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ],
            unset: vec!["D".into(), "E".into()],
        }
    );
    assert_eq!(a.stdin, Stdio::File("/dev/zero".into()));
    assert_eq!(a.stdout, Stdio::Null);
    assert_eq!(a.stderr, Stdio::Inherit);
    assert_eq!(
        a.flags,
        Flags {
            disable: true,
            precious: true,
            siggroup: true,
            nullinput: false
        }
    );
    assert_eq!(a.stop_signal, libc::SIGINT);
    assert_eq!(a.flush_signal, Some(10));
    assert_eq!(a.stop_timeout, Duration::from_millis(1500));
    assert_eq!(
        a.throttle,
        Throttle {
            max_restarts: 2,
            window: Duration::from_secs(10),
            sleep: Duration::from_secs(60)
        }
    );
    assert_eq!(
        a.return_codes,
        vec![ReturnCode {
            codes: vec![
                ExitMatch::Code(64),
                ExitMatch::Code(2),
                ExitMatch::Signal(libc::SIGKILL)
            ],
            action: Some(ExitAction::Shutdown),
            exec: Some("/bin/logger died".into()),
        }]
    );
    assert_eq!(a.runlevels, "2345");
    assert_eq!(comp(&c, "second").mode, Mode::Startup);
    // Defaults of an otherwise empty component.
    let f = comp(&c, "first");
    let mut expect = ComponentSpec::new("first", vec!["a".into()]);
    expect.origin = f.origin.clone();
    assert_eq!(*f, expect);
}

#[test]
fn all_modes_and_stdio_forms() {
    for (_, name) in Mode::ALL {
        let c = ok(&format!("component x {{ command y; mode {name}; }}"));
        assert_eq!(c.components[0].mode.name(), name);
    }
    let c = ok("component x { command y; stdout syslog info; stderr tty /dev/tty1; stdin null; }");
    let x = comp(&c, "x");
    assert_eq!(x.stdout, Stdio::Syslog(libc::LOG_INFO));
    assert_eq!(x.stderr, Stdio::Tty("/dev/tty1".into()));
    assert_eq!(x.stdin, Stdio::Null);
}

#[test]
fn env_short_form_and_return_code_forms() {
    let c = ok(
        "component x { command y; env \"A=1\" B=2; return-code 0 { exec \"/bin/true\"; } \
                return-code EX_CONFIG sigterm { } }",
    );
    let x = comp(&c, "x");
    assert_eq!(
        x.env.set,
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(
        x.return_codes,
        vec![
            ReturnCode {
                codes: vec![ExitMatch::Code(0)],
                action: None,
                exec: Some("/bin/true".into())
            },
            ReturnCode {
                codes: vec![ExitMatch::Code(78), ExitMatch::Signal(libc::SIGTERM)],
                action: None,
                exec: None
            },
        ]
    );
}

#[test]
fn unknown_statements_get_suggestions() {
    assert_eq!(
        one_err("component web {\n  comand \"/bin/x\";\n  command /bin/x;\n}"),
        "2:3: unknown statement `comand`; did you mean `command`?"
    );
    assert_eq!(
        one_err("shutdown-timout 5;"),
        "1:1: unknown statement `shutdown-timout`; did you mean `shutdown-timeout`?"
    );
    assert_eq!(
        one_err("  user root;"),
        "1:3: unknown statement `user`; `user` is only valid inside a `component` block"
    );
    assert_eq!(
        one_err("component a { command x; pidfile /p; }"),
        "1:26: unknown statement `pidfile`; `pidfile` is only valid at the top level, not inside a `component` block"
    );
    assert_eq!(
        one_err("frobnicate;"),
        "1:1: unknown statement `frobnicate`"
    );
    assert_eq!(
        one_err("component a { command x; env { sett A=1; } }"),
        "1:32: unknown statement `sett`; did you mean `set`?"
    );
    assert_eq!(
        one_err("component a { command x; return-code 1 { acton restart; } }"),
        "1:42: unknown statement `acton`; did you mean `action`?"
    );
    assert_eq!(
        one_err("config-server { listen inet://h:1; store /s; stor /x; }"),
        "1:46: unknown statement `stor`; did you mean `store`?"
    );
    assert_eq!(
        one_err("agent { server http://h:1; intervall 5; }"),
        "1:28: unknown statement `intervall`; did you mean `interval`?"
    );
}

#[test]
fn value_errors_point_at_the_value() {
    let text = "shutdown-timeout soon;
pidfile \"\";
max-restarts -1;
component a {
  command \"\";
  mode respwn;
  umask 999;
  limits \"n10 x5\";
  stdout fiel /x;
  stderr syslog loud;
  flags (siggroup, nulinput);
  stop-signal TREM;
  flush-signal 0;
  stop-timeout 1.5s;
  return-code 300 EX_NOPE { action reboot; exec \"a 'b\"; }
  runlevels 2-4;
  env { set NOEQUALS; clear now; }
  limits c1 c2;
}";
    assert_eq!(
        errs(text),
        vec![
            "1:18: invalid duration `soon`: expected a number of seconds, optionally with a unit (500ms, 5s, 2m, 1h)",
            "2:9: expected a path, found an empty string",
            "3:14: expected a non-negative number, found `-1`",
            "5:11: empty command",
            "6:8: unknown mode `respwn`; did you mean `respawn`?",
            "7:9: invalid umask `999`: expected octal digits such as 022",
            "8:10: unknown limit `x5`: expected one of a c d f l m n s t u followed by a number",
            "9:10: unknown destination `fiel`: expected file PATH, syslog PRIORITY, tty PATH, inherit or null; did you mean `file`?",
            "10:10: unknown syslog priority `loud`",
            "11:20: unknown flag `nulinput`; did you mean `nullinput`?",
            "12:15: unknown signal `TREM`; did you mean `TERM`?",
            "13:16: signal number `0` is out of range 1-64",
            "14:16: invalid duration `1.5s`: expected a number of seconds, optionally with a unit (500ms, 5s, 2m, 1h)",
            "15:15: exit code `300` is out of range 0-255",
            "15:19: invalid exit code `EX_NOPE`: expected a number, an EX_* name or a SIG* name; did you mean `EX_NOPERM`?",
            "15:36: unknown action `reboot`: expected restart, disable or shutdown",
            "15:49: unterminated `'` in command",
            "16:13: invalid runlevels `2-4`: expected letters and digits such as 2345",
            "17:13: invalid variable `NOEQUALS`: expected NAME=VALUE",
            "17:29: unexpected `now` in `clear` statement",
            "18:13: limit `c` is given twice",
        ]
    );
}

#[test]
fn statement_shape_errors() {
    assert_eq!(
        errs("pidfile;\npidfile /a /b;\nstate-directory (a, b);\nshutdown-timeout 5 { }\n"),
        vec![
            "1:1: `pidfile` needs a value",
            "2:1: `pidfile` is already set at t.conf:1:1",
            "3:17: `state-directory` takes a single value, not a list",
            "4:1: `shutdown-timeout` does not take a block",
        ]
    );
    assert_eq!(
        one_err("pidfile /a /b;"),
        "1:12: unexpected `/b` in `pidfile` statement"
    );
    // A forgotten `;` shows up as an extra argument on the next line.
    assert_eq!(
        one_err("pidfile /run/x.pid\nstate-directory /var/lib/x;"),
        "2:1: unexpected `state-directory` in `pidfile` statement; is a `;` missing at the end of line 1?"
    );
    assert_eq!(
        one_err("component a {\n  command x\n  user y;\n}"),
        "3:3: unexpected `user` in `command` statement; is a `;` missing at the end of line 2?"
    );
    assert_eq!(
        one_err("component a { command x; prerequisites; }"),
        "1:26: `prerequisites` needs at least one value"
    );
    assert_eq!(
        one_err("component a { command x; stdout (a); }"),
        "1:33: `stdout` does not take a list"
    );
    assert_eq!(
        one_err("component a { command x; return-code 1; }"),
        "1:26: `return-code` needs a block `{ … }`"
    );
    assert_eq!(
        one_err("component a { command x; return-code { action restart; } }"),
        "1:26: `return-code` needs at least one exit code"
    );
    assert_eq!(
        one_err("component a { command x; user a; user b; }"),
        "1:34: `user` is already set at t.conf:1:26"
    );
}

#[test]
fn component_header_errors() {
    assert_eq!(
        one_err("component { command x; }"),
        "1:1: `component` needs a tag, as in `component NAME { … }`"
    );
    assert_eq!(
        one_err("component a b { command x; }"),
        "1:13: unexpected `b` in `component` statement"
    );
    assert_eq!(
        one_err("component \"a/b\" { command x; }"),
        "1:11: invalid component tag `a/b`: no `/`, spaces or control characters allowed"
    );
    assert_eq!(
        one_err("component (a) { command x; }"),
        "1:11: a component tag is a single word, not a list"
    );
    assert_eq!(
        one_err("component a;"),
        "1:1: `component` needs a block `{ … }`"
    );
    // Errors inside a component with a bad header are still reported.
    assert_eq!(
        errs("component { comand x; }"),
        vec![
            "1:1: `component` needs a tag, as in `component NAME { … }`",
            "1:13: unknown statement `comand`; did you mean `command`?",
        ]
    );
}

#[test]
fn validation_errors() {
    assert_eq!(
        one_err("component a {\n  mode once;\n}"),
        "1:1: component `a` has no `command` statement"
    );
    assert_eq!(
        one_err("component web { command x; }\n  component web { command y; }"),
        "2:3: duplicate component `web`; first defined at t.conf:1:1"
    );
    assert_eq!(
        one_err("component web { command x; prerequisites (dbx); }"),
        "1:43: component `web` requires `dbx`, which is not defined"
    );
    assert_eq!(
        one_err("component db { command x; }\ncomponent web { command x; prerequisites dbb; }"),
        "2:42: component `web` requires `dbb`, which is not defined; did you mean `db`?"
    );
    assert_eq!(
        one_err("component a { command x; prerequisites a; }"),
        "1:40: component `a` lists itself as a prerequisite"
    );
    assert_eq!(
        one_err(
            "component a { command x; prerequisites b; }\n\
             component b { command x; prerequisites c; }\n\
             component c { command x; prerequisites a; }"
        ),
        "1:1: dependency cycle: a -> b -> c -> a"
    );
    assert_eq!(
        errs(
            "component a { command x; prerequisites b; }\n\
             component b { command x; prerequisites a; }\n\
             component c { command x; prerequisites d; }\n\
             component d { command x; prerequisites c; }"
        ),
        vec![
            "1:1: dependency cycle: a -> b -> a",
            "3:1: dependency cycle: c -> d -> c"
        ]
    );
}

#[test]
fn syntax_errors_are_all_reported() {
    assert_eq!(
        errs("component a {\n  command x\n}\ncomponent b { command (y, z; }\n}\npidfile \"/x"),
        vec![
            "3:1: missing `;` before `}`",
            "4:23: `(` is never closed by `)`",
            "5:1: unexpected `}` with no block open",
            "6:9: string is never closed by `\"`",
        ]
    );
    assert_eq!(
        errs("component a { command x;\n"),
        vec!["1:13: `{` is never closed by `}`"]
    );
    assert_eq!(
        errs("/* open\ncomponent a { command x; }"),
        vec!["1:1: comment `/*` is never closed by `*/`"]
    );
    assert_eq!(errs("pidfile /x"), vec!["1:11: missing `;` at end of file"]);
}

#[test]
fn bad_command_quoting_is_not_also_missing() {
    assert_eq!(
        one_err("component a { command \"x 'y\"; }"),
        "1:23: unterminated `'` in command"
    );
    assert_eq!(
        one_err("component a { command (x, y; }"),
        "1:23: `(` is never closed by `)`"
    );
    assert_eq!(
        one_err("component a { command x y; }"),
        "1:25: unexpected `y` in `command` statement"
    );
}

#[test]
fn errors_use_display_format() {
    let e = parse("bogus;", Path::new("/etc/tend.conf")).expect_err("error");
    assert_eq!(
        e.to_string(),
        "/etc/tend.conf:1:1: unknown statement `bogus`"
    );
}

// ---- includes -----------------------------------------------------------

#[test]
fn include_file_and_directory() {
    let d = temp_dir("include");
    let sub = d.join("conf.d");
    std::fs::create_dir_all(&sub).expect("mkdir");
    std::fs::write(
        sub.join("20-b.conf"),
        "component b { command b; prerequisites a; }\n",
    )
    .expect("write");
    std::fs::write(sub.join("10-a.conf"), "component a { command a; }\n").expect("write");
    std::fs::write(sub.join("ignored.txt"), "this is not parsed {").expect("write");
    std::fs::write(
        d.join("extra.conf"),
        "pidfile /run/x.pid;\ninclude conf.d;\n",
    )
    .expect("write");
    let main = d.join("main.conf");
    std::fs::write(
        &main,
        "include extra.conf;\ncomponent c { command c; prerequisites (a, b); }\n",
    )
    .expect("write");
    let text = std::fs::read_to_string(&main).expect("read");
    let c = parse(&text, &main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.files,
        vec![
            main.clone(),
            d.join("extra.conf"),
            sub.join("10-a.conf"),
            sub.join("20-b.conf")
        ]
    );
    let tags: Vec<&str> = c.components.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, vec!["a", "b", "c"]);
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/x.pid")));
    assert_eq!(comp(&c, "b").origin.file, sub.join("20-b.conf"));
    // Absolute include paths work from anywhere.
    let text = format!("include \"{}\";", sub.display());
    let c = parse(&text, Path::new("/nonexistent/t.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.components.len(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn include_errors_name_the_right_file() {
    let d = temp_dir("include-errors");
    let inc = d.join("inc.conf");
    std::fs::write(&inc, "\n  comand x;\ncomponent dup { command x; }\n").expect("write");
    let main = d.join("main.conf");
    let text = "component dup { command x; }\ninclude inc.conf;\ninclude missing.conf;\n";
    let e = parse(text, &main).expect_err("errors");
    let shown: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    let m = main.display();
    let i = inc.display();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!(
            "{m}:3:9: cannot read `{}`: ",
            d.join("missing.conf").display()
        )),
        "{shown:#?}"
    );
    assert_eq!(
        shown[1],
        format!(
            "{i}:2:3: unknown statement `comand`; did you mean `command` (only valid inside a `component` block)?"
        )
    );
    assert_eq!(
        shown[2],
        format!("{i}:3:1: duplicate component `dup`; first defined at {m}:1:1")
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn include_loops_are_errors() {
    let d = temp_dir("include-loop");
    let a = d.join("a.conf");
    let b = d.join("b.conf");
    std::fs::write(&a, "include b.conf;\ncomponent a { command a; }\n").expect("write");
    std::fs::write(&b, "component b { command b; }\ninclude a.conf;\n").expect("write");
    let text = std::fs::read_to_string(&a).expect("read");
    let e = parse(&text, &a).expect_err("loop");
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(
        e.0[0].to_string(),
        format!(
            "{}:2:9: include loop: {} -> {} -> {}",
            b.display(),
            a.display(),
            b.display(),
            a.display()
        )
    );
    // Including itself.
    std::fs::write(&a, "include a.conf;\n").expect("write");
    let e = parse("include a.conf;\n", &a).expect_err("self loop");
    assert!(e.0[0].message.starts_with("include loop: "), "{e}");
    // Through other names for the same file: a symlink and a hard link.
    std::fs::write(&a, "include b.conf;\n").expect("write");
    std::os::unix::fs::symlink(&a, d.join("sym.conf")).expect("symlink");
    std::fs::hard_link(&a, d.join("hard.conf")).expect("hard link");
    for other in ["sym.conf", "hard.conf"] {
        std::fs::write(&b, format!("include {other};\n")).expect("write");
        let e = parse("include b.conf;\n", &a).expect_err(other);
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(e.0[0].message.starts_with("include loop: "), "{other}: {e}");
        assert!(e.0[0].message.ends_with(other), "{other}: {e}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn include_depth_is_bounded() {
    let d = temp_dir("include-deep");
    for i in 0..40 {
        std::fs::write(
            d.join(format!("{i}.conf")),
            format!("include {}.conf;\n", i + 1),
        )
        .expect("write");
    }
    std::fs::write(d.join("40.conf"), "").expect("write");
    let e = parse("include 0.conf;", &d.join("main.conf")).expect_err("too deep");
    assert_eq!(e.0.len(), 1);
    assert!(e.0[0].message.contains("nested too deeply"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

// ---- robustness -----------------------------------------------------------

/// A small deterministic generator (Numerical Recipes LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const RICH: &str = r#"
shutdown-timeout 5s; max-restarts 3; sleep-time 1m; restart-window 2m;
pidfile /run/t.pid; state-directory "/var/lib/t";
control { socket "unix:///run/t.sock"; socket inet://127.0.0.1:1; allow (127.0.0.1); name x; }
config-server { listen inet://0.0.0.0:8899; store /s; }
agent { server http://h:1; tags (a=b); interval 5; }
component db { command "/bin/db -x 'a b'"; user u; stop-timeout 30; }
component web {
  command "/bin/web"; mode respawn; prerequisites (db);
  chdir /srv; umask 022; limits "n1024 c0";
  env { clear; keep HOME; set "PORT=8080"; unset X; }
  stdout file /var/log/web.log; stderr syslog err; stdin null;
  flags (siggroup, nullinput); flush-signal USR1; stop-signal SIGTERM;
  return-code 75 EX_USAGE SIGKILL { action restart; exec "/bin/x"; }
  runlevels "2345"; max-restarts 1;
} /* trailing */ // comment
# end
"#;

#[test]
fn no_input_panics() {
    let file = Path::new("/nonexistent-dir/fuzz.conf");
    assert!(parse(RICH, file).is_ok(), "{:?}", parse(RICH, file).err());
    // Every prefix of a valid file.
    for (i, _) in RICH.char_indices() {
        let _ = parse(&RICH[..i], file);
    }
    let mut rng = Lcg(0x5eed);
    // Random bytes, biased towards the syntax's own characters.
    let alphabet = b"{}();,\"'#/*\\\n abcx=:0123456789-";
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(2) == 0 {
                    alphabet[rng.below(alphabet.len())]
                } else {
                    rng.below(256) as u8
                }
            })
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes), file);
    }
    // Valid tokens shuffled: exercises the interpreter, not just the lexer.
    let words: Vec<&str> = RICH.split_whitespace().collect();
    for _ in 0..2000 {
        let n = rng.below(60);
        let text: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        let _ = parse(&text.join(" "), file);
    }
    // Single-byte mutations of the valid file.
    let base = RICH.as_bytes();
    for _ in 0..2000 {
        let mut b = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len());
            b[at] = alphabet[rng.below(alphabet.len())];
        }
        let _ = parse(&String::from_utf8_lossy(&b), file);
    }
}

#[test]
fn deep_and_huge_inputs_do_not_overflow() {
    let file = Path::new("deep.conf");
    let deep = "component a { ".repeat(50_000);
    assert!(parse(&deep, file).is_err());
    let deep = "(".repeat(50_000);
    assert!(parse(&deep, file).is_err());
    let long = format!("component {} {{ command x; }}", "a".repeat(1_000_000));
    assert!(parse(&long, file).is_ok());
    let many = "x;".repeat(50_000);
    assert_eq!(parse(&many, file).map_err(|e| e.0.len()), Err(50_000));
}
