//! The daemon's command line: parse it, pick the running mode, start the
//! main loop.

use crate::config::{self, Config, ListenUrl, Syntax};
use crate::signals;
use crate::supervisor::{Options, Supervisor};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/tend.conf";
/// Read when tend is PID 1 and there is no [`DEFAULT_CONFIG`].
pub const DEFAULT_INITTAB: &str = "/etc/inittab";

const USAGE: &str = "\
Usage: tend [OPTIONS] [-c FILE]
       tend [OPTIONS] [--] COMMAND [ARG...]
       tend ctl|gateway|config-server|agent ...

A small process supervisor and init with a JSON HTTP control API.

Modes:
  tend -- CMD ARGS...      run CMD as a container init (tini-compatible): forward
                           signals, reap zombies, exit with CMD's status
  tend -c FILE             supervise the components of FILE (default /etc/tend.conf;
                           as PID 1 without it, /etc/inittab)
  tend --check -c FILE     validate FILE, print every error as FILE:LINE:COL: message

Options:
  -c, --config FILE        configuration file
      --syntax pies|inittab
                           syntax of FILE (default: inittab for files named inittab)
      --check              validate the configuration and exit (0 valid, 1 invalid)
      --init               system-init personality (reboot on shutdown, ctrlaltdel,
                           power events); implied as PID 1 reading /etc/inittab
      --control URL        serve the API here instead of the configured sockets
                           (unix:///path or inet://host:port; repeatable)
  -g                       forward signals to CMD's process group (tend -- mode)
  -e CODE                  exit 0 when CMD exits with CODE (0-255, repeatable;
                           143 is CMD killed by SIGTERM), as tini's -e
  -p SIGNAL                get SIGNAL when tend's parent dies (e.g. -p SIGKILL)
  -w                       warn about every orphan reaped (tend -- mode)
  -s                       accepted for tini compatibility (tend always subreaps)
  -l                       show the license and exit
  -v, --verbose            log debug messages (RUST_LOG overrides)
  -q, --quiet              log warnings and errors only
  -h, --help               show this help
  -V, --version            show the version

Signals: TERM/INT stop everything and exit; HUP reloads and restarts all;
USR2 reloads gracefully; USR1 sends each component its flush signal.
Short options combine as with tini (-gw, -vvv, -e143). Environment, as tini's:
TINI_KILL_PROCESS_GROUP (like -g), TINI_VERBOSITY (0-1 quiet, 2 info, 3 debug).
See tend(8), tend.conf(5) and tendctl(8).
";

/// `tend -l`, as `tini -l`.
const LICENSE: &str = include_str!("../LICENSE");

/// A command-line mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parsed daemon arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `-c FILE`.
    pub config: Option<PathBuf>,
    /// `--syntax`.
    pub syntax: Option<Syntax>,
    /// `--check`.
    pub check: bool,
    /// `--init`.
    pub init: bool,
    /// `--control URL`, repeatable.
    pub control: Vec<ListenUrl>,
    /// `-g`.
    pub group: bool,
    /// `-e CODE`, repeatable: CMD's exit statuses that make tend exit 0.
    pub remap_exit: Vec<i32>,
    /// `-p SIGNAL`: asked for when tend's parent dies.
    pub parent_death_signal: Option<i32>,
    /// `-w`: warn about each orphan reaped.
    pub warn_on_reap: bool,
    /// `-l`.
    pub license: bool,
    /// `-v` (1) or `-q` (-1).
    pub verbosity: i8,
    /// `--help`.
    pub help: bool,
    /// `--version`.
    pub version: bool,
    /// The command after `--` (or the first non-option word).
    pub command: Option<Vec<String>>,
}

/// Parse `tend`'s arguments (without the program name), then the
/// environment variables tini users set.
pub fn parse_args(args: &[String]) -> Result<Args, UsageError> {
    let mut out = parse_argv(args)?;
    apply_tini_env(&mut out, |name| std::env::var_os(name));
    Ok(out)
}

/// tini's environment: `TINI_KILL_PROCESS_GROUP` (any value) is `-g`;
/// `TINI_VERBOSITY` 2 is info and 3 debug (0 and 1 are tini's quiet
/// levels, which is tend's default with a command). Command-line flags win.
fn apply_tini_env(out: &mut Args, var: impl Fn(&str) -> Option<std::ffi::OsString>) {
    if var("TINI_KILL_PROCESS_GROUP").is_some() {
        out.group = true;
    }
    if out.verbosity == 0 {
        let level = var("TINI_VERBOSITY").and_then(|v| v.to_str()?.trim().parse::<u8>().ok());
        match level {
            Some(2) => out.verbosity = 0,
            Some(3..) => out.verbosity = 1,
            _ => {}
        }
    }
}

