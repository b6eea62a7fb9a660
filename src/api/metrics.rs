//! `/metrics`: Pegasus-style JSON entities, or the Prometheus text format.
//!
//! A snapshot is taken under the lock (plain copies only), `/proc/self` is
//! read after the lock is released, then the answer is rendered.

use super::ApiResponse;
use super::json;
use super::reply;
use super::router::Ctx;
use crate::shared::State;
use crate::table::Status;
use std::time::Instant;

/// The Prometheus text exposition format.
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4";

/// What a metric is, all but its value.
struct Desc {
    /// JSON name; Prometheus adds the entity's prefix.
    name: &'static str,
    /// `gauge` or `counter`.
    kind: &'static str,
    unit: &'static str,
    desc: &'static str,
}

const fn gauge(name: &'static str, unit: &'static str, desc: &'static str) -> Desc {
    Desc {
        name,
        kind: "gauge",
        unit,
        desc,
    }
}

const fn counter(name: &'static str, unit: &'static str, desc: &'static str) -> Desc {
    Desc {
        name,
        kind: "counter",
        unit,
        desc,
    }
}

// The metrics as constants, so building a snapshot only pairs a reference
// with a number.
const UP: Desc = gauge(
    "up",
    "boolean",
    "1 when the component's process is running.",
);
const RESTARTS: Desc = counter(
    "restarts_total",
    "restarts",
    "Times the component was started again.",
);
const LAST_EXIT: Desc = gauge(
    "last_exit_code",
    "code",
    "Exit status of the last run (128+N when killed by signal N).",
);
const COMPONENT_UPTIME: Desc = gauge(
    "uptime_seconds",
    "seconds",
    "Seconds the current process has been running.",
);
const SERVER: [Desc; 8] = [
    gauge("uptime_seconds", "seconds", "Seconds since tend started."),
    gauge("components", "components", "Rows in the component table."),
    gauge(
        "components_running",
        "components",
        "Components whose process is running.",
    ),
    counter(
        "reaped_orphans_total",
        "processes",
        "Orphaned processes reaped (not components).",
    ),
    counter("reaped_total", "processes", "Child processes reaped."),
    counter(
        "reloads_total",
        "reloads",
        "Configuration reloads carried out.",
    ),
    counter(
        "reload_failures_total",
        "reloads",
        "Reloads refused because the configuration was invalid.",
    ),
    counter(
        "gateway_starts_total",
        "starts",
        "Times the TCP gateway was started.",
    ),
];
const RESIDENT: Desc = gauge(
    "resident_memory_bytes",
    "bytes",
    "Resident set size of tend.",
);
const THREADS: Desc = gauge("threads", "threads", "Threads of tend.");
const OPEN_FDS: Desc = gauge("open_fds", "descriptors", "File descriptors tend has open.");

/// One measurement.
struct Metric {
    what: &'static Desc,
    value: i64,
}

/// Something measured: a component, or tend itself.
struct Entity {
    /// `component` or `server`.
    kind: &'static str,
    id: String,
    /// Sorted by name, as JSON objects list them.
    attributes: Vec<(&'static str, String)>,
    metrics: Vec<Metric>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn metric(what: &'static Desc, value: i64) -> Metric {
    Metric { what, value }
}

/// Copy what the metrics need out of the locked state.
fn snapshot(state: &State, now: Instant) -> Vec<Entity> {
    let mut entities: Vec<Entity> = state
        .table
        .components
        .iter()
        .map(|c| {
            let uptime = match (c.pid, c.started_at) {
                (Some(_), Some(at)) => now.saturating_duration_since(at).as_secs(),
                _ => 0,
            };
            let mut metrics = vec![
                metric(&UP, i64::from(c.status == Status::Running)),
                metric(&RESTARTS, i64::from(c.restarts)),
            ];
            if let Some(code) = c.exit_code {
                metrics.push(metric(&LAST_EXIT, i64::from(code)));
            }
            metrics.push(metric(&COMPONENT_UPTIME, to_i64(uptime)));
            let active = if c.active { "true" } else { "false" };
            Entity {
                kind: "component",
                id: c.tag().to_string(),
                attributes: vec![
                    ("active", active.to_string()),
                    ("mode", c.mode().name().to_string()),
                    ("status", c.status.name().to_string()),
                    ("tag", c.tag().to_string()),
                    ("type", c.kind.name().to_string()),
                ],
                metrics,
            }
        })
        .collect();
    let running = state
        .table
        .components
        .iter()
        .filter(|c| c.status == Status::Running)
        .count();
    let s = &state.stats;
    let values = [
        now.saturating_duration_since(state.started_at).as_secs(),
        state.table.components.len() as u64,
        running as u64,
        s.reaped_orphans,
        s.reaped_total,
        s.reloads,
        s.reload_failures,
        s.gateway_starts,
    ];
    entities.push(Entity {
        kind: "server",
        id: "tend".to_string(),
        attributes: vec![
            ("pid", std::process::id().to_string()),
            ("version", crate::VERSION.to_string()),
        ],
        metrics: SERVER
            .iter()
            .zip(values)
            .map(|(what, v)| metric(what, to_i64(v)))
            .collect(),
    });
    entities
}

/// Add what `/proc/self` says about tend to the server entity.
fn add_process_metrics(server: &mut Entity) {
    let found = [
        (&RESIDENT, resident_bytes()),
        (&THREADS, proc_status_field("Threads:")),
        (&OPEN_FDS, open_fds()),
    ];
    for (what, n) in found {
        if let Some(n) = n {
            server.metrics.push(metric(what, to_i64(n)));
        }
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page_size).ok()?.checked_mul(pages)
}

fn proc_status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.get(field.len()..)?.trim().parse().ok()
}

fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    // Reading the directory holds one descriptor of its own.
    Some(entries.saturating_sub(1))
}

