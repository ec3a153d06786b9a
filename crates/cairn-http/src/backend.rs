//! The interface between the HTTP layer and the agent that owns Raft, the state and
//! the local services and checks.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cairn_state::{Command, Outcome, State};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::{HealthCheck, NodeService};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::reply::Consistency;
use crate::HttpError;

/// A boxed, sendable future (keeps [`Backend`] object-safe).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Raft facts reported in headers and `/v1/status/*`.
#[derive(Debug, Clone, Default)]
pub struct RaftInfo {
    pub leader: Option<String>,
    pub peers: Vec<String>,
    pub is_leader: bool,
    pub last_contact_ms: u64,
}

/// Whether this node knows a leader and how long ago it heard from it: what every read
/// reports in its headers, without [`RaftInfo`]'s peer list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderContact {
    pub known_leader: bool,
    /// Milliseconds since the leader was last heard from (0 on the leader).
    pub last_contact_ms: u64,
}

/// Size and time limits of the API.
#[derive(Debug, Clone)]
pub struct Limits {
    pub kv_max_value_size: usize,
    pub txn_max_req_len: usize,
    pub max_body: usize,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
    pub session_ttl_min: Duration,
    /// `discovery_max_stale`: service-discovery reads without a mode are served stale
    /// while this node heard from the leader within this long (`None`: off).
    pub discovery_max_stale: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
            max_body: 1024 * 1024,
            default_query_time: Duration::from_secs(300),
            max_query_time: Duration::from_secs(600),
            session_ttl_min: Duration::from_secs(10),
            discovery_max_stale: None,
        }
    }
}

/// What the HTTP layer needs from the agent.
pub trait Backend: Send + Sync + 'static {
    /// The replicated state, as applied on this server.
    fn state(&self) -> &RwLock<State>;
    /// Fires with the last applied index after every applied batch.
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// Proposes a command through Raft; returns its log index and outcome.
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), HttpError>>;
    /// Returns once this node's state holds everything the leader had committed when
    /// the call was made: vouched for by the leader's lease for [`Consistency::Leader`]
    /// (the default mode), by a quorum for [`Consistency::Consistent`].
    fn barrier(&self, mode: Consistency) -> BoxFut<'_, Result<(), HttpError>>;
    fn raft_info(&self) -> RaftInfo;
    /// [`RaftInfo`]'s leader and contact alone, asked on every read: implementations
    /// answer it without building the peer list.
    fn leader_contact(&self) -> LeaderContact {
        let r = self.raft_info();
        LeaderContact {
            known_leader: r.leader.is_some(),
            last_contact_ms: r.last_contact_ms,
        }
    }
    /// `/v1/operator/raft/configuration`: `{"Servers": [...], "Index": N}`.
    fn raft_configuration(&self) -> serde_json::Value;
    /// The current Raft term, for snapshot metadata (0 where unknown).
    fn raft_term(&self) -> u64 {
        0
    }
    fn node_name(&self) -> &str;
    fn node_id(&self) -> &str;
    fn datacenter(&self) -> &str;
    fn limits(&self) -> &Limits;
    /// Wall-clock milliseconds (stamped into commands that need time).
    fn now_ms(&self) -> u64;
    /// A session was renewed: restart its TTL timer.
    fn session_renewed(&self, id: &str);
    /// Whether catalog reads can be served now (a client agent that follows no server
    /// cannot: Consul's 500 "No known Consul servers").
    fn read_ready(&self) -> Result<(), HttpError> {
        Ok(())
    }
    /// ACL enforcement on this agent (`None`: ACLs disabled, everything is allowed).
    fn acl(&self) -> Option<&crate::acl::AclRuntime> {
        None
    }

    // ---- agent-local state ----
    fn register_service(
        &self,
        def: ServiceDefinition,
        replace_checks: bool,
    ) -> BoxFut<'_, Result<(), HttpError>>;
    fn deregister_service(&self, id: String) -> BoxFut<'_, Result<(), HttpError>>;
    fn local_services(&self) -> Vec<NodeService>;
    fn local_checks(&self) -> Vec<HealthCheck>;
    fn register_check(&self, def: CheckDefinition) -> BoxFut<'_, Result<(), HttpError>>;
    fn deregister_check(&self, id: String) -> BoxFut<'_, Result<(), HttpError>>;
    /// TTL check update (`/agent/check/pass|warn|fail|update`).
    fn update_check(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> BoxFut<'_, Result<(), HttpError>>;
    fn service_maintenance(
        &self,
        id: String,
        enable: bool,
        reason: String,
    ) -> BoxFut<'_, Result<(), HttpError>>;
    fn node_maintenance(&self, enable: bool, reason: String) -> BoxFut<'_, Result<(), HttpError>>;
    fn members(&self) -> Vec<serde_json::Value>;
    /// Joins the LAN pool through `addr` (`host[:port]`).
    fn join(&self, addr: String) -> BoxFut<'_, Result<(), HttpError>>;
    /// Forces a failed member to leave; `prune` also removes it from the member list.
    fn force_leave(&self, node: String, prune: bool) -> BoxFut<'_, Result<(), HttpError>>;
    fn self_info(&self) -> serde_json::Value;
    fn reload(&self) -> BoxFut<'_, Result<(), HttpError>>;
    /// Graceful leave: resolves once the pool has been told; the agent then shuts down.
    fn leave(&self) -> BoxFut<'_, ()>;

    /// Removes a server (by node ID or `ip:port`) from the Raft configuration, on the
    /// leader.
    fn raft_remove_peer(
        &self,
        _id: Option<String>,
        _address: Option<String>,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(async { Err(HttpError::internal("not supported by this agent")) })
    }

    /// Hands Raft leadership to the server with node ID `id` (or any up-to-date voter).
    fn raft_transfer_leader(&self, _id: Option<String>) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(async { Err(HttpError::internal("not supported by this agent")) })
    }

    /// Applies a keyring operation on every alive member of each gossip pool this agent
    /// is in (`relay`: members also send their answer through that many others) and
    /// reports per pool; a pool whose members did not all succeed carries an `error`.
    fn keyring(
        &self,
        _op: crate::keyring::KeyringOp,
        _relay: u8,
    ) -> BoxFut<'_, Result<Vec<crate::keyring::KeyringPool>, HttpError>> {
        Box::pin(async { Err(HttpError::internal("not supported by this agent")) })
    }

    /// Autopilot's server health, Consul's `/v1/operator/autopilot/health` body.
    fn autopilot_health(&self) -> BoxFut<'_, Result<serde_json::Value, HttpError>> {
        Box::pin(async { Err(HttpError::internal("not supported by this agent")) })
    }
}
