//! Routing: the path table, method checks, access rights, then the handler.
//!
//! Order of checks for every request: unknown path (404), method not allowed
//! (405 with `Allow`), access (403: read-only relays and foreign `Origin`s on
//! anything that changes state), then the endpoint itself.

use super::reply::{self, DecodeError};
use super::{
    ACCESS_HEADER, ApiRequest, ApiResponse, fleet, instance, introspect, metrics, programs, rpc,
};
use crate::shared::Shared;

/// Everything a handler needs to know about one request.
pub(crate) struct Ctx<'a> {
    /// The shared state.
    pub shared: &'a Shared,
    /// The route's path (e.g. `/api/config.reload`).
    pub route: &'static str,
    /// The method (`HEAD` already folded into `GET`).
    pub method: &'a str,
    /// What followed `/PATH/` in the URL, percent-decoded (e.g. the tag of `/alive/TAG`).
    pub rest: Option<String>,
    /// The raw (still encoded) query string, without the `?`.
    pub query: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// The request as received (for headers).
    pub request: &'a ApiRequest,
}

type Handler = fn(&Ctx<'_>) -> ApiResponse;

/// Which error shape a route answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `{"status":"ER","message":…}` (pies, introspection).
    Pies,
    /// `{"ok":false,"message":…}` (Fluentd RPC).
    Rpc,
}

/// Whether a route takes a `/PATH/REST` suffix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Suffix {
    /// Only the exact path.
    Never,
    /// The exact path or `PATH/REST`.
    Optional,
}

/// One endpoint.
pub(crate) struct Route {
    /// The path.
    pub path: &'static str,
    suffix: Suffix,
    methods: &'static [&'static str],
    /// Changes state even on GET (RPC, `/updateConfig`).
    always_mutates: bool,
    family: Family,
    /// The one-line description `GET /` lists.
    pub help: &'static str,
    handler: Handler,
}

const GET: &[&str] = &["GET"];
const ANY_RPC: &[&str] = &["GET", "POST", "PUT"];

const fn entry(
    path: &'static str,
    suffix: Suffix,
    methods: &'static [&'static str],
    help: &'static str,
    handler: Handler,
) -> Route {
    Route {
        path,
        suffix,
        methods,
        always_mutates: false,
        family: Family::Pies,
        help,
        handler,
    }
}

const fn rpc_route(path: &'static str, help: &'static str) -> Route {
    Route {
        path,
        suffix: Suffix::Never,
        methods: ANY_RPC,
        always_mutates: true,
        family: Family::Rpc,
        help,
        handler: rpc::handle,
    }
}