/// The `/metrics` query.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    types: Vec<String>,
    ids: Vec<String>,
    attributes: Vec<(String, String)>,
    metrics: Vec<String>,
    fields: Vec<String>,
    detail: bool,
    prometheus: bool,
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn parse_filter(query: &str) -> Result<Filter, String> {
    let pairs = reply::query_pairs(query).map_err(|e| format!("bad query string: {}", e.0))?;
    let mut f = Filter::default();
    for (key, value) in &pairs {
        match key.as_str() {
            "types" => f.types.extend(list(value)),
            "ids" => f.ids.extend(list(value)),
            "metrics" => f.metrics.extend(list(value)),
            "with_metric_fields" => f.fields.extend(list(value)),
            "attributes" => {
                let items: Vec<String> = list(value).collect();
                if items.len() % 2 != 0 {
                    return Err(format!("attributes: `{value}` must be name,value pairs"));
                }
                f.attributes.extend(
                    items
                        .chunks_exact(2)
                        .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone()))),
                );
            }
            "detail" => {
                f.detail = match value.as_str() {
                    "" | "true" => true,
                    "false" => false,
                    other => return Err(format!("detail: `{other}` is not true or false")),
                }
            }
            "format" => {
                f.prometheus = match value.as_str() {
                    "prometheus" => true,
                    "json" => false,
                    other => return Err(format!("format: `{other}` is not json or prometheus")),
                }
            }
            other => return Err(format!("unknown parameter `{other}`")),
        }
    }
    Ok(f)
}

/// Keep what the filter selects. An entity whose metrics are all filtered
/// out is dropped.
fn apply(filter: &Filter, entities: Vec<Entity>) -> Vec<Entity> {
    entities
        .into_iter()
        .filter(|e| filter.types.is_empty() || filter.types.iter().any(|t| t == e.kind))
        .filter(|e| filter.ids.is_empty() || filter.ids.contains(&e.id))
        .filter(|e| {
            filter.attributes.is_empty()
                || filter
                    .attributes
                    .iter()
                    .any(|(k, v)| e.attributes.iter().any(|(ek, ev)| ek == k && ev == v))
        })
        .filter_map(|mut e| {
            if filter.metrics.is_empty() {
                return Some(e);
            }
            e.metrics
                .retain(|m| filter.metrics.iter().any(|n| n == m.what.name));
            (!e.metrics.is_empty()).then_some(e)
        })
        .collect()
}

/// Write one metric with the chosen fields, in JSON's key order.
fn write_metric(out: &mut Vec<u8>, m: &Metric, fields: &[&str]) {
    let texts = [
        ("desc", m.what.desc),
        ("name", m.what.name),
        ("type", m.what.kind),
        ("unit", m.what.unit),
    ];
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        json::push_str(out, name);
        out.push(b':');
    };
    for (name, text) in texts {
        if fields.contains(&name) {
            key(out, name);
            json::push_str(out, text);
        }
    }
    if fields.contains(&"value") {
        key(out, "value");
        json::push_int(out, m.value);
    }
    out.push(b'}');
}

/// The metric fields the filter asks for: `fields=`, else all with
/// `detail`, else name and value.
fn selected_fields(filter: &Filter) -> Vec<&str> {
    if !filter.fields.is_empty() {
        filter.fields.iter().map(String::as_str).collect()
    } else if filter.detail {
        vec!["type", "name", "unit", "desc", "value"]
    } else {
        vec!["name", "value"]
    }
}

/// The JSON answer, written as serde_json would write the `Value` (keys in
/// order, no spaces).
fn render_json(filter: &Filter, entities: &[Entity]) -> Vec<u8> {
    let fields = selected_fields(filter);
    let mut out = vec![b'['];
    for (i, e) in entities.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"attributes\":{");
        for (j, (k, v)) in e.attributes.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            json::push_str(&mut out, k);
            out.push(b':');
            json::push_str(&mut out, v);
        }
        out.extend_from_slice(b"},\"id\":");
        json::push_str(&mut out, &e.id);
        out.extend_from_slice(b",\"metrics\":[");
        for (j, m) in e.metrics.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_metric(&mut out, m, &fields);
        }
        out.extend_from_slice(b"],\"type\":");
        json::push_str(&mut out, e.kind);
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// Escape a Prometheus label value.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text: one family per metric name, components labelled by tag.
fn render_prometheus(entities: &[Entity]) -> String {
    // (full name, help, type, samples) in order of first appearance.
    let mut families: Vec<(String, &str, &str, Vec<String>)> = Vec::new();
    for e in entities {
        let (prefix, labels) = if e.kind == "component" {
            (
                "tend_component_",
                format!("{{tag=\"{}\"}}", escape_label(&e.id)),
            )
        } else {
            ("tend_", String::new())
        };
        for m in &e.metrics {
            let name = format!("{prefix}{}", m.what.name);
            let sample = format!("{name}{labels} {}", m.value);
            match families.iter_mut().find(|f| f.0 == name) {
                Some(family) => family.3.push(sample),
                None => families.push((name, m.what.desc, m.what.kind, vec![sample])),
            }
        }
    }
    let mut out = String::new();
    for (name, help, kind, samples) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for sample in samples {
            out.push_str(&sample);
            out.push('\n');
        }
    }
    out
}

