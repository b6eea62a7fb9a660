//! Pegasus-style introspection: `/`, `/version`, `/recentStartTime`,
//! `/configs`, `/config` and `/updateConfig`.

use super::ApiResponse;
use super::json::Object;
use super::reply;
use super::router::{Ctx, ROUTES};
use crate::shared::Tunables;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime};

/// `GET /`: every path with a one-line description.
pub(crate) fn index(_ctx: &Ctx<'_>) -> ApiResponse {
    // `extend`, not `collect`: each collect into a map is its own copy of
    // a sort routine in the binary.
    let mut map = Map::new();
    map.extend(ROUTES.iter().map(|r| (r.path.to_string(), json!(r.help))));
    reply::json(200, &Value::Object(map))
}

/// `GET /version`.
pub(crate) fn version(_ctx: &Ctx<'_>) -> ApiResponse {
    let body = Object::new()
        .str(
            "GitCommit",
            option_env!("TEND_GIT_COMMIT").unwrap_or("unknown"),
        )
        .str("Version", crate::VERSION)
        .str("name", "tend");
    reply::json_bytes(200, body.finish())
}

/// `GET /recentStartTime`: when tend started, UTC.
pub(crate) fn recent_start_time(ctx: &Ctx<'_>) -> ApiResponse {
    let started = ctx.shared.lock().started;
    let body = Object::new().str("RecentStartTime", &utc_datetime(started));
    reply::json_bytes(200, body.finish())
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub(crate) fn utc_datetime(t: SystemTime) -> String {
    let secs = super::programs::unix_seconds(t);
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day number counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A runtime tunable as `/configs` shows it.
struct Tunable {
    name: &'static str,
    section: &'static str,
    kind: &'static str,
    description: &'static str,
    get: fn(&Tunables) -> String,
    set: fn(&mut Tunables, &str) -> Result<(), String>,
}

/// Durations are bounded so the main loop's `Instant + duration` cannot overflow.
const MAX_SECONDS: u64 = 365 * 86_400;

/// Sorted by name: `/configs` lists them in this order, as a JSON
/// object's keys.
const TUNABLES: &[Tunable] = &[
    Tunable {
        name: "log_level",
        section: "core",
        kind: "FV_STRING",
        description: "Log verbosity: off, error, warn, info, debug or trace.",
        get: |t| t.log_level.clone(),
        set: set_log_level,
    },
    Tunable {
        name: "max_restarts",
        section: "throttle",
        kind: "FV_UINT32",
        description: "Starts allowed within restart_window before a component sleeps.",
        get: |t| t.max_restarts.to_string(),
        set: |t, v| {
            t.max_restarts = v
                .parse()
                .map_err(|_| format!("`{v}` is not a count (0 to {})", u32::MAX))?;
            Ok(())
        },
    },
    Tunable {
        name: "restart_window",
        section: "throttle",
        kind: "FV_UINT64",
        description: "Seconds of the sliding window restarts are counted in.",
        get: |t| t.restart_window.as_secs().to_string(),
        set: |t, v| {
            t.restart_window = seconds(v, 1)?;
            Ok(())
        },
    },
    Tunable {
        name: "shutdown_timeout",
        section: "core",
        kind: "FV_UINT64",
        description: "Seconds components get to stop at shutdown before SIGKILL.",
        get: |t| t.shutdown_timeout.as_secs().to_string(),
        set: |t, v| {
            t.shutdown_timeout = seconds(v, 0)?;
            Ok(())
        },
    },
    Tunable {
        name: "sleep_time",
        section: "throttle",
        kind: "FV_UINT64",
        description: "Seconds a throttled component sleeps before the next try.",
        get: |t| t.sleep_time.as_secs().to_string(),
        set: |t, v| {
            t.sleep_time = seconds(v, 1)?;
            Ok(())
        },
    },
];

fn seconds(value: &str, min: u64) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=MAX_SECONDS).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "`{value}` is not a number of seconds from {min} to {MAX_SECONDS}"
        )),
    }
}

fn set_log_level(t: &mut Tunables, value: &str) -> Result<(), String> {
    let level: log::LevelFilter = value.parse().map_err(|_| {
        format!("`{value}` is not a log level (off, error, warn, info, debug, trace)")
    })?;
    t.log_level = level.to_string().to_ascii_lowercase();
    // An atomic store: safe to do under the state lock.
    log::set_max_level(level);
    Ok(())
}

