//! bench-helper: the small native pieces of tend's benchmark (tests/bench/bench.py).
//!
//! ```text
//! bench-helper hello (--tcp ADDR | --unix PATH) [--workers N] [--bytes N] [--nodelay 1]
//!     A bare tiny_http server answering every request with a fixed small JSON,
//!     N worker threads calling recv() like tend's API. Prints "ready ADDR".
//! bench-helper load (--tcp ADDR | --unix PATH) [--conns C] [--duration S]
//!     [--method M] [--path P] [--body B] [--header "Name: value"]... [--agents N]
//!     Keep-alive HTTP/1.1 load, C connections each on its own thread, one
//!     request in flight per connection. `{agent}` in the body is replaced by
//!     agent-NNNN, cycling over N agents. Prints one JSON line: requests/s, p50,
//!     p99, errors.
//! bench-helper spawnloop N CMD ARGS...
//!     Spawn N copies of CMD, print "ready MS" when all are spawned; on a line
//!     "stop" (or EOF) on stdin, SIGTERM them all, reap them, print "stopped MS".
//! bench-helper storm N LIMIT_SECONDS
//!     Fork a child that forks N grandchildren blocked on a pipe and exits,
//!     so they are orphaned; then close the pipe: they all exit at once.
//!     Check their PIDs (kill 0: a zombie still exists) until none is left,
//!     i.e. PID 1 has reaped them all; then check /proc holds nothing but 1
//!     and ourselves. Prints one JSON line: fork_ms, reap_ms (from the
//!     release to the last one reaped), ok.
//! bench-helper launch -- CMD ARGS...
//!     Put the wall clock in BENCH_T0_NS and exec CMD (a supervisor).
//! bench-helper stamp FILE
//!     Write now - BENCH_T0_NS (nanoseconds) to FILE: exec-to-exec latency.
//! ```
//!
//! launch and stamp use CLOCK_MONOTONIC, which is the same clock in every
//! process of the machine.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => die("usage: bench-helper hello|load|spawnloop|launch|stamp ..."),
    };
    let result = match cmd {
        "hello" => hello(rest),
        "load" => load(rest),
        "spawnloop" => spawnloop(rest),
        "storm" => storm(rest),
        "launch" => launch(rest),
        "stamp" => stamp(rest),
        _ => Err(format!("unknown command {cmd}")),
    };
    if let Err(e) = result {
        die(&e);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("bench-helper: {msg}");
    std::process::exit(2);
}

/// `--name value` pairs (repeatable names keep every value).
struct Opts(Vec<(String, String)>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a}"))?;
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            out.push((name.to_string(), v.clone()));
        }
        Ok(Opts(out))
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad number {v}")),
        }
    }
}

// ------------------------------------------------------------------ hello

const HELLO: &str = r#"{"status":"OK","message":"hello"}"#;