/// `GET /metrics`.
pub(crate) fn handle(ctx: &Ctx<'_>) -> ApiResponse {
    let filter = match parse_filter(ctx.query) {
        Ok(f) => f,
        Err(why) => return reply::pies_error(400, format!("metrics: {why}")),
    };
    let mut entities = snapshot(&ctx.shared.lock(), Instant::now());
    if let Some(server) = entities.iter_mut().find(|e| e.kind == "server") {
        add_process_metrics(server);
    }
    let entities = apply(&filter, entities);
    if filter.prometheus {
        reply::text(200, PROMETHEUS_TYPE, render_prometheus(&entities))
    } else {
        reply::json_bytes(200, render_json(&filter, &entities))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let f = parse_filter(
            "types=component,server&ids=web&attributes=status,running&metrics=up&with_metric_fields=name&detail=false&format=prometheus",
        )
        .unwrap();
        assert_eq!(f.types, ["component", "server"]);
        assert_eq!(f.ids, ["web"]);
        assert_eq!(
            f.attributes,
            [("status".to_string(), "running".to_string())]
        );
        assert_eq!(f.metrics, ["up"]);
        assert_eq!(f.fields, ["name"]);
        assert!(!f.detail);
        assert!(f.prometheus);
        assert!(parse_filter("detail").unwrap().detail);
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(parse_filter("attributes=a").unwrap_err().contains("pairs"));
        assert!(parse_filter("detail=maybe").unwrap_err().contains("detail"));
        assert!(parse_filter("format=xml").unwrap_err().contains("format"));
        assert!(
            parse_filter("foo=1")
                .unwrap_err()
                .contains("unknown parameter `foo`")
        );
    }

    /// What the answer was when it was built as a `serde_json::Value`.
    fn as_value(filter: &Filter, entities: &[Entity]) -> Vec<u8> {
        use serde_json::{Map, Value, json};
        let fields = selected_fields(filter);
        let list: Vec<Value> = entities
            .iter()
            .map(|e| {
                let attributes: Map<String, Value> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                let metrics: Vec<Value> = e
                    .metrics
                    .iter()
                    .map(|m| {
                        let mut obj = Map::new();
                        for field in &fields {
                            let value = match *field {
                                "type" => json!(m.what.kind),
                                "name" => json!(m.what.name),
                                "unit" => json!(m.what.unit),
                                "desc" => json!(m.what.desc),
                                "value" => json!(m.value),
                                _ => continue,
                            };
                            obj.insert(field.to_string(), value);
                        }
                        Value::Object(obj)
                    })
                    .collect();
                json!({"type": e.kind, "id": e.id, "attributes": attributes, "metrics": metrics})
            })
            .collect();
        serde_json::to_vec(&list).unwrap()
    }

    #[test]
    fn json_is_what_serde_json_wrote() {
        let entities = vec![
            Entity {
                kind: "component",
                id: "we\"b\n".to_string(),
                attributes: vec![("active", "true".into()), ("tag", "é\u{1}".into())],
                metrics: vec![metric(&UP, 1), metric(&LAST_EXIT, -9)],
            },
            Entity {
                kind: "server",
                id: "tend".to_string(),
                attributes: vec![("pid", "1".into()), ("version", "0.1.0".into())],
                metrics: SERVER.iter().map(|d| metric(d, i64::MAX)).collect(),
            },
        ];
        let filters = [
            Filter::default(),
            Filter {
                detail: true,
                ..Filter::default()
            },
            Filter {
                fields: ["value", "bogus", "desc", "value", "unit"]
                    .map(String::from)
                    .to_vec(),
                ..Filter::default()
            },
            Filter {
                fields: vec!["bogus".to_string()],
                ..Filter::default()
            },
        ];
        for f in &filters {
            assert_eq!(
                String::from_utf8(render_json(f, &entities)).unwrap(),
                String::from_utf8(as_value(f, &entities)).unwrap()
            );
        }
        assert_eq!(render_json(&Filter::default(), &[]), b"[]");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn process_metrics_come_from_proc() {
        assert!(resident_bytes().unwrap() > 0);
        assert!(proc_status_field("Threads:").unwrap() >= 1);
        assert!(open_fds().unwrap() >= 3);
    }
}
