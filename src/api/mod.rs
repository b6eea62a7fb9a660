//! The HTTP control API served in-process on UNIX sockets.

use crate::shared::Shared;
use std::path::Path;
use std::sync::Arc;

/// A running API server (stub until the API lands).
pub struct ApiServer;

impl ApiServer {
    /// Stop serving.
    pub fn shutdown(self) {}
}

/// Serve the API on a UNIX socket.
pub fn serve_unix(_shared: Arc<Shared>, _path: &Path) -> std::io::Result<ApiServer> {
    Ok(ApiServer)
}
