//! Faults and storms against the real daemon: crash loops, orphan floods,
//! reload storms, concurrent API clients, and a ConfigServer killed at
//! random points of a stream of writes.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tend::fleet::messages::Api;

// ------------------------------------------------------------------ helpers

/// A small generator (xorshift64*); seeds are printed so a failure can be
/// replayed by setting `TEND_FAULT_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let base = std::env::var("TEND_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        Rng((base ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which may hold spaces, start at 3.
    let rest = stat.rsplit(')').next().unwrap();
    rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    stat_field(pid, 14) + stat_field(pid, 15)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// PIDs of the zombie children of `parent`.
fn zombies_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            rest.next() == Some("Z") && rest.next() == Some(&parent.to_string())
        })
        .collect()
}

/// A counter from the Prometheus metrics.
fn metric(d: &Daemon, name: &str) -> u64 {
    let body = d.get("/metrics?format=prometheus").body;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{body}")) as u64
}

/// Tag → (status, PID) of every row of `/programs`.
fn table(d: &Daemon) -> BTreeMap<String, (String, Option<i64>)> {
    let v = d.get("/programs").json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["tag"].as_str().unwrap().to_string(),
                (c["status"].as_str().unwrap().to_string(), c["PID"].as_i64()),
            )
        })
        .collect()
}

fn sleeper(tag: &str) -> String {
    format!("component {tag} {{ command \"/bin/sleep 100000\"; stop-timeout 2; }}\n")
}

// ------------------------------------------------------------- crash loops

#[test]
fn crash_loop_sleeps_and_costs_no_cpu() {
    let d = Daemon::start(
        "fault-crashloop",
        "component crasher { command \"/bin/false\"; }\n",
    );
    d.wait_status("crasher", "sleeping");
    let program = d.program("crasher");
    assert!(program["wakeup"].as_u64().unwrap_or(0) > 60, "{program}");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = cpu_ticks(d.pid());
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let ticks = cpu_ticks(d.pid()) - before;
    let wall = started.elapsed().as_secs_f64();
    let share = ticks as f64 / hz / wall;
    eprintln!(
        "tend used {ticks} ticks in {wall:.2} s while its component slept ({:.2}%)",
        share * 100.0
    );
    // The one timing threshold of these tests, required as such: a
    // component that dies at once, forever, must not keep tend busy.
    assert!(share < 0.02, "tend used {:.2}% CPU", share * 100.0);
    assert_eq!(d.status("crasher"), "sleeping");
    let restarts = d.program("crasher")["restarts"].as_u64().unwrap();
    assert!(restarts <= 11, "restarted {restarts} times before sleeping");
}

// ---------------------------------------------------------------- orphans

#[test]
fn ten_thousand_orphans_are_reaped_in_flat_memory() {
    let dir = TempDir::new("fault-orphans");
    // `( : & )`: a subshell starts a background job and exits at once, so
    // the job (running or already a zombie) is reparented to tend, the
    // subreaper. Batches of 100 keep the number of live processes small.
    let script = dir.write(
        "orphans.sh",
        r#"burst() { i=0; while [ $i -lt $1 ]; do ( : & ); i=$((i+1)); done; }
burst 1000
: > "$1/warm"
while [ ! -e "$1/go" ]; do sleep 0.05; done
b=0; while [ $b -lt 90 ]; do burst 100; b=$((b+1)); done
: > "$1/done"
exec sleep 100000
"#,
    );
    let conf = dir.write(
        "tend.conf",
        &format!(
            "component orphans {{ command \"/bin/sh {} {}\"; }}\n",
            script.display(),
            dir.0.display()
        ),
    );
    let conf = conf.display().to_string();
    let d = Daemon::start_with(dir, &["-c", &conf]);
    let pid = d.pid();
    let settled = |d: &Daemon, file: &str, reaped: u64| {
        assert!(
            wait_until(Duration::from_secs(60), || d.dir.path(file).exists()
                && metric(d, "tend_reaped_orphans_total") >= reaped
                && zombies_of(pid).is_empty()),
            "{file}: orphans not reaped (reaped {}, zombies {:?}); log:\n{}",
            metric(d, "tend_reaped_orphans_total"),
            zombies_of(pid),
            d.log()
        );
    };
    let started = Instant::now();
    settled(&d, "warm", 1000);
    let warm_rss = rss_kib(pid);
    std::fs::write(d.dir.path("go"), "").unwrap();
    settled(&d, "done", 10_000);
    let rss = rss_kib(pid);
    let reaped = metric(&d, "tend_reaped_orphans_total");
    eprintln!(
        "reaped {reaped} orphans in {:?}; VmRSS {warm_rss} KiB after 1,000, {rss} KiB after 10,000",
        started.elapsed()
    );
    assert!(
        rss < warm_rss + 256,
        "VmRSS grew by {} KiB over 9,000 orphans",
        rss.saturating_sub(warm_rss)
    );
    assert!(zombies_of(pid).is_empty());
    assert_eq!(
        d.status("orphans"),
        "running",
        "the component itself was disturbed"
    );
}

