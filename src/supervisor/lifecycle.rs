//! Component lifecycles: starting, reaping, exits, stopping, throttling,
//! and the shutdown sequence.

use super::{Phase, Shutdown, Supervisor, pid1};
use crate::config::{ExitAction, ExitMatch, Mode, Throttle};
use crate::shared::{Refusal, Reply, ShutdownKind, State};
use crate::spawn;
use crate::table::{Component, Kind, Origin, Status};
use std::time::{Duration, Instant, SystemTime};

/// Back-off after a failed exec, so a missing binary is retried calmly
/// (the throttle still counts each try and puts it to sleep eventually).
const SPAWN_FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// How many plan/spawn/record rounds one wake-up may take: enough for any
/// dependency chain, bounded so a bug cannot spin the loop.
const MAX_START_PASSES: usize = 64;

/// A start planned under the lock and carried out without it.
struct Launch {
    tag: String,
    spec: crate::config::ComponentSpec,
    session: spawn::Session,
    at: Instant,
}

/// How a reaped process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited(i32),
    Killed(i32),
}

impl Ended {
    fn from_wait_status(status: i32) -> Ended {
        if libc::WIFSIGNALED(status) {
            Ended::Killed(libc::WTERMSIG(status))
        } else {
            Ended::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// The shell convention: the status, or 128+N for signal N.
    fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Killed(s) => 128 + s,
        }
    }

    fn matches(self, m: &ExitMatch) -> bool {
        match (self, m) {
            (Ended::Exited(c), ExitMatch::Code(x)) => c == *x,
            (Ended::Killed(s), ExitMatch::Signal(x)) => s == *x,
            _ => false,
        }
    }
}

/// Modes whose components must finish before later ranks start.
fn waited(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::Startup | Mode::Sysinit | Mode::Bootwait | Mode::Wait
    )
}

/// Boot order: sysinit/startup, then boot/bootwait, then wait, then the rest.
fn rank(mode: Mode) -> u8 {
    match mode {
        Mode::Sysinit | Mode::Startup => 0,
        Mode::Boot | Mode::Bootwait => 1,
        Mode::Wait => 2,
        _ => 3,
    }
}

/// Modes started automatically in normal operation (others wait for an
/// event: ctrlaltdel, power, ondemand, shutdown, restart).
fn starts_automatically(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::Respawn
            | Mode::Once
            | Mode::Startup
            | Mode::Sysinit
            | Mode::Boot
            | Mode::Bootwait
            | Mode::Wait
            | Mode::Askfirst
    )
}

/// Send `sig` to a component's process, or its whole group with `siggroup`.
fn signal_component(c: &Component, sig: i32, group: bool) {
    if let Some(pid) = c.pid {
        let target = if group { -pid } else { pid };
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(target, sig) };
    }
}

