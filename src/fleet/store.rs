//! The ConfigServer's durable store: one state file, rewritten atomically.
//!
//! Layout of `DIR/state.json`: a header line
//! `tend-fleet-store 1 <body length> <fnv1a-64 of the body, hex>\n`
//! followed by the body, a JSON object. Every save writes `state.json.tmp`,
//! fsyncs it, renames it over `state.json` and fsyncs the directory, so after a
//! crash the file is either the old state or the new one. The header makes a
//! torn or corrupted file (a disk, a copy, an editor) detectable: the server
//! refuses to start on it rather than start empty and lose everything.
//!
//! `DIR/lock` is held with `flock` while the server runs, so two servers never
//! share (and clobber) one store.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::messages::{Agent, AgentGroup, Config, Message};
use crate::api::json;

const MAGIC: &str = "tend-fleet-store";
const FORMAT: u32 = 1;
const STATE: &str = "state.json";
const TMP: &str = "state.json.tmp";

/// A config as the store keeps it: the last content and its version, and
/// whether it was deleted (a tombstone keeps the version counting up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// The config as last created or updated.
    pub config: Config,
    /// 0 when created, +1 for every update, delete or re-create.
    pub version: i64,
    /// Deleted: not listed, not served, but its version is remembered.
    pub deleted: bool,
}

/// Everything the server acknowledges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Agent groups by name (`default` included).
    pub groups: Table<AgentGroup>,
    /// Configs by name, tombstones included.
    pub configs: Table<StoredConfig>,
    /// Group name to the names of the configs applied to it.
    pub applied: Table<Names>,
    /// Known agents by id.
    pub agents: Table<Agent>,
}

/// A set of names, in order.
pub type Names = Table<()>;

/// A map from names to values: a `Vec` kept sorted by name.
///
/// Why not `BTreeMap`: each `BTreeMap<K, V>` brings some 10 KiB of its own
/// code into the binary, and the server already copies its whole state on
/// every change (see `commit` in the server), so the linear inserts of a
/// sorted `Vec` change nothing in how it scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<V> {
    rows: Vec<(String, V)>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table { rows: Vec::new() }
    }
}

impl<V> Table<V> {
    /// Where `key` is, or where it would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.rows.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        let i = self.find(key).ok()?;
        self.rows.get(i).map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        self.rows.get_mut(i).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set the value of `key`, replacing any old one.
    pub fn insert(&mut self, key: String, value: V) {
        match self.find(&key) {
            Ok(i) => {
                if let Some(row) = self.rows.get_mut(i) {
                    row.1 = value;
                }
            }
            Err(i) => self.rows.insert(i, (key, value)),
        }
    }

    /// The value of `key`, made with `make` first if there is none.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(i) => {
                self.rows.insert(i, (key.to_string(), make()));
                i
            }
        };
        // In bounds: `i` was found or has just been filled.
        &mut self.rows[i].1
    }

    /// Remove `key`; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Ok(i) => {
                self.rows.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Keys and values, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.rows.iter().map(|(k, v)| (k, v))
    }

    /// Keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.rows.iter().map(|(k, _)| k)
    }

    /// Values, by key.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.rows.iter().map(|(_, v)| v)
    }
}

impl Names {
    /// Add `name`.
    pub fn add(&mut self, name: String) {
        self.insert(name, ());
    }
}

/// Why the store could not be opened or written.
#[derive(Debug)]
pub enum StoreError {
    /// A system call failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The error.
        err: io::Error,
    },
    /// The state file is not what this server wrote.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another server holds the store.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { op, path, err } => write!(f, "{op} {}: {err}", path.display()),
            StoreError::Corrupt { path, reason } => write!(
                f,
                "store file {} is corrupt ({reason}); refusing to start with an empty store: \
                 restore it from a backup or move it away",
                path.display()
            ),
            StoreError::Locked { path } => write!(
                f,
                "store is in use by another config-server (lock {} is held)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |err| StoreError::Io {
        op,
        path: path.to_path_buf(),
        err,
    }
}

/// An open store directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    // Held for its flock; released when the process exits.
    _lock: File,
}

