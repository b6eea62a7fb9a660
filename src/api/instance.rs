//! pies `/instance`, `/conf`, `/runlevel` and `/environ`: tend itself.

use super::json::{self, Object};
use super::reply;
use super::router::Ctx;
use super::{ACCESS_HEADER, ApiResponse};
use crate::shared::{Request, ShutdownKind};
use serde_json::Value;

/// `/instance[/KEY]`: GET describes tend, DELETE shuts it down, PUT/POST re-executes it.
pub(crate) fn instance(ctx: &Ctx<'_>) -> ApiResponse {
    match ctx.method {
        "GET" => describe_instance(ctx),
        method => {
            // pies spells these `DELETE /instance/PID` and `PUT /instance/PID`.
            if !matches!(ctx.rest.as_deref(), None | Some("PID")) {
                return reply::pies_error(404, "use /instance/PID");
            }
            let request = if method == "DELETE" {
                Request::Shutdown(ShutdownKind::Exit)
            } else {
                Request::Reexec
            };
            reply::pies_reply(ctx.shared.request(request))
        }
    }
}

fn describe_instance(ctx: &Ctx<'_>) -> ApiResponse {
    let argv = ctx.shared.lock().argv.clone();
    let binary = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| argv.first().cloned().unwrap_or_default());
    let mut pid = Vec::new();
    json::push_uint(&mut pid, std::process::id().into());
    let mut argv_json = Vec::new();
    json::push_strs(&mut argv_json, argv.iter().map(String::as_str));
    let quoted = |s: &str| {
        let mut v = Vec::new();
        json::push_str(&mut v, s);
        v
    };
    // Name and JSON value, in serde_json's key order.
    let info = [
        ("PID", pid),
        ("argv", argv_json),
        ("binary", quoted(&binary)),
        ("instance", quoted("tend")),
        ("package", quoted("tend")),
        ("version", quoted(crate::VERSION)),
    ];
    let wanted = ctx.rest.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = wanted
        && !info.iter().any(|(name, _)| *name == key)
    {
        return reply::pies_error(404, format!("no instance attribute `{key}`"));
    }
    let object = info
        .iter()
        .filter(|(name, _)| wanted.is_none_or(|k| k == *name))
        .fold(Object::new(), |o, (name, value)| o.raw(name, value));
    reply::json_bytes(200, object.finish())
}

/// `GET /conf/files`: the files the configuration in force was read from.
pub(crate) fn conf_files(ctx: &Ctx<'_>) -> ApiResponse {
    let config = ctx.shared.lock().config.clone();
    let syntax = if config.inittab { "inittab" } else { "pies" };
    let mut out = vec![b'['];
    for (i, f) in config.files.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let file = Object::new()
            .str("file", &f.to_string_lossy())
            .str("syntax", syntax);
        out.extend_from_slice(&file.finish());
    }
    out.push(b']');
    reply::json_bytes(200, out)
}

/// `PUT /conf/runtime`: reload; an invalid file is refused and the old
/// configuration stays.
pub(crate) fn conf_runtime(ctx: &Ctx<'_>) -> ApiResponse {
    reply::pies_reply(ctx.shared.request(Request::Reload { graceful: true }))
}

/// `/runlevel`: GET the runlevel, PUT `{"runlevel":"N"}` to switch (init mode).
pub(crate) fn runlevel(ctx: &Ctx<'_>) -> ApiResponse {
    let (init_mode, current, initdefault) = {
        let state = ctx.shared.lock();
        (state.init_mode, state.runlevel, state.config.initdefault)
    };
    if !init_mode {
        return reply::pies_error(404, "runlevels exist only when tend runs as init");
    }
    if ctx.method == "GET" {
        let mut info = Object::new();
        if let Some(level) = initdefault {
            info = info.str("initdefault", level.encode_utf8(&mut [0; 4]));
        }
        let info = info.str("runlevel", current.encode_utf8(&mut [0; 4]));
        return reply::json_bytes(200, info.finish());
    }
    match requested_runlevel(ctx).and_then(runlevel_request) {
        Ok(request) => reply::pies_reply(ctx.shared.request(request)),
        Err(why) => reply::pies_error(400, why),
    }
}

/// The runlevel a PUT asks for: from the body, or (pies spelling) from the
/// path `/runlevel/{"runlevel":"N"}`.
fn requested_runlevel(ctx: &Ctx<'_>) -> Result<char, String> {
    let text: &[u8] = if ctx.body.trim_ascii().is_empty() {
        ctx.rest.as_deref().unwrap_or("").as_bytes()
    } else {
        ctx.body
    };
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| format!("runlevel: expected {{\"runlevel\":\"N\"}}: {e}"))?;
    let level = match value.get("runlevel") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("runlevel: expected {\"runlevel\":\"N\"}".to_string()),
    };
    let mut chars = level.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("runlevel: `{level}` is not a runlevel")),
    }
}

/// What switching to a runlevel means: 0 and 6 end the system, `q` re-reads
/// the configuration, the rest are plain runlevels.
fn runlevel_request(level: char) -> Result<Request, String> {
    match level {
        '0' => Ok(Request::Shutdown(ShutdownKind::Poweroff)),
        '6' => Ok(Request::Shutdown(ShutdownKind::Reboot)),
        'q' | 'Q' => Ok(Request::Reload { graceful: true }),
        '1'..='5' | 'a' | 'b' | 'c' => Ok(Request::Runlevel(level)),
        's' | 'S' => Ok(Request::Runlevel('S')),
        other => Err(format!("runlevel: `{other}` is not a runlevel")),
    }
}

/// `GET /environ[/NAME]` (init mode): the environment components inherit.
/// Admin only: environments hold secrets, and read-only relays are for monitoring.
pub(crate) fn environ(ctx: &Ctx<'_>) -> ApiResponse {
    if !ctx.shared.lock().init_mode {
        return reply::pies_error(404, "/environ exists only when tend runs as init");
    }
    let read_only = ctx.request.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(ACCESS_HEADER) && !v.trim().eq_ignore_ascii_case("admin")
    });
    if read_only {
        return reply::pies_error(403, "the environment is readable with admin rights only");
    }
    match ctx.rest.as_deref() {
        None | Some("") => {
            let all: Vec<String> = std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect();
            let mut out = Vec::new();
            json::push_strs(&mut out, all.iter().map(String::as_str));
            reply::json_bytes(200, out)
        }
        Some(name) => match std::env::var_os(name) {
            Some(value) => {
                let body = Object::new()
                    .str("status", "OK")
                    .str("value", &value.to_string_lossy());
                reply::json_bytes(200, body.finish())
            }
            None => reply::pies_error(404, format!("`{name}` is not set")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runlevels_map_to_requests() {
        assert_eq!(
            runlevel_request('0'),
            Ok(Request::Shutdown(ShutdownKind::Poweroff))
        );
        assert_eq!(
            runlevel_request('6'),
            Ok(Request::Shutdown(ShutdownKind::Reboot))
        );
        assert_eq!(runlevel_request('3'), Ok(Request::Runlevel('3')));
        assert_eq!(runlevel_request('s'), Ok(Request::Runlevel('S')));
        assert_eq!(
            runlevel_request('q'),
            Ok(Request::Reload { graceful: true })
        );
        assert!(runlevel_request('9').is_err());
        assert!(runlevel_request('x').is_err());
    }
}
