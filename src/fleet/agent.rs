//! `tend agent`: pulls components from a fleet ConfigServer and applies them.
//!
//! The agent is a child process of the daemon, not a thread in it: it reads
//! HTTP replies from the network, which PID 1 never does. It talks JSON to
//! the ConfigServer (`/Agent/HeartBeat`, `/Agent/RunningStatistics`,
//! `/Agent/GetConfigList`, `/Agent/Alarm`) and hands the configs it pulled to
//! the daemon over the UNIX control socket (`PUT /fleet/configs`), which
//! parses them and applies them like a graceful reload. The last configs the
//! daemon accepted are cached on disk, so a board boots with its components
//! when the server is unreachable.

use super::messages::{Api, Request, RunningStatistics};
use super::store::Table;
use crate::api::json;
use crate::client::{self, Endpoint};
use crate::config::{AgentSpec, ComponentSpec, Config};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Network timeout of one call to the ConfigServer or the daemon.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between attempts while the server is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Default cache directory when neither `cache` nor `state-directory` is set.
const DEFAULT_CACHE: &str = "/var/lib/tend/agent";

/// The agent's settings, from its command line.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    server: Endpoint,
    server_url: String,
    control: Endpoint,
    id: String,
    tags: Vec<(String, String)>,
    interval: Duration,
    token: Option<String>,
    cache: PathBuf,
}

/// One pulled config: its server version and its tend config text.
#[derive(Debug, Clone, PartialEq)]
struct Pulled {
    version: i64,
    content: String,
}

/// The supervised agent child for an `agent { … }` block.
pub fn component_spec(
    spec: &AgentSpec,
    config: &Config,
    upstream: &Path,
    exe: &Path,
) -> ComponentSpec {
    let cache = spec.cache.clone().unwrap_or_else(|| {
        config
            .state_directory
            .as_ref()
            .map(|d| d.join("agent"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
    });
    let mut argv = vec![
        exe.display().to_string(),
        "agent".into(),
        "--server".into(),
        spec.server.clone(),
        "--control".into(),
        format!("unix://{}", upstream.display()),
        "--interval".into(),
        spec.interval.as_secs().max(1).to_string(),
        "--cache".into(),
        cache.display().to_string(),
    ];
    if let Some(id) = &spec.id {
        argv.extend(["--id".into(), id.clone()]);
    }
    if !spec.tags.is_empty() {
        let tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        argv.extend(["--tags".into(), tags.join(",")]);
    }
    if let Some(f) = &spec.token_file {
        argv.extend(["--token-file".into(), f.display().to_string()]);
    }
    let mut c = ComponentSpec::new("agent", argv);
    c.flags.precious = true;
    c
}

/// Run the agent with its arguments; returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let settings = match parse_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "tend agent: {e}\nusage: tend agent --server URL --control unix:///SOCK [--id ID] [--tags k=v,...] [--interval SECS] [--cache DIR] [--token-file F]"
            );
            return 2;
        }
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    Agent::new(settings).run()
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut opts: Table<String> = Table::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = match a.as_str() {
            "--server" | "--control" | "--id" | "--tags" | "--interval" | "--cache"
            | "--token-file" => a.as_str(),
            other => return Err(format!("unknown argument `{other}`")),
        };
        let v = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        opts.insert(key.to_string(), v.clone());
    }
    let server_url = opts
        .get("--server")
        .cloned()
        .ok_or("--server is required")?;
    let server = Endpoint::parse(&server_url).map_err(|e| e.to_string())?;
    let control_url = opts
        .get("--control")
        .cloned()
        .ok_or("--control is required")?;
    let control = Endpoint::parse(&control_url).map_err(|e| e.to_string())?;
    let interval = match opts.get("--interval") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("--interval: `{s}` is not a number of seconds"))?,
        None => 10,
    };
    let tags = match opts.get("--tags") {
        Some(s) => parse_tags(s)?,
        None => Vec::new(),
    };
    let token = match opts.get("--token-file") {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("--token-file {f}: {e}"))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    Ok(Settings {
        server,
        server_url,
        control,
        id: opts.get("--id").cloned().unwrap_or_else(hostname),
        tags,
        interval: Duration::from_secs(interval.max(1)),
        token,
        cache: opts
            .get("--cache")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE)),
    })
}