fn hello(args: &[String]) -> Result<(), String> {
    let o = Opts::parse(args)?;
    let workers: usize = o.num("workers", 4)?;
    let bytes: usize = o.num("bytes", 0)?;
    let body = if bytes > HELLO.len() {
        // A bigger answer of the same shape, e.g. to show Nagle's algorithm
        // meeting tiny_http's 1 KiB write buffer.
        format!(
            r#"{{"status":"OK","message":"{}"}}"#,
            "x".repeat(bytes - HELLO.len() + 5)
        )
    } else {
        HELLO.to_string()
    };
    let nodelay = o.get("nodelay").is_some_and(|v| v == "1");
    let server = if let Some(addr) = o.get("tcp") {
        let l = std::net::TcpListener::bind(addr).map_err(|e| format!("listen: {e}"))?;
        if nodelay {
            // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads one c_int from the pointer we pass.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&l),
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        tiny_http::Server::from_listener(l, None)
    } else if let Some(path) = o.get("unix") {
        let _ = std::fs::remove_file(path);
        tiny_http::Server::http_unix(std::path::Path::new(path))
    } else {
        return Err("hello needs --tcp ADDR or --unix PATH".into());
    }
    .map_err(|e| format!("listen: {e}"))?;
    let addr = match server.server_addr() {
        tiny_http::ListenAddr::IP(a) => a.to_string(),
        tiny_http::ListenAddr::Unix(a) => format!("{a:?}"),
    };
    println!("ready {addr}");
    let _ = io::stdout().flush();
    let server = Arc::new(server);
    let header =
        tiny_http::Header::from_bytes("Content-Type", "application/json").map_err(|_| "header")?;
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let server = Arc::clone(&server);
            let header = header.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                while let Ok(req) = server.recv() {
                    let resp =
                        tiny_http::Response::from_string(body.as_str()).with_header(header.clone());
                    let _ = req.respond(resp);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

// ------------------------------------------------------------------- load

enum Target {
    Tcp(String),
    Unix(String),
}

trait Stream: Read + Write {}
impl Stream for TcpStream {}
impl Stream for UnixStream {}

impl Target {
    fn connect(&self) -> io::Result<Box<dyn Stream>> {
        Ok(match self {
            Target::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Target::Unix(p) => Box::new(UnixStream::connect(p)?),
        })
    }
    fn host(&self) -> &str {
        match self {
            Target::Tcp(a) => a,
            Target::Unix(_) => "localhost",
        }
    }
}

struct LoadSpec {
    target: Target,
    method: String,
    path: String,
    body: String,
    headers: Vec<String>,
    agents: usize,
}

impl LoadSpec {
    fn request(&self, n: usize) -> Vec<u8> {
        let body = if self.agents > 0 {
            self.body
                .replace("{agent}", &format!("agent-{:04}", n % self.agents))
        } else {
            self.body.clone()
        };
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method,
            self.path,
            self.target.host()
        );
        for h in &self.headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        if !body.is_empty() || self.method != "GET" {
            r.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        r.push_str("\r\n");
        r.push_str(&body);
        r.into_bytes()
    }
}

/// What one connection thread saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    non2xx: u64,
    reconnects: u64,
    last_error: String,
}

fn load(args: &[String]) -> Result<(), String> {
    let o = Opts::parse(args)?;
    let target = match (o.get("tcp"), o.get("unix")) {
        (Some(a), _) => Target::Tcp(a.to_string()),
        (_, Some(p)) => Target::Unix(p.to_string()),
        _ => return Err("load needs --tcp ADDR or --unix PATH".into()),
    };
    let conns: usize = o.num("conns", 16)?;
    let duration = Duration::from_secs_f64(o.num("duration", 3.0)?);
    let warmup = Duration::from_secs_f64(o.num("warmup", 0.5)?);
    let spec = Arc::new(LoadSpec {
        target,
        method: o.get("method").unwrap_or("GET").to_string(),
        path: o.get("path").unwrap_or("/").to_string(),
        body: o.get("body").unwrap_or("").to_string(),
        headers: o.all("header").into_iter().map(String::from).collect(),
        agents: o.num("agents", 0)?,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let (spec, stop, measuring) = (spec.clone(), stop.clone(), measuring.clone());
            std::thread::spawn(move || drive(&spec, i, &stop, &measuring))
        })
        .collect();
    std::thread::sleep(warmup);
    measuring.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    std::thread::sleep(duration);
    measuring.store(false, Ordering::SeqCst);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut all = Tally::default();
    for t in threads {
        let t = t.join().map_err(|_| "load thread panicked")?;
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        all.non2xx += t.non2xx;
        all.reconnects += t.reconnects;
        if !t.last_error.is_empty() {
            all.last_error = t.last_error;
        }
    }
    all.latencies_us.sort_unstable();
    let n = all.latencies_us.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = ((p / 100.0) * n as f64).ceil() as usize;
        all.latencies_us[i.clamp(1, n) - 1] as f64 / 1000.0
    };
    println!(
        "{{\"requests\":{n},\"seconds\":{elapsed:.3},\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"errors\":{},\"non2xx\":{},\"reconnects\":{},\"last_error\":{:?}}}",
        n as f64 / elapsed,
        pct(50.0),
        pct(99.0),
        pct(100.0),
        all.errors,
        all.non2xx,
        all.reconnects,
        all.last_error,
    );
    Ok(())
}

/// One connection: request, read the whole answer, repeat; reconnect when
/// the server closes.
fn drive(spec: &LoadSpec, id: usize, stop: &AtomicBool, measuring: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<BufReader<Box<dyn Stream>>> = None;
    let mut n = id;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match spec.target.connect() {
                Ok(s) => {
                    tally.reconnects += 1;
                    conn.insert(BufReader::with_capacity(64 * 1024, s))
                }
                Err(e) => {
                    tally.errors += 1;
                    tally.last_error = format!("connect: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let req = spec.request(n);
        n += 1;
        let t = Instant::now();
        let result = c.get_mut().write_all(&req).and_then(|_| read_response(c));
        let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let counted = measuring.load(Ordering::Relaxed);
        match result {
            Ok((status, keep)) => {
                if counted {
                    tally.latencies_us.push(us);
                    if !(200..300).contains(&status) {
                        tally.non2xx += 1;
                    }
                }
                if !keep {
                    conn = None;
                }
            }
            Err(e) => {
                // A keep-alive connection the server closed between two
                // requests is not an error of this request: retry it.
                if counted && e.kind() != io::ErrorKind::UnexpectedEof {
                    tally.errors += 1;
                    tally.last_error = e.to_string();
                }
                conn = None;
            }
        }
    }
    tally
}

/// Read one response; (status, connection stays open).
fn read_response(r: &mut BufReader<Box<dyn Stream>>) -> io::Result<(u16, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad status line");
    let mut parts = line.split_whitespace();
    let version = parts.next().ok_or_else(bad)?.to_string();
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = version == "HTTP/1.1";
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => length = v.parse().ok(),
            "transfer-encoding" => chunked = v.contains("chunked"),
            "connection" if v == "close" => keep = false,
            "connection" if v == "keep-alive" => keep = true,
            _ => {}
        }
    }
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            skip(r, size)?;
            line.clear();
            r.read_line(&mut line)?; // CRLF after the chunk (or the trailer end)
            if size == 0 {
                break;
            }
        }
    } else if let Some(n) = length {
        skip(r, n)?;
    } else {
        // No framing: the body runs to the end of the connection.
        io::copy(r, &mut io::sink())?;
        keep = false;
    }
    Ok((status, keep))
}

