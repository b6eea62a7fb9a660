//! `tendctl`: the command-line client.
//!
//! A thin layer over the JSON API: each command is one request (two for
//! none), its answer printed for people (a table, `key: value` lines) or,
//! with `--json`, as the server sent it. Component selectors are written in
//! a small readable grammar (`web db`, `status running and not mode once`)
//! and translated to the pies JSON selector.

use crate::client::{self, ClientError, Endpoint, Response};
use crate::config::Mode;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// Exit status for a failed request or a negative answer.
const EXIT_FAILURE: i32 = 1;
/// Exit status for a command line that makes no sense.
const EXIT_USAGE: i32 = 2;

const USAGE: &str = "\
usage: tendctl [OPTIONS] COMMAND [ARGS]

Commands:
  list [COND]            list components (all, or those matching COND)
  start COND             start matching components
  stop COND              stop matching components
  restart COND           restart matching components
  id [KEYS]              show facts about the running tend (PID, version, ...)
  reload [--graceful]    re-read the configuration (graceful: restart only what changed)
  shutdown               stop all components, then tend
  reboot                 switch to runlevel 6 (reboot the machine when tend is init)
  telinit [N]            show or switch the runlevel (q: reload the configuration)
  alive TAG              exit 0 if TAG is running, 1 if not (a container health check)
  metrics                print metrics in the Prometheus text format
  get PATH               GET an API path and print the answer

COND, a component selector:
  all | TAG... | tag TAG | status S | mode M | type component|command | active
  not COND | COND and COND | COND or COND | ( COND )
  Several tags in a row mean any of them: `tendctl restart web worker`.

Options:
  --url URL          unix:///run/tend.sock (default, or $TEND_URL), http://HOST:PORT
  --token T          bearer token (or $TEND_TOKEN, or --token-file F)
  --user USER:PASS   HTTP Basic credentials
  --timeout SECS     give up after SECS seconds (default 120)
  --json             print the server's JSON answer as is
  -h, --help         show this help
  -V, --version      show the version
";

/// Run tendctl with its arguments (without the program name); returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let inv = match parse_command_line(&args) {
        Ok(Parsed::Run(inv)) => inv,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Ok(Parsed::Version) => {
            println!("tendctl (tend) {}", crate::VERSION);
            return 0;
        }
        Err(e) => {
            eprintln!("tendctl: {e}\nTry 'tendctl --help'.");
            return EXIT_USAGE;
        }
    };
    match run(&inv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tendctl: {e}");
            EXIT_FAILURE
        }
    }
}

/// What the command line asks for.
enum Parsed {
    Help,
    Version,
    Run(Invocation),
}

/// Global options plus the command.
struct Invocation {
    endpoint: Endpoint,
    url: String,
    authorization: Option<String>,
    json: bool,
    timeout: Duration,
    command: Command,
}

/// One tendctl command, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    List(Value),
    Start(Value),
    Stop(Value),
    Restart(Value),
    Id(Vec<String>),
    Reload { graceful: bool },
    Shutdown,
    Reboot,
    Telinit(Option<String>),
    Alive(String),
    Metrics,
    Get(String),
}

fn parse_command_line(args: &[String]) -> Result<Parsed, String> {
    let mut url = std::env::var("TEND_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("unix://{}", crate::config::DEFAULT_SOCKET));
    let mut token = std::env::var("TEND_TOKEN").ok().filter(|t| !t.is_empty());
    let mut basic: Option<String> = None;
    let mut json_out = false;
    let mut timeout = Duration::from_secs(120);
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--json" | "-j" => json_out = true,
            "--url" | "-u" => url = value()?,
            "--token" => token = Some(value()?),
            "--token-file" => {
                let f = value()?;
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| format!("cannot read token file {f}: {e}"))?;
                token = Some(text.trim().to_string());
            }
            "--user" => basic = Some(value()?),
            "--timeout" => {
                let v = value()?;
                let secs = v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0 && *s < 86_400)
                    .ok_or_else(|| format!("--timeout: expected seconds, got {v:?}"))?;
                timeout = Duration::from_secs(secs);
            }
            _ => return Err(format!("unknown option {arg:?}")),
        }
        i += 1;
    }
    let rest = args.get(i..).unwrap_or(&[]);
    let command = parse_command(rest)?;
    let endpoint = Endpoint::parse(&url).map_err(|e| e.to_string())?;
    let authorization = match (basic, token) {
        (Some(userpass), _) => {
            if !userpass.contains(':') {
                return Err("--user expects USER:PASSWORD".to_string());
            }
            Some(format!("Basic {}", base64_encode(userpass.as_bytes())))
        }
        (None, Some(t)) => Some(format!("Bearer {t}")),
        (None, None) => None,
    };
    Ok(Parsed::Run(Invocation {
        endpoint,
        url,
        authorization,
        json: json_out,
        timeout,
        command,
    }))
}

