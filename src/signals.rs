//! Signal handling: block early, read through a signalfd, reset in children.
//!
//! tend never installs signal handlers. Every signal it cares about is
//! blocked before the first thread starts (threads inherit the mask, so no
//! HTTP thread ever receives one) and is read synchronously from a signalfd
//! in the main loop. Children get a clean mask and default dispositions back
//! in [`reset_dispositions`] and [`set_raw_mask`], right before exec.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The signals the main loop reads. Synchronous signals (SEGV, BUS, FPE,
/// ILL, TRAP, SYS, ABRT) stay unblocked so a real fault is not swallowed;
/// SIGPIPE is ignored by the Rust runtime and reset in children.
pub const HANDLED: [i32; 12] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGQUIT,
    libc::SIGWINCH,
    libc::SIGPWR,
    libc::SIGALRM,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Signals forwarded to the command in `tend -- CMD` mode (as tini does).
pub const FORWARDED: [i32; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGQUIT,
    libc::SIGWINCH,
];

/// Build a sigset holding `signals`.
fn sigset_of(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write into the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block [`HANDLED`] in the calling thread. Must run before any thread is
/// spawned: the mask is inherited, and a signal delivered to a thread that
/// does not block it would take its default action (often: kill PID 1).
pub fn block_handled() -> io::Result<()> {
    let set = sigset_of(&HANDLED);
    // SAFETY: pthread_sigmask reads our set; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// A non-blocking signalfd for [`HANDLED`].
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Open the signalfd. The signals must already be blocked.
    pub fn open() -> io::Result<SignalFd> {
        let set = sigset_of(&HANDLED);
        // SAFETY: -1 asks for a new fd; the set is valid for the call.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is new and owned by nobody else.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to poll.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Every pending signal, taken in one `read(2)`.
    ///
    /// Only standard signals are in [`HANDLED`] and the kernel keeps at
    /// most one pending instance of each, so a buffer of `HANDLED.len()`
    /// entries holds all that can be pending: one read empties the queue and
    /// no second read is needed to see `EAGAIN`. That is one system call per
    /// wake-up fewer, and no allocation, which counts in a SIGCHLD storm
    /// where each wake-up may reap a single child. A signal arriving after
    /// the read makes the fd readable again and wakes the next poll.
    ///
    /// SIGCHLD may stand for many exits: the reaper loops until no child
    /// is left to reap.
    pub fn read_pending(&self) -> Pending {
        // SAFETY: an all-zero signalfd_siginfo is a valid value.
        let mut infos: [libc::signalfd_siginfo; HANDLED.len()] = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most size_of_val(&infos) bytes into `infos`, which
        // we own; the kernel writes whole entries only.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                infos.as_mut_ptr().cast::<libc::c_void>(),
                std::mem::size_of_val(&infos),
            )
        };
        let mut pending = Pending::default();
        // n < 0: EAGAIN (nothing pending) or EINTR; both mean no signal now.
        let count = usize::try_from(n).unwrap_or(0) / size;
        for info in infos.iter().take(count) {
            pending.push(info.ssi_signo as i32);
        }
        pending
    }
}

/// The signals one [`SignalFd::read_pending`] returned, without a heap
/// allocation: at most one of each of [`HANDLED`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Pending {
    signals: [i32; HANDLED.len()],
    len: usize,
}

impl Pending {
    fn push(&mut self, sig: i32) {
        if let Some(slot) = self.signals.get_mut(self.len) {
            *slot = sig;
            self.len += 1;
        }
    }

    /// The signals in the order the kernel handed them over.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.signals.iter().take(self.len).copied()
    }
}

/// The kernel's signal mask as the raw system calls take it: one bit per
/// signal 1..=64, including glibc's internal 32 and 33, which `sigset_t`
/// helpers refuse to touch.
pub type RawMask = u64;

/// Set the calling thread's mask with the raw `rt_sigprocmask` system call
/// and return the old one. Async-signal-safe.
///
/// Raw because [`crate::spawn`] must block *every* signal, glibc's internal
/// ones included, around the moment a child shares tend's memory: a handler
/// running in that child would run on tend's data.
pub fn set_raw_mask(mask: RawMask) -> RawMask {
    let mut old: RawMask = 0;
    // SAFETY: rt_sigprocmask reads and writes exactly 8 bytes (the size we
    // pass) through pointers to locals that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const RawMask,
            &mut old as *mut RawMask,
            std::mem::size_of::<RawMask>(),
        );
    }
    old
}

/// Put every disposition back to `SIG_DFL`. Async-signal-safe; called in a
/// child between clone and exec.
///
/// Handlers are reset by exec anyway, but an *ignored* disposition survives
/// it: a parent of tend that ignores a signal (the Rust runtime ignores
/// SIGPIPE; a shell may ignore SIGINT, 32 or 33) would otherwise pass that
/// on to every component. The raw `rt_sigaction` system call is used
/// because glibc refuses signals 32 and 33.
pub fn reset_dispositions() {
    // The kernel's sigaction: handler, flags, (restorer,) mask. All zero is
    // SIG_DFL with no flags on every 64-bit layout; the array is big enough
    // for any of them.
    let default_action = [0u64; 4];
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: rt_sigaction reads at most the array's size and only
            // touches this process's signal state.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    std::mem::size_of::<RawMask>(),
                );
            }
        }
    }
}

/// Name of a signal number, as `kill -l` spells it (without `SIG`).
pub fn name(sig: i32) -> String {
    const NAMES: [(i32, &str); 20] = [
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGILL, "ILL"),
        (libc::SIGABRT, "ABRT"),
        (libc::SIGBUS, "BUS"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGCHLD, "CHLD"),
        (libc::SIGCONT, "CONT"),
        (libc::SIGSTOP, "STOP"),
        (libc::SIGWINCH, "WINCH"),
        (libc::SIGPWR, "PWR"),
        (libc::SIGTTIN, "TTIN"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == sig)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_takes_every_pending_signal() {
        // Thread-directed signals, blocked in this test thread only: the
        // signalfd sees them, nothing else in the test binary does.
        block_handled().unwrap();
        let fd = SignalFd::open().unwrap();
        // SAFETY: raise sends to the calling thread, which blocks both.
        unsafe {
            libc::raise(libc::SIGUSR1);
            libc::raise(libc::SIGWINCH);
        }
        let got: Vec<i32> = fd.read_pending().iter().collect();
        assert!(got.contains(&libc::SIGUSR1), "{got:?}");
        assert!(got.contains(&libc::SIGWINCH), "{got:?}");
        assert!(!fd.read_pending().iter().any(|s| s == libc::SIGUSR1));
    }
}
