//! Duties that only matter when tend is PID 1 (or real init).

use crate::config::Mode;
use crate::shared::{ShutdownKind, State};
use std::ffi::CString;

/// Send `sig` to every process but ourselves. Only sensible as PID 1, where
/// every process on the system (or in the namespace) is ours to end.
pub fn kill_everything(sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(-1, sig) };
}

/// True when no child is left to wait for. Only peeks (WNOWAIT): a zombie
/// stays for the reaper, which counts it.
pub fn no_children_left() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid out-parameter for waitid.
    let rc = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// End the system: sync the disks, then reboot(2) as asked. Inside a PID
/// namespace this ends the namespace (its parent sees SIGHUP for a
/// reboot, SIGINT for a halt or power-off).
pub fn reboot(kind: ShutdownKind) {
    let cmd = match kind {
        ShutdownKind::Reboot => libc::RB_AUTOBOOT,
        ShutdownKind::Poweroff => libc::RB_POWER_OFF,
        ShutdownKind::Halt | ShutdownKind::Exit | ShutdownKind::FlushAndExit => {
            libc::RB_HALT_SYSTEM
        }
    };
    log::info!("syncing disks and calling reboot(2)");
    // SAFETY: sync and reboot have no memory-safety preconditions.
    unsafe {
        libc::sync();
        if libc::reboot(cmd) != 0 {
            log::error!("reboot(2) failed: {}", std::io::Error::last_os_error());
        }
    }
}

/// Replace tend with `argv` (re-exec, BusyBox `restart`). Returns only on failure.
pub fn exec(argv: &[String]) {
    let cargs: Vec<CString> = argv
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let Some(program) = cargs.first() else {
        return;
    };
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    log::info!("executing {}", argv.join(" "));
    // The signal mask survives exec; the new program (tend again, or the
    // BusyBox restart target) sets up its own.
    // SAFETY: program and ptrs are NUL-terminated and outlive the call.
    unsafe { libc::execv(program.as_ptr(), ptrs.as_ptr()) };
    log::error!(
        "exec {} failed: {}",
        argv.join(" "),
        std::io::Error::last_os_error()
    );
}

/// The BusyBox `restart` entry's command, run in place of init on SIGQUIT.
pub fn restart_command(st: &State) -> Option<Vec<String>> {
    st.table
        .components
        .iter()
        .find(|c| c.spec.mode == Mode::Restart)
        .map(|c| c.spec.argv.clone())
}