impl Supervisor {
    /// Reap every exited child. SIGCHLD coalesces, so one signal may stand
    /// for many exits: loop until the kernel has nothing more.
    pub(super) fn reap(&mut self, st: &mut State) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            st.stats.reaped_total += 1;
            let ended = Ended::from_wait_status(status);
            if st.table.by_pid_mut(pid).is_some() {
                self.on_exit(st, pid, ended);
            } else {
                st.stats.reaped_orphans += 1;
                if self.opts.warn_on_reap {
                    log::warn!("reaped zombie process with pid {pid}");
                }
            }
        }
    }

    /// A component's process ended: decide what comes next.
    fn on_exit(&mut self, st: &mut State, pid: i32, ended: Ended) {
        let now = Instant::now();
        let defaults = current_throttle_defaults(st);
        let shutting_down = self.phase != Phase::Running;
        let Some(index) = st.table.components.iter().position(|c| c.pid == Some(pid)) else {
            return;
        };
        let c = &mut st.table.components[index];
        c.pid = None;
        c.stop_deadline = None;
        c.exit_code = Some(ended.code());
        let was_stopping = c.status == Status::Stopping;
        log::info!("{} (pid {pid}) exited with {}", c.spec.tag, describe(ended));

        if c.kind == Kind::Command || c.remove_pending {
            st.table.components.remove(index);
            return;
        }
        if self.main_tag.as_deref() == Some(c.spec.tag.as_str()) {
            // tini semantics: the command's status becomes tend's, unless
            // `-e` says that status means success.
            c.status = Status::Finished;
            let code = ended.code();
            self.exit_code = if self.opts.remap_exit.contains(&code) {
                0
            } else {
                code
            };
            self.begin_shutdown(st, ShutdownKind::Exit);
            return;
        }
        if was_stopping {
            c.status = Status::Stopped;
            if c.restart_pending && !shutting_down {
                c.restart_pending = false;
                c.active = true;
                c.demand = true;
            }
            return;
        }
        let rule = c
            .spec
            .return_codes
            .iter()
            .find(|r| r.codes.iter().any(|m| ended.matches(m)))
            .cloned();
        if let Some(rule) = &rule {
            if let Some(cmd) = &rule.exec {
                let tag = format!("{}-exit-action", c.spec.tag);
                let code = ended.code();
                self.run_exit_command(st, &tag, cmd, code);
            }
        }
        let Some(c) = st.table.components.get_mut(index) else {
            return;
        };
        let action = rule.and_then(|r| r.action);
        match action {
            Some(ExitAction::Disable) => {
                log::info!("{}: disabled by its return-code action", c.spec.tag);
                c.active = false;
                c.status = Status::Stopped;
            }
            Some(ExitAction::Shutdown) => {
                log::info!("{}: return-code action shuts tend down", c.spec.tag);
                c.status = Status::Finished;
                self.begin_shutdown(st, ShutdownKind::Exit);
            }
            Some(ExitAction::Restart) => respawn_or_sleep(c, now, defaults),
            None if c.spec.mode.respawns() && !shutting_down => respawn_or_sleep(c, now, defaults),
            None => c.status = Status::Finished,
        }
    }

    /// Run a `return-code { exec … }` command as a `command` entry.
    fn run_exit_command(&mut self, st: &mut State, tag: &str, cmd: &str, code: i32) {
        let mut spec =
            crate::config::ComponentSpec::new(tag, vec!["/bin/sh".into(), "-c".into(), cmd.into()]);
        spec.mode = Mode::Once;
        spec.env
            .set
            .push(("TEND_EXIT_CODE".into(), code.to_string()));
        match spawn::spawn(&spec, spawn::Session::New) {
            Ok(spawned) => {
                let mut entry = Component::new(spec, Kind::Command, Origin::Internal);
                entry.pid = Some(spawned.pid);
                entry.status = Status::Running;
                entry.started = Some(SystemTime::now());
                entry.started_at = Some(Instant::now());
                self.log_pipes.add(tag, spawned.log_pipes);
                st.table.components.push(entry);
            }
            Err(e) => log::error!("{e}"),
        }
    }

    /// Fire due timers and start whatever is due. Called after every event.
    pub(super) fn tick(&mut self, st: &mut State, now: Instant) {
        for c in st.table.components.iter_mut() {
            if let Some(deadline) = c.stop_deadline {
                if deadline <= now && c.pid.is_some() {
                    log::warn!(
                        "{}: did not stop within {:?}; sending SIGKILL",
                        c.spec.tag,
                        c.spec.stop_timeout
                    );
                    signal_component(c, libc::SIGKILL, c.spec.flags.siggroup);
                    c.stop_deadline = None;
                }
            }
            if let Some(wakeup) = c.wakeup {
                if wakeup <= now && c.pid.is_none() {
                    c.wakeup = None;
                    if c.status == Status::Sleeping {
                        log::info!("{}: waking up", c.spec.tag);
                        c.status = Status::Stopped;
                        c.recent_starts.clear();
                    }
                }
            }
        }
        // Starts in normal operation happen in `start_due`, outside the lock.
        if self.phase != Phase::Running {
            self.advance_shutdown(st, now);
        }
    }

    /// Start every component that should run and may: its rank's
    /// predecessors are done and its prerequisites are up. Repeats so a
    /// chain of dependencies comes up in one call.
    ///
    /// The shared lock is *not* held while spawning: a batch is planned
    /// under the lock, then each member is spawned without it and recorded
    /// under it again. Only the main loop changes the table, so nothing
    /// moves in between; API readers see each start as soon as it happened.
    pub(super) fn start_due(&mut self) {
        let shared = self.shared.clone();
        for _ in 0..MAX_START_PASSES {
            let launches = {
                let mut st = shared.lock();
                if self.phase != Phase::Running {
                    return;
                }
                let now = Instant::now();
                self.due_now(&st, now)
                    .into_iter()
                    .filter_map(|i| self.prepare_start(&mut st, i, now))
                    .collect::<Vec<_>>()
            };
            if launches.is_empty() {
                return;
            }
            // Each start is recorded as soon as its spawn returns, not after
            // the whole batch: a process that runs must show its PID in the
            // API (and be found by the reaper's table lookup) right away.
            for launch in launches {
                let result = spawn::spawn(&launch.spec, launch.session);
                self.record_start(&mut shared.lock(), launch, result);
            }
        }
    }

    /// Indices of the components to start now.
    fn due_now(&self, st: &State, now: Instant) -> Vec<usize> {
        // The lowest rank whose waited components have not all finished
        // blocks every higher rank (computed once, not per component).
        let blocking_rank = st
            .table
            .components
            .iter()
            .filter(|o| waited(o.spec.mode) && o.active && in_runlevel(st, o) && !has_run(o))
            .map(|o| rank(o.spec.mode))
            .min();
        (0..st.table.components.len())
            .filter(|&i| self.may_start(st, i, now, blocking_rank))
            .collect()
    }

    /// Should component `i` be started now?
    fn may_start(&self, st: &State, i: usize, now: Instant, blocking_rank: Option<u8>) -> bool {
        let Some(c) = st.table.components.get(i) else {
            return false;
        };
        if c.kind != Kind::Component || c.pid.is_some() || c.remove_pending || !c.active {
            return false;
        }
        if c.status != Status::Stopped || c.wakeup.is_some_and(|w| w > now) {
            return false;
        }
        let wanted = c.demand
            || (starts_automatically(c.spec.mode)
                && (c.spec.mode.respawns() || c.started.is_none())
                && in_runlevel(st, c));
        if !wanted {
            return false;
        }
        if blocking_rank.is_some_and(|r| r < rank(c.spec.mode)) && !c.demand {
            return false;
        }
        c.spec
            .prerequisites
            .iter()
            .all(|p| st.table.get(p).is_some_and(is_up))
    }

    /// Start component `i` now, with the lock held (the shutdown path, where
    /// starts are few).
    fn start(&mut self, st: &mut State, i: usize, now: Instant) {
        if let Some(launch) = self.prepare_start(st, i, now) {
            let result = spawn::spawn(&launch.spec, launch.session);
            self.record_start(st, launch, result);
        }
    }

    /// Book a start of component `i`: counts and timestamps, and what to spawn.
    fn prepare_start(&self, st: &mut State, i: usize, now: Instant) -> Option<Launch> {
        let session = self.session_for(&st.table.components.get(i)?.spec.tag);
        let c = st.table.components.get_mut(i)?;
        c.demand = false;
        if c.started.is_some() {
            c.restarts = c.restarts.saturating_add(1);
        }
        c.started = Some(SystemTime::now());
        c.started_at = Some(now);
        c.recent_starts.push_back(now);
        Some(Launch {
            tag: c.spec.tag.clone(),
            spec: c.spec.clone(),
            session,
            at: now,
        })
    }

    /// Record how a spawn went.
    fn record_start(
        &mut self,
        st: &mut State,
        launch: Launch,
        result: Result<spawn::Spawned, spawn::SpawnError>,
    ) {
        let defaults = current_throttle_defaults(st);
        let Some(c) = st.table.get_mut(&launch.tag) else {
            return;
        };
        match result {
            Ok(spawned) => {
                log::info!("{}: started (pid {})", c.spec.tag, spawned.pid);
                c.pid = Some(spawned.pid);
                c.status = Status::Running;
                self.log_pipes.add(&launch.tag, spawned.log_pipes);
            }
            Err(e) => {
                log::error!("{e}");
                c.exit_code = Some(127);
                if c.spec.mode.respawns() {
                    respawn_or_sleep(c, launch.at, defaults);
                    if c.status == Status::Stopped {
                        c.wakeup = Some(launch.at + SPAWN_FAILURE_BACKOFF);
                    }
                } else {
                    c.status = Status::Finished;
                }
                if self.main_tag.as_deref() == Some(launch.tag.as_str()) {
                    self.exit_code = 127;
                    self.begin_shutdown(st, ShutdownKind::Exit);
                }
            }
        }
    }

    /// Ask component `i` to stop: its stop signal now, SIGKILL at the deadline.
    pub(super) fn stop(&self, c: &mut Component, now: Instant) {
        c.wakeup = None;
        c.demand = false;
        if c.pid.is_none() {
            if matches!(c.status, Status::Sleeping | Status::Running) {
                c.status = Status::Stopped;
            }
            return;
        }
        if c.status == Status::Stopping {
            return;
        }
        log::info!(
            "{}: stopping with SIG{}",
            c.spec.tag,
            crate::signals::name(c.spec.stop_signal)
        );
        signal_component(c, c.spec.stop_signal, c.spec.flags.siggroup);
        // A stopped (SIGSTOP) process would never see the signal otherwise.
        signal_component(c, libc::SIGCONT, c.spec.flags.siggroup);
        c.status = Status::Stopping;
        c.stop_deadline = Some(now + c.spec.stop_timeout);
    }

    /// `PUT /programs`: start the selected components.
    pub(super) fn start_tags(&mut self, st: &mut State, tags: &[String]) -> Reply {
        check_tags(st, tags)?;
        for tag in tags {
            if let Some(c) = st.table.get_mut(tag) {
                c.active = true;
                c.restart_pending = false;
                if c.pid.is_none() {
                    demand_start(c);
                }
            }
        }
        Ok(())
    }

    /// `DELETE /programs`: stop the selected components and keep them down.
    pub(super) fn stop_tags(&mut self, st: &mut State, tags: &[String]) -> Reply {
        check_tags(st, tags)?;
        let now = Instant::now();
        for tag in tags {
            if let Some(c) = st.table.get_mut(tag) {
                c.active = false;
                c.restart_pending = false;
                self.stop(c, now);
            }
        }
        Ok(())
    }

    /// `POST /programs`: restart the selected components.
    pub(super) fn restart_tags(&mut self, st: &mut State, tags: &[String]) -> Reply {
        check_tags(st, tags)?;
        let now = Instant::now();
        for tag in tags {
            if let Some(c) = st.table.get_mut(tag) {
                c.active = true;
                if c.pid.is_some() {
                    c.restart_pending = true;
                    self.stop(c, now);
                } else {
                    demand_start(c);
                }
            }
        }
        Ok(())
    }

    /// SIGUSR1 / `/api/plugins.flushBuffers`: each component's flush signal.
    pub(super) fn flush(&self, st: &State) {
        for c in &st.table.components {
            if let (Some(sig), Some(_)) = (c.spec.flush_signal, c.pid) {
                log::info!(
                    "{}: flushing with SIG{}",
                    c.spec.tag,
                    crate::signals::name(sig)
                );
                signal_component(c, sig, c.spec.flags.siggroup);
            }
        }
    }

    /// Start the components of event-driven modes (ctrlaltdel, power…).
    pub(super) fn trigger_modes(&mut self, st: &mut State, modes: &[Mode]) {
        for c in st.table.components.iter_mut() {
            if modes.contains(&c.spec.mode) && c.active && c.pid.is_none() {
                log::info!("{}: triggered ({})", c.spec.tag, c.spec.mode.name());
                c.status = Status::Stopped;
                c.demand = true;
            }
        }
    }

    /// Begin stopping everything. Idempotent: a second request while
    /// stopping changes nothing but the final action.
    pub(super) fn begin_shutdown(&mut self, st: &mut State, kind: ShutdownKind) {
        if let Some(s) = self.shutdown.as_mut() {
            s.kind = kind;
            return;
        }
        log::info!("shutting down");
        st.shutting_down = true;
        self.shutdown = Some(Shutdown {
            kind,
            deadline: Instant::now() + st.tunables.shutdown_timeout,
        });
        self.phase = Phase::StoppingComponents;
    }

    /// Drive the shutdown sequence one step.
    fn advance_shutdown(&mut self, st: &mut State, now: Instant) {
        let Some(shutdown) = self.shutdown else {
            self.phase = Phase::Done;
            return;
        };
        let overdue = now >= shutdown.deadline;
        if self.phase == Phase::StoppingComponents {
            self.stop_in_dependency_order(st, now, overdue, |c| c.spec.mode != Mode::Shutdown);
            let left = st
                .table
                .components
                .iter()
                .any(|c| c.pid.is_some() && c.spec.mode != Mode::Shutdown);
            if !left {
                self.phase = Phase::ShutdownComponents;
                for c in st.table.components.iter_mut() {
                    if c.spec.mode == Mode::Shutdown && c.active && c.pid.is_none() {
                        c.status = Status::Stopped;
                        c.demand = true;
                    }
                }
            }
        }
        if self.phase == Phase::ShutdownComponents {
            self.start_shutdown_components(st, now);
            if overdue {
                self.stop_in_dependency_order(st, now, true, |_| true);
            }
            let left = st
                .table
                .components
                .iter()
                .any(|c| c.pid.is_some() || c.demand);
            if !left {
                self.phase = self.after_components(st, now);
            }
        }
        if self.phase == Phase::KillingLeftovers && (overdue || pid1::no_children_left()) {
            pid1::kill_everything(libc::SIGKILL);
            self.reap(st);
            self.phase = Phase::Done;
        }
    }

    /// Once components are down: as PID 1, TERM every leftover process and
    /// give them a moment; otherwise we are done.
    fn after_components(&mut self, st: &mut State, now: Instant) -> Phase {
        if std::process::id() == 1 && self.main_tag.is_none() {
            pid1::kill_everything(libc::SIGTERM);
            if let Some(s) = self.shutdown.as_mut() {
                s.deadline = s.deadline.min(now + Duration::from_secs(2)).max(now);
            }
            self.reap(st);
            return Phase::KillingLeftovers;
        }
        Phase::Done
    }

    /// Start the shutdown-mode components whose prerequisites are done.
    fn start_shutdown_components(&mut self, st: &mut State, now: Instant) {
        let due: Vec<usize> = (0..st.table.components.len())
            .filter(|&i| {
                st.table.components.get(i).is_some_and(|c| {
                    c.demand
                        && c.pid.is_none()
                        && c.spec
                            .prerequisites
                            .iter()
                            .all(|p| st.table.get(p).is_none_or(|o| o.pid.is_none()))
                })
            })
            .collect();
        for i in due {
            self.start(st, i, now);
        }
    }

    /// Stop the components `filter` selects, dependents first: a component
    /// is stopped once nothing that requires it is still alive. Past the
    /// deadline, everything left gets SIGKILL.
    fn stop_in_dependency_order(
        &self,
        st: &mut State,
        now: Instant,
        overdue: bool,
        filter: impl Fn(&Component) -> bool,
    ) {
        let alive_dependents = |st: &State, tag: &str| {
            st.table
                .components
                .iter()
                .any(|o| o.pid.is_some() && o.spec.prerequisites.iter().any(|p| p == tag))
        };
        let ready: Vec<usize> = (0..st.table.components.len())
            .filter(|&i| {
                st.table.components.get(i).is_some_and(|c| {
                    c.pid.is_some() && filter(c) && (overdue || !alive_dependents(st, &c.spec.tag))
                })
            })
            .collect();
        for i in ready {
            if let Some(c) = st.table.components.get_mut(i) {
                if overdue {
                    if c.stop_deadline.is_some() || c.status != Status::Stopping {
                        log::warn!("{}: shutdown timeout; sending SIGKILL", c.spec.tag);
                        signal_component(c, libc::SIGKILL, c.spec.flags.siggroup);
                        c.status = Status::Stopping;
                        c.stop_deadline = None;
                    }
                } else {
                    self.stop(c, now);
                }
            }
        }
    }
}

