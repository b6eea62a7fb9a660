//! The validated configuration: what the parsers produce and the supervisor consumes.
//!
//! Everything here is plain data. A `Config` is only ever built by a parser that
//! has already checked it (tags unique, prerequisites exist, no cycles), so the
//! supervisor can trust it without re-validating.

use std::path::PathBuf;
use std::time::Duration;

/// Where a statement came from, kept for error messages and `/conf/files`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file the statement was read from.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A whole configuration: globals plus components in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Every file that was read, the main file first (for `/conf/files`).
    pub files: Vec<PathBuf>,
    /// Time allowed for all components to stop at shutdown before SIGKILL.
    pub shutdown_timeout: Duration,
    /// File to write tend's PID into, if any.
    pub pidfile: Option<PathBuf>,
    /// Directory for tend's own state (agent cache defaults under it).
    pub state_directory: Option<PathBuf>,
    /// Respawn throttling defaults for components that do not set their own.
    pub throttle: Throttle,
    /// The control API listeners and their access rules.
    pub control: Control,
    /// The components, in the order they were declared.
    pub components: Vec<ComponentSpec>,
    /// `config-server { … }`: run a fleet ConfigServer as a supervised child.
    pub config_server: Option<ConfigServerSpec>,
    /// `agent { … }`: pull components from a fleet ConfigServer.
    pub agent: Option<AgentSpec>,
    /// The configuration came from an inittab (SysV/BusyBox) file.
    pub inittab: bool,
    /// The `initdefault` runlevel of an inittab, if one was given.
    pub initdefault: Option<char>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            files: Vec::new(),
            shutdown_timeout: Duration::from_secs(5),
            pidfile: None,
            state_directory: None,
            throttle: Throttle::default(),
            control: Control::default(),
            components: Vec::new(),
            config_server: None,
            agent: None,
            inittab: false,
            initdefault: None,
        }
    }
}

/// Respawn throttling: more than `max_restarts` starts within `window` puts a
/// component to sleep for `sleep` (pies semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Starts allowed inside the window before the component sleeps.
    pub max_restarts: u32,
    /// The sliding window the starts are counted in.
    pub window: Duration,
    /// How long a throttled component sleeps before the next try.
    pub sleep: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            max_restarts: 10,
            window: Duration::from_secs(120),
            sleep: Duration::from_secs(300),
        }
    }
}

/// A control API listener address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenUrl {
    /// `unix:///path`: served in-process.
    Unix(PathBuf),
    /// `inet://host:port`: served by the `tend gateway` child process.
    Inet(String),
}

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/tend.sock";

/// `control { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Listeners; the default is one UNIX socket at [`DEFAULT_SOCKET`].
    pub sockets: Vec<ListenUrl>,
    /// Client addresses allowed on TCP listeners (empty = all). CIDR or plain address.
    pub allow: Vec<String>,
    /// Client addresses refused on TCP listeners.
    pub deny: Vec<String>,
    /// File holding the admin bearer token.
    pub token_file: Option<PathBuf>,
    /// File of `user:sha256-hex[:ro]` lines for HTTP Basic.
    pub basic_auth_file: Option<PathBuf>,
    /// Extra host names accepted in the `Host` header.
    pub names: Vec<String>,
    /// User the gateway runs as (default `nobody`).
    pub gateway_user: Option<String>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            sockets: vec![ListenUrl::Unix(PathBuf::from(DEFAULT_SOCKET))],
            allow: Vec::new(),
            deny: Vec::new(),
            token_file: None,
            basic_auth_file: None,
            names: Vec::new(),
            gateway_user: None,
        }
    }
}

/// `config-server { listen URL; store DIR; token-file F; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigServerSpec {
    /// `inet://host:port` to listen on.
    pub listen: String,
    /// Directory of the durable store.
    pub store: PathBuf,
    /// Optional bearer token file required of clients.
    pub token_file: Option<PathBuf>,
}

/// `agent { server URL; id ID; tags (k=v, …); interval N; token-file F; cache DIR; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// `http://host:port` of the ConfigServer.
    pub server: String,
    /// Agent id (default: the host name).
    pub id: Option<String>,
    /// Tags as `(name, value)`.
    pub tags: Vec<(String, String)>,
    /// Heartbeat and pull interval.
    pub interval: Duration,
    /// Optional bearer token file.
    pub token_file: Option<PathBuf>,
    /// Where the last good configs are kept.
    pub cache: Option<PathBuf>,
}

/// How a component is run (pies modes plus the inittab actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Kept running; restarted when it exits.
    Respawn,
    /// Run once, not restarted.
    Once,
    /// Run to completion before any non-startup component starts.
    Startup,
    /// Run after all other components have stopped.
    Shutdown,
    /// inittab `sysinit`: first, waited for.
    Sysinit,
    /// inittab `boot`: at boot, not waited for.
    Boot,
    /// inittab `bootwait`: at boot, waited for.
    Bootwait,
    /// inittab `wait`: on entering the runlevel, waited for.
    Wait,
    /// inittab `ctrlaltdel`: on SIGINT in system-init mode.
    Ctrlaltdel,
    /// inittab `powerfail`: on SIGPWR, not waited for.
    Powerfail,
    /// inittab `powerwait`: on SIGPWR, waited for.
    Powerwait,
    /// inittab `powerokwait`: when power comes back.
    Powerokwait,
    /// inittab `powerfailnow`: when the battery is nearly empty.
    Powerfailnow,
    /// inittab `ondemand`: started on request only.
    Ondemand,
    /// BusyBox `askfirst`: respawn after "Press Enter".
    Askfirst,
    /// BusyBox `restart`: what to exec when init is told to restart.
    Restart,
}

