//! State shared between the main loop and the HTTP threads.
//!
//! One mutex guards everything the API can see. The HTTP threads read it and,
//! to change anything, queue a [`Request`] and wake the main loop through an
//! eventfd; the main loop (the only writer of supervision state) carries the
//! request out and answers on a channel. No thread holds the lock across a
//! blocking call: requesters release it before they wait for the answer.

use crate::config::Config;
use crate::table::Table;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Something only the main loop may do, asked for by an HTTP thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start these components (by tag).
    Start(Vec<String>),
    /// Stop these components and mark them inactive.
    Stop(Vec<String>),
    /// Restart these components.
    Restart(Vec<String>),
    /// Re-read the configuration: graceful (SIGUSR2) or full (SIGHUP).
    Reload {
        /// Keep unchanged components running.
        graceful: bool,
    },
    /// Send each component its flush signal (SIGUSR1).
    Flush,
    /// Stop everything and exit (or reboot/halt/poweroff as init).
    Shutdown(ShutdownKind),
    /// Re-execute tend with the same arguments.
    Reexec,
    /// Switch runlevel (init mode).
    Runlevel(char),
    /// Replace the components that came from the fleet ConfigServer.
    /// Each entry is `(config name, config text)`.
    ApplyFleet(Vec<(String, String)>),
}

/// How a shutdown ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    /// Exit (container/service); as real init this halts.
    Exit,
    /// Flush, then exit.
    FlushAndExit,
    /// reboot(2) RB_AUTOBOOT.
    Reboot,
    /// reboot(2) RB_HALT_SYSTEM.
    Halt,
    /// reboot(2) RB_POWER_OFF.
    Poweroff,
}

/// Why the main loop refused a request; carried to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status that fits (400, 404, 409, 500, 503…).
    pub status: u16,
    /// Human-readable reason.
    pub message: String,
}

impl Refusal {
    /// A refusal with this status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The answer to a request.
pub type Reply = Result<(), Refusal>;

/// Runtime tunables changed through `/updateConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tunables {
    /// `log::LevelFilter` name.
    pub log_level: String,
    /// Overrides the config's shutdown timeout.
    pub shutdown_timeout: Duration,
    /// Default respawn limit for components without their own.
    pub max_restarts: u32,
    /// Default throttle window.
    pub restart_window: Duration,
    /// Default sleep time.
    pub sleep_time: Duration,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Zombies reaped that belonged to no component (orphans).
    pub reaped_orphans: u64,
    /// All children reaped.
    pub reaped_total: u64,
    /// Configuration reloads carried out.
    pub reloads: u64,
    /// Reloads refused because the file was invalid.
    pub reload_failures: u64,
    /// Times the TCP gateway was (re)started.
    pub gateway_starts: u64,
}

/// Everything behind the shared mutex.
#[derive(Debug)]
pub struct State {
    /// The components.
    pub table: Table,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The file it came from (`None` in `tend -- CMD` mode).
    pub config_path: Option<PathBuf>,
    /// Runtime tunables.
    pub tunables: Tunables,
    /// Counters.
    pub stats: Stats,
    /// When tend started (wall clock).
    pub started: SystemTime,
    /// When tend started (monotonic).
    pub started_at: Instant,
    /// tend's own argv (for `/instance` and re-exec).
    pub argv: Vec<String>,
    /// True when tend acts as system init (inittab, `--init`).
    pub init_mode: bool,
    /// Current runlevel (init mode), `N` before boot completes.
    pub runlevel: char,
    /// Set once a shutdown started; new requests are refused.
    pub shutting_down: bool,
    pending: VecDeque<(Request, ReplyTo)>,
}

impl State {
    /// A fresh state for this configuration.
    pub fn new(config: Config, config_path: Option<PathBuf>, argv: Vec<String>) -> State {
        let tunables = Tunables {
            log_level: log::max_level().to_string().to_ascii_lowercase(),
            shutdown_timeout: config.shutdown_timeout,
            max_restarts: config.throttle.max_restarts,
            restart_window: config.throttle.window,
            sleep_time: config.throttle.sleep,
        };
        State {
            table: Table::default(),
            config: Arc::new(config),
            config_path,
            tunables,
            stats: Stats::default(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            argv,
            init_mode: false,
            runlevel: 'N',
            shutting_down: false,
            pending: VecDeque::new(),
        }
    }

    /// Take every queued request (main loop only).
    pub fn take_requests(&mut self) -> Vec<(Request, ReplyTo)> {
        self.pending.drain(..).collect()
    }
}

/// The shared half: the locked state plus the eventfd that wakes the main loop.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    wake: OwnedFd,
}

