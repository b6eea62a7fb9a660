//! The pies-style configuration parser: statements to [`Config`].
//!
//! Three passes: [`super::lexer`] makes tokens, [`super::syntax`] makes a tree
//! of statements, and this module gives keywords their meaning, following
//! `include`s as it meets them. Every problem is collected (with file, line
//! and column) rather than stopping at the first; [`super::validate`] then
//! checks what spans components. Throttle settings are resolved last, so a
//! component inherits a global `max-restarts` even when it comes later in the
//! file.

use super::lexer::{Pos, clip, tokenize};
use super::model::{
    AgentSpec, ComponentSpec, Config, ConfigServerSpec, Control, EnvSpec, ExitAction, ListenUrl,
    Location, Mode, ReturnCode, Stdio,
};
use super::syntax::{self, Arg, Item, Statement};
use super::validate::{self, PrereqSites};
use super::values::{self, with_suggestion};
use super::{ConfigError, ConfigErrors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parse pies-style text; `file` names it in errors and anchors relative includes.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    parse_with(text, file, true)
}

/// Parse pies-style text that may not read files: `include` is an error.
pub fn parse_without_includes(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    parse_with(text, file, false)
}

fn parse_with(text: &str, file: &Path, includes: bool) -> Result<Config, ConfigErrors> {
    let mut ld = Loader::new(file);
    ld.includes = includes;
    ld.reading.push(Reading {
        key: FileKey::of(file),
        shown: file.to_path_buf(),
    });
    ld.text(text);
    ld.finish()
}

const TOP_KEYWORDS: &[&str] = &[
    "shutdown-timeout",
    "pidfile",
    "state-directory",
    "max-restarts",
    "restart-window",
    "sleep-time",
    "control",
    "config-server",
    "agent",
    "include",
    "component",
];

const COMPONENT_KEYWORDS: &[&str] = &[
    "command",
    "mode",
    "prerequisites",
    "user",
    "group",
    "chdir",
    "umask",
    "limits",
    "env",
    "stdin",
    "stdout",
    "stderr",
    "flags",
    "stop-signal",
    "flush-signal",
    "stop-timeout",
    "max-restarts",
    "restart-window",
    "sleep-time",
    "return-code",
    "runlevels",
];

const CONTROL_KEYWORDS: &[&str] = &[
    "socket",
    "allow",
    "deny",
    "token-file",
    "basic-auth-file",
    "name",
    "gateway-user",
];
const SERVER_KEYWORDS: &[&str] = &["listen", "store", "token-file"];
const AGENT_KEYWORDS: &[&str] = &["server", "id", "tags", "interval", "token-file", "cache"];
const ENV_KEYWORDS: &[&str] = &["clear", "keep", "set", "unset"];
const RETURN_CODE_KEYWORDS: &[&str] = &["action", "exec"];
const FLAGS: &[&str] = &["disable", "precious", "siggroup", "nullinput"];
const ACTIONS: &[&str] = &["restart", "disable", "shutdown"];

/// Includes deeper than this are refused (loops are caught earlier; this
/// bounds recursion for chains of distinct files).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Default agent heartbeat/pull interval.
const DEFAULT_AGENT_INTERVAL: Duration = Duration::from_secs(10);

/// Statements already given in one block, to report repeats.
type Seen = HashMap<String, Location>;

/// A file being read, for include-loop detection.
struct Reading {
    /// Which file it is, however it was named.
    key: FileKey,
    /// The path as shown in messages.
    shown: PathBuf,
}

/// What makes two names one file for include-loop detection: its device
/// and inode, which a symlink or hard link cannot disguise; the path as
/// given when the file cannot be examined.
#[derive(PartialEq)]
enum FileKey {
    Inode(u64, u64),
    Path(PathBuf),
}

impl FileKey {
    /// The key of the file `path` names. One stat rather than realpath(3),
    /// which would also cost its lstat and readlink per path component.
    fn of(path: &Path) -> FileKey {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => FileKey::Inode(m.dev(), m.ino()),
            Err(_) => FileKey::Path(path.to_path_buf()),
        }
    }
}