/// `k=v,k2=v2`.
fn parse_tags(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| match t.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
            None => Err(format!("--tags: `{t}` is not NAME=VALUE")),
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "tend".to_string())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The agent's running state.
struct Agent {
    s: Settings,
    startup_time: i64,
    /// Configs the daemon accepted, by name.
    applied: Table<Pulled>,
    /// Versions the daemon refused, so each refusal is alarmed once.
    refused: Table<i64>,
    /// Components already reported as sleeping.
    sleeping_reported: Vec<String>,
}

impl Agent {
    fn new(s: Settings) -> Agent {
        Agent {
            s,
            startup_time: now_unix(),
            applied: Table::default(),
            refused: Table::default(),
            sleeping_reported: Vec::new(),
        }
    }

    /// Boot from the cache, then heartbeat and pull forever.
    fn run(mut self) -> i32 {
        self.boot_from_cache();
        let mut backoff = self.s.interval;
        loop {
            let started = Instant::now();
            let wait = match self.round() {
                Ok(()) => {
                    backoff = self.s.interval;
                    self.s.interval
                }
                Err(e) => {
                    log::warn!("agent: {e}; next try in {backoff:?}");
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    w
                }
            };
            std::thread::sleep(wait.saturating_sub(started.elapsed()));
        }
    }

    /// One heartbeat/statistics/pull round.
    fn round(&mut self) -> Result<(), String> {
        let programs = self.programs().unwrap_or_default();
        self.heartbeat()?;
        self.statistics(&programs)?;
        self.alarm_sleepers(&programs)?;
        self.pull()
    }

    /// A request from this agent: its id and a fresh request id.
    fn request(&self) -> Request {
        Request {
            request_id: request_id(),
            agent_id: self.s.id.clone(),
            ..Request::default()
        }
    }

    fn heartbeat(&self) -> Result<(), String> {
        // `extend`, not `collect`: collecting into a map sorts first, and
        // every collect site costs its own copy of the sort (~4 KB each).
        let mut tags = BTreeMap::new();
        tags.extend(self.s.tags.iter().cloned());
        let req = Request {
            agent_type: "tend".to_string(),
            agent_version: crate::VERSION.to_string(),
            ip: self.local_ip(),
            tags,
            running_status: "running".to_string(),
            startup_time: self.startup_time,
            ..self.request()
        };
        self.server_call(Api::HeartBeat, &req).map(|_| ())
    }

    fn statistics(&self, programs: &[Value]) -> Result<(), String> {
        let mut extras = BTreeMap::new();
        extras.extend(programs.iter().filter_map(|p| {
            Some((
                p["tag"].as_str()?.to_string(),
                p["status"].as_str()?.to_string(),
            ))
        }));
        let (cpu, memory) = own_usage();
        let req = Request {
            // The protocol's `cpu` is a float: what the server keeps of it.
            running_details: Some(RunningStatistics {
                cpu: cpu as f32,
                memory,
                extras,
            }),
            ..self.request()
        };
        self.server_call(Api::RunningStatistics, &req).map(|_| ())
    }

    /// Raise an alarm once for each component that went to sleep.
    fn alarm_sleepers(&mut self, programs: &[Value]) -> Result<(), String> {
        let sleeping: Vec<String> = programs
            .iter()
            .filter(|p| p["status"] == "sleeping")
            .filter_map(|p| p["tag"].as_str().map(str::to_string))
            .collect();
        for tag in &sleeping {
            if !self.sleeping_reported.contains(tag) {
                self.alarm(
                    "ComponentSleeping",
                    &format!("component `{tag}` restarted too often and is sleeping"),
                )?;
            }
        }
        self.sleeping_reported = sleeping;
        Ok(())
    }

    fn alarm(&self, kind: &str, detail: &str) -> Result<(), String> {
        log::warn!("agent alarm {kind}: {detail}");
        let req = Request {
            alarm_type: kind.to_string(),
            detail: detail.to_string(),
            ..self.request()
        };
        self.server_call(Api::Alarm, &req).map(|_| ())
    }

