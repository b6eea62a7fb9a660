//! pies `/programs` and `/alive`: describe, start, stop and restart components.

use super::router::Ctx;
use super::selector::Selector;
use super::{json, reply};
use crate::config::Mode;
use crate::shared::Request;
use crate::table::{Component, Kind, Status};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `/programs[/TAG]`: GET lists, PUT starts, DELETE stops, POST restarts.
pub(crate) fn handle(ctx: &Ctx<'_>) -> super::ApiResponse {
    let selector = match selector_of(ctx) {
        Ok(s) => s,
        Err(why) => return reply::pies_error(400, why),
    };
    if ctx.method == "GET" {
        return reply::json_bytes(200, describe_selected(ctx, &selector));
    }
    let tags: Vec<String> = {
        let state = ctx.shared.lock();
        state
            .table
            .components
            .iter()
            .filter(|c| selector.matches(c))
            .map(|c| c.tag().to_string())
            .collect()
    };
    // Selecting nothing is not an error: there is just nothing to do.
    if tags.is_empty() {
        return reply::pies_ok();
    }
    let request = match ctx.method {
        "PUT" => Request::Start(tags),
        "DELETE" => Request::Stop(tags),
        _ => Request::Restart(tags),
    };
    reply::pies_reply(ctx.shared.request(request))
}

/// The selector of a request: the body, else the query string (URL-encoded
/// JSON), else the `/programs/TAG` shortcut, else everything.
fn selector_of(ctx: &Ctx<'_>) -> Result<Selector, String> {
    if !ctx.body.trim_ascii().is_empty() {
        return Selector::parse(ctx.body).map_err(|e| e.to_string());
    }
    if !ctx.query.is_empty() {
        let text = reply::percent_decode(ctx.query, false)
            .map_err(|e| format!("selector: bad query string: {}", e.0))?;
        return Selector::parse(text.as_bytes()).map_err(|e| e.to_string());
    }
    Ok(match ctx.rest.as_deref() {
        Some(tag) if !tag.is_empty() => Selector::tag_shortcut(tag),
        _ => Selector::All,
    })
}

/// The last description written and the snapshot it was written from.
/// Status polls mostly find the table as it was; the answer is then a copy
/// of the last one instead of a fresh rendering. One for the process,
/// shrunk to fit (about 20 kB for 50 rows).
static LAST: Mutex<Option<(Snapshot, Vec<u8>)>> = Mutex::new(None);

/// Describe the selected rows. The table's lock is held only to copy their
/// facts out ([`Snapshot::take`]); the JSON is written after it is
/// released, so neither the main loop nor the other API worker waits for
/// the formatting.
fn describe_selected(ctx: &Ctx<'_>, selector: &Selector) -> Vec<u8> {
    let now = Instant::now();
    let snapshot = Snapshot::take(&ctx.shared.lock().table.components, selector, now);
    // The JSON depends on nothing but the snapshot.
    if let Some((seen, json)) = last().as_ref() {
        if *seen == snapshot {
            return json.clone();
        }
    }
    let json = snapshot.to_json();
    *last() = Some((snapshot.shrunk(), json.clone()));
    json
}

/// The cache of the last description; a poisoned lock is recovered, since
/// an entry is only ever replaced whole.
fn last() -> MutexGuard<'static, Option<(Snapshot, Vec<u8>)>> {
    LAST.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whole seconds from `now` until `then`, rounded up (0 when past).