/// A component while its block is read; throttle values stay unresolved
/// until the globals are all known.
struct Draft {
    spec: ComponentSpec,
    seen: Seen,
    has_command: bool,
    max_restarts: Option<u32>,
    window: Option<Duration>,
    sleep: Option<Duration>,
    prereq_sites: PrereqSites,
}

/// Parsing state across the main file and its includes.
struct Loader {
    config: Config,
    errors: Vec<ConfigError>,
    /// The file statements are being read from now.
    file: PathBuf,
    /// The include chain, main file first.
    reading: Vec<Reading>,
    /// Single-valued top-level statements already given.
    seen: Seen,
    drafts: Vec<Draft>,
    /// Whether `include` may read files (not for text from the network).
    includes: bool,
}

/// Report "already set" for a repeated single-valued statement.
fn first_time(seen: &mut Seen, keyword: &str, here: Location) -> Result<(), String> {
    match seen.get(keyword) {
        Some(prev) => Err(format!(
            "`{keyword}` is already set at {}:{}:{}",
            prev.file.display(),
            prev.line,
            prev.col
        )),
        None => {
            seen.insert(keyword.to_string(), here);
            Ok(())
        }
    }
}

impl Loader {
    fn new(file: &Path) -> Loader {
        Loader {
            config: Config {
                files: vec![file.to_path_buf()],
                ..Config::default()
            },
            errors: Vec::new(),
            file: file.to_path_buf(),
            reading: Vec::new(),
            seen: Seen::new(),
            drafts: Vec::new(),
            includes: true,
        }
    }

