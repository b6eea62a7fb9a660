//! Reloads: turning a new configuration into table changes.
//!
//! The table is reconciled against the *desired* set of components: the
//! configuration file's, tend's own helpers (gateway, ConfigServer, agent)
//! and the fleet agent's. A graceful reload touches only what changed; a
//! full reload restarts everything. An invalid file changes nothing.

use super::Supervisor;
use crate::config::{self, ComponentSpec, Config, Mode};
use crate::shared::{Refusal, Reply, ShutdownKind, State};
use crate::table::{Component, Kind, Origin, Status};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

impl Supervisor {
    /// Re-read the configuration file and apply it.
    pub(super) fn reload(&mut self, st: &mut State, graceful: bool) -> Reply {
        let Some(path) = st.config_path.clone() else {
            return Err(Refusal::new(
                409,
                "no configuration file to reload (tend -- CMD mode)",
            ));
        };
        let config = match config::load(&path, self.opts.syntax) {
            Ok(c) => c,
            Err(errors) => {
                st.stats.reload_failures += 1;
                for e in &errors.0 {
                    log::error!("reload refused: {e}");
                }
                return Err(Refusal::new(
                    422,
                    format!("configuration not reloaded, the running one is kept:\n{errors}"),
                ));
            }
        };
        let previous = st.config.clone();
        st.config = Arc::new(config);
        if let Err(message) = self.reconcile(st, !graceful) {
            st.config = previous;
            st.stats.reload_failures += 1;
            return Err(Refusal::new(422, message));
        }
        if st.config.control != previous.control {
            log::info!("reload: the `control` settings changed; applying them");
            self.listeners_stale = true;
        }
        st.tunables.shutdown_timeout = st.config.shutdown_timeout;
        st.tunables.max_restarts = st.config.throttle.max_restarts;
        st.tunables.restart_window = st.config.throttle.window;
        st.tunables.sleep_time = st.config.throttle.sleep;
        st.stats.reloads += 1;
        log::info!(
            "configuration reloaded ({})",
            if graceful { "graceful" } else { "full" }
        );
        Ok(())
    }