/// One cluster of short options, getopt style as tini reads them: flags
/// combine (`-gw`, `-vvv`) and an option with a value takes the rest of
/// the word or the next one (`-e143`, `-e 143`). Returns whether `next`
/// was used.
fn parse_short(cluster: &str, next: Option<&str>, out: &mut Args) -> Result<bool, UsageError> {
    for (at, flag) in cluster.char_indices() {
        match flag {
            'g' => out.group = true,
            's' => {}
            'w' => out.warn_on_reap = true,
            'l' => out.license = true,
            'v' => out.verbosity = 1,
            'q' => out.verbosity = -1,
            'h' => out.help = true,
            'V' => out.version = true,
            'c' | 'e' | 'p' => {
                let rest = &cluster[at + flag.len_utf8()..];
                let (value, used_next) = match (rest, next) {
                    ("", Some(v)) => (v, true),
                    ("", None) => return Err(UsageError(format!("-{flag} needs a value"))),
                    (r, _) => (r, false),
                };
                short_value(flag, value, out)?;
                return Ok(used_next);
            }
            other => return Err(UsageError(format!("unknown option `-{other}`"))),
        }
    }
    Ok(false)
}

/// The value of `-c`, `-e` or `-p`.
fn short_value(flag: char, value: &str, out: &mut Args) -> Result<(), UsageError> {
    match flag {
        'c' => out.config = Some(PathBuf::from(value)),
        'e' => match value.parse::<i32>() {
            Ok(code) if (0..=255).contains(&code) => out.remap_exit.push(code),
            _ => {
                return Err(UsageError(format!(
                    "-e takes an exit status from 0 to 255, not `{value}`"
                )));
            }
        },
        _ => {
            let sig = config::parse_signal(value).map_err(|e| UsageError(format!("-p: {e}")))?;
            out.parent_death_signal = Some(sig);
        }
    }
    Ok(())
}

fn parse_argv(args: &[String]) -> Result<Args, UsageError> {
    let mut out = Args::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let mut value = |name: &str| -> Result<String, UsageError> {
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| UsageError(format!("{name} needs a value")));
            i += 1;
            v
        };
        match arg.as_str() {
            "--" => {
                out.command = Some(args[i.min(args.len())..].to_vec());
                break;
            }
            "--config" => out.config = Some(PathBuf::from(value(arg)?)),
            "--syntax" => {
                out.syntax = Some(match value(arg)?.as_str() {
                    "pies" | "tend" => Syntax::Pies,
                    "inittab" => Syntax::Inittab,
                    other => {
                        return Err(UsageError(format!(
                            "unknown syntax `{other}` (pies or inittab)"
                        )));
                    }
                })
            }
            "--control" => out.control.push(parse_listen_url(&value(arg)?)?),
            "--check" => out.check = true,
            "--init" => out.init = true,
            "--verbose" => out.verbosity = 1,
            "--quiet" => out.verbosity = -1,
            "--help" => out.help = true,
            "--version" => out.version = true,
            "--license" => out.license = true,
            s if s.starts_with("--config=") => {
                out.config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            s if s.starts_with("--control=") => out
                .control
                .push(parse_listen_url(&s["--control=".len()..])?),
            s if s.starts_with("--") => {
                return Err(UsageError(format!("unknown option `{s}`")));
            }
            s if s.starts_with('-') && s.len() > 1 => {
                let next = args.get(i).map(String::as_str);
                if parse_short(&s[1..], next, &mut out)? {
                    i += 1;
                }
            }
            _ => {
                // tini also accepts the command without `--`.
                out.command = Some(args[i - 1..].to_vec());
                break;
            }
        }
    }
    if out.command.as_ref().is_some_and(|c| c.is_empty()) {
        return Err(UsageError("`--` must be followed by a command".into()));
    }
    if out.command.is_some() && out.config.is_some() {
        return Err(UsageError(
            "give either -c FILE or a command, not both".into(),
        ));
    }
    Ok(out)
}