    fn loc(&self, at: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: at.line,
            col: at.col,
        }
    }

    fn err(&mut self, at: Pos, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: at.line,
            col: at.col,
            message,
        });
    }

    /// Read the statements of one file's text.
    fn text(&mut self, text: &str) {
        let lexed = tokenize(text);
        let mut problems = lexed.errors.clone();
        let statements = syntax::parse(lexed, &mut problems);
        for p in problems {
            self.err(p.at, p.message);
        }
        for st in &statements {
            self.top(st);
        }
    }

    /// Resolve inherited values, validate across components, and decide.
    fn finish(mut self) -> Result<Config, ConfigErrors> {
        let global = self.config.throttle;
        let mut sites = Vec::with_capacity(self.drafts.len());
        // Exactly as many as there are: the running configuration is kept
        // for as long as tend runs.
        self.config.components.reserve_exact(self.drafts.len());
        for d in self.drafts {
            let mut spec = d.spec;
            spec.throttle.max_restarts = d.max_restarts.unwrap_or(global.max_restarts);
            spec.throttle.window = d.window.unwrap_or(global.window);
            spec.throttle.sleep = d.sleep.unwrap_or(global.sleep);
            self.config.components.push(spec);
            sites.push(d.prereq_sites);
        }
        self.errors
            .extend(validate::components(&self.config.components, &sites));
        if self.errors.is_empty() {
            return Ok(self.config);
        }
        // File order, then position: the order a reader goes through them.
        super::error::sort_in_reading_order(&mut self.errors, &self.config.files);
        Err(ConfigErrors(self.errors))
    }

    // ---- argument shapes -------------------------------------------------

    fn keyword_error(&mut self, st: &Statement, what: &str) {
        self.err(st.keyword.at, format!("`{}` {what}", st.keyword.text));
    }

    fn no_block(&mut self, st: &Statement) -> bool {
        if st.block.is_some() {
            self.keyword_error(st, "does not take a block");
            return false;
        }
        true
    }

    /// An argument after the last one a statement takes. When it sits on a
    /// later line the likely cause is a forgotten `;`, so say so.
    fn extra_arg(&mut self, st: &Statement, prev_line: usize, extra: &Arg) {
        let what = match extra {
            Arg::Scalar(i) => format!("`{}`", clip(&i.text)),
            Arg::List(..) => "list".to_string(),
        };
        let mut msg = format!("unexpected {what} in `{}` statement", st.keyword.text);
        if extra.at().line > prev_line {
            msg.push_str(&format!(
                "; is a `;` missing at the end of line {prev_line}?"
            ));
        }
        self.err(extra.at(), msg);
    }

    /// The single value of `keyword VALUE;`.
    fn value<'s>(&mut self, st: &'s Statement) -> Option<&'s Item> {
        if !self.no_block(st) {
            return None;
        }
        let mut args = st.args.iter();
        let first = match args.next() {
            None => {
                self.keyword_error(st, "needs a value");
                return None;
            }
            Some(Arg::List(_, at)) => {
                let msg = format!("`{}` takes a single value, not a list", st.keyword.text);
                self.err(*at, msg);
                return None;
            }
            Some(Arg::Scalar(i)) => i,
        };
        if let Some(extra) = args.next() {
            self.extra_arg(st, first.at.line, extra);
            return None;
        }
        Some(first)
    }

    /// `keyword a b (c, d);`: every word and list item, at least one.
    fn items(&mut self, st: &Statement) -> Option<Vec<Item>> {
        if !self.no_block(st) {
            return None;
        }
        let out: Vec<Item> = st
            .args
            .iter()
            .flat_map(|a| match a {
                Arg::Scalar(i) => vec![i.clone()],
                Arg::List(items, _) => items.clone(),
            })
            .collect();
        if out.is_empty() {
            self.keyword_error(st, "needs at least one value");
            return None;
        }
        Some(out)
    }

    /// `keyword;` with nothing after it.
    fn bare(&mut self, st: &Statement) -> bool {
        if !self.no_block(st) {
            return false;
        }
        if let Some(extra) = st.args.first() {
            self.extra_arg(st, st.keyword.at.line, extra);
            return false;
        }
        true
    }

    /// The body of `keyword … { … }`.
    fn body<'s>(&mut self, st: &'s Statement) -> Option<&'s [Statement]> {
        match &st.block {
            Some(b) => Some(b),
            None => {
                self.keyword_error(st, "needs a block `{ … }`");
                None
            }
        }
    }

    /// Record a single-valued statement; false (reported) when repeated.
    fn once(&mut self, seen: &mut Seen, st: &Statement) -> bool {
        let here = self.loc(st.keyword.at);
        match first_time(seen, &st.keyword.text, here) {
            Ok(()) => true,
            Err(msg) => {
                self.err(st.keyword.at, msg);
                false
            }
        }
    }

    /// Same as [`Loader::once`] for top-level statements.
    fn once_top(&mut self, st: &Statement) -> bool {
        let mut seen = std::mem::take(&mut self.seen);
        let ok = self.once(&mut seen, st);
        self.seen = seen;
        ok
    }

    /// A value converted by `f`, its error reported at the value.
    fn convert<T>(&mut self, st: &Statement, f: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let item = self.value(st)?;
        match f(&item.text) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.err(item.at, msg);
                None
            }
        }
    }

    fn path(&mut self, st: &Statement) -> Option<PathBuf> {
        self.convert(st, path)
    }

    /// A single-valued top-level statement, converted by `f`.
    fn global<T>(&mut self, st: &Statement, f: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        if !self.once_top(st) {
            return None;
        }
        self.convert(st, f)
    }

    fn text_value(&mut self, st: &Statement) -> Option<String> {
        self.convert(st, |s| {
            if s.is_empty() {
                Err("expected a value, found an empty string".to_string())
            } else {
                Ok(s.to_string())
            }
        })
    }

    /// Report an unknown keyword, suggesting a close one from `known`, or
    /// from `other` (the keywords of another context, named by `hint`).
    fn unknown(&mut self, st: &Statement, known: &[&str], other: Option<(&[&str], &str)>) {
        let word = st.keyword.text.as_str();
        let base = format!("unknown statement `{}`", clip(word));
        let msg = if let Some(s) = values::suggest(word, known) {
            format!("{base}; did you mean `{s}`?")
        } else if let Some((other, hint)) = other {
            if other.contains(&word) {
                format!("{base}; `{word}` is only valid {hint}")
            } else if let Some(s) = values::suggest(word, other) {
                format!("{base}; did you mean `{s}` (only valid {hint})?")
            } else {
                base
            }
        } else {
            base
        };
        self.err(st.keyword.at, msg);
    }

    // ---- top level ---------------------------------------------------------

    fn top(&mut self, st: &Statement) {
        if st.broken {
            return;
        }
        match st.keyword.text.as_str() {
            "shutdown-timeout" => {
                if let Some(d) = self.global(st, values::duration) {
                    self.config.shutdown_timeout = d;
                }
            }
            "pidfile" => {
                if let Some(p) = self.global(st, path) {
                    self.config.pidfile = Some(p);
                }
            }
            "state-directory" => {
                if let Some(p) = self.global(st, path) {
                    self.config.state_directory = Some(p);
                }
            }
            "max-restarts" => {
                if let Some(n) = self.global(st, values::count) {
                    self.config.throttle.max_restarts = n;
                }
            }
            "restart-window" => {
                if let Some(d) = self.global(st, values::duration) {
                    self.config.throttle.window = d;
                }
            }
            "sleep-time" => {
                if let Some(d) = self.global(st, values::duration) {
                    self.config.throttle.sleep = d;
                }
            }
            "control" => self.control(st),
            "config-server" => self.config_server(st),
            "agent" => self.agent(st),
            "include" => self.include(st),
            "component" => self.component(st),
            _ => self.unknown(
                st,
                TOP_KEYWORDS,
                Some((COMPONENT_KEYWORDS, "inside a `component` block")),
            ),
        }
    }

    fn control(&mut self, st: &Statement) {
        if !self.once_top(st) || !self.bare_header(st) {
            return;
        }
        let Some(body) = self.body(st) else { return };
        let mut seen = Seen::new();
        let mut c = Control {
            sockets: Vec::new(),
            ..Control::default()
        };
        for s in body.iter().filter(|s| !s.broken) {
            match s.keyword.text.as_str() {
                "socket" => {
                    if let Some(u) = self.convert(s, values::listen_url) {
                        c.sockets.push(u);
                    }
                }
                "allow" | "deny" => {
                    for item in self.items(s).unwrap_or_default() {
                        match values::address_pattern(&item.text) {
                            Ok(()) if s.keyword.text == "allow" => c.allow.push(item.text),
                            Ok(()) => c.deny.push(item.text),
                            Err(msg) => self.err(item.at, msg),
                        }
                    }
                }
                "token-file" => {
                    if self.once(&mut seen, s) {
                        c.token_file = self.path(s);
                    }
                }
                "basic-auth-file" => {
                    if self.once(&mut seen, s) {
                        c.basic_auth_file = self.path(s);
                    }
                }
                "name" => {
                    for item in self.items(s).unwrap_or_default() {
                        c.names.push(item.text);
                    }
                }
                "gateway-user" => {
                    if self.once(&mut seen, s) {
                        c.gateway_user = self.text_value(s);
                    }
                }
                _ => self.unknown(s, CONTROL_KEYWORDS, None),
            }
        }
        if c.sockets.is_empty() {
            c.sockets = Control::default().sockets;
        }
        self.config.control = c;
    }

    /// Blocks like `control { … }` take no arguments before the `{`.
    fn bare_header(&mut self, st: &Statement) -> bool {
        match st.args.first() {
            Some(extra) => {
                self.extra_arg(st, st.keyword.at.line, extra);
                false
            }
            None => true,
        }
    }

    fn config_server(&mut self, st: &Statement) {
        if !self.once_top(st) || !self.bare_header(st) {
            return;
        }
        let Some(body) = self.body(st) else { return };
        let mut seen = Seen::new();
        let (mut listen, mut store, mut token_file) = (None, None, None);
        for s in body.iter().filter(|s| !s.broken) {
            match s.keyword.text.as_str() {
                "listen" => {
                    if self.once(&mut seen, s) {
                        listen = self.convert(s, inet_url);
                    }
                }
                "store" => {
                    if self.once(&mut seen, s) {
                        store = self.path(s);
                    }
                }
                "token-file" => {
                    if self.once(&mut seen, s) {
                        token_file = self.path(s);
                    }
                }
                _ => self.unknown(s, SERVER_KEYWORDS, None),
            }
        }
        for required in ["listen", "store"] {
            if !seen.contains_key(required) {
                self.keyword_error(st, &format!("needs a `{required}` statement"));
            }
        }
        if let (Some(listen), Some(store)) = (listen, store) {
            self.config.config_server = Some(ConfigServerSpec {
                listen,
                store,
                token_file,
            });
        }
    }

    fn agent(&mut self, st: &Statement) {
        if !self.once_top(st) || !self.bare_header(st) {
            return;
        }
        let Some(body) = self.body(st) else { return };
        let mut seen = Seen::new();
        let mut spec = AgentSpec {
            server: String::new(),
            id: None,
            tags: Vec::new(),
            interval: DEFAULT_AGENT_INTERVAL,
            token_file: None,
            cache: None,
        };
        let mut server = None;
        for s in body.iter().filter(|s| !s.broken) {
            match s.keyword.text.as_str() {
                "server" => {
                    if self.once(&mut seen, s) {
                        server = self.convert(s, http_url);
                    }
                }
                "id" => {
                    if self.once(&mut seen, s) {
                        spec.id = self.text_value(s);
                    }
                }
                "tags" => {
                    for item in self.items(s).unwrap_or_default() {
                        match item.text.split_once('=') {
                            Some((k, v)) if !k.is_empty() => {
                                spec.tags.push((k.to_string(), v.to_string()))
                            }
                            _ => self.err(
                                item.at,
                                format!("invalid tag `{}`: expected NAME=VALUE", clip(&item.text)),
                            ),
                        }
                    }
                }
                "interval" => {
                    if self.once(&mut seen, s) {
                        match self.convert(s, values::duration) {
                            Some(d) if d.is_zero() => {
                                self.err(s.keyword.at, "`interval` must be more than 0".into())
                            }
                            Some(d) => spec.interval = d,
                            None => {}
                        }
                    }
                }
                "token-file" => {
                    if self.once(&mut seen, s) {
                        spec.token_file = self.path(s);
                    }
                }
                "cache" => {
                    if self.once(&mut seen, s) {
                        spec.cache = self.path(s);
                    }
                }
                _ => self.unknown(s, AGENT_KEYWORDS, None),
            }
        }
        if !seen.contains_key("server") {
            self.keyword_error(st, "needs a `server` statement");
        }
        if let Some(server) = server {
            spec.server = server;
            self.config.agent = Some(spec);
        }
    }

    // ---- include -----------------------------------------------------------

    fn include(&mut self, st: &Statement) {
        if !self.includes {
            // Checked before any path is touched: reading `/dev/zero` or a
            // FIFO would hang or exhaust memory, and error messages would
            // quote another file's contents back to whoever sent the text.
            self.err(st.keyword.at, "`include` is not allowed here".into());
            return;
        }
        for item in self.items(st).unwrap_or_default() {
            if item.text.is_empty() {
                self.err(item.at, "expected a path, found an empty string".into());
                continue;
            }
            let mut path = PathBuf::from(&item.text);
            if path.is_relative() {
                if let Some(dir) = self.file.parent() {
                    path = dir.join(path);
                }
            }
            if path.is_dir() {
                match conf_files(&path) {
                    Ok(files) => {
                        for f in files {
                            self.include_file(&f, item.at);
                        }
                    }
                    Err(e) => self.err(
                        item.at,
                        format!("cannot read directory `{}`: {e}", path.display()),
                    ),
                }
            } else {
                self.include_file(&path, item.at);
            }
        }
    }

    fn include_file(&mut self, path: &Path, at: Pos) {
        let key = FileKey::of(path);
        if self.reading.iter().any(|r| r.key == key) {
            let mut chain: Vec<String> = self
                .reading
                .iter()
                .skip_while(|r| r.key != key)
                .map(|r| r.shown.display().to_string())
                .collect();
            chain.push(path.display().to_string());
            self.err(at, format!("include loop: {}", chain.join(" -> ")));
            return;
        }
        if self.reading.len() >= MAX_INCLUDE_DEPTH {
            self.err(
                at,
                format!("includes nested too deeply (more than {MAX_INCLUDE_DEPTH} levels)"),
            );
            return;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.err(at, format!("cannot read `{}`: {e}", path.display()));
                return;
            }
        };
        if !self.config.files.iter().any(|f| f == path) {
            self.config.files.push(path.to_path_buf());
        }
        self.reading.push(Reading {
            key,
            shown: path.to_path_buf(),
        });
        let outer = std::mem::replace(&mut self.file, path.to_path_buf());
        self.text(&text);
        self.file = outer;
        self.reading.pop();
    }

    // ---- component -----------------------------------------------------------

    fn component(&mut self, st: &Statement) {
        let origin = self.loc(st.keyword.at);
        let tag = match st.args.as_slice() {
            [Arg::Scalar(t)] => match check_tag(&t.text) {
                Ok(()) => Some(t.text.clone()),
                Err(msg) => {
                    self.err(t.at, msg);
                    None
                }
            },
            [] => {
                self.keyword_error(st, "needs a tag, as in `component NAME { … }`");
                None
            }
            [Arg::List(_, at), ..] => {
                self.err(*at, "a component tag is a single word, not a list".into());
                None
            }
            [Arg::Scalar(t), extra, ..] => {
                self.extra_arg(st, t.at.line, extra);
                None
            }
        };
        let Some(body) = self.body(st) else { return };
        let mut d = Draft {
            spec: ComponentSpec::new(tag.as_deref().unwrap_or(""), Vec::new()),
            seen: Seen::new(),
            has_command: false,
            max_restarts: None,
            window: None,
            sleep: None,
            prereq_sites: Vec::new(),
        };
        d.spec.origin = origin;
        for s in body {
            self.component_statement(&mut d, s);
        }
        let Some(tag) = tag else { return };
        if !d.has_command {
            self.err(
                st.keyword.at,
                format!("component `{tag}` has no `command` statement"),
            );
        }
        // `nullinput` is the pies spelling of `stdin null`; it wins over `stdin`.
        if d.spec.flags.nullinput {
            d.spec.stdin = Stdio::Null;
        }
        self.drafts.push(d);
    }

    fn component_statement(&mut self, d: &mut Draft, s: &Statement) {
        let kw = s.keyword.text.as_str();
        if s.broken {
            // Reported already; count it as present so "no command" does not pile on.
            d.has_command |= kw == "command";
            return;
        }
        if !matches!(
            kw,
            "prerequisites" | "limits" | "env" | "flags" | "return-code"
        ) && COMPONENT_KEYWORDS.contains(&kw)
            && !self.once(&mut d.seen, s)
        {
            d.has_command |= kw == "command";
            return;
        }
        match kw {
            "command" => {
                d.has_command = true;
                if let Some(item) = self.value(s) {
                    match values::split_command(&item.text) {
                        Ok(argv) => {
                            d.spec.command = item.text.clone();
                            d.spec.argv = argv;
                        }
                        Err(msg) => self.err(item.at, msg),
                    }
                }
            }
            "mode" => {
                if let Some(m) = self.convert(s, mode) {
                    d.spec.mode = m;
                }
            }
            "prerequisites" => {
                for item in self.items(s).unwrap_or_default() {
                    if !d.spec.prerequisites.contains(&item.text) {
                        d.prereq_sites.push(self.loc(item.at));
                        d.spec.prerequisites.push(item.text);
                    }
                }
            }
            "user" => d.spec.user = self.text_value(s),
            "group" => d.spec.group = self.text_value(s),
            "chdir" => d.spec.chdir = self.path(s),
            "umask" => d.spec.umask = self.convert(s, values::umask),
            "limits" => self.limits(d, s),
            "env" => self.env(&mut d.spec.env, s),
            "stdin" | "stdout" | "stderr" => {
                if let Some(io) = self.stdio(s) {
                    match kw {
                        "stdin" => d.spec.stdin = io,
                        "stdout" => d.spec.stdout = io,
                        _ => d.spec.stderr = io,
                    }
                }
            }
            "flags" => {
                for item in self.items(s).unwrap_or_default() {
                    let f = &mut d.spec.flags;
                    match item.text.as_str() {
                        "disable" => f.disable = true,
                        "precious" => f.precious = true,
                        "siggroup" => f.siggroup = true,
                        "nullinput" => f.nullinput = true,
                        other => {
                            let msg = with_suggestion(
                                format!("unknown flag `{}`", clip(other)),
                                other,
                                FLAGS,
                            );
                            self.err(item.at, msg);
                        }
                    }
                }
            }
            "stop-signal" => {
                if let Some(sig) = self.convert(s, values::signal) {
                    d.spec.stop_signal = sig;
                }
            }
            "flush-signal" => d.spec.flush_signal = self.convert(s, values::signal),
            "stop-timeout" => {
                if let Some(t) = self.convert(s, values::duration) {
                    d.spec.stop_timeout = t;
                }
            }
            "max-restarts" => d.max_restarts = self.convert(s, values::count),
            "restart-window" => d.window = self.convert(s, values::duration),
            "sleep-time" => d.sleep = self.convert(s, values::duration),
            "return-code" => {
                if let Some(rc) = self.return_code(s) {
                    d.spec.return_codes.push(rc);
                }
            }
            "runlevels" => {
                if let Some(r) = self.convert(s, runlevels) {
                    d.spec.runlevels = r;
                }
            }
            _ => self.unknown(
                s,
                COMPONENT_KEYWORDS,
                Some((
                    TOP_KEYWORDS,
                    "at the top level, not inside a `component` block",
                )),
            ),
        }
    }

    fn stdio(&mut self, s: &Statement) -> Option<Stdio> {
        if !self.no_block(s) {
            return None;
        }
        let mut words = Vec::new();
        for a in &s.args {
            match a {
                Arg::Scalar(i) => words.push(i.text.as_str()),
                Arg::List(_, at) => {
                    self.err(*at, format!("`{}` does not take a list", s.keyword.text));
                    return None;
                }
            }
        }
        let at = s.args.first().map(Arg::at).unwrap_or(s.keyword.at);
        match values::stdio(&words) {
            Ok(io) => Some(io),
            Err(msg) => {
                self.err(at, msg);
                None
            }
        }
    }

    fn limits(&mut self, d: &mut Draft, s: &Statement) {
        for item in self.items(s).unwrap_or_default() {
            for piece in item.text.split_whitespace() {
                match values::limit(piece) {
                    Ok(l) if d.spec.limits.iter().any(|o| o.resource == l.resource) => {
                        let letter: String = piece.chars().take(1).collect();
                        self.err(item.at, format!("limit `{letter}` is given twice"));
                    }
                    Ok(l) => d.spec.limits.push(l),
                    Err(msg) => self.err(item.at, msg),
                }
            }
        }
    }

    /// `env { clear; keep N; set "N=V"; unset N; }`, or the short form
    /// `env "N=V" …;` meaning `set`.
    fn env(&mut self, env: &mut EnvSpec, s: &Statement) {
        let Some(body) = &s.block else {
            for item in self.items(s).unwrap_or_default() {
                self.env_set(env, &item);
            }
            return;
        };
        if !self.bare_header(s) {
            return;
        }
        for e in body.iter().filter(|e| !e.broken) {
            match e.keyword.text.as_str() {
                "clear" => env.clear |= self.bare(e),
                "keep" => env.keep.extend(
                    self.items(e)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.text),
                ),
                "unset" => env.unset.extend(
                    self.items(e)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.text),
                ),
                "set" => {
                    for item in self.items(e).unwrap_or_default() {
                        self.env_set(env, &item);
                    }
                }
                _ => self.unknown(e, ENV_KEYWORDS, None),
            }
        }
    }

    fn env_set(&mut self, env: &mut EnvSpec, item: &Item) {
        match item.text.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                env.set.push((name.to_string(), value.to_string()))
            }
            _ => self.err(
                item.at,
                format!(
                    "invalid variable `{}`: expected NAME=VALUE",
                    clip(&item.text)
                ),
            ),
        }
    }

    fn return_code(&mut self, s: &Statement) -> Option<ReturnCode> {
        let mut codes = Vec::new();
        for a in &s.args {
            let items = match a {
                Arg::Scalar(i) => std::slice::from_ref(i),
                Arg::List(items, _) => items.as_slice(),
            };
            for item in items {
                match values::exit_match(&item.text) {
                    Ok(m) => codes.push(m),
                    Err(msg) => self.err(item.at, msg),
                }
            }
        }
        if s.args.is_empty() {
            self.keyword_error(s, "needs at least one exit code");
        }
        let body = self.body(s)?;
        let mut seen = Seen::new();
        let mut rc = ReturnCode {
            codes,
            action: None,
            exec: None,
        };
        for b in body.iter().filter(|b| !b.broken) {
            match b.keyword.text.as_str() {
                "action" => {
                    if self.once(&mut seen, b) {
                        rc.action = self.convert(b, exit_action);
                    }
                }
                "exec" => {
                    if self.once(&mut seen, b) {
                        rc.exec =
                            self.convert(b, |t| values::split_command(t).map(|_| t.to_string()));
                    }
                }
                _ => self.unknown(b, RETURN_CODE_KEYWORDS, None),
            }
        }
        (!rc.codes.is_empty()).then_some(rc)
    }
}

