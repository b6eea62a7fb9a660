//! Building responses and decoding URL parts: the small pieces every endpoint uses.

use super::ApiResponse;
use super::json::Object;
use crate::shared::{Refusal, Reply};
use serde_json::Value;

/// The content type of every JSON answer.
const JSON_TYPE: &str = "application/json";

/// A JSON answer with this status.
pub(crate) fn json(status: u16, value: &Value) -> ApiResponse {
    // Serializing a `Value` cannot fail (its map keys are strings); the
    // fallback only keeps this function total.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, body)
}

/// A JSON answer whose body is already written.
pub(crate) fn json_bytes(status: u16, body: Vec<u8>) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("Content-Type".to_string(), JSON_TYPE.to_string())],
        body,
    }
}

/// A plain-text answer (the Prometheus format).
pub(crate) fn text(status: u16, content_type: &str, body: String) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("Content-Type".to_string(), content_type.to_string())],
        body: body.into_bytes(),
    }
}

/// pies success: `{"status":"OK"}`.
pub(crate) fn pies_ok() -> ApiResponse {
    json_bytes(200, br#"{"status":"OK"}"#.to_vec())
}

/// pies failure: `{"status":"ER","message":…}`.
pub(crate) fn pies_error(status: u16, message: impl AsRef<str>) -> ApiResponse {
    pies_error_text(status, message.as_ref())
}

fn pies_error_text(status: u16, message: &str) -> ApiResponse {
    let body = Object::new()
        .str("message", message)
        .str("status", "ER")
        .finish();
    json_bytes(status, body)
}

/// A pies answer to a request the main loop carried out or refused.
pub(crate) fn pies_reply(reply: Reply) -> ApiResponse {
    match reply {
        Ok(()) => pies_ok(),
        Err(Refusal { status, message }) => pies_error_text(status, &message),
    }
}

/// Fluentd RPC failure: `{"ok":false,"message":…}`.
pub(crate) fn rpc_error(status: u16, message: impl AsRef<str>) -> ApiResponse {
    rpc_error_text(status, message.as_ref())
}

fn rpc_error_text(status: u16, message: &str) -> ApiResponse {
    let body = Object::new()
        .str("message", message)
        .raw("ok", b"false")
        .finish();
    json_bytes(status, body)
}

/// Add a header to a response.
pub(crate) fn with_header(mut response: ApiResponse, name: &str, value: String) -> ApiResponse {
    response.headers.push((name.to_string(), value));
    response
}

/// Why a percent-encoded string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub String);

/// Decode `%XX` escapes (and `+` as a space when `plus_is_space`, as in
/// form-encoded query strings). The result must be UTF-8.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, DecodeError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError(format!("bad percent escape at byte {i}"))),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError("not UTF-8 after decoding".to_string()))
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Split a form-encoded query string into decoded `(name, value)` pairs, in
/// order. `name` alone (no `=`) gives an empty value.
pub(crate) fn query_pairs(query: &str) -> Result<Vec<(String, String)>, DecodeError> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(percent_decode("a%20b+c", false).unwrap(), "a b+c");
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("%7B%22op%22%7d", false).unwrap(), "{\"op\"}");
    }

    #[test]
    fn rejects_bad_escapes_and_non_utf8() {
        assert!(percent_decode("%", false).is_err());
        assert!(percent_decode("%4", false).is_err());
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
    }

    #[test]
    fn splits_query_pairs() {
        let pairs = query_pairs("a=1&b&&c=x%3Dy+z").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new()),
                ("c".to_string(), "x=y z".to_string()),
            ]
        );
    }

    #[test]
    fn json_answers_carry_the_content_type() {
        let r = pies_error(404, "nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), json!({"status": "ER", "message": "nope"}));
    }
}