impl Store {
    /// Open (creating it if needed) the store in `dir`, lock it and load
    /// its state. A missing state file is an empty state; a damaged one is an
    /// error.
    pub fn open(dir: &Path) -> Result<(Store, State), StoreError> {
        create_dir_durably(dir)?;
        let lock = lock_dir(dir)?;
        let path = dir.join(STATE);
        let state = match fs::read(&path) {
            Ok(bytes) => parse(&bytes).map_err(|reason| StoreError::Corrupt {
                path: path.clone(),
                reason,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let store = Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        Ok((store, state))
    }

    /// Write `state` durably: when this returns Ok, a crash cannot lose it.
    pub fn save(&self, state: &State) -> Result<(), StoreError> {
        let body = to_json(state);
        let header = format!("{MAGIC} {FORMAT} {} {:016x}\n", body.len(), fnv1a(&body));
        let tmp = self.dir.join(TMP);
        let path = self.dir.join(STATE);
        write_synced(&tmp, header.as_bytes(), &body)?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        // The rename is only durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", &self.dir))
    }
}

/// Create `dir` if needed, and make its entry durable in its parent so a
/// crash right after the first save cannot lose the whole directory.
fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    create_dir_all(dir).map_err(io_err("create directory", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", parent))?;
    }
    Ok(())
}

/// `fs::create_dir_all`, made with `mkdir(2)` the way std does it: std's
/// version is the only user of its directory builder in the binary, some
/// 2.7 KiB of code.
pub(crate) fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    match mkdir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) if path.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(parent) => create_dir_all(parent)?,
        None => return Err(io::Error::other("failed to create whole tree")),
    }
    match mkdir(path) {
        Ok(()) => Ok(()),
        // Someone else may have made it meanwhile.
        Err(_) if path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

fn mkdir(path: &Path) -> io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        // std's words for the same refusal.
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name contained an unexpected NUL byte",
        )
    })?;
    // SAFETY: mkdir reads a NUL-terminated string that lives across the call.
    if unsafe { libc::mkdir(c_path.as_ptr(), 0o777) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(StoreError::Locked { path });
        }
        return Err(io_err("lock", &path)(err));
    }
    Ok(file)
}

fn write_synced(path: &Path, header: &[u8], body: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create(path).map_err(io_err("create", path))?;
    f.write_all(header).map_err(io_err("write", path))?;
    f.write_all(body).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))
}

/// 64-bit FNV-1a: enough to catch torn writes and bit rot, not an adversary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Check the header and decode the body.
fn parse(bytes: &[u8]) -> Result<State, String> {
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let (header, rest) = bytes.split_at(nl);
    let body = rest.get(1..).unwrap_or_default();
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, format, len, sum] = fields.as_slice() else {
        return Err(format!("bad header {header:?}"));
    };
    if *magic != MAGIC {
        return Err(format!("bad header {header:?}"));
    }
    if *format != FORMAT.to_string() {
        return Err(format!("unsupported format {format}"));
    }
    let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
    if body.len() != len {
        return Err(format!(
            "truncated or extended: header says {len} bytes, file has {}",
            body.len()
        ));
    }
    let want = u64::from_str_radix(sum, 16).map_err(|_| format!("bad checksum {sum:?}"))?;
    let got = fnv1a(body);
    if got != want {
        return Err(format!(
            "checksum mismatch: header {want:016x}, body {got:016x}"
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    from_json(&v).map_err(|e| format!("bad content: {e}"))
}

/// The body: the state as JSON, keys in order like a serde_json `Value`.
fn to_json(state: &State) -> Vec<u8> {
    let mut out = b"{\"agents\":[".to_vec();
    for (i, a) in state.agents.values().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        a.write_json(&mut out);
    }
    out.extend_from_slice(b"],\"applied\":{");
    for (i, (group, names)) in state.applied.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::push_str(&mut out, group);
        out.push(b':');
        json::push_strs(&mut out, names.keys().map(String::as_str));
    }
    out.extend_from_slice(b"},\"configs\":[");
    for (i, c) in state.configs.values().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"config\":");
        c.config.write_json(&mut out);
        out.extend_from_slice(if c.deleted {
            b",\"deleted\":true,\"version\":"
        } else {
            b",\"deleted\":false,\"version\":"
        });
        json::push_int(&mut out, c.version);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"groups\":[");
    for (i, g) in state.groups.values().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        g.write_json(&mut out);
    }
    out.extend_from_slice(b"]}");
    out
}