fn path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        Err("expected a path, found an empty string".to_string())
    } else {
        Ok(PathBuf::from(text))
    }
}

/// The `*.conf` files of a directory, sorted by name.
fn conf_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    super::error::sort_with(&mut files, &|a, b| a.cmp(b));
    Ok(files)
}

/// Tags appear in URLs (`/programs/TAG`) and messages: no `/`, no spaces.
fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("a component tag cannot be empty".to_string());
    }
    if tag
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "invalid component tag `{}`: no `/`, spaces or control characters allowed",
            clip(tag)
        ));
    }
    Ok(())
}

fn mode(text: &str) -> Result<Mode, String> {
    Mode::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Mode::ALL.iter().map(|(_, n)| *n).collect();
        with_suggestion(format!("unknown mode `{}`", clip(text)), text, &names)
    })
}

fn exit_action(text: &str) -> Result<ExitAction, String> {
    match text {
        "restart" => Ok(ExitAction::Restart),
        "disable" => Ok(ExitAction::Disable),
        "shutdown" => Ok(ExitAction::Shutdown),
        _ => Err(with_suggestion(
            format!(
                "unknown action `{}`: expected restart, disable or shutdown",
                clip(text)
            ),
            text,
            ACTIONS,
        )),
    }
}

fn runlevels(text: &str) -> Result<String, String> {
    if text.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "invalid runlevels `{}`: expected letters and digits such as 2345",
            clip(text)
        ))
    }
}

/// `inet://host:port` (the config server listens on TCP only), kept as written.
fn inet_url(text: &str) -> Result<String, String> {
    match values::listen_url(text)? {
        ListenUrl::Inet(_) => Ok(text.to_string()),
        ListenUrl::Unix(_) => Err(format!(
            "invalid listen address `{}`: the config server needs inet://HOST:PORT",
            clip(text)
        )),
    }
}

/// `http://host:port[/path]`; tend speaks plain HTTP only.
fn http_url(text: &str) -> Result<String, String> {
    let Some(rest) = text.strip_prefix("http://") else {
        return Err(format!(
            "invalid server `{}`: expected http://HOST:PORT",
            clip(text)
        ));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    values::host_port(authority)
        .map_err(|why| format!("invalid server `{}`: {why}", clip(text)))?;
    Ok(text.to_string())
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