fn skip(r: &mut BufReader<Box<dyn Stream>>, n: usize) -> io::Result<()> {
    let got = io::copy(&mut r.by_ref().take(n as u64), &mut io::sink())?;
    if got as usize != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

// -------------------------------------------------------------- spawnloop

fn spawnloop(args: &[String]) -> Result<(), String> {
    let (n, cmd) = args.split_first().ok_or("spawnloop N CMD ARGS...")?;
    let n: usize = n.parse().map_err(|_| format!("bad count {n}"))?;
    let (prog, prog_args) = cmd.split_first().ok_or("spawnloop needs a command")?;
    let t0 = Instant::now();
    let mut kids: Vec<Child> = Vec::with_capacity(n);
    for _ in 0..n {
        // std waits until the child has exec'd (or failed to): when spawn
        // returns, the program runs.
        let child = Command::new(prog)
            .args(prog_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {prog}: {e}"))?;
        kids.push(child);
    }
    println!("ready {:.3}", t0.elapsed().as_secs_f64() * 1000.0);
    let _ = io::stdout().flush();
    let mut line = String::new();
    let _ = io::stdin().read_line(&mut line);
    let t1 = Instant::now();
    for k in &kids {
        if let Ok(pid) = libc::pid_t::try_from(k.id()) {
            // SAFETY: kill(2) on a child we have not reaped yet: the PID is ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    for k in &mut kids {
        let _ = k.wait();
    }
    println!("stopped {:.3}", t1.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

// ------------------------------------------------------------------ storm

fn storm(args: &[String]) -> Result<(), String> {
    let n: usize = args
        .first()
        .and_then(|v| v.parse().ok())
        .ok_or("storm N LIMIT_SECONDS")?;
    let limit = Duration::from_secs_f64(args.get(1).and_then(|v| v.parse().ok()).unwrap_or(60.0));
    // The grandchildren block reading this pipe until we close its write
    // end: the storm starts when we say, not when the middle process exits,
    // so the clock starts before the first orphan can exit.
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the array we pass.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    let [r, w] = fds;
    let pids = SharedPids::new(n)?;
    let t0 = Instant::now();
    // SAFETY: single-threaded here; the children only call async-signal-safe
    // functions (fork, read, close, _exit) and write to the shared mapping.
    let middle = unsafe { libc::fork() };
    if middle < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if middle == 0 {
        // SAFETY: as above, in the child.
        unsafe { storm_middle(n, r, w, &pids) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; then the grandchildren are orphans.
    unsafe { libc::waitpid(middle, &mut status, 0) };
    let forked = t0.elapsed();
    let mut left: Vec<i32> = pids.read().into_iter().filter(|&p| exists(p)).collect();
    let orphans = left.len();
    let t1 = Instant::now();
    // SAFETY: closing our own descriptors releases the grandchildren.
    unsafe {
        libc::close(w);
        libc::close(r);
    }
    while t1.elapsed() < limit && !left.is_empty() {
        std::thread::sleep(Duration::from_micros(200));
        left.retain(|&p| exists(p));
    }
    let reaped = t1.elapsed();
    // Outside the timed window: nothing else may be left in the namespace
    // either (a stray child of PID 1 would be a bug of the init).
    let others = count_other_pids()?;
    let ok = left.is_empty() && others == 0 && status == 0 && orphans == n;
    println!(
        "{{\"ok\":{ok},\"orphans\":{orphans},\"left\":{},\"others\":{others},\"middle_status\":{status},\"fork_ms\":{:.3},\"reap_ms\":{:.3}}}",
        left.len(),
        forked.as_secs_f64() * 1000.0,
        reaped.as_secs_f64() * 1000.0
    );
    std::process::exit(if ok { 0 } else { 1 });
}

/// Whether `pid` still exists, zombie or not: a zombie answers kill(pid, 0)
/// until PID 1 reaps it, then ESRCH.
///
/// This is how the end of a storm is observed, the same for every init. It
/// replaced counting /proc entries every 200 µs, which at 10,000 processes
/// read 10,000 directory entries per scan, kept one of the machine's two
/// CPUs busy during the storm (14..32 % of all samples in `perf record -a`)
/// and created a /proc dentry per process that PID 1 then had to invalidate
/// when reaping it: it measured the helper as much as the init, and
/// widened the spread. A reaped PID is not reused during the storm: the
/// namespace is fresh, so PIDs were handed out from 1 upwards, well below
/// pid_max, and nothing in it forks while the orphans are reaped.
fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// PIDs in /proc other than 1 and ourselves.
fn count_other_pids() -> Result<usize, String> {
    let me = std::process::id();
    Ok(std::fs::read_dir("/proc")
        .map_err(|e| format!("/proc: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != 1 && pid != me)
        .count())
}

/// The grandchildren's PIDs, written by the middle process into memory
/// shared with us (it exits before we look, so no locking is needed).
struct SharedPids {
    base: *mut i32,
    n: usize,
}

impl SharedPids {
    fn new(n: usize) -> Result<SharedPids, String> {
        let len = n.max(1) * std::mem::size_of::<i32>();
        // SAFETY: a fresh anonymous shared mapping; zero-filled by the kernel.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        Ok(SharedPids {
            base: base.cast(),
            n,
        })
    }

    /// Record the i-th grandchild (in the middle process).
    ///
    /// # Safety
    /// i < n.
    unsafe fn set(&self, i: usize, pid: i32) {
        // SAFETY: i < n, inside the mapping.
        unsafe { self.base.add(i).write_volatile(pid) };
    }

    /// Every PID the middle recorded (0 for a fork that failed).
    fn read(&self) -> Vec<i32> {
        (0..self.n)
            // SAFETY: i < n, inside the mapping.
            .map(|i| unsafe { self.base.add(i).read_volatile() })
            .filter(|&p| p > 0)
            .collect()
    }
}

/// The middle process: n grandchildren blocked reading the pipe, then exit
/// so that they are orphaned (adopted by PID 1).
///
/// # Safety
/// Call only in a freshly forked child of a single-threaded process.
unsafe fn storm_middle(n: usize, r: i32, w: i32, pids: &SharedPids) -> ! {
    // SAFETY: plain syscalls on descriptors we own; i < n for pids.set.
    unsafe {
        libc::close(w);
        for i in 0..n {
            match libc::fork() {
                0 => {
                    let mut b = 0u8;
                    libc::read(r, (&mut b as *mut u8).cast(), 1);
                    libc::_exit(0);
                }
                pid if pid < 0 => libc::_exit(4),
                pid => pids.set(i, pid),
            }
        }
        libc::_exit(0);
    }
}

// ---------------------------------------------------------- launch/stamp

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes.
fn now_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn launch(args: &[String]) -> Result<(), String> {
    let argv = match args.split_first() {
        Some((dd, rest)) if dd == "--" => rest,
        _ => args,
    };
    let (prog, rest) = argv.split_first().ok_or("launch -- CMD ARGS...")?;
    let err = Command::new(prog)
        .args(rest)
        .env("BENCH_T0_NS", now_ns().to_string())
        .exec();
    Err(format!("exec {prog}: {err}"))
}

fn stamp(args: &[String]) -> Result<(), String> {
    let now = now_ns();
    let file = args.first().ok_or("stamp FILE")?;
    let t0: u128 = std::env::var("BENCH_T0_NS")
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("BENCH_T0_NS not set (the supervisor dropped the environment?)")?;
    std::fs::write(file, format!("{}\n", now.saturating_sub(t0)))
        .map_err(|e| format!("write {file}: {e}"))
}