fn parse_command(words: &[String]) -> Result<Command, String> {
    let Some((name, args)) = words.split_first() else {
        return Err("no command given".to_string());
    };
    let needs_cond = |what: &str| -> Result<Value, String> {
        if args.is_empty() {
            return Err(format!(
                "{what}: which components? Give a selector, e.g. `all` or a tag"
            ));
        }
        parse_selector(args)
    };
    let no_args = |cmd: Command| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(format!("{name}: unexpected argument {:?}", args[0]))
        }
    };
    match name.as_str() {
        "list" | "ls" => Ok(Command::List(if args.is_empty() {
            Value::Bool(true)
        } else {
            parse_selector(args)?
        })),
        "start" => Ok(Command::Start(needs_cond("start")?)),
        "stop" => Ok(Command::Stop(needs_cond("stop")?)),
        "restart" => Ok(Command::Restart(needs_cond("restart")?)),
        "id" => Ok(Command::Id(args.to_vec())),
        "reload" => match args {
            [] => Ok(Command::Reload { graceful: false }),
            [g] if g == "--graceful" || g == "graceful" => Ok(Command::Reload { graceful: true }),
            _ => Err("reload: expected nothing or --graceful".to_string()),
        },
        "shutdown" => no_args(Command::Shutdown),
        "reboot" => no_args(Command::Reboot),
        "metrics" => no_args(Command::Metrics),
        "telinit" | "runlevel" => match args {
            [] => Ok(Command::Telinit(None)),
            [level] if is_runlevel(level) => Ok(Command::Telinit(Some(level.clone()))),
            [level] => Err(format!(
                "telinit: {level:?} is not a runlevel (0-6, S, a-c, or q to reload)"
            )),
            _ => Err("telinit: expected one runlevel".to_string()),
        },
        "alive" => match args {
            [tag] => Ok(Command::Alive(tag.clone())),
            _ => Err("alive: expected one TAG".to_string()),
        },
        "get" => match args {
            [path] if path.starts_with('/') => Ok(Command::Get(path.clone())),
            [path] => Ok(Command::Get(format!("/{path}"))),
            _ => Err("get: expected one PATH".to_string()),
        },
        other => Err(format!("unknown command {other:?}")),
    }
}

fn is_runlevel(s: &str) -> bool {
    s.len() == 1 && "0123456SsabcQq".contains(s)
}

// ---------------------------------------------------------------------------
// Selector grammar → pies JSON selector

/// Translate selector words (`status running and not web`) into the pies
/// JSON selector.
fn parse_selector(words: &[String]) -> Result<Value, String> {
    let mut tokens = Vec::new();
    for w in words {
        split_parens(w, &mut tokens);
    }
    let mut p = SelectorParser { tokens, pos: 0 };
    let v = p.or_expr()?;
    match p.peek() {
        None => Ok(v),
        Some(")") => Err("selector: unbalanced ')'".to_string()),
        Some(t) => Err(format!("selector: unexpected {t:?}")),
    }
}