/// The throttle defaults in force: the config's, as changed by `/updateConfig`.
fn current_throttle_defaults(st: &State) -> (Throttle, Throttle) {
    let configured = st.config.throttle;
    let tuned = Throttle {
        max_restarts: st.tunables.max_restarts,
        window: st.tunables.restart_window,
        sleep: st.tunables.sleep_time,
    };
    (configured, tuned)
}

/// The throttle a component runs under: its own, or the tuned default when
/// it inherited the configured default.
fn throttle_for(c: &Component, (configured, tuned): (Throttle, Throttle)) -> Throttle {
    if c.spec.throttle == configured {
        tuned
    } else {
        c.spec.throttle
    }
}

/// After an unrequested exit of a respawning component: back to `stopped`
/// (so it restarts at once), or `sleeping` when it restarted too often.
fn respawn_or_sleep(c: &mut Component, now: Instant, defaults: (Throttle, Throttle)) {
    let throttle = throttle_for(c, defaults);
    while c
        .recent_starts
        .front()
        .is_some_and(|t| now.duration_since(*t) > throttle.window)
    {
        c.recent_starts.pop_front();
    }
    if !c.spec.flags.precious && c.recent_starts.len() > throttle.max_restarts as usize {
        log::warn!(
            "{}: restarted {} times within {:?}; sleeping for {:?}",
            c.spec.tag,
            c.recent_starts.len(),
            throttle.window,
            throttle.sleep
        );
        c.status = Status::Sleeping;
        c.wakeup = Some(now + throttle.sleep);
    } else {
        c.status = Status::Stopped;
    }
}

