//! Component output bound for syslog: the main loop reads the pipes.
//!
//! Lines go to the syslog socket, `/dev/log`, as glibc's syslog(3) would
//! send them. Where nothing listens there (a container, an early boot
//! without syslogd), they go to tend's standard error instead, where
//! `docker logs` or the console shows them, rather than being dropped
//! silently as syslog(3) would drop them.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

/// One pipe from a component to syslog.
struct LogPipe {
    fd: OwnedFd,
    tag: String,
    priority: i32,
    partial: Vec<u8>,
}

/// Longest line kept before it is cut, so a component writing without
/// newlines cannot grow tend's memory.
const MAX_LINE: usize = 4096;

/// The open pipes.
#[derive(Default)]
pub struct LogPipes {
    pipes: Vec<LogPipe>,
    sink: Syslog,
}

impl LogPipes {
    /// Take over the read ends returned by a spawn.
    pub fn add(&mut self, tag: &str, pipes: Vec<(OwnedFd, i32)>) {
        for (fd, priority) in pipes {
            self.pipes.push(LogPipe {
                fd,
                tag: tag.to_string(),
                priority,
                partial: Vec::new(),
            });
        }
    }

    /// What to poll.
    pub fn pollfds(&self) -> Vec<libc::pollfd> {
        self.pipes
            .iter()
            .map(|p| libc::pollfd {
                fd: p.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect()
    }

    /// Read the pipes poll found `ready` and send complete lines to syslog;
    /// close pipes whose writers are gone.
    pub fn drain(&mut self, ready: &[libc::pollfd]) {
        if ready.is_empty() || self.pipes.is_empty() {
            return;
        }
        let sink = &mut self.sink;
        self.pipes.retain_mut(|p| {
            if !ready.iter().any(|r| r.fd == p.fd.as_raw_fd()) {
                return true;
            }
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reads into our stack buffer from a non-blocking fd we own.
                let n = unsafe { libc::read(p.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    p.partial.extend_from_slice(&buf[..n as usize]);
                    emit_lines(sink, p, false);
                    continue;
                }
                if n == 0 {
                    emit_lines(sink, p, true);
                    return false;
                }
                return std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
            }
        });
    }
}

/// Send each complete line (and, at EOF, the rest) to syslog.
fn emit_lines(sink: &mut Syslog, p: &mut LogPipe, eof: bool) {
    while let Some(pos) = p.partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = p.partial.drain(..=pos).collect();
        sink.send(&p.tag, p.priority, &line[..line.len() - 1]);
    }
    if p.partial.len() > MAX_LINE || (eof && !p.partial.is_empty()) {
        let line = std::mem::take(&mut p.partial);
        sink.send(&p.tag, p.priority, &line);
    }
}

/// Where syslog listens.
const SYSLOG_SOCKET: &str = "/dev/log";

/// A connection to the syslog socket, made when the first line comes and
/// made again when syslogd was restarted.
#[derive(Default)]
struct Syslog {
    socket: Option<UnixDatagram>,
}

impl Syslog {
    /// Send one line of component `tag` with `priority` (facility daemon).
    fn send(&mut self, tag: &str, priority: i32, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let message = format!(
            "<{}>{} tend[{}]: {tag}: {text}",
            priority | libc::LOG_DAEMON,
            timestamp(),
            std::process::id()
        );
        for _ in 0..2 {
            if let Some(socket) = self.connected() {
                if socket.send(message.as_bytes()).is_ok() {
                    return;
                }
            }
            // syslogd restarted (the old socket is gone): connect again, once.
            self.socket = None;
        }
        // Nobody listens: keep the line on tend's standard error.
        let _ = writeln!(std::io::stderr().lock(), "{tag}: {text}");
    }

    /// The socket, connecting first if needed.
    fn connected(&mut self) -> Option<&UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound().ok()?;
            socket.connect(SYSLOG_SOCKET).ok()?;
            // A full syslogd queue must not block the main loop.
            socket.set_nonblocking(true).ok()?;
            self.socket = Some(socket);
        }
        self.socket.as_ref()
    }
}

/// The local time as syslog(3) writes it: `Mmm dd hh:mm:ss`.
fn timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) and localtime_r write only into our locals.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}