/// `(web` → `(`, `web`; parentheses need no spaces around them.
fn split_parens(word: &str, out: &mut Vec<String>) {
    let mut cur = String::new();
    for c in word.chars() {
        if c == '(' || c == ')' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
}

struct SelectorParser {
    tokens: Vec<String>,
    pos: usize,
}

const STATUSES: [&str; 6] = [
    "stopped", "running", "listener", "sleeping", "stopping", "finished",
];

impl SelectorParser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// `and_expr (["or"] and_expr)*`: juxtaposition means `or`, so
    /// `web db` selects both.
    fn or_expr(&mut self) -> Result<Value, String> {
        let mut items = vec![self.and_expr()?];
        loop {
            match self.peek() {
                None | Some(")") => break,
                Some("or") => {
                    self.pos += 1;
                }
                Some("and") => return Err("selector: 'and' needs something before it".into()),
                Some(_) => {}
            }
            items.push(self.and_expr()?);
        }
        Ok(combine("or", items))
    }

    fn and_expr(&mut self) -> Result<Value, String> {
        let mut items = vec![self.unary()?];
        while self.peek() == Some("and") {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(combine("and", items))
    }

    fn unary(&mut self) -> Result<Value, String> {
        let Some(tok) = self.next() else {
            return Err("selector: incomplete (expected a condition at the end)".to_string());
        };
        match tok.as_str() {
            "not" => Ok(op("not", Some(self.unary()?))),
            "(" => {
                let v = self.or_expr()?;
                match self.next().as_deref() {
                    Some(")") => Ok(v),
                    _ => Err("selector: missing ')'".to_string()),
                }
            }
            ")" => Err("selector: unexpected ')'".to_string()),
            "and" | "or" => Err(format!("selector: {tok:?} needs a condition before it")),
            "all" => Ok(Value::Bool(true)),
            "none" => Ok(Value::Bool(false)),
            "active" => Ok(op("active", None)),
            "status" => {
                let s = self.argument("status")?;
                if !STATUSES.contains(&s.as_str()) {
                    return Err(format!(
                        "selector: unknown status {s:?} (one of {})",
                        STATUSES.join(", ")
                    ));
                }
                Ok(op("status", Some(Value::String(s))))
            }
            "mode" => {
                let m = self.argument("mode")?;
                let known = Mode::from_name(&m).is_some()
                    || matches!(m.as_str(), "inetd" | "accept" | "pass" | "pass-fd");
                if !known {
                    return Err(format!("selector: unknown mode {m:?}"));
                }
                Ok(op("mode", Some(Value::String(m))))
            }
            "type" => {
                let t = self.argument("type")?;
                if t != "component" && t != "command" {
                    return Err(format!(
                        "selector: unknown type {t:?} (component or command)"
                    ));
                }
                Ok(op("type", Some(Value::String(t))))
            }
            "tag" | "component" => {
                let t = self.argument(&tok)?;
                Ok(op("component", Some(Value::String(t))))
            }
            _ => Ok(op("component", Some(Value::String(tok)))),
        }
    }

    /// The word after a keyword; parentheses and operators are not words.
    fn argument(&mut self, keyword: &str) -> Result<String, String> {
        match self.next() {
            Some(t) if !matches!(t.as_str(), "(" | ")") => Ok(t),
            _ => Err(format!("selector: expected a value after {keyword:?}")),
        }
    }
}

/// One item as itself, several under `op` (flattening nested same ops).
fn combine(op: &str, items: Vec<Value>) -> Value {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or(Value::Bool(false));
    }
    let mut flat = Vec::new();
    for it in items {
        match it {
            Value::Object(ref m) if m.get("op").and_then(Value::as_str) == Some(op) => {
                if let Some(Value::Array(inner)) = m.get("arg") {
                    flat.extend(inner.iter().cloned());
                } else {
                    flat.push(it.clone());
                }
            }
            other => flat.push(other),
        }
    }
    self::op(op, Some(Value::Array(flat)))
}

/// `{"op": name, "arg": arg}` (no `arg` when None). Built by hand: each
/// `json!` with values expands to its own conversions and panics.
fn op(name: &str, arg: Option<Value>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("op".to_string(), Value::String(name.to_string()));
    if let Some(arg) = arg {
        m.insert("arg".to_string(), arg);
    }
    Value::Object(m)
}