/// Parse `unix:///path` or `inet://host:port`.
pub fn parse_listen_url(url: &str) -> Result<ListenUrl, UsageError> {
    if let Some(path) = url.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(UsageError(format!("`{url}`: missing socket path")));
        }
        return Ok(ListenUrl::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = url.strip_prefix("inet://") {
        if !addr.contains(':') {
            return Err(UsageError(format!("`{url}`: expected inet://HOST:PORT")));
        }
        return Ok(ListenUrl::Inet(addr.to_string()));
    }
    Err(UsageError(format!(
        "`{url}`: expected unix:///PATH or inet://HOST:PORT"
    )))
}

/// Run the daemon (or `--check`); returns the exit status.
pub fn main(argv: Vec<String>) -> i32 {
    let args = match parse_args(argv.get(1..).unwrap_or(&[])) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tend: {e}\nTry 'tend --help' for more information.");
            return 2;
        }
    };
    if args.help {
        print!("{USAGE}");
        return 0;
    }
    if args.version {
        println!("tend {}", crate::VERSION);
        return 0;
    }
    if args.license {
        print!("{LICENSE}");
        return 0;
    }
    // As a container init, stay as quiet as tini unless asked to talk.
    let quiet_by_default = args.command.is_some() && args.verbosity == 0;
    init_logging(if quiet_by_default { -1 } else { args.verbosity });
    if args.check {
        return check(&args);
    }
    // Before any thread exists: every thread inherits this mask, so no
    // thread but the main loop's signalfd ever sees these signals.
    if let Err(e) = signals::block_handled() {
        log::error!("cannot block signals: {e}");
        return 1;
    }
    tune_allocator();
    if let Some(sig) = args.parent_death_signal {
        ask_for_parent_death_signal(sig);
    }
    let pid1 = std::process::id() == 1;
    if !pid1 {
        become_subreaper();
    }
    let (opts, config) = match choose_mode(args, argv, pid1) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match Supervisor::new(opts, config) {
        Ok(sup) => sup.run(),
        Err(e) => {
            log::error!("cannot start the main loop: {e}");
            1
        }
    }
}

/// `tend --check`: validate and print every error.
fn check(args: &Args) -> i32 {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match config::load(&path, args.syntax) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} components)",
                path.display(),
                cfg.components.len()
            );
            0
        }
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            for e in &errors.0 {
                let _ = writeln!(err, "{e}");
            }
            1
        }
    }
}

/// Decide between `tend -- CMD`, a config file, and init's inittab, and
/// load the configuration. `Err` carries the exit status.
fn choose_mode(args: Args, argv: Vec<String>, pid1: bool) -> Result<(Options, Config), i32> {
    let mut opts = Options {
        config_path: None,
        syntax: args.syntax,
        command: args.command.clone(),
        forward_to_group: args.group,
        remap_exit: args.remap_exit.clone(),
        warn_on_reap: args.warn_on_reap,
        init_mode: args.init && pid1,
        control: args.control.clone(),
        argv,
    };
    if args.command.is_some() {
        return Ok((opts, Config::default()));
    }
    let path = match args.config {
        Some(p) => p,
        None if Path::new(DEFAULT_CONFIG).exists() || !pid1 => PathBuf::from(DEFAULT_CONFIG),
        None => {
            // BusyBox init's behaviour: as PID 1 without our config, read inittab.
            opts.init_mode = true;
            opts.syntax = Some(Syntax::Inittab);
            PathBuf::from(DEFAULT_INITTAB)
        }
    };
    opts.config_path = Some(path.clone());
    match config::load(&path, opts.syntax) {
        Ok(cfg) => {
            if cfg.inittab && pid1 {
                opts.init_mode = true;
            }
            Ok((opts, cfg))
        }
        Err(errors) => {
            for e in &errors.0 {
                log::error!("{e}");
            }
            if opts.init_mode {
                // Real init must not exit: run with nothing and let the
                // operator fix the file and reload through the API.
                log::error!("starting with an empty configuration; fix the file and reload");
                Ok((opts, Config::default()))
            } else {
                Err(1)
            }
        }
    }
}

/// Keep the daemon's memory flat under hostile or bursty API traffic. By
/// default glibc gives each API thread its own arena, and each keeps the
/// buffers of past requests (bodies up to `api::MAX_BODY`) resident after
/// they are freed; it also raises its mmap threshold after every large
/// free, so later large buffers stay in the heap too. One arena and a fixed
/// threshold return large buffers to the kernel when they are freed.
/// Called before any thread starts (arenas are chosen per thread).
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; no allocation is in flight
    // on another thread yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// `-p SIGNAL`: when whoever started tend dies, the kernel sends tend this