/// Every endpoint of the API.
pub(crate) const ROUTES: &[Route] = &[
    entry(
        "/",
        Suffix::Never,
        GET,
        "List all supported calls.",
        introspect::index,
    ),
    entry(
        "/programs",
        Suffix::Optional,
        &["GET", "PUT", "DELETE", "POST"],
        "[/TAG | ?SELECTOR | body SELECTOR]. GET describes the selected components; PUT starts, DELETE stops, POST restarts them.",
        programs::handle,
    ),
    entry(
        "/alive",
        Suffix::Optional,
        GET,
        "/TAG. 200 when the component is running, 503 when not (Retry-After while it waits to be retried), 404 when unknown.",
        programs::alive,
    ),
    entry(
        "/instance",
        Suffix::Optional,
        &["GET", "PUT", "POST", "DELETE"],
        "[/KEY]. GET describes tend (PID, argv, binary, instance, package, version); DELETE /instance/PID shuts tend down; PUT /instance/PID re-executes it.",
        instance::instance,
    ),
    entry(
        "/conf/files",
        Suffix::Never,
        GET,
        "List the configuration files in force.",
        instance::conf_files,
    ),
    Route {
        always_mutates: true,
        ..entry(
            "/conf/runtime",
            Suffix::Never,
            &["PUT", "POST"],
            "PUT re-reads the configuration (graceful reload, like SIGUSR2).",
            instance::conf_runtime,
        )
    },
    entry(
        "/runlevel",
        Suffix::Optional,
        &["GET", "PUT"],
        "Init mode. GET the current runlevel; PUT {\"runlevel\":\"N\"} switches to N (0 powers off, 6 reboots).",
        instance::runlevel,
    ),
    entry(
        "/environ",
        Suffix::Optional,
        GET,
        "[/NAME]. Init mode, admin only. tend's environment, or one variable.",
        instance::environ,
    ),
    rpc_route(
        "/api/processes.interruptWorkers",
        "Stop every component, then exit (like SIGINT).",
    ),
    rpc_route(
        "/api/processes.killWorkers",
        "Stop every component, then exit (like SIGTERM).",
    ),
    rpc_route(
        "/api/processes.flushBuffersAndKillWorkers",
        "Flush, stop every component, then exit (like SIGUSR1 then SIGTERM).",
    ),
    rpc_route(
        "/api/plugins.flushBuffers",
        "Send each component its flush signal (like SIGUSR1).",
    ),
    rpc_route(
        "/api/config.gracefulReload",
        "Re-read the configuration, restarting only what changed (like SIGUSR2).",
    ),
    rpc_route(
        "/api/config.reload",
        "Re-read the configuration and restart every component (like SIGHUP).",
    ),
    entry(
        "/version",
        Suffix::Never,
        GET,
        "Get the server version.",
        introspect::version,
    ),
    entry(
        "/recentStartTime",
        Suffix::Never,
        GET,
        "Get the server start time.",
        introspect::recent_start_time,
    ),
    entry(
        "/configs",
        Suffix::Never,
        GET,
        "List all runtime configs.",
        introspect::configs,
    ),
    entry(
        "/config",
        Suffix::Never,
        GET,
        "name=<config_name>. Gets the details of a specified config.",
        introspect::config,
    ),
    Route {
        always_mutates: true,
        ..entry(
            "/updateConfig",
            Suffix::Never,
            &["GET", "POST", "PUT"],
            "<key>=<new_value>. Update the config to the new value.",
            introspect::update_config,
        )
    },
    entry(
        "/metrics",
        Suffix::Never,
        GET,
        "[with_metric_fields=field1,field2,...][&types=type1,type2,...][&ids=id1,id2,...][&attributes=attr1,value1,attr2,value2,...][&metrics=metric1,metric2,...][&detail=true|false][&format=json|prometheus] Query the metrics.",
        metrics::handle,
    ),
    entry(
        "/fleet/configs",
        Suffix::Never,
        &["PUT"],
        "PUT {\"configs\":[{\"name\":N,\"content\":TEXT}]} replaces the components pulled from the fleet ConfigServer (used by `tend agent`).",
        fleet::configs,
    ),
];

/// Answer one request. Pure apart from the shared state: no sockets, so it
/// can be unit-tested and fuzzed.
pub fn route(shared: &Shared, req: &ApiRequest) -> ApiResponse {
    let (path, query) = split_target(&req.url);
    let Some((route, rest)) = find(path) else {
        return reply::pies_error(404, format!("no such endpoint: {path}"));
    };
    let rest = match rest.map(|r| reply::percent_decode(r, false)).transpose() {
        Ok(rest) => rest,
        Err(DecodeError(why)) => return error(route.family, 400, format!("bad path: {why}")),
    };
    // HEAD is GET without a body (tiny_http drops the body for HEAD).
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    if !route.methods.contains(&method) {
        let allow = route.methods.join(", ");
        let response = error(
            route.family,
            405,
            format!(
                "{} {} is not allowed (allowed: {allow})",
                req.method, route.path
            ),
        );
        return reply::with_header(response, "Allow", allow);
    }
    let mutating = route.always_mutates || method != "GET";
    if let Err(why) = check_access(req, mutating) {
        return error(route.family, 403, why);
    }
    let ctx = Ctx {
        shared,
        route: route.path,
        method,
        rest,
        query,
        body: &req.body,
        request: req,
    };
    (route.handler)(&ctx)
}

fn error(family: Family, status: u16, message: String) -> ApiResponse {
    match family {
        Family::Pies => reply::pies_error(status, message),
        Family::Rpc => reply::rpc_error(status, message),
    }
}

/// Split `path?query`, accepting the absolute form `http://host/path?query` too.
fn split_target(url: &str) -> (&str, &str) {
    let url = match url.split_once("://") {
        Some((scheme, after)) if !scheme.contains('/') => {
            after.find('/').and_then(|i| after.get(i..)).unwrap_or("/")
        }
        _ => url,
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    // A fragment never reaches a server, but be safe if one does.
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    (path, query)
}

/// The route for a path, and the suffix after `PATH/` when there is one.
fn find(path: &str) -> Option<(&'static Route, Option<&str>)> {
    // `/programs/` means the same as `/programs`.
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    ROUTES.iter().find_map(|route| {
        if trimmed == route.path {
            return Some((route, None));
        }
        if route.suffix == Suffix::Optional {
            let rest = path.strip_prefix(route.path)?.strip_prefix('/')?;
            return Some((route, Some(rest)));
        }
        None
    })
}

/// The rights of the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Admin,
    Read,
}