fn describe_tunable(t: &Tunable, values: &Tunables) -> Vec<u8> {
    Object::new()
        .str("description", t.description)
        .str("name", t.name)
        .str("section", t.section)
        .str("tags", "flag_tag::FT_MUTABLE")
        .str("type", t.kind)
        .str("value", &(t.get)(values))
        .finish()
}

/// `GET /configs`: every tunable, by name.
pub(crate) fn configs(ctx: &Ctx<'_>) -> ApiResponse {
    let values = ctx.shared.lock().tunables.clone();
    let all = TUNABLES.iter().fold(Object::new(), |o, t| {
        o.raw(t.name, &describe_tunable(t, &values))
    });
    reply::json_bytes(200, all.finish())
}

/// `GET /config?name=K`: one tunable.
pub(crate) fn config(ctx: &Ctx<'_>) -> ApiResponse {
    let pairs = match reply::query_pairs(ctx.query) {
        Ok(p) => p,
        Err(e) => return reply::pies_error(400, format!("bad query string: {}", e.0)),
    };
    let Some((_, name)) = pairs.iter().find(|(k, _)| k == "name") else {
        return reply::pies_error(400, "missing name=<config_name>");
    };
    let Some(tunable) = TUNABLES.iter().find(|t| t.name == name) else {
        return reply::pies_error(404, format!("unknown config `{name}`"));
    };
    let values = ctx.shared.lock().tunables.clone();
    reply::json_bytes(200, describe_tunable(tunable, &values))
}

fn update_status(status: u16, text: String) -> ApiResponse {
    reply::json_bytes(status, Object::new().str("update_status", &text).finish())
}

/// `/updateConfig?K=V`: change one tunable, in place under the lock (the main
/// loop reads them as plain values).
pub(crate) fn update_config(ctx: &Ctx<'_>) -> ApiResponse {
    let invalid = |why: String| update_status(400, format!("ERR_INVALID_PARAMETERS: {why}"));
    let pairs = match reply::query_pairs(ctx.query) {
        Ok(p) => p,
        Err(e) => return invalid(format!("bad query string: {}", e.0)),
    };
    let [(name, value)] = pairs.as_slice() else {
        return invalid("give exactly one <key>=<new_value>".to_string());
    };
    let Some(tunable) = TUNABLES.iter().find(|t| t.name == name) else {
        return invalid(format!("unknown config `{name}`"));
    };
    let result = (tunable.set)(&mut ctx.shared.lock().tunables, value);
    match result {
        Ok(()) => {
            log::info!("config {name} set to {value} through the API");
            update_status(200, "ERR_OK".to_string())
        }
        Err(why) => invalid(format!("{name}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> String {
        utc_datetime(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn dates_convert_to_utc() {
        assert_eq!(at(0), "1970-01-01 00:00:00");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(at(1_709_164_799), "2024-02-28 23:59:59");
        assert_eq!(at(1_709_251_199), "2024-02-29 23:59:59");
        assert_eq!(at(1_735_689_600), "2025-01-01 00:00:00");
        assert_eq!(at(4_102_444_800), "2100-01-01 00:00:00");
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00:00");
    }

    #[test]
    fn tunable_values_are_validated() {
        let mut t = Tunables {
            log_level: "info".into(),
            shutdown_timeout: Duration::from_secs(5),
            max_restarts: 10,
            restart_window: Duration::from_secs(120),
            sleep_time: Duration::from_secs(300),
        };
        assert!(seconds("0", 0).is_ok());
        assert!(seconds("0", 1).is_err());
        assert!(seconds("-1", 0).is_err());
        assert!(seconds("99999999999999999999", 0).is_err());
        assert!(seconds(&(MAX_SECONDS + 1).to_string(), 0).is_err());
        let find = |n: &str| TUNABLES.iter().find(|t| t.name == n).unwrap();
        assert!((find("max_restarts").set)(&mut t, "4294967296").is_err());
        assert!((find("max_restarts").set)(&mut t, "3").is_ok());
        assert_eq!(t.max_restarts, 3);
        assert!((find("sleep_time").set)(&mut t, "7").is_ok());
        assert_eq!(t.sleep_time, Duration::from_secs(7));
        assert!((find("restart_window").set)(&mut t, "0").is_err());
    }

    #[test]
    fn tunables_are_sorted_like_json_keys() {
        assert!(TUNABLES.windows(2).all(|w| w[0].name < w[1].name));
    }
}