/// signal (a SIGTERM then stops everything as if sent by hand). Set before
/// any thread starts because the kernel ties it to the parent *thread*.
fn ask_for_parent_death_signal(sig: i32) {
    // SAFETY: getppid and prctl take integers only.
    let (parent, rc) = unsafe {
        let parent = libc::getppid();
        (
            parent,
            libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0),
        )
    };
    if rc != 0 {
        log::warn!(
            "cannot set the parent death signal: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    // A parent that died while tend was starting sent nothing: act as if
    // it had. (The signal is blocked, so it waits for the main loop.)
    // SAFETY: as above; raise(2) on ourselves.
    unsafe {
        if libc::getppid() != parent {
            libc::raise(sig);
        }
    }
}

/// Orphans of our components come back to us to be reaped.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        log::warn!(
            "cannot become child subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Log to stderr through env_logger: `info` by default, `RUST_LOG` wins.
fn init_logging(verbosity: i8) {
    let default = match verbosity {
        v if v > 0 => "debug",
        v if v < 0 => "warn",
        _ => "info",
    };
    let env = env_logger::Env::default().default_filter_or(default);
    let _ = env_logger::Builder::from_env(env)
        .format(|buf, record| {
            writeln!(
                buf,
                "tend[{}]: {}: {}",
                std::process::id(),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Args, UsageError> {
        parse_args(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn command_after_double_dash() {
        let a = parse(&["-g", "--", "sleep", "-x"]).unwrap();
        assert!(a.group);
        assert_eq!(a.command, Some(vec!["sleep".to_string(), "-x".to_string()]));
    }

    #[test]
    fn command_without_double_dash_like_tini() {
        let a = parse(&["sleep", "5"]).unwrap();
        assert_eq!(a.command, Some(vec!["sleep".to_string(), "5".to_string()]));
    }

    #[test]
    fn config_and_control() {
        let a = parse(&[
            "-c",
            "/x.conf",
            "--control",
            "unix:///tmp/s",
            "--control=inet://127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/x.conf")));
        assert_eq!(
            a.control,
            vec![
                ListenUrl::Unix("/tmp/s".into()),
                ListenUrl::Inet("127.0.0.1:1".into())
            ]
        );
    }

    #[test]
    fn short_options_combine_as_in_tini() {
        let a = parse(&["-gsw", "-vvv", "-e143", "-e", "0", "-pSIGKILL", "--", "x"]).unwrap();
        assert!(a.group && a.warn_on_reap);
        assert_eq!(a.verbosity, 1);
        assert_eq!(a.remap_exit, vec![143, 0]);
        assert_eq!(a.parent_death_signal, Some(libc::SIGKILL));
        let a = parse(&["-c/etc/x.conf"]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/etc/x.conf")));
        assert_eq!(parse(&["-gx"]).unwrap_err().0, "unknown option `-x`");
        assert_eq!(parse(&["-e"]).unwrap_err().0, "-e needs a value");
        assert!(parse(&["-e", "-1"]).unwrap_err().0.contains("0 to 255"));
        assert!(
            parse(&["-p", "NOPE"])
                .unwrap_err()
                .0
                .contains("unknown signal")
        );
    }

    #[test]
    fn tini_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let mut a = Args::default();
        apply_tini_env(
            &mut a,
            env(&[("TINI_KILL_PROCESS_GROUP", "1"), ("TINI_VERBOSITY", "3")]),
        );
        assert!(a.group);
        assert_eq!(a.verbosity, 1);
        let mut a = Args {
            verbosity: -1,
            ..Args::default()
        };
        apply_tini_env(&mut a, env(&[("TINI_VERBOSITY", "3")]));
        assert_eq!(a.verbosity, -1, "-q wins over the environment");
        let mut a = Args::default();
        apply_tini_env(&mut a, env(&[]));
        assert_eq!(a, Args::default());
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(
            parse(&["--bogus"]).unwrap_err().0,
            "unknown option `--bogus`"
        );
        assert_eq!(parse(&["-c"]).unwrap_err().0, "-c needs a value");
        assert!(parse(&["--"]).is_err());
        assert!(
            parse(&["--control", "tcp://x"])
                .unwrap_err()
                .0
                .contains("expected")
        );
        assert!(parse(&["-c", "f", "--", "x"]).is_err());
    }
}
