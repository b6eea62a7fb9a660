//! Fluentd-compatible RPC endpoints (`/api/…`): the signals, over HTTP.

use super::ApiResponse;
use super::reply;
use super::router::Ctx;
use crate::shared::{Request, ShutdownKind};

/// The request each RPC path stands for.
fn request_for(path: &str) -> Option<Request> {
    Some(match path {
        "/api/processes.interruptWorkers" | "/api/processes.killWorkers" => {
            Request::Shutdown(ShutdownKind::Exit)
        }
        "/api/processes.flushBuffersAndKillWorkers" => {
            Request::Shutdown(ShutdownKind::FlushAndExit)
        }
        "/api/plugins.flushBuffers" => Request::Flush,
        "/api/config.gracefulReload" => Request::Reload { graceful: true },
        "/api/config.reload" => Request::Reload { graceful: false },
        _ => return None,
    })
}

/// Carry out an RPC; `{"ok":true}` only once the main loop accepted it.
pub(crate) fn handle(ctx: &Ctx<'_>) -> ApiResponse {
    let Some(request) = request_for(ctx.route) else {
        return reply::rpc_error(404, "no such RPC");
    };
    match ctx.shared.request(request) {
        Ok(()) => reply::json_bytes(200, br#"{"ok":true}"#.to_vec()),
        Err(refusal) => reply::rpc_error(refusal.status, refusal.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_path_has_a_request() {
        for (path, expected) in [
            (
                "/api/processes.interruptWorkers",
                Request::Shutdown(ShutdownKind::Exit),
            ),
            (
                "/api/processes.killWorkers",
                Request::Shutdown(ShutdownKind::Exit),
            ),
            (
                "/api/processes.flushBuffersAndKillWorkers",
                Request::Shutdown(ShutdownKind::FlushAndExit),
            ),
            ("/api/plugins.flushBuffers", Request::Flush),
            (
                "/api/config.gracefulReload",
                Request::Reload { graceful: true },
            ),
            ("/api/config.reload", Request::Reload { graceful: false }),
        ] {
            assert_eq!(request_for(path), Some(expected), "{path}");
        }
        assert_eq!(request_for("/api/nope"), None);
    }
}
