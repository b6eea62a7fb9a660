//! The HTTP control API served in-process on UNIX sockets.
//!
//! The API is split in two layers so the interesting part can be tested and
//! fuzzed without sockets:
//!
//! - [`route`] is the whole API as a function from a plain [`ApiRequest`] to a
//!   plain [`ApiResponse`]. It reads the shared state under the lock and asks
//!   the main loop for every change through [`crate::shared::Shared::request`].
//! - [`serve_unix`] binds a UNIX socket, runs tiny_http on it and converts its
//!   requests to and from the plain types.
//!
//! Endpoint families, each in its own file: the pies Control API
//! (`programs.rs`, `instance.rs`), the Fluentd RPC endpoints (`rpc.rs`) and the
//! Pegasus-style introspection (`introspect.rs`, `metrics.rs`).

mod fleet;
mod gateway_socket;
mod http;
mod instance;
mod introspect;
pub(crate) mod json;
mod metrics;
mod programs;
mod reply;
mod router;
mod rpc;
mod selector;

pub use http::{ApiServer, GATEWAY_HEADER, SocketPolicy, serve_unix, serve_unix_with};
pub use router::route;
pub use selector::{Selector, SelectorError};

/// Largest request body the API reads. Larger ones are refused with 413
/// before a byte of the body is read.
pub const MAX_BODY: usize = 1 << 20;

/// The header the TCP gateway sets on every request it relays: `admin` or
/// `read`. Requests without it came straight from the UNIX socket (admin).
pub const ACCESS_HEADER: &str = "X-Tend-Access";

/// An HTTP request as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    /// The method, upper case (`GET`, `PUT`…).
    pub method: String,
    /// The request target: `path?query`, still percent-encoded.
    pub url: String,
    /// Header names and values as received.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: &str) -> ApiRequest {
        ApiRequest {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Headers, `Content-Type` included.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests;
