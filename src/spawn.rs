//! Starting component processes.
//!
//! Everything that can fail in a way worth reporting (unknown user, missing
//! log file directory, bad binary) is resolved in the parent, so the error
//! names the component. What must happen in the child between fork and exec
//! is limited to async-signal-safe calls: signal reset, session, umask,
//! limits, credentials.

use crate::config::{ComponentSpec, EnvSpec, Stdio as StdioSpec};
use crate::signals;
use std::ffi::CString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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
    /// Its PID (tend's reaper owns it; nobody calls `wait` on a `Child`).
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
    let (program, args) = spec.argv.split_first().ok_or_else(|| {
        err(
            "empty command",
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    let creds = resolve_credentials(spec).map_err(|e| err("resolving user/group", e))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.env_clear();
    cmd.envs(environment(&spec.env, std::env::vars()));
    if let Some(dir) = &spec.chdir {
        cmd.current_dir(dir);
    }
    let mut log_pipes = Vec::new();
    let stdin_spec = if spec.flags.nullinput {
        &StdioSpec::Null
    } else {
        &spec.stdin
    };
    let controlling_tty = matches!(stdin_spec, StdioSpec::Tty(_));
    cmd.stdin(open_stdio(stdin_spec, true, &mut log_pipes).map_err(|e| err("opening stdin", e))?);
    cmd.stdout(
        open_stdio(&spec.stdout, false, &mut log_pipes).map_err(|e| err("opening stdout", e))?,
    );
    cmd.stderr(
        open_stdio(&spec.stderr, false, &mut log_pipes).map_err(|e| err("opening stderr", e))?,
    );

    let umask = spec.umask;
    let limits: Vec<(i32, u64)> = spec.limits.iter().map(|l| (l.resource, l.value)).collect();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls on data captured before the fork.
    unsafe {
        cmd.pre_exec(move || {
            signals::reset_for_child();
            enter_session(session, controlling_tty)?;
            if let Some(mask) = umask {
                libc::umask(mask as libc::mode_t);
            }
            for &(resource, value) in &limits {
                let lim = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource as _, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            apply_credentials(&creds)
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| err(&format!("executing {program}"), e))?;
    // Dropping the Child does not wait for it: the main loop's reaper owns the PID.
    Ok(Spawned {
        pid: child.id() as i32,
        log_pipes,
    })
}

/// Put the child in the requested session or process group. Runs in the child.
fn enter_session(session: Session, controlling_tty: bool) -> io::Result<()> {
    // SAFETY: setsid/setpgid/ioctl/tcsetpgrp are async-signal-safe.
    unsafe {
        match session {
            Session::New => {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if controlling_tty {
                    // A getty on a tty line needs it as its controlling terminal.
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                }
            }
            Session::ForegroundGroup => {
                if libc::setpgid(0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Ignored when there is no terminal; SIGTTOU is at its default
                // here, so block it around the call as tcsetpgrp(3) advises.
                let mut set: libc::sigset_t = std::mem::zeroed();
                let mut old: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTTOU);
                libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
                libc::tcsetpgrp(0, libc::getpgrp());
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
            Session::Inherit => {}
        }
    }
    Ok(())
}

/// Drop to the configured group(s) and user. Runs in the child; the group
/// changes come first because they need the privilege the uid change drops.
fn apply_credentials(creds: &Credentials) -> io::Result<()> {
    // SAFETY: setgroups/setgid/setuid are async-signal-safe; the groups
    // vector was allocated before fork and is only read.
    unsafe {
        if let Some(groups) = &creds.groups {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(gid) = creds.gid {
            if libc::setgid(gid) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(uid) = creds.uid {
            if libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
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

/// Open one standard stream of a child.
fn open_stdio(
    spec: &StdioSpec,
    input: bool,
    log_pipes: &mut Vec<(OwnedFd, i32)>,
) -> io::Result<Stdio> {
    Ok(match spec {
        StdioSpec::Inherit => Stdio::inherit(),
        StdioSpec::Null => Stdio::null(),
        StdioSpec::File(path) if input => Stdio::from(File::open(path)?),
        StdioSpec::File(path) => Stdio::from(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)?,
        ),
        StdioSpec::Tty(path) => Stdio::from(
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)?,
        ),
        StdioSpec::Syslog(_) if input => Stdio::null(),
        StdioSpec::Syslog(priority) => {
            let (read, write) = pipe()?;
            log_pipes.push((read, *priority));
            Stdio::from(write)
        }
    })
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
