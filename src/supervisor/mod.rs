//! The main loop: the single owner of supervision.
//!
//! One thread waits in `poll(2)` on three kinds of event and nothing else:
//! the signalfd (SIGCHLD, control signals), the eventfd the HTTP threads
//! write to when they queue a request, and the pipes of components whose
//! output goes to syslog. The poll timeout is the nearest timer (a stop
//! deadline, a sleeping component's wake-up, the shutdown deadline), or
//! infinite when nothing is due: an idle tend makes no wake-ups at all.
//!
//! Each wake-up runs one [`Supervisor::iteration`] under the shared lock:
//! read signals, reap, answer requests, fire timers, start what is due.

mod lifecycle;
mod listeners;
mod logs;
mod pid1;
mod reload;

use crate::config::{Config, ListenUrl, Syntax};
use crate::shared::{Refusal, Reply, Request, Shared, ShutdownKind, State};
use crate::signals::{self, SignalFd};
use crate::spawn::Session;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the daemon was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The configuration file, if any (`None` in `tend -- CMD` mode).
    pub config_path: Option<PathBuf>,
    /// Its syntax.
    pub syntax: Option<Syntax>,
    /// `tend -- CMD ARGS…`: the one command to run, tini-style.
    pub command: Option<Vec<String>>,
    /// `-g`: forward signals to the command's process group.
    pub forward_to_group: bool,
    /// `-e CODE`: the command's exit statuses that make tend exit 0.
    pub remap_exit: Vec<i32>,
    /// `-w`: warn about every orphan reaped.
    pub warn_on_reap: bool,
    /// System-init personality (reboot on shutdown, ctrlaltdel, power events).
    pub init_mode: bool,
    /// `--control URL`: listeners replacing the configured ones.
    pub control: Vec<ListenUrl>,
    /// tend's own argv, for re-exec and `/instance`.
    pub argv: Vec<String>,
}

/// Where shutdown is: stop the normal components, run the shutdown
/// components, clean up what is left, then finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Normal operation.
    Running,
    /// Stopping components, dependents before their prerequisites.
    StoppingComponents,
    /// Running the `shutdown`-mode components.
    ShutdownComponents,
    /// As PID 1: every remaining process got SIGTERM; SIGKILL at the deadline.
    KillingLeftovers,
    /// Nothing left to do; the loop returns.
    Done,
}

/// A shutdown in progress.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    kind: ShutdownKind,
    /// When whatever still runs gets SIGKILL.
    deadline: Instant,
}

/// The main loop's private state (the shared part is in [`State`]).
pub struct Supervisor {
    shared: Arc<Shared>,
    signals: SignalFd,
    opts: Options,
    /// Path of tend's own binary, for the gateway and ConfigServer children.
    exe: PathBuf,
    phase: Phase,
    shutdown: Option<Shutdown>,
    /// Components' output pipes bound for syslog.
    log_pipes: logs::LogPipes,
    /// The in-process API servers and the sockets they answer.
    listeners: listeners::Listeners,
    /// A reload changed the `control` block: bring the listeners in line
    /// once the lock is released.
    listeners_stale: bool,
    /// The secret gateways prove themselves with on their sockets.
    gateway_secret: String,
    /// Configs pulled by the fleet agent, parsed: (name, config).
    fleet: Vec<(String, Config)>,
    /// `tend -- CMD`: the tag of CMD, whose exit ends tend.
    main_tag: Option<String>,
    /// Exit status tend returns.
    exit_code: i32,
    /// Replace tend with this program when the loop ends (re-exec, BusyBox restart).
    exec_on_exit: Option<Vec<String>>,
}