fn list<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match o.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{key} is not an array")),
    }
}

fn from_json(v: &Value) -> Result<State, String> {
    let o = v.as_object().ok_or("not an object")?;
    let mut state = State::default();
    for g in list(o, "groups")? {
        let g = AgentGroup::from_json(g, "groups[]").map_err(|e| e.message)?;
        state.groups.insert(g.group_name.clone(), g);
    }
    for c in list(o, "configs")? {
        let c = stored_config(c)?;
        state.configs.insert(c.config.config_name.clone(), c);
    }
    for a in list(o, "agents")? {
        let a = Agent::from_json(a, "agents[]").map_err(|e| e.message)?;
        state.agents.insert(a.agent_id.clone(), a);
    }
    if let Some(applied) = o.get("applied") {
        let applied = applied.as_object().ok_or("applied is not an object")?;
        for (group, names) in applied {
            let names = names.as_array().ok_or("applied entry is not an array")?;
            let mut set = Names::default();
            for n in names {
                let name = n.as_str().ok_or("applied name is not a string")?;
                set.add(name.to_string());
            }
            state.applied.insert(group.clone(), set);
        }
    }
    Ok(state)
}

fn stored_config(v: &Value) -> Result<StoredConfig, String> {
    let config = v.get("config").ok_or("config without content")?;
    Ok(StoredConfig {
        config: Config::from_json(config, "configs[].config").map_err(|e| e.message)?,
        version: v
            .get("version")
            .and_then(Value::as_i64)
            .ok_or("config without version")?,
        deleted: v.get("deleted").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tend-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn sample() -> State {
        let mut s = State::default();
        s.groups.insert(
            "default".into(),
            AgentGroup {
                group_name: "default".into(),
                ..AgentGroup::default()
            },
        );
        s.configs.insert(
            "c".into(),
            StoredConfig {
                config: Config {
                    config_name: "c".into(),
                    content: "x\ny \"z\"".into(),
                    ..Config::default()
                },
                version: 3,
                deleted: true,
            },
        );
        s.applied
            .get_or_insert_with("default", Names::default)
            .add("c".to_string());
        s
    }

    #[test]
    fn save_and_reopen() {
        let dir = temp_dir("reopen");
        let (store, empty) = Store::open(&dir).unwrap();
        assert_eq!(empty, State::default());
        store.save(&sample()).unwrap();
        drop(store);
        let (_store, back) = Store::open(&dir).unwrap();
        assert_eq!(back, sample());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn body_is_what_serde_json_wrote() {
        let body = to_json(&sample());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
        assert_eq!(v["applied"], serde_json::json!({"default": ["c"]}));
        assert_eq!(v["configs"][0]["deleted"], true);
    }

    #[test]
    fn directories_are_made_like_std_does() {
        let dir = temp_dir("mkdir");
        let deep = dir.join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
        fs::write(dir.join("file"), b"x").unwrap();
        let err = create_dir_all(&dir.join("file/sub")).unwrap_err();
        let std_err = fs::create_dir_all(dir.join("file/sub")).unwrap_err();
        assert_eq!(err.kind(), std_err.kind());
        let nul = create_dir_all(Path::new("/tmp/a\0b")).unwrap_err();
        let std_nul = fs::create_dir_all("/tmp/a\0b").unwrap_err();
        assert_eq!(nul.to_string(), std_nul.to_string());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn second_open_is_refused_while_locked() {
        let dir = temp_dir("locked");
        let (_store, _) = Store::open(&dir).unwrap();
        assert!(matches!(Store::open(&dir), Err(StoreError::Locked { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_truncation_and_a_flipped_byte_are_detected() {
        let dir = temp_dir("torn");
        let (store, _) = Store::open(&dir).unwrap();
        store.save(&sample()).unwrap();
        let good = fs::read(dir.join(STATE)).unwrap();
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
        let mut flipped = good.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x20;
        assert!(parse(&flipped).unwrap_err().contains("checksum"));
        drop(store);
        fs::write(dir.join(STATE), &good[..good.len() / 2]).unwrap();
        let err = Store::open(&dir).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
