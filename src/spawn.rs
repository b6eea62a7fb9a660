//! Starting component processes.
//!
//! Everything that can fail in a way worth reporting (unknown user, missing
//! log file directory, unknown program) is resolved in the parent, so the
//! error names the component, and everything the child needs is allocated
//! there too. The child is started the way glibc's posix_spawn starts one:
//! `clone(CLONE_VM | CLONE_VFORK)`, so no page table is copied and no page
//! of tend is copy-on-write faulted afterwards (a plain fork made starting
//! 500 components cost 1.7x a bare spawn loop). Unlike posix_spawn, the
//! child here also sets umask, limits, credentials and the terminal, and
//! leaves no signal ignored. Between clone and exec the child shares tend's
//! memory, so it only reads the prepared [`Plan`] and makes raw system calls.

use crate::config::{ComponentSpec, EnvSpec, Stdio as StdioSpec};
use crate::signals;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

// The 32-bit ABIs kept 16-bit ids in the original calls.
#[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
use libc::{SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID};
#[cfg(any(target_arch = "arm", target_arch = "x86"))]
use libc::{
    SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
};

/// How the child relates to tend's session and terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// `setsid()`: its own session and process group (supervised components).
    New,
    /// Its own process group, made the terminal's foreground group
    /// (`tend -g -- CMD`, like tini's `-g`).
    ForegroundGroup,
    /// Stay in tend's group and keep the terminal (`tend -- CMD`).
    Inherit,
}

/// A started process.
#[derive(Debug)]
pub struct Spawned {
    /// Its PID (tend's reaper owns it).
    pub pid: i32,
    /// Read ends of pipes whose lines go to syslog, with their priority.
    pub log_pipes: Vec<(OwnedFd, i32)>,
}

/// Why a component could not be started.
#[derive(Debug)]
pub struct SpawnError {
    /// The component's tag.
    pub tag: String,
    /// What was being done.
    pub what: String,
    /// The underlying error.
    pub source: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.tag, self.what, self.source)
    }
}

impl std::error::Error for SpawnError {}

/// Credentials resolved in the parent, applied in the child.
#[derive(Debug, Clone, Default)]
struct Credentials {
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
    groups: Option<Vec<libc::gid_t>>,
}