    /// Replace the fleet components with the agent's configs.
    pub(super) fn apply_fleet(&mut self, st: &mut State, configs: Vec<(String, String)>) -> Reply {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (name, text) in configs {
            match config::parse_untrusted(&text, Path::new(&format!("fleet:{name}"))) {
                Ok(c) => match fleet_config_problem(&c) {
                    None => parsed.push((name, c)),
                    Some(problem) => errors.push(format!("fleet:{name}: {problem}")),
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(Refusal::new(422, errors.join("\n")));
        }
        let previous = std::mem::replace(&mut self.fleet, parsed);
        if let Err(message) = self.reconcile(st, false) {
            self.fleet = previous;
            return Err(Refusal::new(422, message));
        }
        Ok(())
    }

    /// Every component that should exist, with where it came from.
    fn desired(&self, st: &State) -> Result<Vec<(ComponentSpec, Origin)>, String> {
        let mut out: Vec<(ComponentSpec, Origin)> = Vec::new();
        if let (Some(argv), Some(tag)) = (&self.opts.command, &self.main_tag) {
            let mut spec = ComponentSpec::new(tag, argv.clone());
            spec.mode = Mode::Once;
            out.push((spec, Origin::Config));
        }
        for spec in &st.config.components {
            out.push((spec.clone(), Origin::Config));
        }
        for spec in self.helper_specs(&st.config) {
            out.push((spec, Origin::Internal));
        }
        for (name, cfg) in &self.fleet {
            for spec in &cfg.components {
                if out.iter().any(|(s, _)| s.tag == spec.tag) {
                    return Err(format!(
                        "fleet config `{name}`: component `{}` is already defined locally",
                        spec.tag
                    ));
                }
                out.push((spec.clone(), Origin::Fleet));
            }
        }
        Ok(out)
    }

    /// tend's own supervised helpers: a gateway per TCP listener, the
    /// ConfigServer, the fleet agent.
    fn helper_specs(&self, config: &Config) -> Vec<ComponentSpec> {
        let mut specs = Vec::new();
        for addr in self.inet_listeners(config) {
            // A listener added by a reload has no socket yet: its gateway
            // starts once the listeners are applied (or never, if its socket
            // could not be made, which was logged).
            let Some(socket) = self.listeners.gateway_socket(&addr) else {
                log::debug!("inet://{addr}: no gateway socket (yet)");
                continue;
            };
            let mut spec =
                crate::gateway::component_spec(&config.control, &addr, socket, &self.exe);
            spec.env.set.push((
                crate::gateway::SECRET_ENV.to_string(),
                self.gateway_secret.clone(),
            ));
            specs.push(spec);
        }
        if let Some(server) = &config.config_server {
            specs.push(crate::fleet::server::component_spec(server, &self.exe));
        }
        if let (Some(agent), Some(upstream)) = (&config.agent, self.listeners.first_unix()) {
            specs.push(crate::fleet::agent::component_spec(
                agent, config, upstream, &self.exe,
            ));
        }
        specs
    }

    /// Bring the table in line with the desired components. `restart_all`
    /// restarts every running component (full reload); otherwise only the
    /// changed ones restart and the unchanged keep their process.
    pub(super) fn reconcile(&mut self, st: &mut State, restart_all: bool) -> Result<(), String> {
        let desired = self.desired(st)?;
        let now = Instant::now();
        let mut old: Vec<Component> = std::mem::take(&mut st.table.components);
        let mut next: Vec<Component> = Vec::with_capacity(desired.len());
        for (spec, origin) in desired {
            let existing = old
                .iter()
                .position(|c| {
                    c.kind == Kind::Component && c.spec.tag == spec.tag && !c.remove_pending
                })
                .map(|i| old.remove(i));
            next.push(match existing {
                None => Component::new(spec, Kind::Component, origin),
                Some(mut c) => {
                    let changed = !c.spec.runs_like(&spec);
                    if changed || restart_all {
                        if changed {
                            log::info!("{}: configuration changed", spec.tag);
                        }
                        if c.pid.is_some() {
                            c.restart_pending = true;
                            self.stop(&mut c, now);
                        } else if c.status == Status::Finished || c.status == Status::Sleeping {
                            c.status = Status::Stopped;
                            c.started = None;
                            c.wakeup = None;
                        }
                        c.active = !spec.flags.disable;
                        c.recent_starts.clear();
                    }
                    c.spec = spec;
                    c.origin = origin;
                    c
                }
            });
        }
        // Whatever is left was removed from the configuration: stop it and
        // drop it once its process is gone (exit-action commands stay).
        for mut c in old {
            if c.kind == Kind::Command {
                next.push(c);
                continue;
            }
            if c.pid.is_some() {
                log::info!("{}: removed from the configuration; stopping", c.spec.tag);
                c.remove_pending = true;
                c.restart_pending = false;
                self.stop(&mut c, now);
                next.push(c);
            }
        }
        st.table.components = next;
        Ok(())
    }

    /// `telinit N`: switch runlevel; 0 and 6 halt and reboot.
    pub(super) fn change_runlevel(&mut self, st: &mut State, level: char) -> Reply {
        match level {
            '0' => self.begin_shutdown(st, ShutdownKind::Poweroff),
            '6' => self.begin_shutdown(st, ShutdownKind::Reboot),
            '1'..='5' | 'S' | 's' | 'a' | 'b' | 'c' => {
                st.runlevel = level;
                let now = Instant::now();
                let leaving: Vec<usize> = (0..st.table.components.len())
                    .filter(|&i| {
                        st.table.components.get(i).is_some_and(|c| {
                            c.pid.is_some()
                                && !c.spec.runlevels.is_empty()
                                && !c.spec.runlevels.contains(level)
                        })
                    })
                    .collect();
                for i in leaving {
                    if let Some(c) = st.table.components.get_mut(i) {
                        self.stop(c, now);
                    }
                }
                for c in st.table.components.iter_mut() {
                    // Once-style entries of the new level run again.
                    if c.spec.runlevels.contains(level)
                        && c.pid.is_none()
                        && c.status == Status::Finished
                    {
                        c.status = Status::Stopped;
                        c.started = None;
                    }
                }
                log::info!("switched to runlevel {level}");
            }
            other => return Err(Refusal::new(400, format!("invalid runlevel `{other}`"))),
        }
        Ok(())
    }

    /// SIGPWR: start the power components /etc/powerstatus asks for
    /// (`F` failing, `L` low, `O` back), as SysV init does.
    pub(super) fn power_event(&mut self, st: &mut State) {
        let status = std::fs::read_to_string("/etc/powerstatus").unwrap_or_default();
        let modes: &[Mode] = match status.trim_start().chars().next() {
            Some('O') => &[Mode::Powerokwait],
            Some('L') => &[Mode::Powerfailnow],
            _ => &[Mode::Powerfail, Mode::Powerwait],
        };
        self.trigger_modes(st, modes);
    }
}

/// A fleet config may only hold components: it must not change how tend
/// itself listens or fetches. (`include` is refused by the parser already.)
fn fleet_config_problem(c: &Config) -> Option<&'static str> {
    if c.config_server.is_some() || c.agent.is_some() {
        return Some("`config-server` and `agent` are not allowed in a fleet config");
    }
    if c.control != crate::config::Control::default() {
        return Some("`control` is not allowed in a fleet config");
    }
    None
}