/// Hands the heap that parsing the configuration and starting everything
/// used, and has freed, back to the kernel. glibc keeps freed memory below
/// its trim threshold for reuse, which for a daemon that then idles for
/// months is resident memory doing nothing (about 200 KiB with 50
/// components).
fn release_startup_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of malloc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Supervisor {
    /// Set up the main loop. Signals must already be blocked.
    pub fn new(opts: Options, config: Config) -> std::io::Result<Supervisor> {
        let signals = SignalFd::open()?;
        let mut state = State::new(config, opts.config_path.clone(), opts.argv.clone());
        state.init_mode = opts.init_mode;
        state.runlevel = state.config.initdefault.unwrap_or('3');
        let shared = Shared::new(state)?;
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        let main_tag = opts.command.as_ref().map(|argv| main_tag_for(argv));
        Ok(Supervisor {
            shared,
            signals,
            opts,
            exe,
            phase: Phase::Running,
            shutdown: None,
            log_pipes: logs::LogPipes::default(),
            listeners: listeners::Listeners::default(),
            listeners_stale: false,
            gateway_secret: random_hex(16),
            fleet: Vec::new(),
            main_tag,
            exit_code: 0,
            exec_on_exit: None,
        })
    }

    /// The state shared with the API threads.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Run until shutdown; returns tend's exit status.
    pub fn run(mut self) -> i32 {
        self.write_pidfile();
        // Starting the API's threads takes a millisecond or more, which a
        // container's command should not wait for. The gateway and agent
        // helpers, though, are given the API's socket paths: with those,
        // the sockets come first.
        let helpers_need_sockets = {
            let st = self.shared.lock();
            !self.inet_listeners(&st.config).is_empty() || st.config.agent.is_some()
        };
        if helpers_need_sockets {
            self.apply_listeners();
        }
        self.reconcile_now("starting");
        self.start_due();
        if !helpers_need_sockets {
            self.apply_listeners();
        }
        release_startup_memory();
        while self.phase != Phase::Done {
            let timeout = self.poll_timeout(Instant::now());
            let ready = self.wait(timeout);
            // A bug in one iteration must not take PID 1 down: log it and go on
            // with the next event. The state is plain data and stays usable.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.iteration(&ready)));
            if outcome.is_err() {
                log::error!("internal error in the main loop (recovered); please report it");
            }
        }
        self.finish()
    }

    /// Handle everything that woke the loop. Only the fds poll reported are
    /// read: a storm of SIGCHLD (an orphan storm reaches PID 1 as thousands
    /// of wake-ups) then costs one signalfd read and the waitpid loop each.
    fn iteration(&mut self, ready: &Ready) {
        let pending = if ready.signals {
            self.signals.read_pending()
        } else {
            signals::Pending::default()
        };
        if ready.wake {
            self.shared.drain_wake();
        }
        self.log_pipes.drain(&ready.pipes);
        let shared = self.shared.clone();
        let mut st = shared.lock();
        for sig in pending.iter() {
            self.on_signal(&mut st, sig);
        }
        for (request, reply_to) in st.take_requests() {
            let reply = self.handle(&mut st, request);
            // The requester may have given up waiting; nothing to do then.
            reply_to.send(reply);
        }
        self.tick(&mut st, Instant::now());
        drop(st);
        if std::mem::take(&mut self.listeners_stale) {
            self.refresh_listeners();
        }
        self.start_due();
    }

    /// After a reload changed the `control` block: serve the new set of
    /// sockets, then reconcile again so that the gateways follow them (a
    /// new TCP listener's gateway needs its socket to exist first).
    fn refresh_listeners(&mut self) {
        self.apply_listeners();
        self.reconcile_now("after changing the listeners");
    }

    /// Bring the table in line with the desired components (gracefully)
    /// and fire what is due, under the lock; `when` goes into the error.
    fn reconcile_now(&mut self, when: &str) {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        if let Err(e) = self.reconcile(&mut st, false) {
            log::error!("{when}: {e}");
        }
        self.tick(&mut st, Instant::now());
    }

    /// Sleep until an fd is ready or the timeout passes; say which are.
    fn wait(&self, timeout: Option<Duration>) -> Ready {
        let mut fds = vec![
            libc::pollfd {
                fd: self.signals.raw(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.shared.wake_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        fds.extend(self.log_pipes.pollfds());
        let ms = match timeout {
            None => -1,
            // Round up so a timer is never woken for just before it is due.
            Some(d) => d.as_millis().saturating_add(1).min(i32::MAX as u128) as i32,
        };
        // SAFETY: fds is a live array of fds.len() pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            // EINTR (a stop signal, SIGCONT) or ENOMEM: look at everything.
            return Ready::everything(fds.split_off(2));
        }
        let readable = |fd: &libc::pollfd| fd.revents != 0;
        Ready {
            signals: fds.first().is_some_and(readable),
            wake: fds.get(1).is_some_and(readable),
            pipes: fds.split_off(2).into_iter().filter(readable).collect(),
        }
    }

    /// React to one signal sent to tend.
    fn on_signal(&mut self, st: &mut State, sig: i32) {
        if sig == libc::SIGCHLD {
            self.reap(st);
            return;
        }
        if self.main_tag.is_some() && signals::FORWARDED.contains(&sig) {
            self.forward(st, sig);
            return;
        }
        log::info!("received SIG{}", signals::name(sig));
        let request = match sig {
            libc::SIGTERM if st.init_mode => Request::Shutdown(ShutdownKind::Reboot),
            libc::SIGINT if st.init_mode => {
                self.trigger_modes(st, &[crate::config::Mode::Ctrlaltdel]);
                return;
            }
            libc::SIGPWR => {
                self.power_event(st);
                return;
            }
            libc::SIGQUIT if st.init_mode => {
                self.exec_on_exit = pid1::restart_command(st);
                Request::Shutdown(ShutdownKind::Exit)
            }
            // BusyBox's `halt` and `poweroff` signal init with USR1 and
            // USR2 (its `reboot` with TERM); as the system's init those
            // meanings win over flush and graceful reload, which stay
            // available through the API.
            libc::SIGUSR1 if st.init_mode => Request::Shutdown(ShutdownKind::Halt),
            // BusyBox and SysV init re-read the inittab on HUP and leave
            // unchanged entries running: restarting every service of a
            // board is not what `kill -HUP 1` is for there.
            libc::SIGHUP if st.init_mode => Request::Reload { graceful: true },
            libc::SIGUSR2 if st.init_mode => Request::Shutdown(ShutdownKind::Poweroff),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => Request::Shutdown(ShutdownKind::Exit),
            libc::SIGHUP => Request::Reload { graceful: false },
            libc::SIGUSR2 => Request::Reload { graceful: true },
            libc::SIGUSR1 => Request::Flush,
            _ => return,
        };
        if let Err(refusal) = self.handle(st, request) {
            log::warn!("SIG{}: {}", signals::name(sig), refusal.message);
        }
    }

    /// `tend -- CMD`: pass the signal on to CMD (or its process group).
    fn forward(&self, st: &State, sig: i32) {
        let Some(pid) = self
            .main_tag
            .as_deref()
            .and_then(|t| st.table.get(t))
            .and_then(|c| c.pid)
        else {
            return;
        };
        let target = if self.opts.forward_to_group {
            -pid
        } else {
            pid
        };
        log::debug!("forwarding SIG{} to {target}", signals::name(sig));
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(target, sig) };
    }

    /// Carry out one request from the API, a signal, or the agent.
    fn handle(&mut self, st: &mut State, request: Request) -> Reply {
        if self.phase != Phase::Running {
            return Err(Refusal::new(503, "tend is shutting down"));
        }
        match request {
            Request::Start(tags) => self.start_tags(st, &tags),
            Request::Stop(tags) => self.stop_tags(st, &tags),
            Request::Restart(tags) => self.restart_tags(st, &tags),
            Request::Reload { graceful } => self.reload(st, graceful),
            Request::Flush => {
                self.flush(st);
                Ok(())
            }
            Request::Shutdown(kind) => {
                if kind == ShutdownKind::FlushAndExit {
                    self.flush(st);
                }
                self.begin_shutdown(st, kind);
                Ok(())
            }
            Request::Reexec => {
                self.exec_on_exit = Some(st.argv.clone());
                self.begin_shutdown(st, ShutdownKind::Exit);
                Ok(())
            }
            Request::Runlevel(level) => self.change_runlevel(st, level),
            Request::ApplyFleet(configs) => self.apply_fleet(st, configs),
        }
    }

    /// The session a component's process gets.
    fn session_for(&self, tag: &str) -> Session {
        if self.main_tag.as_deref() == Some(tag) {
            if self.opts.forward_to_group {
                Session::ForegroundGroup
            } else {
                Session::Inherit
            }
        } else {
            Session::New
        }
    }

    /// Time until the nearest timer, or `None` when nothing is due.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let st = self.shared.lock();
        let mut next: Option<Instant> = self.shutdown.map(|s| s.deadline);
        for c in &st.table.components {
            for t in [c.stop_deadline, c.wakeup].into_iter().flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    fn write_pidfile(&self) {
        let path = self.shared.lock().config.pidfile.clone();
        if let Some(path) = path {
            if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
                log::warn!("cannot write pidfile {}: {e}", path.display());
            }
        }
    }

    /// Leave: close listeners, remove the pidfile, and exit, exec or reboot.
    fn finish(self) -> i32 {
        self.listeners.shutdown();
        let (pidfile, init_mode) = {
            let st = self.shared.lock();
            (st.config.pidfile.clone(), st.init_mode)
        };
        if let Some(path) = pidfile {
            let _ = std::fs::remove_file(path);
        }
        if let Some(argv) = &self.exec_on_exit {
            pid1::exec(argv);
        }
        if let Some(shutdown) = self.shutdown {
            if init_mode && std::process::id() == 1 {
                pid1::reboot(shutdown.kind);
            }
        }
        self.exit_code
    }
}

/// `n` random bytes as hex, from the kernel's generator.
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let got = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if got != n as isize {
        log::warn!("getrandom failed; the gateway secret is weaker");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{t:x}{:x}", std::process::id());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tag of the command in `tend -- CMD` mode: its base name.
fn main_tag_for(argv: &[String]) -> String {
    argv.first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "main".to_string())
}

/// What poll(2) found ready in one wait of the main loop.
struct Ready {
    /// The signalfd has signals to read.
    signals: bool,
    /// The eventfd was written: requests are queued.
    wake: bool,
    /// Log pipes with data or a closed writer.
    pipes: Vec<libc::pollfd>,
}

impl Ready {
    /// When poll itself failed: read every fd (each read is non-blocking).
    fn everything(pipes: Vec<libc::pollfd>) -> Ready {
        Ready {
            signals: true,
            wake: true,
            pipes,
        }
    }
}
