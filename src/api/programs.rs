//! pies `/programs` and `/alive`: describe, start, stop and restart components.

use super::reply;
use super::router::Ctx;
use super::selector::Selector;
use crate::shared::Request;
use crate::table::{Component, Status};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `/programs[/TAG]`: GET lists, PUT starts, DELETE stops, POST restarts.
pub(crate) fn handle(ctx: &Ctx<'_>) -> super::ApiResponse {
    let selector = match selector_of(ctx) {
        Ok(s) => s,
        Err(why) => return reply::pies_error(400, why),
    };
    if ctx.method == "GET" {
        return reply::json(200, &describe_selected(ctx, &selector));
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

fn describe_selected(ctx: &Ctx<'_>, selector: &Selector) -> Value {
    let now = Instant::now();
    let state = ctx.shared.lock();
    Value::Array(
        state
            .table
            .components
            .iter()
            .filter(|c| selector.matches(c))
            .map(|c| describe(c, now))
            .collect(),
    )
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

/// A component's pies description. Fields that do not apply are left out,
/// as pies does (`PID` when nothing runs, `wakeup` unless sleeping…).
pub(crate) fn describe(c: &Component, now: Instant) -> Value {
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