/// Start `spec` and return its PID without waiting for it.
pub fn spawn(spec: &ComponentSpec, session: Session) -> Result<Spawned, SpawnError> {
    let err = |what: &str, source: io::Error| SpawnError {
        tag: spec.tag.clone(),
        what: what.to_string(),
        source,
    };
    let program = spec.argv.first().ok_or_else(|| {
        err(
            "empty command",
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    let executing = format!("executing {program}");
    let creds = resolve_credentials(spec).map_err(|e| err("resolving user/group", e))?;
    let env = environment(&spec.env, utf8_environment());
    let path = find_program(program, &env).map_err(|e| err(&executing, e))?;
    let mut log_pipes = Vec::new();
    let stdin_spec = if spec.flags.nullinput {
        &StdioSpec::Null
    } else {
        &spec.stdin
    };
    let stdio = [
        open_stdio(stdin_spec, true, &mut log_pipes).map_err(|e| err("opening stdin", e))?,
        open_stdio(&spec.stdout, false, &mut log_pipes).map_err(|e| err("opening stdout", e))?,
        open_stdio(&spec.stderr, false, &mut log_pipes).map_err(|e| err("opening stderr", e))?,
    ];
    let plan = Plan {
        argv: Argv::new(&path, &spec.argv, &env).map_err(|e| err(&executing, e))?,
        stdio,
        chdir: spec
            .chdir
            .as_ref()
            .map(|dir| c_bytes(dir.as_os_str().as_bytes()))
            .transpose()
            .map_err(|e| err(&executing, e))?,
        session,
        controlling_tty: matches!(stdin_spec, StdioSpec::Tty(_)),
        umask: spec.umask.map(|m| m as libc::mode_t),
        limits: spec
            .limits
            .iter()
            .map(|l| {
                let value = l.value as libc::rlim_t;
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                (l.resource as c_int, limit)
            })
            .collect(),
        creds,
    };
    let pid = plan
        .launch()
        .map_err(|f| err(&format!("{} {program}", f.step.doing()), f.error()))?;
    Ok(Spawned { pid, log_pipes })
}

/// tend's own environment, without the variables that are not UTF-8
/// (`std::env::vars` would panic on them, and tend may be PID 1, whose
/// environment comes from the kernel command line).
fn utf8_environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Where `program` is, searched like execvp(3) does but in the *child's*
/// `PATH`, so that a component's `env` decides which binary it runs.
fn find_program(program: &str, env: &[(String, String)]) -> io::Result<CString> {
    if program.contains('/') {
        return c_path(program);
    }
    let search = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/bin:/usr/bin", |(_, v)| v.as_str());
    let mut denied = false;
    for dir in search.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                return c_bytes(candidate.as_os_str().as_bytes());
            }
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

/// A path or argument as a C string (an interior NUL is an invalid input).
fn c_path(s: &str) -> io::Result<CString> {
    c_bytes(s.as_bytes())
}

/// Bytes as a C string (an interior NUL is an invalid input).
fn c_bytes(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in string"))
}

/// The NULL-terminated argument and environment arrays execve(2) takes,
/// with the strings they point into.
struct Argv {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    /// `/bin/sh PATH ARGS…`: what execvp(3) runs when the file is not an
    /// executable format (a script without `#!`).
    shell_argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

impl Argv {
    fn new(path: &CString, args: &[String], env: &[(String, String)]) -> io::Result<Argv> {
        let mut strings = Vec::with_capacity(args.len() + env.len() + 1);
        for a in args {
            strings.push(c_path(a)?);
        }
        for (k, v) in env {
            strings.push(c_path(&format!("{k}={v}"))?);
        }
        strings.push(c_path("/bin/sh")?);
        let ptrs = |list: &[CString]| {
            let mut v: Vec<*const c_char> = list.iter().map(|s| s.as_ptr()).collect();
            v.push(std::ptr::null());
            v
        };
        let (arg_strings, rest) = strings.split_at(args.len());
        let (env_strings, sh) = rest.split_at(env.len());
        let argv = ptrs(arg_strings);
        let mut shell_argv: Vec<*const c_char> = sh.iter().map(|s| s.as_ptr()).collect();
        shell_argv.push(path.as_ptr());
        shell_argv.extend(argv.iter().skip(1));
        let envp = ptrs(env_strings);
        // Moving a CString moves only its heap pointer: the pointers above
        // stay valid as long as `strings` and `path` live in this struct.
        Ok(Argv {
            path: path.clone(),
            _strings: strings,
            argv,
            shell_argv,
            envp,
        })
    }
}

/// Everything a child does between clone and exec, decided in the parent.
struct Plan {
    argv: Argv,
    /// Standard input, output and error; `None` keeps tend's.
    stdio: [Option<OwnedFd>; 3],
    chdir: Option<CString>,
    session: Session,
    controlling_tty: bool,
    umask: Option<libc::mode_t>,
    limits: Vec<(c_int, libc::rlimit)>,
    creds: Credentials,
}

/// The step of a child's start that failed.
#[derive(Debug, Clone, Copy)]
enum Step {
    Clone,
    Stdio,
    Chdir,
    Session,
    Limits,
    Credentials,
    Exec,
}

impl Step {
    /// What was being done, for the error message.
    fn doing(self) -> &'static str {
        match self {
            Step::Clone => "creating a process for",
            Step::Stdio => "redirecting standard streams of",
            Step::Chdir => "changing directory for",
            Step::Session => "creating a session for",
            Step::Limits => "setting limits for",
            Step::Credentials => "changing user/group for",
            Step::Exec => "executing",
        }
    }
}

/// A failed step and its errno, written by the child into tend's memory.
#[derive(Debug, Clone, Copy)]
struct Failure {
    step: Step,
    errno: c_int,
}

impl Failure {
    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

/// What clone hands the child: the plan, and where to report a failure.
struct Launch<'a> {
    plan: &'a Plan,
    failure: Option<Failure>,
}

/// Stack for the child between clone and exec. It only runs
/// [`Plan::exec_in_child`], a few frames of system calls.
const CHILD_STACK: usize = 32 * 1024;

impl Plan {
    /// Start the child and return its PID once it has exec'd.
    fn launch(mut self) -> Result<i32, Failure> {
        self.keep_stdio_above_2()?;
        let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
        let mut launch = Launch {
            plan: &self,
            failure: None,
        };
        // Block everything, glibc's internal signals included, until the
        // child has reset its dispositions: a handler of tend's must never
        // run in a child that shares its memory.
        let old_mask = signals::set_raw_mask(!0);
        // SAFETY: the stack is CHILD_STACK writable bytes owned here and
        // alive until clone returns, which with CLONE_VFORK is after the
        // child has exec'd or exited; its top is 16-byte aligned as the ABI
        // requires. `launch` outlives the child's use of it for the same reason.
        let (pid, clone_errno) = unsafe {
            let top = stack.as_mut_ptr().add(CHILD_STACK);
            let top = top.sub(top as usize % 16);
            let pid = libc::clone(
                child_main,
                top.cast::<c_void>(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&mut launch as *mut Launch).cast::<c_void>(),
            );
            (pid, io::Error::last_os_error().raw_os_error().unwrap_or(0))
        };
        signals::set_raw_mask(old_mask);
        if pid < 0 {
            return Err(Failure {
                step: Step::Clone,
                errno: clone_errno,
            });
        }
        // SAFETY: the child wrote through the pointer it was given; read
        // what it left without assuming the compiler saw the write.
        let failure = unsafe { std::ptr::read_volatile(&launch.failure) };
        if let Some(failure) = failure {
            reap_failed(pid);
            return Err(failure);
        }
        Ok(pid)
    }

    /// dup2 of the three streams in a row would clobber a source that is
    /// itself 0, 1 or 2 (possible when tend runs with a closed stdin), so
    /// such a source is moved above 2 first.
    fn keep_stdio_above_2(&mut self) -> Result<(), Failure> {
        for slot in self.stdio.iter_mut() {
            if let Some(fd) = slot.as_ref().filter(|fd| fd.as_raw_fd() < 3) {
                // SAFETY: F_DUPFD_CLOEXEC on an fd we own returns a new fd or -1.
                let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
                if moved < 0 {
                    return Err(Failure {
                        step: Step::Stdio,
                        errno: io::Error::last_os_error().raw_os_error().unwrap_or(0),
                    });
                }
                // SAFETY: `moved` is a new fd owned by nobody else.
                *slot = Some(unsafe { OwnedFd::from_raw_fd(moved) });
            }
        }
        Ok(())
    }

    /// Run in the child, on its own stack, sharing tend's memory: apply the
    /// plan and exec. Returns only on failure. Only raw system calls here:
    /// glibc's setuid and friends would signal tend's threads, and malloc
    /// could find one of tend's locks held.
    fn exec_in_child(&self) -> Failure {
        let fail = |step| Failure {
            step,
            errno: last_errno(),
        };
        signals::reset_dispositions();
        for (target, fd) in self.stdio.iter().enumerate() {
            if let Some(fd) = fd {
                // dup3, not dup2, which some architectures lack; the
                // source is never the target (keep_stdio_above_2).
                if sys(libc::SYS_dup3, &[fd.as_raw_fd() as _, target as _, 0]) < 0 {
                    return fail(Step::Stdio);
                }
            }
        }
        if let Some(dir) = &self.chdir {
            if sys(libc::SYS_chdir, &[dir.as_ptr() as _]) < 0 {
                return fail(Step::Chdir);
            }
        }
        if !self.enter_session() {
            return fail(Step::Session);
        }
        if let Some(mask) = self.umask {
            sys(libc::SYS_umask, &[mask as _]);
        }
        for (resource, limit) in &self.limits {
            let limit: *const libc::rlimit = limit;
            if sys(libc::SYS_prlimit64, &[0, *resource as _, limit as _, 0]) < 0 {
                return fail(Step::Limits);
            }
        }
        if !self.apply_credentials() {
            return fail(Step::Credentials);
        }
        signals::set_raw_mask(0);
        let a = &self.argv;
        let (path, envp) = (a.path.as_ptr() as libc::c_long, a.envp.as_ptr() as _);
        sys(libc::SYS_execve, &[path, a.argv.as_ptr() as _, envp]);
        if last_errno() == libc::ENOEXEC {
            let sh = a.shell_argv.first().copied().unwrap_or(std::ptr::null());
            sys(
                libc::SYS_execve,
                &[sh as _, a.shell_argv.as_ptr() as _, envp],
            );
        }
        fail(Step::Exec)
    }

    /// Put the child in the requested session or process group.
    fn enter_session(&self) -> bool {
        match self.session {
            Session::New => {
                if sys(libc::SYS_setsid, &[]) < 0 {
                    return false;
                }
                if self.controlling_tty {
                    // A getty on a tty line needs it as its controlling terminal.
                    sys(libc::SYS_ioctl, &[0, libc::TIOCSCTTY as _, 0]);
                }
            }
            Session::ForegroundGroup => {
                if sys(libc::SYS_setpgid, &[0, 0]) < 0 {
                    return false;
                }
                // Fails harmlessly without a terminal; SIGTTOU is blocked
                // here until just before exec, as tcsetpgrp(3) requires.
                let pgrp: libc::pid_t = sys(libc::SYS_getpgid, &[0]) as libc::pid_t;
                let pgrp_ptr: *const libc::pid_t = &pgrp;
                sys(libc::SYS_ioctl, &[0, libc::TIOCSPGRP as _, pgrp_ptr as _]);
            }
            Session::Inherit => {}
        }
        true
    }

    /// Drop to the configured group(s) and user; the group changes come
    /// first because they need the privilege the uid change drops.
    fn apply_credentials(&self) -> bool {
        let c = &self.creds;
        if let Some(groups) = &c.groups {
            if sys(SYS_SETGROUPS, &[groups.len() as _, groups.as_ptr() as _]) < 0 {
                return false;
            }
        }
        if let Some(gid) = c.gid {
            if sys(SYS_SETGID, &[gid as _]) < 0 {
                return false;
            }
        }
        if let Some(uid) = c.uid {
            if sys(SYS_SETUID, &[uid as _]) < 0 {
                return false;
            }
        }
        true
    }
}

/// The child's entry point after clone.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Launch` that `Plan::launch` passed to clone; the
    // parent is suspended (CLONE_VFORK) and does not touch it until we exec
    // or exit.
    let launch = unsafe { &mut *arg.cast::<Launch>() };
    launch.failure = Some(launch.plan.exec_in_child());
    // SAFETY: _exit ends only this child; no destructor or atexit handler
    // of tend's may run here.
    unsafe { libc::_exit(127) }
}

/// A raw system call with up to four arguments; returns -1 with errno set
/// on failure. Async-signal-safe and free of glibc's multi-thread logic.
fn sys(number: libc::c_long, args: &[libc::c_long]) -> libc::c_long {
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: every call site passes the arguments its system call expects,
    // pointers pointing to memory alive for the call.
    unsafe { libc::syscall(number, arg(0), arg(1), arg(2), arg(3)) }
}

/// errno of the last failed call, read without allocating.
fn last_errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Collect a child whose start failed, so it does not linger as a zombie
/// until the next SIGCHLD (the reaper would find no component for it).
fn reap_failed(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child, which has exited or is about to.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// For tend's helper processes (gateway, ConfigServer, agent): get SIGTERM
/// when the daemon that started them dies, so a daemon killed with SIGKILL
/// leaves no helper behind holding its port.
pub fn die_with_parent() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
}

/// A user from the passwd database.
#[derive(Debug, Clone)]
pub struct User {
    /// User id.
    pub uid: libc::uid_t,
    /// Primary group id.
    pub gid: libc::gid_t,
    /// Login name.
    pub name: String,
}

/// Look a user up by name or number.
pub fn lookup_user(name: &str) -> io::Result<User> {
    let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("no such user `{name}`"));
    let cname = CString::new(name).map_err(|_| not_found())?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r/getpwuid_r
    // write only into it and into buf, whose length we pass.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = match name.parse::<libc::uid_t>() {
            Ok(uid) => libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
            Err(_) => libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
        };
        if rc != 0 || result.is_null() {
            if let Ok(uid) = name.parse::<libc::uid_t>() {
                // A numeric id without a passwd entry is still usable.
                return Ok(User {
                    uid,
                    gid: uid,
                    name: name.to_string(),
                });
            }
            return Err(not_found());
        }
        let login = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        Ok(User {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            name: login,
        })
    }
}