    /// Ask for updates and apply them.
    fn pull(&mut self) -> Result<(), String> {
        let mut config_versions = BTreeMap::new();
        config_versions.extend(self.applied.iter().map(|(k, p)| (k.clone(), p.version)));
        let req = Request {
            config_versions,
            ..self.request()
        };
        let answer = self.server_call(Api::GetConfigList, &req)?;
        let mut next = self.applied.clone();
        let mut changed = false;
        for info in answer["config_update_infos"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let Some(name) = info["config_name"].as_str() else {
                continue;
            };
            match info["update_status"].as_str().unwrap_or("SAME") {
                "NEW" | "MODIFIED" => {
                    let version = info["config_version"].as_i64().unwrap_or(0);
                    if self.refused.get(name) == Some(&version) {
                        continue;
                    }
                    let content = info["content"].as_str().unwrap_or("").to_string();
                    next.insert(name.to_string(), Pulled { version, content });
                    changed = true;
                }
                "DELETED" => {
                    changed |= next.remove(name);
                }
                _ => {}
            }
        }
        if !changed {
            return Ok(());
        }
        match self.apply(&next) {
            Ok(()) => {
                log::info!("agent: applied {} fleet config(s)", next.len());
                self.applied = next;
                self.refused = Table::default();
                if let Err(e) = self.save_cache() {
                    log::warn!("agent: cannot write cache {}: {e}", self.s.cache.display());
                }
                Ok(())
            }
            Err(message) => {
                for (name, p) in next.iter() {
                    if self.applied.get(name) != Some(p) {
                        self.refused.insert(name.clone(), p.version);
                    }
                }
                self.alarm("ConfigApplyFailed", &message)
            }
        }
    }

    /// Hand the full set of configs to the daemon.
    fn apply(&self, configs: &Table<Pulled>) -> Result<(), String> {
        let body = configs_json(configs);
        let r = client::request(
            &self.s.control,
            "PUT",
            "/fleet/configs",
            &[("Content-Type", "application/json")],
            &body,
            CALL_TIMEOUT,
        )
        .map_err(|e| format!("daemon: {e}"))?;
        if r.status == 200 {
            Ok(())
        } else {
            let v = r.json().unwrap_or(Value::Null);
            Err(v["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| r.text()))
        }
    }

    /// The daemon's component list (for statistics and sleep alarms).
    fn programs(&self) -> Option<Vec<Value>> {
        let r =
            client::request(&self.s.control, "GET", "/programs", &[], b"", CALL_TIMEOUT).ok()?;
        r.json().ok()?.as_array().cloned()
    }

    /// POST a request to the ConfigServer as JSON; non-200 answers are errors.
    fn server_call(&self, api: Api, req: &Request) -> Result<Value, String> {
        let path = api.path();
        let auth = self.s.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let r = client::request(
            &self.s.server,
            "POST",
            path,
            &headers,
            &req.json_bytes(api),
            CALL_TIMEOUT,
        )
        .map_err(|e| format!("{}{path}: {e}", self.s.server_url))?;
        let v = r.json().unwrap_or(Value::Null);
        if r.status != 200 {
            return Err(format!(
                "{}{path}: HTTP {} {}",
                self.s.server_url,
                r.status,
                v["message"].as_str().unwrap_or("")
            ));
        }
        Ok(v)
    }

    /// The address this host uses to reach the server (no packet is sent:
    /// connecting a UDP socket only picks the route).
    fn local_ip(&self) -> String {
        let Endpoint::Tcp { host, port } = &self.s.server else {
            return "127.0.0.1".into();
        };
        std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect((host.as_str(), *port))?;
                s.local_addr()
            })
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "127.0.0.1".into())
    }

    fn cache_file(&self) -> PathBuf {
        self.s.cache.join("fleet-configs.json")
    }

    /// Apply the last configs the daemon accepted, before the network is up.
    fn boot_from_cache(&mut self) {
        let Ok(text) = std::fs::read_to_string(self.cache_file()) else {
            return;
        };
        // `from_slice` like everywhere else: `from_str` would add a second
        // copy of the JSON parser to the binary.
        let Ok(v) = serde_json::from_slice::<Value>(text.as_bytes()) else {
            log::warn!(
                "agent: cache {} is unreadable; ignoring it",
                self.cache_file().display()
            );
            return;
        };
        let mut cached = Table::default();
        for c in v["configs"].as_array().cloned().unwrap_or_default() {
            if let (Some(name), Some(content)) = (c["name"].as_str(), c["content"].as_str()) {
                let version = c["version"].as_i64().unwrap_or(0);
                cached.insert(
                    name.to_string(),
                    Pulled {
                        version,
                        content: content.to_string(),
                    },
                );
            }
        }
        // The daemon may not be listening yet when it starts us: retry briefly.
        for _ in 0..50 {
            match self.apply(&cached) {
                Ok(()) => {
                    log::info!(
                        "agent: booted {} fleet config(s) from the cache",
                        cached.len()
                    );
                    self.applied = cached;
                    return;
                }
                Err(e) if e.starts_with("daemon:") => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => {
                    log::warn!("agent: cached configs refused: {e}");
                    return;
                }
            }
        }
    }

    /// Write the accepted configs atomically: temp file, fsync, rename, fsync dir.
    fn save_cache(&self) -> std::io::Result<()> {
        super::store::create_dir_all(&self.s.cache)?;
        let tmp = self.s.cache.join(".fleet-configs.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&configs_json(&self.applied))?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.cache_file())?;
        std::fs::File::open(&self.s.cache)?.sync_all()
    }
}

