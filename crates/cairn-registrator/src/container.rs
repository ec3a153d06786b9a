//! The source-neutral picture of one running unit (a Docker container or a task process):
//! everything the metadata parser and naming rules need, and nothing tied to Docker's API,
//! so the core can be tested with plain values.

use std::collections::BTreeMap;

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// Parses Docker's `tcp`/`udp` suffix (`sctp` and others are not registrable).
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// One exposed port and, when published, where it is bound on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// The container-side (exposed) port.
    pub exposed: u16,
    pub proto: Proto,
    /// The host IP of the binding; `None`, `""`, `0.0.0.0` and `::` all mean "every address".
    pub host_ip: Option<String>,
    /// The published host port; `None` when the port is only exposed.
    pub host_port: Option<u16>,
}

/// Lifecycle state as far as registration cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    /// Told to stop (a `kill` with a terminating signal): drain now, before `die`.
    Stopping,
    /// Not running; the exit code when known.
    Exited(Option<i64>),
}

/// The engine's own health verdict (Docker `HEALTHCHECK`), when the image defines one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// One container or task process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Engine ID (full).
    pub id: String,
    /// Name without Docker's leading `/`.
    pub name: String,
    /// Image reference as given (`repo/name:tag`).
    pub image: String,
    /// Environment as `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Exposed ports with their bindings.
    pub ports: Vec<PortBinding>,
    /// The container's own IP on its primary network (for `-internal`).
    pub ip: Option<String>,
    pub state: RunState,
    pub health: Option<Health>,
}

impl Container {
    /// Whether services of this container should be registered now.
    pub fn is_serving(&self) -> bool {
        self.state == RunState::Running && self.health != Some(Health::Unhealthy)
    }
}
