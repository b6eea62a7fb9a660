//! The API's listeners: which sockets the configuration (or `--control`)
//! asks for, and bringing the servers in line with them, at start and after
//! a reload that changed the `control` block.
//!
//! Binding and shutting servers down happen without the shared lock: a
//! server's shutdown waits for its workers, and a worker may need the lock
//! to finish its request.

use super::Supervisor;
use crate::api;
use crate::config::{Config, ListenUrl};
use std::path::{Path, PathBuf};

/// The in-process servers that run, by what they listen for.
#[derive(Default)]
pub(super) struct Listeners {
    /// `unix://` listeners, in configuration order (the agent talks to the first).
    unix: Vec<(PathBuf, api::ApiServer)>,
    /// One private socket per `inet://` listener, which its gateway relays to.
    gateways: Vec<GatewaySocket>,
}

/// The socket a gateway relays one `inet://` listener to.
struct GatewaySocket {
    addr: String,
    path: PathBuf,
    /// Who the socket belongs to (the gateway's user), when tend is root.
    owner: Option<(u32, u32)>,
    server: api::ApiServer,
}

impl Listeners {
    /// The first UNIX socket served, if any.
    pub(super) fn first_unix(&self) -> Option<&Path> {
        self.unix.first().map(|(p, _)| p.as_path())
    }

    /// The private socket the gateway of `addr` relays to.
    pub(super) fn gateway_socket(&self, addr: &str) -> Option<&Path> {
        self.gateways
            .iter()
            .find(|g| g.addr == addr)
            .map(|g| g.path.as_path())
    }

    /// Stop every server and remove its socket.
    pub(super) fn shutdown(self) {
        for (_, server) in self.unix {
            server.shutdown();
        }
        for g in self.gateways {
            g.server.shutdown();
        }
    }

    /// The first `tend-gateway-N.sock` name no running gateway socket uses,
    /// so that a listener added by a reload never takes over another's.
    fn free_gateway_path(&self, dir: &Path) -> PathBuf {
        (1..)
            .map(|n| dir.join(format!("tend-gateway-{n}.sock")))
            .find(|p| self.gateways.iter().all(|g| g.path != *p))
            .unwrap_or_else(|| dir.join("tend-gateway.sock"))
    }
}

impl Supervisor {
    /// Serve exactly the listeners in force: stop those no longer wanted,
    /// start the new ones. Must be called without the shared lock held.
    pub(super) fn apply_listeners(&mut self) {
        let config = self.shared.lock().config.clone();
        self.apply_unix_listeners(self.unix_listeners(&config));
        self.apply_gateway_sockets(&config);
    }

    fn apply_unix_listeners(&mut self, wanted: Vec<PathBuf>) {
        let (keep, retire): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listeners.unix)
            .into_iter()
            .partition(|(p, _)| wanted.contains(p));
        for (path, server) in retire {
            log::info!("control API no longer on unix://{}", path.display());
            server.shutdown();
        }
        self.listeners.unix = keep;
        for path in wanted {
            if self.listeners.unix.iter().any(|(p, _)| *p == path) {
                continue;
            }
            match api::serve_unix(self.shared.clone(), &path) {
                Ok(server) => {
                    log::info!("control API on unix://{}", path.display());
                    self.listeners.unix.push((path, server));
                }
                Err(e) => log::error!("cannot listen on unix://{}: {e}", path.display()),
            }
        }
    }

    /// One private socket per `inet://` listener, owned by the gateway's
    /// unprivileged user and served only to holders of the gateway secret.
    fn apply_gateway_sockets(&mut self, config: &Config) {
        let wanted = self.inet_listeners(config);
        // Without TCP listeners there is no gateway, and no reason to read
        // the user database (NSS) for its user.
        let owner = if wanted.is_empty() {
            None
        } else {
            match gateway_owner(config) {
                Ok(owner) => owner,
                Err(e) => {
                    log::error!("gateway user: {e}");
                    return;
                }
            }
        };
        let (keep, retire): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listeners.gateways)
            .into_iter()
            .partition(|g| wanted.contains(&g.addr) && g.owner == owner);
        for g in retire {
            log::info!("control API no longer on inet://{}", g.addr);
            g.server.shutdown();
        }
        self.listeners.gateways = keep;
        let dir = self
            .listeners
            .first_unix()
            .and_then(Path::parent)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run"));
        for addr in wanted {
            if self.listeners.gateway_socket(&addr).is_some() {
                continue;
            }
            let path = self.listeners.free_gateway_path(&dir);
            let policy = api::SocketPolicy {
                owner,
                gateway_secret: Some(self.gateway_secret.clone()),
            };
            match api::serve_unix_with(self.shared.clone(), &path, policy) {
                Ok(server) => {
                    log::info!("control API on inet://{addr} through the gateway");
                    self.listeners.gateways.push(GatewaySocket {
                        addr,
                        path,
                        owner,
                        server,
                    });
                }
                Err(e) => log::error!("cannot create the gateway socket {}: {e}", path.display()),
            }
        }
    }

    /// The listeners in force: `--control` wins over the configuration; in
    /// `tend -- CMD` mode there is no API unless asked for, as with tini.
    fn control_urls(&self, config: &Config) -> Vec<ListenUrl> {
        if !self.opts.control.is_empty() {
            self.opts.control.clone()
        } else if self.opts.command.is_some() {
            Vec::new()
        } else {
            config.control.sockets.clone()
        }
    }

    /// The UNIX sockets to serve in-process.
    fn unix_listeners(&self, config: &Config) -> Vec<PathBuf> {
        let urls = self.control_urls(config);
        let mut paths: Vec<PathBuf> = urls
            .iter()
            .filter_map(|u| match u {
                ListenUrl::Unix(p) => Some(p.clone()),
                ListenUrl::Inet(_) => None,
            })
            .collect();
        if paths.is_empty() && !urls.is_empty() {
            // TCP only: still give local administrators (and the agent) the
            // default socket; the gateways' sockets go next to it.
            paths.push(PathBuf::from(crate::config::DEFAULT_SOCKET));
        }
        paths
    }

    /// The `inet://` listeners, each served by a gateway child.
    pub(super) fn inet_listeners(&self, config: &Config) -> Vec<String> {
        self.control_urls(config)
            .into_iter()
            .filter_map(|u| match u {
                ListenUrl::Inet(a) => Some(a),
                ListenUrl::Unix(_) => None,
            })
            .collect()
    }
}

/// The gateway user's ids when tend runs as root (who else may own a
/// socket), else `None`: the socket stays tend's own user's.
fn gateway_owner(config: &Config) -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    crate::gateway::gateway_ids(config.control.gateway_user.as_deref()).map(Some)
}