/// `{"runlevel": level}`.
fn runlevel_body(level: String) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("runlevel".to_string(), Value::String(level));
    Value::Object(m)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Running commands

/// A request failure worth one line on stderr.
#[derive(Debug)]
struct CtlError(String);

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Invocation {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response, CtlError> {
        let body_text = body.map(Value::to_string).unwrap_or_default();
        let mut headers = vec![("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if let Some(a) = &self.authorization {
            headers.push(("Authorization", a.as_str()));
        }
        client::request(
            &self.endpoint,
            method,
            path,
            &headers,
            body_text.as_bytes(),
            self.timeout,
        )
        .map_err(|e| CtlError(self.describe(&e)))
    }

    /// A client error in words, with a hint for the usual cause.
    fn describe(&self, e: &ClientError) -> String {
        match e {
            ClientError::Connect { .. } => format!("{e} (is tend running?)"),
            ClientError::TimedOut { .. } => {
                format!(
                    "{} did not answer within {}s",
                    self.url,
                    self.timeout.as_secs()
                )
            }
            _ => e.to_string(),
        }
    }
}

/// Run a parsed command; `Ok` carries the exit status.
fn run(inv: &Invocation) -> Result<i32, CtlError> {
    match &inv.command {
        Command::List(sel) => list(inv, sel),
        Command::Start(sel) => act(inv, "PUT", "/programs", Some(sel)),
        Command::Stop(sel) => act(inv, "DELETE", "/programs", Some(sel)),
        Command::Restart(sel) => act(inv, "POST", "/programs", Some(sel)),
        Command::Id(keys) => id(inv, keys),
        Command::Reload { graceful } => {
            let path = if *graceful {
                "/api/config.gracefulReload"
            } else {
                "/api/config.reload"
            };
            act(inv, "POST", path, None)
        }
        Command::Shutdown => act(inv, "POST", "/api/processes.killWorkers", None),
        Command::Reboot => act(inv, "PUT", "/runlevel", Some(&runlevel_body("6".into()))),
        Command::Telinit(None) => show(inv, "/runlevel"),
        Command::Telinit(Some(q)) if q.eq_ignore_ascii_case("q") => {
            act(inv, "POST", "/api/config.reload", None)
        }
        Command::Telinit(Some(level)) => act(
            inv,
            "PUT",
            "/runlevel",
            Some(&runlevel_body(level.to_ascii_uppercase())),
        ),
        Command::Alive(tag) => alive(inv, tag),
        Command::Metrics => {
            let path = if inv.json {
                "/metrics"
            } else {
                "/metrics?format=prometheus"
            };
            raw_get(inv, path)
        }
        Command::Get(path) => raw_get(inv, path),
    }
}

/// The server's refusal, if the answer is one: HTTP errors, pies
/// `{"status":"ER"}` and Fluentd `{"ok":false}`.
fn refusal(resp: &Response) -> Option<String> {
    let v = resp.json().ok();
    let message = v
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let failed_json = v.as_ref().is_some_and(|v| {
        v.get("status").and_then(Value::as_str) == Some("ER")
            || v.get("ok").and_then(Value::as_bool) == Some(false)
    });
    if resp.status >= 400 || failed_json {
        let text = resp.text();
        let fallback = if text.trim().is_empty() || text.len() > 200 {
            format!("request failed with HTTP {}", resp.status)
        } else {
            format!("HTTP {}: {}", resp.status, text.trim())
        };
        return Some(message.unwrap_or(fallback));
    }
    None
}

fn fail_on_refusal(resp: &Response) -> Result<(), CtlError> {
    match refusal(resp) {
        Some(m) => Err(CtlError(m)),
        None => Ok(()),
    }
}

/// Print the body as is (the `--json` output, and raw text).
fn print_body(resp: &Response) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&resp.body);
    if !resp.body.ends_with(b"\n") && !resp.body.is_empty() {
        let _ = out.write_all(b"\n");
    }
}

/// A state-changing request: silent on success unless `--json`.
fn act(inv: &Invocation, method: &str, path: &str, body: Option<&Value>) -> Result<i32, CtlError> {
    let resp = inv.call(method, path, body)?;
    fail_on_refusal(&resp)?;
    if inv.json {
        print_body(&resp);
    }
    Ok(0)
}

