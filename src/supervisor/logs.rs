//! Component output bound for syslog: the main loop reads the pipes.

use std::os::fd::{AsRawFd, OwnedFd};

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
    opened: bool,
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
        if !self.opened {
            // SAFETY: the ident is a static NUL-terminated string.
            unsafe { libc::openlog(c"tend".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
            self.opened = true;
        }
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
                    emit_lines(p, false);
                    continue;
                }
                if n == 0 {
                    emit_lines(p, true);
                    return false;
                }
                return std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
            }
        });
    }
}

/// Send each complete line (and, at EOF, the rest) to syslog.
fn emit_lines(p: &mut LogPipe, eof: bool) {
    while let Some(pos) = p.partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = p.partial.drain(..=pos).collect();
        send(&p.tag, p.priority, &line[..line.len() - 1]);
    }
    if p.partial.len() > MAX_LINE || (eof && !p.partial.is_empty()) {
        let line = std::mem::take(&mut p.partial);
        send(&p.tag, p.priority, &line);
    }
}

fn send(tag: &str, priority: i32, line: &[u8]) {
    let text = format!("{tag}: {}", String::from_utf8_lossy(line));
    if let Ok(c) = std::ffi::CString::new(text.replace('\0', " ")) {
        // SAFETY: "%s" with one valid C string argument.
        unsafe { libc::syslog(priority | libc::LOG_DAEMON, c"%s".as_ptr(), c.as_ptr()) };
    }
}
