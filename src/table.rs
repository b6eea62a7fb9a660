//! The component table: every supervised process and its state machine.
//!
//! The table lives inside [`crate::shared::State`], behind the one mutex the
//! HTTP threads and the main loop share. Only the main loop changes it; the
//! HTTP threads read it (to describe components) and ask the main loop for
//! changes through [`crate::shared::Shared::request`].
//!
//! Status transitions (pies names):
//!
//! ```text
//!  stopped ──start──▶ running ──exit──▶ (respawn) running | sleeping | finished | stopped
//!     ▲                  │
//!     └──exit/SIGKILL── stopping ◀──stop──┘
//!  sleeping ──wake-up timer──▶ running
//! ```

use crate::config::{ComponentSpec, Mode};
use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

/// A component's status, as the pies API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not running and not due to run.
    Stopped,
    /// Its process is alive.
    Running,
    /// An inetd listener (reserved; tend has no inetd mode yet).
    Listener,
    /// Throttled after too many restarts; `wakeup` says when it tries again.
    Sleeping,
    /// The stop signal was sent; SIGKILL follows at `stop_deadline`.
    Stopping,
    /// A `once`/`startup`-style component that ran to completion.
    Finished,
}

impl Status {
    /// Every status with its API name.
    pub const ALL: [(Status, &'static str); 6] = [
        (Status::Stopped, "stopped"),
        (Status::Running, "running"),
        (Status::Listener, "listener"),
        (Status::Sleeping, "sleeping"),
        (Status::Stopping, "stopping"),
        (Status::Finished, "finished"),
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        Status::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, n)| *n)
            .unwrap_or("stopped")
    }

    /// Parse an API name.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(s, _)| *s)
    }
}

/// What an entry of the table is (the pies `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A configured component.
    Component,
    /// A command run by a `return-code … { exec … }` action.
    Command,
}

impl Kind {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Command => "command",
        }
    }
}

/// Who put a component in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file (or `tend -- CMD`).
    Config,
    /// A fleet ConfigServer config pulled by the agent.
    Fleet,
    /// tend itself: the TCP gateway or the ConfigServer child.
    Internal,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Component {
    /// The configuration it runs with.
    pub spec: ComponentSpec,
    /// Component or exit-action command.
    pub kind: Kind,
    /// Who added it.
    pub origin: Origin,
    /// Current status.
    pub status: Status,
    /// False when disabled by a flag, a `disable` action or an API stop.
    pub active: bool,
    /// PID of the running process.
    pub pid: Option<i32>,
    /// How many times it was started after the first time.
    pub restarts: u32,
    /// Last exit: the status, or 128+N when killed by signal N.
    pub exit_code: Option<i32>,
    /// Wall-clock time of the last start.
    pub started: Option<SystemTime>,
    /// Monotonic time of the last start (for uptime).
    pub started_at: Option<Instant>,
    /// When a sleeping or backing-off component is tried again.
    pub wakeup: Option<Instant>,
    /// When a stopping component gets SIGKILL.
    pub stop_deadline: Option<Instant>,
    /// Start times inside the throttle window.
    pub recent_starts: VecDeque<Instant>,
    /// Restart it once its current process is gone (restart request, reload).
    pub restart_pending: bool,
    /// Drop it from the table once its process is gone (removed by a reload).
    pub remove_pending: bool,
}

impl Component {
    /// A new, stopped row for `spec`.
    pub fn new(spec: ComponentSpec, kind: Kind, origin: Origin) -> Component {
        let active = !spec.flags.disable;
        Component {
            spec,
            kind,
            origin,
            status: Status::Stopped,
            active,
            pid: None,
            restarts: 0,
            exit_code: None,
            started: None,
            started_at: None,
            wakeup: None,
            stop_deadline: None,
            recent_starts: VecDeque::new(),
            restart_pending: false,
            remove_pending: false,
        }
    }

    /// The component's tag.
    pub fn tag(&self) -> &str {
        &self.spec.tag
    }

    /// The component's mode.
    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// Has a live process (running or stopping).
    pub fn is_alive(&self) -> bool {
        self.pid.is_some()
    }
}

/// All components, in declaration order (which is also start order among peers).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The rows.
    pub components: Vec<Component>,
}

impl Table {
    /// The row with this tag.
    pub fn get(&self, tag: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.spec.tag == tag)
    }

    /// The row with this tag, mutably.
    pub fn get_mut(&mut self, tag: &str) -> Option<&mut Component> {
        self.components.iter_mut().find(|c| c.spec.tag == tag)
    }

    /// The row running this PID.
    pub fn by_pid_mut(&mut self, pid: i32) -> Option<&mut Component> {
        self.components.iter_mut().find(|c| c.pid == Some(pid))
    }
}