/// Ask for a start at the next chance, forgetting any sleep or back-off:
/// an explicit request overrides the throttle.
fn demand_start(c: &mut Component) {
    c.status = Status::Stopped;
    c.wakeup = None;
    c.recent_starts.clear();
    c.demand = true;
}

/// Every tag must name a component.
fn check_tags(st: &State, tags: &[String]) -> Reply {
    match tags.iter().find(|t| st.table.get(t).is_none()) {
        Some(t) => Err(Refusal::new(404, format!("no such component `{t}`"))),
        None => Ok(()),
    }
}

/// A prerequisite counts as up when running, or finished (once-style).
fn is_up(c: &Component) -> bool {
    match c.status {
        Status::Running => true,
        Status::Finished => true,
        _ => !c.active && has_run(c),
    }
}

/// Has run to completion at least once (or failed trying).
fn has_run(c: &Component) -> bool {
    c.started.is_some() && c.pid.is_none()
}

/// inittab runlevel filter: an empty list means every runlevel.
fn in_runlevel(st: &State, c: &Component) -> bool {
    c.spec.runlevels.is_empty() || !st.init_mode || c.spec.runlevels.contains(st.runlevel)
}

fn describe(ended: Ended) -> String {
    match ended {
        Ended::Exited(c) => format!("status {c}"),
        Ended::Killed(s) => format!("signal SIG{}", crate::signals::name(s)),
    }
}
