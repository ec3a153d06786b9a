//! The one road to the replicated catalog: the [`Catalog`] seam.
//!
//! Everything the agent writes (registrations, check results, sessions, KV) and every
//! consistency question it asks goes through this trait; reads go to the state replica the
//! agent holds (advanced by the `applied` watch). On a server the seam is the local Raft
//! node ([`ServerCatalog`]). A client agent implements the
//! same trait over the server RPC port, with its state replica fed by the server's stream
//! of applied entries, so HTTP reads, blocking queries, DNS, checks and anti-entropy work
//! unchanged on both kinds of node.
//!
//! Errors are this layer's own ([`CatalogError`]); they become HTTP statuses only at the
//! HTTP edge (the agent's `Backend`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cairn_raft::{RaftNode, WriteError};
use cairn_state::{Command, Outcome};

use crate::sessions::SessionTimers;

/// A boxed future borrowing the catalog.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the catalog could not take a write or answer a consistency question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No leader is known (an election is running, or quorum is lost).
    #[error("No cluster leader")]
    NoLeader,
    /// Another server leads; the request belongs there.
    #[error("not the leader; the leader is {0:?}")]
    NotLeader(Option<String>),
    /// Leadership changed while the write was being committed: it may or may not apply.
    #[error("leadership lost while committing; the outcome is unknown")]
    LeadershipLost,
    /// The catalog cannot serve at all (Raft stopped, no server reachable).
    #[error("{0}")]
    Unavailable(String),
}

/// Who leads and how fresh this node's view is, for Consul's headers and `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The leader's server RPC address, if one is known.
    pub leader: Option<String>,
    /// The voting servers' addresses.
    pub peers: Vec<String>,
    /// Whether this node leads.
    pub is_leader: bool,
    /// Milliseconds since this node last heard from the leader (0 on the leader).
    pub last_contact_ms: u64,
}

/// The seam between the agent and the replicated catalog.
pub trait Catalog: Send + Sync + 'static {
    /// Replicates `cmd`; its log index and what applying it produced.
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), CatalogError>>;

    /// Returns once this node's state replica holds everything committed before the call
    /// (a read index confirmed by a quorum): the barrier of `?consistent` reads.
    fn barrier(&self) -> BoxFut<'_, Result<(), CatalogError>>;

    /// Whether reads of the local replica may be served now: a client agent that follows
    /// no server answers Consul's 500 "No known Consul servers" instead of an empty or
    /// stale catalog.
    fn ready(&self) -> Result<(), CatalogError> {
        Ok(())
    }

    /// Leader, peers and contact, now.
    fn status(&self) -> ClusterStatus;

    /// A session was renewed on this node: restart its TTL where the timers run (on the
    /// leader).
    fn session_renewed(&self, id: &str);

    /// Resolves once this node's leadership is `leader`; a node that can never lead (a
    /// client agent) never resolves `true`.
    fn leadership_is(&self, leader: bool) -> BoxFut<'_, ()>;

    /// Resolves, with the cause, if the catalog stops by itself (a fatal storage error).
    fn stopped(&self) -> BoxFut<'_, String>;

    /// Stops it.
    fn shutdown(&self) -> BoxFut<'_, ()>;
}

impl From<WriteError> for CatalogError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NoLeader => CatalogError::NoLeader,
            WriteError::NotLeader { leader_addr, .. } => CatalogError::NotLeader(leader_addr),
            WriteError::LeadershipLost => CatalogError::LeadershipLost,
            WriteError::Shutdown(m) => CatalogError::Unavailable(format!("raft is shut down: {m}")),
            WriteError::Other(m) => CatalogError::Unavailable(format!("raft: {m}")),
        }
    }
}

/// The catalog of a server: its own Raft node, and the session timers its leader duty
/// keeps.
pub struct ServerCatalog {
    pub raft: RaftNode,
    pub sessions: Arc<SessionTimers>,
}

impl Catalog for ServerCatalog {
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), CatalogError>> {
        Box::pin(async move { Ok(self.raft.write(cmd).await?) })
    }

    fn barrier(&self) -> BoxFut<'_, Result<(), CatalogError>> {
        Box::pin(async move { Ok(self.raft.ensure_linearizable().await?) })
    }

    fn status(&self) -> ClusterStatus {
        let r = &self.raft;
        ClusterStatus {
            leader: r.leader_addr(),
            peers: r.peers(),
            is_leader: r.is_leader(),
            last_contact_ms: r.last_contact_ms(),
        }
    }

    fn session_renewed(&self, id: &str) {
        self.sessions.renewed(id);
    }

    fn leadership_is(&self, leader: bool) -> BoxFut<'_, ()> {
        Box::pin(self.raft.leadership_is(leader))
    }

    fn stopped(&self) -> BoxFut<'_, String> {
        Box::pin(self.raft.stopped())
    }

    fn shutdown(&self) -> BoxFut<'_, ()> {
        Box::pin(self.raft.shutdown())
    }
}