/// Refuse what the requester may not do. Every `X-Tend-Access` header counts:
/// the least privilege wins, and an unknown value refuses the request.
fn check_access(req: &ApiRequest, mutating: bool) -> Result<(), String> {
    let mut access = Access::Admin;
    for (_, value) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(ACCESS_HEADER))
    {
        match value.trim().to_ascii_lowercase().as_str() {
            "admin" => {}
            "read" => access = Access::Read,
            other => return Err(format!("bad {ACCESS_HEADER} header `{other}`")),
        }
    }
    if !mutating {
        return Ok(());
    }
    if access == Access::Read {
        return Err("read-only access: this request changes state and needs admin rights".into());
    }
    check_origin(req)
}

/// Refuse a state change a web page of another site asked for (CSRF): its
/// `Origin` must name the host the request was sent to.
fn check_origin(req: &ApiRequest) -> Result<(), String> {
    let Some(origin) = req.header("Origin") else {
        return Ok(());
    };
    let authority = origin
        .split_once("://")
        .map(|(_, a)| a.trim_end_matches('/'))
        .unwrap_or("");
    match req.header("Host") {
        Some(host) if !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim()) => {
            Ok(())
        }
        _ => Err(format!("foreign Origin `{origin}` refused")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target("/a?b=1"), ("/a", "b=1"));
        assert_eq!(split_target("/a"), ("/a", ""));
        assert_eq!(split_target("http://h:1/a?x#f"), ("/a", "x"));
        assert_eq!(split_target("http://h"), ("/", ""));
        assert_eq!(
            split_target("/p?{\"a\":\"x://y\"}"),
            ("/p", "{\"a\":\"x://y\"}")
        );
    }

    #[test]
    fn paths_find_their_routes() {
        assert_eq!(find("/").map(|(r, _)| r.path), Some("/"));
        assert_eq!(find("/programs").map(|(_, s)| s), Some(None));
        assert_eq!(find("/programs/").map(|(_, s)| s), Some(None));
        assert_eq!(find("/programs/web").map(|(_, s)| s), Some(Some("web")));
        assert!(find("/programsx").is_none());
        assert!(find("/version/x").is_none());
        assert!(find("/nope").is_none());
        assert_eq!(
            find("/conf/files").map(|(r, _)| r.path),
            Some("/conf/files")
        );
        assert!(find("/conf").is_none());
    }

    #[test]
    fn every_route_has_help_and_methods() {
        for r in ROUTES {
            assert!(!r.help.is_empty(), "{}", r.path);
            assert!(!r.methods.is_empty(), "{}", r.path);
        }
    }

    fn with_headers(headers: &[(&str, &str)]) -> ApiRequest {
        let mut r = ApiRequest::new("PUT", "/programs");
        r.headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        r
    }

    #[test]
    fn access_rules() {
        assert!(check_access(&with_headers(&[]), true).is_ok());
        assert!(check_access(&with_headers(&[("x-tend-access", "admin")]), true).is_ok());
        assert!(check_access(&with_headers(&[("X-Tend-Access", "read")]), false).is_ok());
        assert!(check_access(&with_headers(&[("X-Tend-Access", "read")]), true).is_err());
        assert!(
            check_access(
                &with_headers(&[("X-Tend-Access", "admin"), ("X-Tend-Access", "read")]),
                true
            )
            .is_err()
        );
        assert!(check_access(&with_headers(&[("X-Tend-Access", "root")]), false).is_err());
    }

    #[test]
    fn origin_rules() {
        let same = with_headers(&[("Host", "h:8080"), ("Origin", "http://h:8080")]);
        assert!(check_access(&same, true).is_ok());
        let foreign = with_headers(&[("Host", "h:8080"), ("Origin", "http://evil.example")]);
        assert!(check_access(&foreign, true).is_err());
        assert!(check_access(&foreign, false).is_ok());
        let null = with_headers(&[("Host", "h"), ("Origin", "null")]);
        assert!(check_access(&null, true).is_err());
        let no_host = with_headers(&[("Origin", "http://h")]);
        assert!(check_access(&no_host, true).is_err());
    }
}