fn raw_get(inv: &Invocation, path: &str) -> Result<i32, CtlError> {
    let resp = inv.call("GET", path, None)?;
    print_body(&resp);
    if resp.status >= 400 {
        eprintln!("tendctl: GET {path}: HTTP {}", resp.status);
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// Print a JSON value's fields as `key: value`, or the body when not an object.
fn show(inv: &Invocation, path: &str) -> Result<i32, CtlError> {
    let resp = inv.call("GET", path, None)?;
    fail_on_refusal(&resp)?;
    match resp.json() {
        Ok(Value::Object(map)) if !inv.json => {
            for (k, v) in &map {
                println!("{k}: {}", plain(v));
            }
        }
        _ => print_body(&resp),
    }
    Ok(0)
}

fn list(inv: &Invocation, selector: &Value) -> Result<i32, CtlError> {
    let path = if *selector == Value::Bool(true) {
        "/programs".to_string()
    } else {
        format!("/programs?{}", url_encode(&selector.to_string()))
    };
    let resp = inv.call("GET", &path, None)?;
    fail_on_refusal(&resp)?;
    if inv.json {
        print_body(&resp);
        return Ok(0);
    }
    let items = match resp.json() {
        Ok(Value::Array(items)) => items,
        _ => {
            return Err(CtlError(
                "unexpected answer to GET /programs (not a JSON array)".into(),
            ));
        }
    };
    print!("{}", format_table(&items));
    Ok(0)
}

fn id(inv: &Invocation, keys: &[String]) -> Result<i32, CtlError> {
    let resp = inv.call("GET", "/instance", None)?;
    fail_on_refusal(&resp)?;
    let Ok(Value::Object(map)) = resp.json() else {
        return Err(CtlError(
            "unexpected answer to GET /instance (not a JSON object)".into(),
        ));
    };
    if inv.json {
        print_body(&resp);
        return Ok(0);
    }
    if keys.is_empty() {
        for (k, v) in &map {
            println!("{k}: {}", plain(v));
        }
        return Ok(0);
    }
    let mut code = 0;
    for key in keys {
        // Keys match case-insensitively: `tendctl id pid` is what people type.
        match map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((k, v)) => println!("{k}: {}", plain(v)),
            None => {
                eprintln!("tendctl: id: no such key {key:?}");
                code = EXIT_FAILURE;
            }
        }
    }
    Ok(code)
}

fn alive(inv: &Invocation, tag: &str) -> Result<i32, CtlError> {
    let resp = inv.call("GET", &format!("/alive/{}", url_encode(tag)), None)?;
    if resp.status == 200 {
        return Ok(0);
    }
    let why = match resp.status {
        404 => "no such component".to_string(),
        503 => match resp.header("retry-after") {
            Some(s) => format!("not running (sleeping, next try in {s}s)"),
            None => "not running".to_string(),
        },
        s => refusal(&resp).unwrap_or_else(|| format!("HTTP {s}")),
    };
    eprintln!("tendctl: {tag}: {why}");
    Ok(EXIT_FAILURE)
}

/// A JSON value for people: strings bare, arrays joined by spaces.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(" "),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The `list` table: TAG, type and status letters (as `piesctl list`),
/// PID (or URL), time to wake-up for sleeping components, COMMAND.
fn format_table(items: &[Value]) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "TAG".into(),
        "FL".into(),
        "PID".into(),
        "WAKEUP".into(),
        "COMMAND".into(),
    ]];
    for it in items {
        let field = |k: &str| it.get(k);
        let tag = field("tag").map(plain).unwrap_or_else(|| "?".into());
        let flags = format!("{}{}", type_letter(it), status_letter(it));
        let pid = match (field("PID"), field("URL")) {
            (Some(p), _) if !p.is_null() => plain(p),
            (_, Some(u)) if !u.is_null() => plain(u),
            _ => "N/A".into(),
        };
        let wakeup = match field("wakeup").and_then(Value::as_u64) {
            Some(s) if field("status").and_then(Value::as_str) == Some("sleeping") => {
                human_duration(s)
            }
            _ => "-".into(),
        };
        let command = match field("command").and_then(Value::as_str) {
            Some(c) => c.to_string(),
            None => field("argv").map(plain).unwrap_or_default(),
        };
        rows.push([tag, flags, pid, wakeup, command]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths.iter()) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// First `piesctl list` flag: the kind of component, by type and mode.
fn type_letter(it: &Value) -> char {
    if it.get("type").and_then(Value::as_str) == Some("command") {
        return 'E';
    }
    match it.get("mode").and_then(Value::as_str).unwrap_or("") {
        "respawn" => 'C',
        "once" => 'c',
        "boot" => 'B',
        "bootwait" => 'w',
        "sysinit" => 'i',
        "wait" => 'W',
        "ctrlaltdel" => '3',
        "powerfail" => 'F',
        "powerwait" => 'f',
        "powerfailnow" => 'n',
        "powerokwait" => 'o',
        "ondemand" => 'D',
        "inetd" => 'I',
        "accept" => 'A',
        "pass" | "pass-fd" => 'P',
        // tend's own modes, not in pies.
        "startup" => 'U',
        "shutdown" => 'X',
        "askfirst" => 'a',
        "restart" => 'r',
        _ => '?',
    }
}

/// Second `piesctl list` flag: status, `-` for an inactive (disabled) one.
fn status_letter(it: &Value) -> char {
    let status = it.get("status").and_then(Value::as_str).unwrap_or("");
    if it.get("active").and_then(Value::as_bool) == Some(false) && status != "running" {
        return '-';
    }
    match status {
        "running" => 'R',
        "stopped" => 'T',
        "stopping" => 'S',
        "sleeping" => 's',
        "finished" => 'f',
        "listener" => 'L',
        _ => '?',
    }
}

/// `in 4m58s`.
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("in {h}h{m:02}m")
    } else if m > 0 {
        format!("in {m}m{s:02}s")
    } else {
        format!("in {s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> Result<Value, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse_selector(&words)
    }

    fn tag(t: &str) -> Value {
        json!({"op": "component", "arg": t})
    }

    #[test]
    fn selectors_translate_to_pies_json() {
        assert_eq!(sel("all").unwrap(), json!(true));
        assert_eq!(sel("none").unwrap(), json!(false));
        assert_eq!(sel("web").unwrap(), tag("web"));
        assert_eq!(
            sel("web db worker").unwrap(),
            json!({"op": "or", "arg": [tag("web"), tag("db"), tag("worker")]})
        );
        assert_eq!(
            sel("web or db").unwrap(),
            json!({"op": "or", "arg": [tag("web"), tag("db")]})
        );
        assert_eq!(
            sel("status running and not mode once").unwrap(),
            json!({"op": "and", "arg": [
                {"op": "status", "arg": "running"},
                {"op": "not", "arg": {"op": "mode", "arg": "once"}}
            ]})
        );
        // and binds tighter than or.
        assert_eq!(
            sel("a or b and active").unwrap(),
            json!({"op": "or", "arg": [tag("a"), {"op": "and", "arg": [tag("b"), {"op": "active"}]}]})
        );
        assert_eq!(
            sel("(a or b) and type component").unwrap(),
            json!({"op": "and", "arg": [
                {"op": "or", "arg": [tag("a"), tag("b")]},
                {"op": "type", "arg": "component"}
            ]})
        );
        assert_eq!(
            sel("not (a b)").unwrap(),
            json!({"op": "not", "arg": {"op": "or", "arg": [tag("a"), tag("b")]}})
        );
        // Keywords as tags need `tag`.
        assert_eq!(sel("tag status").unwrap(), tag("status"));
        assert_eq!(sel("component and").unwrap(), tag("and"));
        assert_eq!(
            sel("mode sysinit").unwrap(),
            json!({"op": "mode", "arg": "sysinit"})
        );
        assert_eq!(
            sel("mode inetd").unwrap(),
            json!({"op": "mode", "arg": "inetd"})
        );
    }

    #[test]
    fn selector_errors_say_what_is_wrong() {
        let cases = [
            ("status", "after \"status\""),
            ("status sleepy", "unknown status"),
            ("mode forever", "unknown mode"),
            ("type thing", "unknown type"),
            ("(a or b", "missing ')'"),
            ("a)", "unbalanced ')'"),
            ("and a", "before it"),
            ("a and", "incomplete"),
            ("not", "incomplete"),
            ("a or", "incomplete"),
            ("()", "unexpected ')'"),
        ];
        for (input, want) in cases {
            let err = sel(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn commands_parse() {
        let w = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
        assert_eq!(
            parse_command(&w("list")).unwrap(),
            Command::List(json!(true))
        );
        assert_eq!(
            parse_command(&w("stop web")).unwrap(),
            Command::Stop(tag("web"))
        );
        assert!(
            parse_command(&w("stop"))
                .unwrap_err()
                .contains("which components")
        );
        assert_eq!(
            parse_command(&w("reload --graceful")).unwrap(),
            Command::Reload { graceful: true }
        );
        assert_eq!(
            parse_command(&w("telinit 3")).unwrap(),
            Command::Telinit(Some("3".into()))
        );
        assert!(parse_command(&w("telinit 9")).is_err());
        assert_eq!(
            parse_command(&w("get version")).unwrap(),
            Command::Get("/version".into())
        );
        assert!(parse_command(&w("shutdown now")).is_err());
        assert!(parse_command(&w("frobnicate")).is_err());
        assert!(parse_command(&[]).is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(
            url_encode("{\"op\":\"component\",\"arg\":\"a b\"}"),
            "%7B%22op%22%3A%22component%22%2C%22arg%22%3A%22a%20b%22%7D"
        );
        assert_eq!(base64_encode(b"admin:secret"), "YWRtaW46c2VjcmV0");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b""), "");
    }

    #[test]
    fn table_formatting() {
        let items = json!([
            {"type": "component", "tag": "db", "mode": "respawn", "status": "running",
             "active": true, "PID": 4678, "command": "/usr/bin/postgres -D /var/lib/pg"},
            {"type": "component", "tag": "migrate", "mode": "once", "status": "finished",
             "active": true, "argv": ["/bin/migrate", "--all"]},
            {"type": "component", "tag": "flaky", "mode": "respawn", "status": "sleeping",
             "active": true, "wakeup": 298, "command": "flaky"},
            {"type": "component", "tag": "off", "mode": "respawn", "status": "stopped",
             "active": false, "command": "off"},
            {"type": "command", "tag": "notify", "mode": "once", "status": "running",
             "active": true, "PID": 12, "command": "mail root"}
        ]);
        let table = format_table(items.as_array().unwrap());
        let expected = "\
TAG      FL  PID   WAKEUP    COMMAND
db       CR  4678  -         /usr/bin/postgres -D /var/lib/pg
migrate  cf  N/A   -         /bin/migrate --all
flaky    Cs  N/A   in 4m58s  flaky
off      C-  N/A   -         off
notify   ER  12    -         mail root
";
        assert_eq!(table, expected);
        assert_eq!(format_table(&[]), "TAG  FL  PID  WAKEUP  COMMAND\n");
    }

    #[test]
    fn refusals_are_recognised() {
        let resp = |status: u16, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(refusal(&resp(200, r#"{"status":"OK"}"#)), None);
        assert_eq!(refusal(&resp(200, r#"{"ok":true}"#)), None);
        assert_eq!(
            refusal(&resp(
                200,
                r#"{"status":"ER","message":"no such component"}"#
            ))
            .as_deref(),
            Some("no such component")
        );
        assert_eq!(
            refusal(&resp(500, r#"{"ok":false,"message":"bad config"}"#)).as_deref(),
            Some("bad config")
        );
        assert_eq!(
            refusal(&resp(404, "")).as_deref(),
            Some("request failed with HTTP 404")
        );
        assert_eq!(
            refusal(&resp(400, "nope")).as_deref(),
            Some("HTTP 400: nope")
        );
    }
}
