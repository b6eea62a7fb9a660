//! Tests of the inittab parser (included from `inittab.rs`).

use super::*;

fn ok(text: &str) -> Config {
    match parse(text, Path::new("/etc/inittab")) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

/// Every error as `line:col: message`.
fn errs(text: &str) -> Vec<String> {
    match parse(text, Path::new("/etc/inittab")) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => {
            e.0.iter()
                .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
                .collect()
        }
    }
}

fn comp<'a>(c: &'a Config, tag: &str) -> &'a ComponentSpec {
    c.components
        .iter()
        .find(|s| s.tag == tag)
        .unwrap_or_else(|| panic!("no component {tag} in {:?}", tags(c)))
}

fn tags(c: &Config) -> Vec<&str> {
    c.components.iter().map(|s| s.tag.as_str()).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// BusyBox's own examples/inittab.
const BUSYBOX: &str = r#"# /etc/inittab init(8) configuration for BusyBox
#
# Boot-time system configuration/initialization script.
# This is run first except when booting in single-user mode.
#
::sysinit:/etc/init.d/rcS

# /bin/sh invocations on selected ttys
#
# Note below that we prefix the shell commands with a "-" to indicate to the
# shell that it is supposed to be a login shell.
#
# Start an "askfirst" shell on the console (whatever that may be)
::askfirst:-/bin/sh
# Start an "askfirst" shell on /dev/tty2-4
tty2::askfirst:-/bin/sh
tty3::askfirst:-/bin/sh
tty4::askfirst:-/bin/sh

# /sbin/getty invocations for selected ttys
tty4::respawn:/sbin/getty 38400 tty5
tty5::respawn:/sbin/getty 38400 tty6

# Example of how to put a getty on a serial line (for a terminal)
#::respawn:/sbin/getty -L ttyS0 9600 vt100
#::respawn:/sbin/getty -L ttyS1 9600 vt100

# Stuff to do when restarting the init process
::restart:/sbin/init

# Stuff to do before rebooting
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
::shutdown:/sbin/swapoff -a
"#;

/// A Debian-style SysV inittab.
const SYSV: &str = r#"# The default runlevel.
id:2:initdefault:

# Boot-time system configuration/initialization script.
si::sysinit:/etc/init.d/rcS

# What to do in single-user mode.
~~:S:wait:/sbin/sulogin

l0:0:wait:/etc/init.d/rc 0
l1:1:wait:/etc/init.d/rc 1
l2:2:wait:/etc/init.d/rc 2
l3:3:wait:/etc/init.d/rc 3
l4:4:wait:/etc/init.d/rc 4
l5:5:wait:/etc/init.d/rc 5
l6:6:wait:/etc/init.d/rc 6
z6:6:respawn:/sbin/sulogin

# What to do when CTRL-ALT-DEL is pressed.
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now

# What to do when the power fails/returns.
pf::powerwait:/etc/init.d/powerfail start
pn::powerfailnow:/etc/init.d/powerfail now
po::powerokwait:/etc/init.d/powerfail stop

1:2345:respawn:/sbin/getty 38400 tty1
2:23:respawn:/sbin/getty 38400 tty2
T0:23:off:/sbin/getty -L ttyS0 9600 vt100
"#;

#[test]
fn busybox_example() {
    let c = ok(BUSYBOX);
    assert!(c.inittab);
    assert_eq!(c.files, vec![PathBuf::from("/etc/inittab")]);
    assert_eq!(c.initdefault, None);
    assert_eq!(
        tags(&c),
        vec![
            "sysinit",
            "askfirst",
            "tty2",
            "tty3",
            "tty4-1",
            "tty4-2",
            "tty5",
            "restart",
            "ctrlaltdel",
            "shutdown-1",
            "shutdown-2"
        ]
    );
    let si = comp(&c, "sysinit");
    assert_eq!(si.mode, Mode::Sysinit);
    assert_eq!(si.argv, strings(&["/etc/init.d/rcS"]));
    assert_eq!(si.stdin, Stdio::Inherit);
    assert_eq!(si.origin.line, 6);
    assert_eq!(si.origin.col, 1);
    // The login-shell `-` is dropped from argv, kept in the command.
    let console = comp(&c, "askfirst");
    assert_eq!(console.mode, Mode::Askfirst);
    // askfirst: a shell prints BusyBox's prompt, waits, then execs the command.
    assert_eq!(console.argv[..2], strings(&["/bin/sh", "-c"]));
    assert!(console.argv[2].contains("Please press Enter to activate this console."));
    assert_eq!(console.argv[3..], strings(&["askfirst", "/bin/sh"]));
    assert_eq!(console.command, "-/bin/sh");
    assert_eq!(console.stdout, Stdio::Inherit);
    let tty2 = comp(&c, "tty2");
    assert_eq!(tty2.stdin, Stdio::Tty("/dev/tty2".into()));
    assert_eq!(tty2.stdout, Stdio::Tty("/dev/tty2".into()));
    assert_eq!(tty2.stderr, Stdio::Tty("/dev/tty2".into()));
    let getty = comp(&c, "tty4-2");
    assert_eq!(getty.mode, Mode::Respawn);
    assert_eq!(getty.argv, strings(&["/sbin/getty", "38400", "tty5"]));
    assert_eq!(getty.stdin, Stdio::Tty("/dev/tty4".into()));
    assert_eq!(comp(&c, "restart").mode, Mode::Restart);
    assert_eq!(comp(&c, "ctrlaltdel").mode, Mode::Ctrlaltdel);
    let sd = comp(&c, "shutdown-2");
    assert_eq!(sd.mode, Mode::Shutdown);
    assert_eq!(sd.argv, strings(&["/sbin/swapoff", "-a"]));
    assert!(c.components.iter().all(|s| s.runlevels.is_empty()));
}

#[test]
fn sysv_example() {
    let c = ok(SYSV);
    assert!(c.inittab);
    assert_eq!(c.initdefault, Some('2'));
    assert_eq!(c.components.len(), 17);
    assert!(!tags(&c).contains(&"id"), "initdefault makes no component");
    let si = comp(&c, "si");
    assert_eq!(si.mode, Mode::Sysinit);
    assert_eq!(si.runlevels, "");
    let l3 = comp(&c, "l3");
    assert_eq!(l3.mode, Mode::Wait);
    assert_eq!(l3.runlevels, "3");
    assert_eq!(l3.argv, strings(&["/etc/init.d/rc", "3"]));
    assert_eq!(comp(&c, "~~").runlevels, "S");
    assert_eq!(comp(&c, "ca").mode, Mode::Ctrlaltdel);
    assert_eq!(comp(&c, "pf").mode, Mode::Powerwait);
    assert_eq!(comp(&c, "pn").mode, Mode::Powerfailnow);
    assert_eq!(comp(&c, "po").mode, Mode::Powerokwait);
    let one = comp(&c, "1");
    assert_eq!(one.mode, Mode::Respawn);
    assert_eq!(one.runlevels, "2345");
    assert_eq!(one.stdin, Stdio::Inherit, "SysV ids are not terminals");
    assert!(!one.flags.disable);
    let off = comp(&c, "T0");
    assert!(off.flags.disable);
    assert_eq!(
        off.argv,
        strings(&["/sbin/getty", "-L", "ttyS0", "9600", "vt100"])
    );
}

#[test]
fn every_action() {
    let actions = [
        ("sysinit", Mode::Sysinit),
        ("boot", Mode::Boot),
        ("bootwait", Mode::Bootwait),
        ("wait", Mode::Wait),
        ("once", Mode::Once),
        ("respawn", Mode::Respawn),
        ("askfirst", Mode::Askfirst),
        ("ctrlaltdel", Mode::Ctrlaltdel),
        ("shutdown", Mode::Shutdown),
        ("restart", Mode::Restart),
        ("powerfail", Mode::Powerfail),
        ("powerwait", Mode::Powerwait),
        ("powerokwait", Mode::Powerokwait),
        ("powerfailnow", Mode::Powerfailnow),
        ("ondemand", Mode::Ondemand),
        ("off", Mode::Once),
    ];
    let text: String = actions
        .iter()
        .enumerate()
        .map(|(i, (a, _))| format!("a{i}:2:{a}:/bin/x\n"))
        .collect();
    let c = ok(&text);
    for (i, (a, m)) in actions.iter().enumerate() {
        let s = comp(&c, &format!("a{i}"));
        assert_eq!(s.mode, *m, "{a}");
        assert_eq!(s.flags.disable, *a == "off", "{a}");
    }
}

#[test]
fn shell_metacharacters_use_sh() {
    let c = ok("::sysinit:/bin/mount -a; /bin/hostname -F /etc/hostname\n\
                ::once:echo $HOME\n\
                ::wait:  /bin/plain  word  \n\
                ::ondemand:-/bin/sh -c 'x'\n");
    assert_eq!(
        comp(&c, "sysinit").argv,
        strings(&[
            "/bin/sh",
            "-c",
            "/bin/mount -a; /bin/hostname -F /etc/hostname"
        ])
    );
    assert_eq!(
        comp(&c, "once").argv,
        strings(&["/bin/sh", "-c", "echo $HOME"])
    );
    assert_eq!(comp(&c, "wait").argv, strings(&["/bin/plain", "word"]));
    assert_eq!(
        comp(&c, "ondemand").argv,
        strings(&["/bin/sh", "-c", "/bin/sh -c 'x'"])
    );
}

#[test]
fn busybox_terminals_and_tags() {
    let c = ok("ttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n\
                /dev/console::sysinit:/etc/rc\n\
                vc/1::askfirst:/bin/sh\r\n\
                ::respawn:/bin/a\n\
                ::respawn:/bin/b\n");
    assert_eq!(
        tags(&c),
        vec!["ttyS0", "console", "vc-1", "respawn-1", "respawn-2"]
    );
    assert_eq!(comp(&c, "ttyS0").stdin, Stdio::Tty("/dev/ttyS0".into()));
    assert_eq!(
        comp(&c, "console").stderr,
        Stdio::Tty("/dev/console".into())
    );
    assert_eq!(comp(&c, "vc-1").stdout, Stdio::Tty("/dev/vc/1".into()));
    assert_eq!(
        comp(&c, "vc-1").argv.last().map(String::as_str),
        Some("/bin/sh"),
        "CR is trimmed"
    );
}

#[test]
fn blank_and_comment_lines_are_skipped() {
    let c = ok("\n   \n# comment\n   # indented comment\n\t\nx:2:once:/bin/x\n");
    assert_eq!(tags(&c), vec!["x"]);
    assert_eq!(comp(&c, "x").origin.line, 6);
    assert_eq!(ok("").components.len(), 0);
}

#[test]
fn errors_point_at_the_bad_field() {
    let text = "id:3:initdefault:
a:2:respawn
b:2:respwan:/bin/b
c:2x:once:/bin/c
toolong:2:once:/bin/d
e:2:once:
f:2:once:/bin/f
f:3:once:/bin/f2
g::initdefault:
:2:once:/bin/h
ié:2:bogus:/bin/i
";
    assert_eq!(
        errs(text),
        vec![
            "2:1: expected 4 fields `id:runlevels:action:process`, found 3",
            "3:5: unknown action `respwan`; did you mean `respawn`?",
            "4:3: invalid runlevel `x`: expected 0-9, a-c or S",
            "5:1: id `toolong` is longer than 4 characters",
            "6:10: empty process field",
            "8:1: duplicate component `f`; first defined at /etc/inittab:7:1",
            "9:3: `initdefault` needs a runlevel",
            "10:1: empty id: SysV entries need an id of 1-4 characters",
            "11:6: unknown action `bogus`",
        ]
    );
    assert_eq!(
        errs("id:3:initdefault:\nid2:5:initdefault:\n"),
        vec!["2:7: `initdefault` is already given on line 1"]
    );
    assert_eq!(
        errs("just some words\n::sysinit:/x\n"),
        vec!["1:1: expected 4 fields `id:runlevels:action:process`, found 1"]
    );
    let e = parse("x", Path::new("/etc/inittab")).expect_err("error");
    assert_eq!(
        e.to_string(),
        "/etc/inittab:1:1: expected 4 fields `id:runlevels:action:process`, found 1"
    );
}

#[test]
fn process_may_contain_colons() {
    let c = ok("x:2:once:/bin/echo a:b:c\n");
    assert_eq!(comp(&c, "x").argv, strings(&["/bin/echo", "a:b:c"]));
}

/// A small deterministic generator (Numerical Recipes LCG).
fn lcg(state: &mut u64) -> usize {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) as usize
}

#[test]
fn no_input_panics() {
    let file = Path::new("/etc/inittab");
    for sample in [BUSYBOX, SYSV] {
        for (i, _) in sample.char_indices() {
            let _ = parse(&sample[..i], file);
        }
    }
    let alphabet = b"::::#\n\r -/abcdefghijklmnopqrstuvwxyz0123456789;$'\"";
    let mut state = 7u64;
    for _ in 0..3000 {
        let len = lcg(&mut state) % 120;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if lcg(&mut state) % 2 == 0 {
                    alphabet[lcg(&mut state) % alphabet.len()]
                } else {
                    (lcg(&mut state) % 256) as u8
                }
            })
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes), file);
    }
}