/// Look a group up by name or number.
pub fn lookup_group(name: &str) -> io::Result<libc::gid_t> {
    if let Ok(gid) = name.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("no such group `{name}`"));
    let cname = CString::new(name).map_err(|_| not_found())?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: as in lookup_user.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() {
            return Err(not_found());
        }
        Ok(grp.gr_gid)
    }
}

/// The supplementary groups of a user, as initgroups(3) would set them.
fn supplementary_groups(user: &User) -> Vec<libc::gid_t> {
    let Ok(cname) = CString::new(user.name.as_str()) else {
        return vec![user.gid];
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: groups has room for n entries; getgrouplist writes at most n.
    let rc = unsafe { libc::getgrouplist(cname.as_ptr(), user.gid, groups.as_mut_ptr(), &mut n) };
    if rc < 0 || n < 0 {
        return vec![user.gid];
    }
    groups.truncate(n as usize);
    groups
}

/// Turn `user`/`group` names into ids before forking.
fn resolve_credentials(spec: &ComponentSpec) -> io::Result<Credentials> {
    let mut creds = Credentials::default();
    if let Some(name) = &spec.user {
        let user = lookup_user(name)?;
        creds.uid = Some(user.uid);
        creds.gid = Some(user.gid);
        creds.groups = Some(supplementary_groups(&user));
    }
    if let Some(name) = &spec.group {
        let gid = lookup_group(name)?;
        creds.gid = Some(gid);
        if creds.groups.is_none() {
            creds.groups = Some(vec![gid]);
        }
    }
    Ok(creds)
}

/// The child's environment: `clear` (keeping `keep` names), then `unset`, then `set`.
pub fn environment(
    spec: &EnvSpec,
    parent: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let kept = |name: &str| {
        spec.keep.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => k == name,
        })
    };
    let mut env: Vec<(String, String)> = parent
        .filter(|(k, _)| !spec.clear || kept(k))
        .filter(|(k, _)| !spec.unset.contains(k))
        .collect();
    for (k, v) in &spec.set {
        env.retain(|(n, _)| n != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Open one standard stream of a child; `None` keeps tend's own.
fn open_stdio(
    spec: &StdioSpec,
    input: bool,
    log_pipes: &mut Vec<(OwnedFd, i32)>,
) -> io::Result<Option<OwnedFd>> {
    let file = match spec {
        StdioSpec::Inherit => return Ok(None),
        StdioSpec::Null => File::options()
            .read(input)
            .write(!input)
            .open("/dev/null")?,
        StdioSpec::Syslog(_) if input => File::open("/dev/null")?,
        StdioSpec::File(path) if input => File::open(path)?,
        StdioSpec::File(path) => OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?,
        StdioSpec::Tty(path) => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)?,
        StdioSpec::Syslog(priority) => {
            let (read, write) = pipe()?;
            log_pipes.push((read, *priority));
            return Ok(Some(write));
        }
    };
    Ok(Some(OwnedFd::from(file)))
}

/// A close-on-exec pipe; the read end is non-blocking for the main loop.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and owned only here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fds[0], libc::F_GETFL);
        libc::fcntl(fds[0], libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn environment_clear_keeps_listed_and_prefixed_names() {
        let spec = EnvSpec {
            clear: true,
            keep: vec!["HOME".into(), "LC_*".into()],
            set: vec![("PORT".into(), "8080".into())],
            unset: vec![],
        };
        let env = environment(
            &spec,
            vars(&[("HOME", "/root"), ("LC_ALL", "C"), ("PATH", "/bin")]),
        );
        assert_eq!(
            env,
            vec![
                ("HOME".to_string(), "/root".to_string()),
                ("LC_ALL".to_string(), "C".to_string()),
                ("PORT".to_string(), "8080".to_string())
            ]
        );
    }

    #[test]
    fn environment_set_overrides_and_unset_removes() {
        let spec = EnvSpec {
            clear: false,
            keep: vec![],
            set: vec![("A".into(), "2".into())],
            unset: vec!["B".into()],
        };
        let env = environment(&spec, vars(&[("A", "1"), ("B", "x"), ("C", "y")]));
        assert_eq!(
            env,
            vec![
                ("C".to_string(), "y".to_string()),
                ("A".to_string(), "2".to_string())
            ]
        );
    }

    #[test]
    fn unknown_user_is_an_error_naming_it() {
        let e = lookup_user("no-such-user-tend-test").unwrap_err();
        assert!(e.to_string().contains("no-such-user-tend-test"));
    }
}