/// How long an HTTP thread waits for the main loop before giving up. The main
/// loop answers within milliseconds; this only bounds a wedged request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer on its way from the main loop to a waiting API thread.
///
/// A one-shot slot rather than an `mpsc` channel: a channel for one more
/// message type is some 5 KiB of code in the binary. It behaves like one:
/// dropping the sending half unanswered wakes the waiter at once.
#[derive(Debug, Default)]
struct Slot {
    /// `None` while pending; `Some(None)` when the sender went away
    /// unanswered.
    answer: Mutex<Option<Option<Reply>>>,
    filled: Condvar,
}

impl Slot {
    fn fill(&self, answer: Option<Reply>) {
        let mut slot = self.answer.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(answer);
        }
        self.filled.notify_all();
    }
}

/// The main loop's half of a reply slot: answer with [`ReplyTo::send`].
#[derive(Debug)]
pub struct ReplyTo(Arc<Slot>);

impl ReplyTo {
    /// Answer the request. The requester may have given up waiting; the
    /// answer is then dropped with the slot.
    pub fn send(self, reply: Reply) {
        self.0.fill(Some(reply));
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        // No-op after `send`: only the first fill counts.
        self.0.fill(None);
    }
}

/// The waiting half of a reply slot.
struct ReplyFrom(Arc<Slot>);

impl ReplyFrom {
    /// The answer, or None when there was none within `timeout` or the
    /// main loop dropped the request unanswered.
    fn wait(self, timeout: Duration) -> Option<Reply> {
        let slot = self.0.answer.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut slot, _) = self
            .0
            .filled
            .wait_timeout_while(slot, timeout, |a| a.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        slot.take().flatten()
    }
}

fn reply_slot() -> (ReplyTo, ReplyFrom) {
    let slot = Arc::new(Slot::default());
    (ReplyTo(Arc::clone(&slot)), ReplyFrom(slot))
}

impl Shared {
    /// Wrap a state; creates the wake-up eventfd.
    pub fn new(state: State) -> std::io::Result<Arc<Shared>> {
        // SAFETY: eventfd has no memory-safety preconditions; we own the fd it returns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(Shared {
            state: Mutex::new(state),
            wake,
        }))
    }

    /// Lock the state. A poisoned lock (a thread panicked while holding it) is
    /// recovered: the state is plain data and the main loop must go on.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The eventfd the main loop polls.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Wake the main loop.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }

    /// Clear pending wake-ups (main loop only).
    pub fn drain_wake(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking eventfd.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                &mut buf as *mut u64 as *mut libc::c_void,
                8,
            );
        }
    }

    /// Queue a request for the main loop and wait for its answer.
    pub fn request(&self, request: Request) -> Reply {
        let (tx, rx) = reply_slot();
        {
            let mut state = self.lock();
            if state.shutting_down {
                return Err(Refusal::new(503, "tend is shutting down"));
            }
            state.pending.push_back((request, tx));
        }
        self.wake();
        match rx.wait(REPLY_TIMEOUT) {
            Some(reply) => reply,
            None => Err(Refusal::new(500, "the supervisor did not answer in time")),
        }
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn a_reply_slot_behaves_like_a_channel() {
        let (tx, rx) = reply_slot();
        let waiter = std::thread::spawn(move || rx.wait(Duration::from_secs(60)));
        tx.send(Err(Refusal::new(409, "busy")));
        let got = waiter.join().unwrap().unwrap().unwrap_err();
        assert_eq!((got.status, got.message.as_str()), (409, "busy"));

        // Dropped unanswered: the waiter learns at once, not after the timeout.
        let (tx, rx) = reply_slot();
        let started = Instant::now();
        let waiter = std::thread::spawn(move || rx.wait(Duration::from_secs(600)));
        drop(tx);
        assert!(waiter.join().unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(300));

        // Nobody answers: None after the timeout.
        let (_tx, rx) = reply_slot();
        assert!(rx.wait(Duration::from_millis(10)).is_none());

        // The waiter gave up first: answering is harmless.
        let (tx, rx) = reply_slot();
        drop(rx);
        tx.send(Ok(()));
    }
}