pub(crate) fn seconds_until(then: Instant, now: Instant) -> u64 {
    let left = then.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

/// Seconds since the epoch (0 for times before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// What the descriptions of the selected rows need, copied out of the table.
///
/// Every string is appended to one buffer and named by its span, so a
/// snapshot costs a handful of allocations however many rows it holds:
/// under the lock there is only copying, no escaping, formatting or
/// per-row allocation.
#[derive(PartialEq, Eq)]
struct Snapshot {
    /// Every copied string, back to back.
    text: String,
    /// The words of argv and prerequisite lists: spans of `text`.
    words: Vec<Range<usize>>,
    /// One entry per selected row, in table order.
    rows: Vec<Facts>,
}

/// One row's description; strings are spans of [`Snapshot::text`], lists
/// spans of [`Snapshot::words`]. `None` (or an empty `runlevels`) leaves the
/// field out, as pies does (`PID` when nothing runs, `wakeup` unless
/// sleeping…).
#[derive(PartialEq, Eq)]
struct Facts {
    kind: Kind,
    tag: Range<usize>,
    mode: Mode,
    status: Status,
    active: bool,
    pid: Option<i32>,
    runlevels: Range<usize>,
    wakeup: Option<u64>,
    argv: Range<usize>,
    command: Range<usize>,
    restarts: u32,
    exit_code: Option<i32>,
    started: Option<u64>,
    prerequisites: Range<usize>,
}

impl Snapshot {
    /// Copy the facts of the rows `selector` picks.
    fn take(components: &[Component], selector: &Selector, now: Instant) -> Snapshot {
        let mut snapshot = Snapshot {
            // A guess that avoids most regrowth under the lock.
            text: String::with_capacity(components.len() * 64),
            words: Vec::with_capacity(components.len() * 2),
            rows: Vec::with_capacity(components.len()),
        };
        for c in components.iter().filter(|c| selector.matches(c)) {
            let facts = snapshot.facts_of(c, now);
            snapshot.rows.push(facts);
        }
        snapshot
    }

    fn facts_of(&mut self, c: &Component, now: Instant) -> Facts {
        let wakeup = match (c.status, c.wakeup) {
            (Status::Sleeping, Some(wakeup)) => Some(seconds_until(wakeup, now)),
            _ => None,
        };
        Facts {
            kind: c.kind,
            tag: self.copy(c.tag()),
            mode: c.mode(),
            status: c.status,
            active: c.active,
            pid: c.pid,
            runlevels: self.copy(&c.spec.runlevels),
            wakeup,
            argv: self.copy_list(&c.spec.argv),
            command: self.copy(&c.spec.command),
            restarts: c.restarts,
            exit_code: c.exit_code,
            started: c.started.map(unix_seconds),
            prerequisites: self.copy_list(&c.spec.prerequisites),
        }
    }

    /// The snapshot without spare capacity, to be kept.
    fn shrunk(mut self) -> Snapshot {
        self.text.shrink_to_fit();
        self.words.shrink_to_fit();
        self.rows.shrink_to_fit();
        self
    }

    /// Append a string; its span.
    fn copy(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// Append the words of a list; their span in `words`.
    fn copy_list(&mut self, list: &[String]) -> Range<usize> {
        let start = self.words.len();
        for word in list {
            let span = self.copy(word);
            self.words.push(span);
        }
        start..self.words.len()
    }

    /// A copied string.
    fn str(&self, span: &Range<usize>) -> &str {
        // Spans are made by `copy` at char boundaries, so this always finds one.
        self.text.get(span.clone()).unwrap_or_default()
    }

    /// The words of a list.
    fn words(&self, span: &Range<usize>) -> impl Iterator<Item = &str> {
        let spans = self.words.get(span.clone()).unwrap_or_default();
        spans.iter().map(|word| self.str(word))
    }

    /// The JSON array of descriptions.
    fn to_json(&self) -> Vec<u8> {
        // Escaping rarely grows a string; the fields and punctuation of a
        // row take under 200 bytes.
        let mut out = Vec::with_capacity(self.text.len() + self.rows.len() * 200 + 2);
        out.push(b'[');
        for (i, facts) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write_row(&mut out, facts);
        }
        out.push(b']');
        out
    }

    /// One row as a JSON object. The keys come in serde_json's order (its
    /// `Map` is sorted, upper case first), so the answer is byte for byte
    /// what earlier versions built from a `serde_json::Value`.
    ///
    /// The answer is written in as few pieces as possible, since each costs
    /// a call in a binary built for size: the names of modes, statuses and
    /// kinds are plain words (see the tests) that go out unescaped, between
    /// quotes that share a piece with the neighbouring keys.
    fn write_row(&self, out: &mut Vec<u8>, f: &Facts) {
        out.push(b'{');
        if let Some(pid) = f.pid {
            out.extend_from_slice(b"\"PID\":");
            json::push_int(out, pid.into());
            out.push(b',');
        }
        out.extend_from_slice(if f.active {
            b"\"active\":true,\"argv\":"
        } else {
            b"\"active\":false,\"argv\":"
        });
        json::push_strs(out, self.words(&f.argv));
        out.extend_from_slice(b",\"command\":");
        json::push_str(out, self.str(&f.command));
        if let Some(code) = f.exit_code {
            out.extend_from_slice(b",\"exit_code\":");
            json::push_int(out, code.into());
        }
        out.extend_from_slice(b",\"mode\":\"");
        out.extend_from_slice(f.mode.name().as_bytes());
        out.extend_from_slice(b"\",\"prerequisites\":");
        json::push_strs(out, self.words(&f.prerequisites));
        out.extend_from_slice(b",\"restarts\":");
        json::push_uint(out, f.restarts.into());
        if !f.runlevels.is_empty() {
            out.extend_from_slice(b",\"runlevels\":");
            json::push_str(out, self.str(&f.runlevels));
        }
        if let Some(started) = f.started {
            out.extend_from_slice(b",\"started\":");
            json::push_uint(out, started);
        }
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(f.status.name().as_bytes());
        out.extend_from_slice(b"\",\"tag\":");
        json::push_str(out, self.str(&f.tag));
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(f.kind.name().as_bytes());
        out.push(b'"');
        if let Some(wakeup) = f.wakeup {
            out.extend_from_slice(b",\"wakeup\":");
            json::push_uint(out, wakeup);
        }
        out.push(b'}');
    }
}

/// `/alive/TAG`: the status as an HTTP code, for probes.
pub(crate) fn alive(ctx: &Ctx<'_>) -> super::ApiResponse {
    let tag = match ctx.rest.as_deref() {
        Some(tag) if !tag.is_empty() => tag,
        _ => return reply::pies_error(403, "no component specified: use /alive/TAG"),
    };
    let now = Instant::now();
    let state = ctx.shared.lock();
    let Some(c) = state.table.get(tag) else {
        return reply::pies_error(404, format!("no component `{tag}`"));
    };
    if c.status == Status::Running {
        return reply::pies_ok();
    }
    let message = format!("`{tag}` is {}", c.status.name());
    match c.wakeup {
        Some(wakeup) if c.status != Status::Stopping => {
            let secs = seconds_until(wakeup, now);
            reply::with_header(
                reply::pies_error(503, format!("{message}; next try in {secs} s")),
                "Retry-After",
                secs.to_string(),
            )
        }
        _ => reply::pies_error(503, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiRequest, route};
    use crate::config::{ComponentSpec, Config};
    use crate::shared::{Shared, State};
    use crate::table::Origin;
    use serde_json::{Map, Value, json};

    /// The description as earlier versions built it, through a `Value`: the
    /// hand-written JSON must give the same bytes.
    fn described_as_value(c: &Component, now: Instant) -> Value {
        let mut d = Map::new();
        d.insert("type".into(), json!(c.kind.name()));
        d.insert("tag".into(), json!(c.tag()));
        d.insert("mode".into(), json!(c.mode().name()));
        d.insert("status".into(), json!(c.status.name()));
        d.insert("active".into(), json!(c.active));
        if let Some(pid) = c.pid {
            d.insert("PID".into(), json!(pid));
        }
        if !c.spec.runlevels.is_empty() {
            d.insert("runlevels".into(), json!(c.spec.runlevels));
        }
        if c.status == Status::Sleeping {
            if let Some(wakeup) = c.wakeup {
                d.insert("wakeup".into(), json!(seconds_until(wakeup, now)));
            }
        }
        d.insert("argv".into(), json!(c.spec.argv));
        d.insert("command".into(), json!(c.spec.command));
        d.insert("restarts".into(), json!(c.restarts));
        if let Some(code) = c.exit_code {
            d.insert("exit_code".into(), json!(code));
        }
        if let Some(started) = c.started {
            d.insert("started".into(), json!(unix_seconds(started)));
        }
        d.insert("prerequisites".into(), json!(c.spec.prerequisites));
        Value::Object(d)
    }

    fn rows(now: Instant) -> Vec<Component> {
        let mut web = Component::new(
            ComponentSpec::new("web", vec!["/bin/web".into(), "-x".into()]),
            Kind::Component,
            Origin::Config,
        );
        web.status = Status::Running;
        web.pid = Some(i32::MAX);
        web.restarts = u32::MAX;
        web.exit_code = Some(-1);
        web.started = Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        web.spec.prerequisites = vec!["db".into(), "n\u{e9}t \"quoted\"".into()];
        web.spec.command = "/bin/web -x".into();
        let mut db = Component::new(
            ComponentSpec::new("d\\b\t\u{1}\u{7f}\u{2028}🦀", Vec::new()),
            Kind::Component,
            Origin::Fleet,
        );
        db.status = Status::Sleeping;
        db.wakeup = Some(now + Duration::from_millis(2500));
        db.spec.runlevels = "2345".into();
        db.spec.command = "line\nbreak".into();
        // A wake-up time that does not apply: not sleeping.
        let mut off = Component::new(
            ComponentSpec::new("off", vec![String::new()]),
            Kind::Component,
            Origin::Config,
        );
        off.active = false;
        off.wakeup = Some(now);
        off.exit_code = Some(137);
        off.started = Some(UNIX_EPOCH - Duration::from_secs(5));
        let mut hook = Component::new(
            ComponentSpec::new("hook", vec!["sh".into(), "-c".into(), "echo \"$1\"".into()]),
            Kind::Command,
            Origin::Internal,
        );
        hook.status = Status::Stopping;
        hook.spec.mode = Mode::Once;
        hook.pid = Some(1);
        // Sleeping without a wake-up time.
        let mut idle = Component::new(
            ComponentSpec::new("idle", vec!["x".into()]),
            Kind::Component,
            Origin::Config,
        );
        idle.status = Status::Sleeping;
        vec![web, db, off, hook, idle]
    }

    fn expected(rows: &[Component], selector: &Selector, now: Instant) -> Vec<u8> {
        let list = rows
            .iter()
            .filter(|c| selector.matches(c))
            .map(|c| described_as_value(c, now))
            .collect();
        serde_json::to_vec(&Value::Array(list)).unwrap()
    }

    #[test]
    fn descriptions_are_byte_for_byte_the_value_rendering() {
        let now = Instant::now();
        let rows = rows(now);
        for selector in [
            Selector::All,
            Selector::Nothing,
            Selector::tag_shortcut("web"),
            Selector::Status(Status::Sleeping),
            Selector::Not(Box::new(Selector::Active)),
            Selector::Type(Kind::Command),
        ] {
            let got = Snapshot::take(&rows, &selector, now).to_json();
            let want = expected(&rows, &selector, now);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap(),
                "{selector:?}"
            );
        }
    }

    #[test]
    fn names_written_unescaped_are_plain_words() {
        let plain = |name: &str| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        };
        for (mode, name) in Mode::ALL {
            assert!(plain(name) && plain(mode.name()), "{name}");
        }
        for (status, name) in Status::ALL {
            assert!(plain(name) && plain(status.name()), "{name}");
        }
        for kind in [Kind::Component, Kind::Command] {
            assert!(plain(kind.name()), "{}", kind.name());
        }
    }

    #[test]
    fn a_snapshot_keeps_table_order_and_only_the_selected_rows() {
        let now = Instant::now();
        let rows = rows(now);
        let selector = Selector::Or(vec![
            Selector::Tag("hook".into()),
            Selector::Tag("web".into()),
        ]);
        let json: Value =
            serde_json::from_slice(&Snapshot::take(&rows, &selector, now).to_json()).unwrap();
        let tags: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["tag"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["web", "hook"]);
        assert_eq!(json[0]["wakeup"], Value::Null);
        assert_eq!(Snapshot::take(&[], &Selector::All, now).to_json(), b"[]");
    }

    #[test]
    fn a_changed_table_is_never_answered_from_the_cache() {
        let now = Instant::now();
        let mut state = State::new(Config::default(), None, vec!["tend".into()]);
        state.table.components = rows(now);
        // Wake-up times count down: keep this comparison independent of the clock.
        for c in &mut state.table.components {
            c.wakeup = None;
        }
        let shared = Shared::new(state).unwrap();
        let get = || route(&shared, &ApiRequest::new("GET", "/programs")).body;
        let first = get();
        // Unchanged: the same answer, whether cached or not.
        assert_eq!(get(), first);
        let changes: [fn(&mut Component); 4] = [
            |c| c.restarts = 7,
            |c| c.pid = None,
            |c| c.spec.argv.push("more".into()),
            |c| c.spec.tag.push('x'),
        ];
        let mut before = first;
        for change in changes {
            change(&mut shared.lock().table.components[0]);
            let after = get();
            assert_ne!(after, before);
            let want = expected(
                &shared.lock().table.components,
                &Selector::All,
                Instant::now(),
            );
            assert_eq!(after, want);
            before = after;
        }
    }
}
