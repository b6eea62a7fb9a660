//! Helpers shared by the integration tests: temp dirs, starting the real
//! daemon, and a minimal HTTP/1.1 client over its UNIX socket.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tend binary under test.
pub fn tend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

/// True when running as root (needed for PID namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// True (after saying so on stderr) when `test` must be skipped because it
/// needs root for `what`.
pub fn skip_unless_root(test: &str, what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {test}: needs root for {what}");
    true
}

/// A fresh, unique directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("tend-test-{}-{}-{}", name, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Poll `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A generous timeout for things that normally take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a UNIX socket (Connection: close).
pub fn http(sock: &Path, method: &str, path: &str, body: &str) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_reply(&raw).ok_or_else(|| {
        std::io::Error::other(format!("bad reply: {}", String::from_utf8_lossy(&raw)))
    })
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).ok()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A running daemon with its API on a private socket; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub sock: PathBuf,
    pub dir: TempDir,
}

impl Daemon {
    /// Start `tend -c CONFIG --control unix://DIR/tend.sock` with the config text.
    pub fn start(name: &str, config: &str) -> Daemon {
        let dir = TempDir::new(name);
        let conf = dir.write(
            "tend.conf",
            &config.replace("$DIR", &dir.0.display().to_string()),
        );
        Daemon::start_with(dir, &["-c", conf.to_str().unwrap()])
    }

    /// Start tend with explicit arguments (the control socket is added).
    pub fn start_with(dir: TempDir, args: &[&str]) -> Daemon {
        Daemon::start_with_env(dir, args, &[])
    }

    /// Start tend with explicit arguments and extra environment variables.
    pub fn start_with_env(
        dir: TempDir,
        args: &[&str],
        env: &[(&std::ffi::OsStr, &std::ffi::OsStr)],
    ) -> Daemon {
        let sock = dir.path("tend.sock");
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        let child = Command::new(tend_bin())
            .args(args)
            .envs(env.iter().copied())
            .arg("--control")
            .arg(format!("unix://{}", sock.display()))
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tend");
        let d = Daemon { child, sock, dir };
        assert!(
            wait_until(PATIENCE, || d.sock.exists()
                && http(&d.sock, "GET", "/version", "").is_ok()),
            "tend did not come up; log:\n{}",
            d.log()
        );
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Reply {
        http(&self.sock, "GET", path, "")
            .unwrap_or_else(|e| panic!("GET {path}: {e}\nlog:\n{}", self.log()))
    }

    pub fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        http(&self.sock, method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", self.log()))
    }

    /// The description of one component.
    pub fn program(&self, tag: &str) -> serde_json::Value {
        let r = self.get(&format!("/programs/{tag}"));
        let v = r.json();
        v.as_array()
            .and_then(|a| a.first().cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn status(&self, tag: &str) -> String {
        self.program(tag)["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn pid_of(&self, tag: &str) -> Option<i64> {
        self.program(tag)["PID"].as_i64()
    }

    /// Wait until `tag` has `status`.
    pub fn wait_status(&self, tag: &str, status: &str) {
        assert!(
            wait_until(PATIENCE, || self.status(tag) == status),
            "{tag} never reached {status} (now {}); log:\n{}",
            self.program(tag),
            self.log()
        );
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Wait for tend to exit; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "tend did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Ask politely first so tend stops its components; a SIGKILL would
        // leave them (and its helper processes) running after the test.
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            let stopped = wait_until(Duration::from_secs(10), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Is a process alive (and not a zombie)?
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Lines of a file (empty when missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