impl Mode {
    /// Every mode with its configuration/API name.
    pub const ALL: [(Mode, &'static str); 16] = [
        (Mode::Respawn, "respawn"),
        (Mode::Once, "once"),
        (Mode::Startup, "startup"),
        (Mode::Shutdown, "shutdown"),
        (Mode::Sysinit, "sysinit"),
        (Mode::Boot, "boot"),
        (Mode::Bootwait, "bootwait"),
        (Mode::Wait, "wait"),
        (Mode::Ctrlaltdel, "ctrlaltdel"),
        (Mode::Powerfail, "powerfail"),
        (Mode::Powerwait, "powerwait"),
        (Mode::Powerokwait, "powerokwait"),
        (Mode::Powerfailnow, "powerfailnow"),
        (Mode::Ondemand, "ondemand"),
        (Mode::Askfirst, "askfirst"),
        (Mode::Restart, "restart"),
    ];

    /// The name used in configuration files and the API.
    pub fn name(self) -> &'static str {
        Mode::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map(|(_, n)| *n)
            .unwrap_or("respawn")
    }

    /// Parse a mode name.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
    }

    /// Restarted whenever it exits.
    pub fn respawns(self) -> bool {
        matches!(self, Mode::Respawn | Mode::Askfirst)
    }
}

/// Where a standard stream of a component goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdio {
    /// Shared with tend.
    Inherit,
    /// `/dev/null`.
    Null,
    /// Appended to a file.
    File(PathBuf),
    /// Each line sent to syslog with this priority (LOG_ERR …, facility daemon).
    Syslog(i32),
    /// A terminal device (inittab's tty field); opened read-write.
    Tty(PathBuf),
}

/// `env { clear; keep NAME; set "N=V"; unset NAME; }` applied in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSpec {
    /// Start from an empty environment (then `keep` copies names back).
    pub clear: bool,
    /// Names (or `PREFIX*` patterns) kept from tend's environment when clearing.
    pub keep: Vec<String>,
    /// Variables set, as `(name, value)`.
    pub set: Vec<(String, String)>,
    /// Names removed.
    pub unset: Vec<String>,
}

/// `flags (…)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Not started until asked for.
    pub disable: bool,
    /// Never put to sleep by throttling.
    pub precious: bool,
    /// Signals go to the whole process group.
    pub siggroup: bool,
    /// stdin is `/dev/null`.
    pub nullinput: bool,
}

/// One resource limit from a pies `limits` string (e.g. `"n1024 c0"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// `libc::RLIMIT_*` resource.
    pub resource: i32,
    /// Soft and hard value (`u64::MAX` = unlimited).
    pub value: u64,
}

/// Which exits a `return-code` block matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitMatch {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// What to do after a matching exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// Restart (the default for respawn components).
    Restart,
    /// Mark inactive; do not restart.
    Disable,
    /// Shut tend down.
    Shutdown,
}

/// `return-code CODES { action A; exec CMD; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCode {
    /// The exits this block applies to.
    pub codes: Vec<ExitMatch>,
    /// What the supervisor does.
    pub action: Option<ExitAction>,
    /// A command run (as type `command`) when it matches.
    pub exec: Option<String>,
}

/// One configured component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// Unique tag.
    pub tag: String,
    /// The command as written.
    pub command: String,
    /// The command split into words (shell-like quoting, no expansion).
    pub argv: Vec<String>,
    /// How it is run.
    pub mode: Mode,
    /// Tags that must be running (or finished) before this one starts.
    pub prerequisites: Vec<String>,
    /// Run as this user (name or number).
    pub user: Option<String>,
    /// Run with this group (name or number).
    pub group: Option<String>,
    /// Working directory.
    pub chdir: Option<PathBuf>,
    /// File mode creation mask.
    pub umask: Option<u32>,
    /// Resource limits.
    pub limits: Vec<Limit>,
    /// Environment changes.
    pub env: EnvSpec,
    /// Standard input.
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
    /// Flags.
    pub flags: Flags,
    /// Signal that asks it to stop (default SIGTERM).
    pub stop_signal: i32,
    /// Time from the stop signal to SIGKILL.
    pub stop_timeout: Duration,
    /// Signal sent by a flush request (SIGUSR1 / `/api/plugins.flushBuffers`).
    pub flush_signal: Option<i32>,
    /// Respawn throttling for this component.
    pub throttle: Throttle,
    /// Exit-status actions, first match wins.
    pub return_codes: Vec<ReturnCode>,
    /// inittab runlevels (empty = all).
    pub runlevels: String,
    /// Where it was declared.
    pub origin: Location,
}

impl ComponentSpec {
    /// A component with every setting at its default.
    pub fn new(tag: &str, argv: Vec<String>) -> ComponentSpec {
        ComponentSpec {
            tag: tag.to_string(),
            command: argv.join(" "),
            argv,
            mode: Mode::Respawn,
            prerequisites: Vec::new(),
            user: None,
            group: None,
            chdir: None,
            umask: None,
            limits: Vec::new(),
            env: EnvSpec::default(),
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            flags: Flags::default(),
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(5),
            flush_signal: None,
            throttle: Throttle::default(),
            return_codes: Vec::new(),
            runlevels: String::new(),
            origin: Location::default(),
        }
    }

    /// True when the two specs would run the same way: everything but the
    /// declaration site matters. A graceful reload restarts a component
    /// exactly when this is false.
    pub fn runs_like(&self, other: &ComponentSpec) -> bool {
        let mut a = self.clone();
        a.origin = other.origin.clone();
        a == *other
    }
}