/// `{"configs":[{"content":…,"name":…,"version":…},…]}`: what the daemon's
/// `PUT /fleet/configs` takes and what the cache holds (keys in order, as
/// serde_json wrote them).
fn configs_json(configs: &Table<Pulled>) -> Vec<u8> {
    let mut out = b"{\"configs\":[".to_vec();
    for (i, (name, p)) in configs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"content\":");
        json::push_str(&mut out, &p.content);
        out.extend_from_slice(b",\"name\":");
        json::push_str(&mut out, name);
        out.extend_from_slice(b",\"version\":");
        json::push_int(&mut out, p.version);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// A request id: the time in nanoseconds is unique enough per agent.
fn request_id() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default()
}

/// The daemon's CPU share since it started (percent) and its RSS in bytes,
/// read from /proc for our parent (the daemon).
fn own_usage() -> (f64, i64) {
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    let rss_kib: i64 = std::fs::read_to_string(format!("/proc/{ppid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string(format!("/proc/{ppid}/stat"))
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            let start: f64 = fields.get(19)?.parse().ok()?;
            let uptime: f64 = std::fs::read_to_string("/proc/uptime")
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
            let elapsed = uptime - start / hz;
            (elapsed > 0.0).then(|| 100.0 * (utime + stime) / hz / elapsed)
        })
        .unwrap_or(0.0);
    (cpu, rss_kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn configs_json_is_what_a_value_gave() {
        let mut configs = Table::default();
        for (name, version, content) in [("b", 2, "x\n\"y\""), ("a", -1, "")] {
            let content = content.to_string();
            configs.insert(name.to_string(), Pulled { version, content });
        }
        let list: Vec<Value> = configs
            .iter()
            .map(|(name, p)| {
                serde_json::json!({ "name": name, "version": p.version, "content": p.content })
            })
            .collect();
        let old = serde_json::json!({ "configs": list }).to_string();
        assert_eq!(String::from_utf8(configs_json(&configs)).unwrap(), old);
        assert_eq!(configs_json(&Table::default()), br#"{"configs":[]}"#);
    }

    #[test]
    fn parses_arguments() {
        let s = parse_args(&args(&[
            "--server",
            "http://127.0.0.1:8899",
            "--control",
            "unix:///tmp/t.sock",
            "--id",
            "b1",
            "--tags",
            "site=a, role=web",
            "--interval",
            "3",
            "--cache",
            "/tmp/c",
        ]))
        .unwrap();
        assert_eq!(s.id, "b1");
        assert_eq!(
            s.tags,
            vec![("site".into(), "a".into()), ("role".into(), "web".into())]
        );
        assert_eq!(s.interval, Duration::from_secs(3));
        assert_eq!(s.cache, PathBuf::from("/tmp/c"));
    }

    #[test]
    fn argument_errors_are_clear() {
        assert_eq!(
            parse_args(&args(&["--control", "unix:///x"])).unwrap_err(),
            "--server is required"
        );
        assert!(
            parse_args(&args(&["--bogus", "1"]))
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            parse_args(&args(&[
                "--server",
                "http://h:1",
                "--control",
                "unix:///x",
                "--tags",
                "novalue"
            ]))
            .unwrap_err()
            .contains("NAME=VALUE")
        );
    }

    #[test]
    fn component_spec_carries_settings() {
        let spec = AgentSpec {
            server: "http://10.0.0.1:8899".into(),
            id: Some("board-7".into()),
            tags: vec![("site".into(), "lab".into())],
            interval: Duration::from_secs(5),
            token_file: None,
            cache: None,
        };
        let cfg = Config {
            state_directory: Some("/var/lib/x".into()),
            ..Config::default()
        };
        let c = component_spec(
            &spec,
            &cfg,
            Path::new("/run/tend.sock"),
            Path::new("/usr/sbin/tend"),
        );
        let argv = c.argv.join(" ");
        assert!(
            argv.contains("agent --server http://10.0.0.1:8899 --control unix:///run/tend.sock"),
            "{argv}"
        );
        assert!(argv.contains("--cache /var/lib/x/agent"));
        assert!(argv.contains("--id board-7") && argv.contains("--tags site=lab"));
        assert!(c.flags.precious);
    }
}