// ----------------------------------------------------------- reload storms

#[test]
fn reload_storm_keeps_unchanged_components() {
    let variants = [
        format!("{}{}{}", sleeper("a"), sleeper("b"), sleeper("c")),
        format!(
            "{}{}{}{}",
            sleeper("a"),
            sleeper("b"),
            sleeper("c"),
            sleeper("x")
        ),
        format!("{}{}", sleeper("a"), sleeper("b")),
    ];
    let d = Daemon::start("fault-reload", &variants[0]);
    for tag in ["a", "b", "c"] {
        d.wait_status(tag, "running");
    }
    let keep: BTreeMap<String, i64> = ["a", "b"]
        .iter()
        .map(|t| (t.to_string(), d.pid_of(t).unwrap()))
        .collect();
    let d = Arc::new(d);
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (d, stop, keep) = (d.clone(), stop.clone(), keep.clone());
            std::thread::spawn(move || poll_programs(&d, &stop, &keep))
        })
        .collect();
    let conf = d.dir.path("tend.conf");
    let started = Instant::now();
    for i in 0..100 {
        let text = &variants[i % 3];
        let tmp = d.dir.path("tend.conf.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &conf).unwrap();
        if i % 2 == 0 {
            d.signal(libc::SIGUSR2);
        } else {
            let r = d.call("POST", "/api/config.gracefulReload", "");
            assert_eq!(r.status, 200, "reload {i}: {}", r.body);
            assert_eq!(r.json()["ok"], true, "reload {i}: {}", r.body);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Finish on the first variant, reloaded synchronously.
    std::fs::write(&conf, &variants[0]).unwrap();
    let r = d.call("POST", "/api/config.gracefulReload", "");
    assert_eq!(r.json()["ok"], true, "{}", r.body);
    let storm = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut answered = 0;
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    for p in pollers {
        let (n, pids) = p.join().unwrap();
        answered += n;
        seen.extend(pids);
    }
    eprintln!(
        "100 reloads in {storm:?}; pollers had {answered} answers and saw {} PIDs",
        seen.len()
    );
    assert!(answered > 0);
    // The storm really added and removed components (a, b and the first c
    // would be 3 PIDs).
    assert!(seen.len() > 3, "no component was ever added: {seen:?}");
    let settled = wait_until(PATIENCE, || {
        let t = table(&d);
        t.keys().cloned().collect::<Vec<_>>() == ["a", "b", "c"]
            && t.values().all(|(s, _)| s == "running")
    });
    assert!(settled, "final table {:?}; log:\n{}", table(&d), d.log());
    let t = table(&d);
    for (tag, pid) in &keep {
        assert_eq!(
            t[tag].1,
            Some(*pid),
            "{tag} was restarted by a graceful reload"
        );
    }
    // Every process of a removed or replaced component is gone.
    let current: BTreeSet<i64> = t.values().filter_map(|(_, p)| *p).collect();
    for pid in seen.difference(&current) {
        assert!(
            wait_until(PATIENCE, || !alive(*pid)),
            "pid {pid} of a removed component still runs"
        );
    }
}

/// Poll `/programs` until told to stop. Every request must be answered, and
/// the unchanged components must always be there with their first PIDs.
/// Returns the number of answers and every PID seen.
fn poll_programs(d: &Daemon, stop: &AtomicBool, keep: &BTreeMap<String, i64>) -> (u64, Vec<i64>) {
    let mut n = 0;
    let mut pids = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let r = http(&d.sock, "GET", "/programs", "")
            .unwrap_or_else(|e| panic!("GET /programs not answered: {e}\nlog:\n{}", d.log()));
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.json();
        let rows = rows.as_array().unwrap();
        for (tag, pid) in keep {
            let row = rows.iter().find(|c| c["tag"] == tag.as_str());
            let row = row.unwrap_or_else(|| panic!("{tag} lost: {}", r.body));
            assert_eq!(row["PID"].as_i64(), Some(*pid), "{tag} restarted: {row}");
            assert_eq!(row["status"], "running", "{row}");
        }
        pids.extend(rows.iter().filter_map(|c| c["PID"].as_i64()));
        n += 1;
    }
    (n, pids)
}

// --------------------------------------------------- concurrent API clients

/// Length of the soak. The issue asks for 30 s; `make test` uses 10 s
/// (`TEND_SOAK_SECS=30` for the full length).
fn soak_duration() -> Duration {
    let secs = std::env::var("TEND_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

#[test]
fn two_hundred_clients_mutating_and_listing() {
    const TAGS: usize = 8;
    const CLIENTS: usize = 200;
    let conf: String = (0..TAGS).map(|i| sleeper(&format!("t{i}"))).collect();
    let d = Arc::new(Daemon::start("fault-soak", &conf));
    for i in 0..TAGS {
        d.wait_status(&format!("t{i}"), "running");
    }
    let until = Instant::now() + soak_duration();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let d = d.clone();
            std::thread::spawn(move || soak_client(&d, k as u64, until))
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.join().unwrap();
    }
    eprintln!(
        "{CLIENTS} clients made {total} requests in {:?}",
        soak_duration()
    );
    assert!(
        total >= CLIENTS as u64,
        "clients made only {total} requests"
    );

    // One last action per component: stop all, then start half.
    let r = d.call("DELETE", "/programs", "");
    assert_eq!(r.json()["status"], "OK", "{}", r.body);
    let all_stopped = wait_until(PATIENCE, || {
        table(&d)
            .values()
            .all(|(s, p)| s == "stopped" && p.is_none())
    });
    assert!(all_stopped, "after DELETE /programs: {:?}", table(&d));
    for i in 0..TAGS / 2 {
        let r = d.call("PUT", &format!("/programs/t{i}"), "");
        assert_eq!(r.json()["status"], "OK", "{}", r.body);
    }
    let expected = |t: &BTreeMap<String, (String, Option<i64>)>| {
        (0..TAGS).all(|i| {
            let (status, pid) = &t[&format!("t{i}")];
            if i < TAGS / 2 {
                status == "running" && pid.is_some()
            } else {
                status == "stopped" && pid.is_none()
            }
        })
    };
    assert!(
        wait_until(PATIENCE, || expected(&table(&d))),
        "final state {:?}; log tail:\n{}",
        table(&d),
        d.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // …and it stays that way: no late restart from the storm.
    let first = table(&d);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(table(&d), first, "the final state moved on its own");
}

/// Random requests until `until`; every answer must be the expected JSON.
fn soak_client(d: &Daemon, k: u64, until: Instant) -> u64 {
    let mut rng = Rng::seeded(k);
    let mut n = 0;
    while Instant::now() < until {
        let tag = format!("t{}", rng.below(8));
        let (method, path) = match rng.below(5) {
            0 => ("GET", "/programs".to_string()),
            1 => ("GET", format!("/programs/{tag}")),
            2 => ("PUT", format!("/programs/{tag}")),
            3 => ("DELETE", format!("/programs/{tag}")),
            _ => ("POST", format!("/programs/{tag}")),
        };
        let r = http(&d.sock, method, &path, "")
            .unwrap_or_else(|e| panic!("{method} {path} not answered: {e}"));
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{method} {path}: invalid JSON ({e}): {}", r.body));
        if method == "GET" {
            let rows = v.as_array().unwrap_or_else(|| panic!("{path}: {v}"));
            let want = if path == "/programs" { 8 } else { 1 };
            assert_eq!(rows.len(), want, "{path}: {v}");
            for row in rows {
                let status = row["status"].as_str().unwrap_or("");
                assert!(
                    ["running", "stopped", "stopping", "sleeping"].contains(&status),
                    "{row}"
                );
            }
        } else {
            assert_eq!(v, json!({"status": "OK"}), "{method} {path}");
        }
        n += 1;
    }
    n
}

// ------------------------------------------------ ConfigServer under SIGKILL

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config-server child, killed on drop (a failing test must not leave it).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `tend config-server` on a fresh port over `store`.
fn start_config_server(store: &Path) -> (Reaped, u16) {
    let port = free_port();
    let mut child = Command::new(tend_bin())
        .args([
            "config-server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
        ])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(PATIENCE, || {
        assert!(child.try_wait().unwrap().is_none(), "config-server exited");
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let child = Reaped(child);
    assert!(up, "config-server never listened");
    (child, port)
}

/// A JSON call; `None` when the server went away before answering in full.
fn fleet_call(port: u16, api: Api, body: &Value) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.to_string();
    let req = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        api.method().name(),
        api.path(),
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let body = dechunk(raw.get(end + 4..)?)?;
        return Some((status, serde_json::from_slice(&body).ok()?));
    }
    let len: usize = header("content-length")?.parse().ok()?;
    let body = raw.get(end + 4..end + 4 + len)?;
    Some((status, serde_json::from_slice(body).ok()?))
}

/// Dechunk a `Transfer-Encoding: chunked` body; `None` when incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Every config's content on the server: name → value number.
fn stored_configs(port: u16) -> BTreeMap<String, u64> {
    let (status, v) = fleet_call(port, Api::ListConfigs, &json!({})).expect("ListConfigs");
    assert_eq!(status, 200, "{v}");
    v["config_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let content = c["content"].as_str().unwrap();
            (
                c["config_name"].as_str().unwrap().to_string(),
                content.trim_start_matches('v').parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn config_server_sigkill_during_writes_keeps_acknowledged_ones() {
    // (A torn store file refusing startup is covered by
    // tests/fleet_server.rs::torn_store_file_stops_startup.)
    let store = TempDir::new("fault-fleet");
    let mut rng = Rng::seeded(0xF1EE7);
    eprintln!("seed state {}", rng.0);
    // name → last acknowledged value, and → last value attempted.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut tried: BTreeMap<String, u64> = BTreeMap::new();
    let mut writes = 0u64;
    let mut kills = 0;
    let started = Instant::now();
    while writes < 1000 {
        let (mut child, port) = start_config_server(&store.0);
        check_store(port, &acked, &tried);
        let pid = child.0.id() as i32;
        let delay = Duration::from_millis(20 + rng.below(400));
        // The child is reaped only after the killer is joined, so its PID
        // cannot be reused by then.
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            // SAFETY: kill(2) on our own, not yet reaped, child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        while writes < 1000 {
            writes += 1;
            let value = writes;
            let update = !acked.is_empty() && rng.below(3) == 0;
            let (api, name) = if update {
                let i = rng.below(acked.len() as u64) as usize;
                (Api::UpdateConfig, acked.keys().nth(i).unwrap().clone())
            } else {
                (Api::CreateConfig, format!("c{value}"))
            };
            tried.insert(name.clone(), value);
            let body = json!({"config_detail": {"config_name": name, "agent_type": "tend",
                                                "description": "", "content": format!("v{value}")}});
            match fleet_call(port, api, &body) {
                Some((200, v)) if v["code"] == "Accept" => {
                    acked.insert(name, value);
                }
                Some((status, v)) => panic!("{} {name}: {status} {v}", api.path()),
                None => break,
            }
        }
        killer.join().unwrap();
        let _ = child.0.wait();
        kills += 1;
    }
    let (child, port) = start_config_server(&store.0);
    check_store(port, &acked, &tried);
    drop(child);
    eprintln!(
        "{writes} writes, {} acknowledged configs, {kills} SIGKILLs in {:?}",
        acked.len(),
        started.elapsed()
    );
    assert!(kills >= 2, "the server was killed only {kills} times");
}

/// Every acknowledged write is there (or a later, unacknowledged one that
/// was in flight at the kill); nothing appears that was never written.
fn check_store(port: u16, acked: &BTreeMap<String, u64>, tried: &BTreeMap<String, u64>) {
    let stored = stored_configs(port);
    for (name, value) in acked {
        let got = stored.get(name);
        assert!(
            got.is_some_and(|g| g >= value && Some(g) <= tried.get(name)),
            "{name}: acknowledged v{value}, stored {got:?}"
        );
    }
    for (name, value) in &stored {
        assert!(
            tried.get(name).is_some_and(|t| value <= t),
            "{name} = v{value} was never written"
        );
    }
}
