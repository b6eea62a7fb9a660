//! `/fleet/configs`: where the fleet agent (a child process) hands over the
//! configs it pulled from the ConfigServer.

use super::ApiResponse;
use super::reply;
use super::router::Ctx;
use crate::shared::Request;
use serde_json::Value;

/// `PUT /fleet/configs` with `{"configs":[{"name":N,"content":TEXT},…]}`:
/// replace every fleet-provided component set. Refused as a whole (and
/// nothing changes) when any config does not parse.
pub(crate) fn configs(ctx: &Ctx<'_>) -> ApiResponse {
    let parsed: Value = match serde_json::from_slice(ctx.body) {
        Ok(v) => v,
        Err(e) => return reply::pies_error(400, format!("body: invalid JSON: {e}")),
    };
    let Some(list) = parsed.get("configs").and_then(Value::as_array) else {
        return reply::pies_error(
            400,
            "body: expected {\"configs\":[{\"name\":…,\"content\":…}]}",
        );
    };
    let mut configs = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        match (
            c.get("name").and_then(Value::as_str),
            c.get("content").and_then(Value::as_str),
        ) {
            (Some(name), Some(content)) => configs.push((name.to_string(), content.to_string())),
            _ => {
                return reply::pies_error(
                    400,
                    format!("configs[{i}]: needs string `name` and `content`"),
                );
            }
        }
    }
    reply::pies_reply(ctx.shared.request(Request::ApplyFleet(configs)))
}
