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

use std::net::SocketAddr;
use std::time::Duration;

use cairn_raft::{RaftNode, WriteError};
use cairn_rpc::{Client, Code};
use cairn_state::{Command, Outcome};
use tokio::sync::watch;

use crate::protocol::{CatalogRequest, CatalogResponse, CatalogRpc};
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

/// How a read is made consistent with the leader (Consul's default and `consistent` modes;
/// `stale` reads take no barrier at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReadMode {
    /// The leader vouches from its lease (acknowledged by a quorum within the lease, no
    /// round trip): Consul's default mode.
    Lease,
    /// The leader confirms its leadership with a quorum round trip first (read index):
    /// `?consistent`.
    Quorum,
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

    /// Returns once this node's state replica holds everything committed before the call,
    /// confirmed by the leader as `mode` says: the barrier in front of default-mode
    /// ([`ReadMode::Lease`]) and `?consistent` ([`ReadMode::Quorum`]) reads.
    fn barrier(&self, mode: ReadMode) -> BoxFut<'_, Result<(), CatalogError>>;

    /// Whether reads of the local replica may be served now: a client agent that follows
    /// no server answers Consul's 500 "No known Consul servers" instead of an empty or
    /// stale catalog.
    fn ready(&self) -> Result<(), CatalogError> {
        Ok(())
    }

    /// Leader, peers and contact, now.
    fn status(&self) -> ClusterStatus;

    /// Whether a leader is known, and milliseconds since it was last heard from: the part
    /// of [`Catalog::status`] every read reports, without building its lists.
    fn leader_contact(&self) -> (bool, u64) {
        let s = self.status();
        (s.leader.is_some(), s.last_contact_ms)
    }

    /// This node's current Raft term (0 where there is no local Raft: a client agent).
    fn raft_term(&self) -> u64 {
        0
    }

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

    /// Carries out an operator request on the leader (see [`crate::operator`]).
    fn operator(
        &self,
        _req: crate::operator::OperatorRequest,
    ) -> BoxFut<'_, Result<crate::operator::OperatorResponse, CatalogError>> {
        Box::pin(async {
            Err(CatalogError::Unavailable(
                "operator requests need a server".into(),
            ))
        })
    }
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
/// keeps. A server that does not lead forwards writes, barriers and session renewals to
/// the leader over the catalog protocol (once: see [`CatalogRequest::Forwarded`]) and
/// answers once its own state has applied the result, so a client reads its writes on
/// whichever server it talks to.
pub struct ServerCatalog {
    pub raft: RaftNode,
    pub sessions: Arc<SessionTimers>,
    /// How to reach the leader (`None`: a lone server, never forwards).
    pub forward: Option<Client<CatalogRpc>>,
    /// This server's applied index.
    pub applied: watch::Receiver<u64>,
}

/// How long a forwarded write waits for this server to apply it.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Waits until `applied` (a replica's applied index) reaches `index`, at most `within`:
/// what makes a write acknowledged by another node readable on this one.
pub async fn applied_reaches(
    applied: &watch::Receiver<u64>,
    index: u64,
    within: Duration,
) -> Result<(), CatalogError> {
    let mut rx = applied.clone();
    let reached =
        tokio::time::timeout(within, async { rx.wait_for(|i| *i >= index).await.is_ok() }).await;
    if reached == Ok(true) {
        return Ok(());
    }
    Err(CatalogError::Unavailable(format!(
        "this node did not apply index {index} within {within:?}"
    )))
}

impl ServerCatalog {
    /// Waits until this server's state has applied `index`.
    async fn caught_up(&self, index: u64) -> Result<(), CatalogError> {
        applied_reaches(&self.applied, index, CATCH_UP).await
    }

    /// Sends `req` to the leader at `leader` (marked as forwarded).
    pub(crate) async fn to_leader(
        &self,
        leader: &str,
        req: CatalogRequest,
    ) -> Result<CatalogResponse, CatalogError> {
        let client = self
            .forward
            .as_ref()
            .ok_or_else(|| CatalogError::NotLeader(Some(leader.to_string())))?;
        let addr: SocketAddr = leader.parse().map_err(|_| {
            CatalogError::Unavailable(format!("the leader's address {leader:?} is not IP:port"))
        })?;
        client
            .call(addr, CatalogRequest::Forwarded(Box::new(req)))
            .await
            .map_err(|e| match e.status().map(|s| &s.code) {
                Some(Code::NotLeader { leader }) => CatalogError::NotLeader(leader.clone()),
                _ if e.is_not_delivered() => CatalogError::NoLeader,
                _ => CatalogError::Unavailable(format!("forwarding to the leader {leader}: {e}")),
            })
    }

    /// This server's own write, never forwarded (what a forwarded request gets).
    pub async fn write_here(&self, cmd: Command) -> Result<(u64, Outcome), CatalogError> {
        Ok(self.raft.write(cmd).await?)
    }

    /// This server's own barrier, never forwarded: the index a reader must reach.
    pub async fn barrier_here(&self, mode: ReadMode) -> Result<u64, CatalogError> {
        match mode {
            // A lone server is its own quorum and cannot be deposed: nothing to confirm.
            ReadMode::Lease if self.forward.is_none() => {}
            ReadMode::Lease => self.raft.ensure_leader_lease().await?,
            ReadMode::Quorum => self.raft.ensure_linearizable().await?,
        }
        Ok(*self.applied.borrow())
    }

    /// Restarts a session's TTL here if this server leads.
    pub fn renew_here(&self, id: &str) -> Result<(), CatalogError> {
        if self.raft.is_leader() {
            self.sessions.renewed(id);
            Ok(())
        } else {
            Err(CatalogError::NotLeader(self.raft.leader_addr()))
        }
    }
}

impl ServerCatalog {
    /// One attempt at a write: here if this server leads, else forwarded to the leader.
    async fn write_once(&self, cmd: &Command) -> Result<(u64, Outcome), CatalogError> {
        match self.raft.write(cmd.clone()).await {
            Err(WriteError::NotLeader {
                leader_addr: Some(leader),
                ..
            }) if self.forward.is_some() => {
                match self
                    .to_leader(&leader, CatalogRequest::Write(Box::new(cmd.clone())))
                    .await?
                {
                    CatalogResponse::Written { index, outcome } => {
                        self.caught_up(index).await?;
                        Ok((index, outcome))
                    }
                    other => Err(CatalogError::Unavailable(format!(
                        "unexpected answer to a forwarded write: {other:?}"
                    ))),
                }
            }
            other => Ok(other?),
        }
    }

    /// One attempt at a barrier, here or through the leader.
    async fn barrier_once(&self, mode: ReadMode) -> Result<(), CatalogError> {
        let here = match mode {
            ReadMode::Lease if self.forward.is_none() => return Ok(()),
            ReadMode::Lease => self.raft.ensure_leader_lease().await,
            ReadMode::Quorum => self.raft.ensure_linearizable().await,
        };
        match here {
            Err(WriteError::NotLeader {
                leader_addr: Some(leader),
                ..
            }) if self.forward.is_some() => {
                match self
                    .to_leader(&leader, CatalogRequest::Barrier(mode))
                    .await?
                {
                    CatalogResponse::Index(index) => self.caught_up(index).await,
                    other => Err(CatalogError::Unavailable(format!(
                        "unexpected answer to a forwarded barrier: {other:?}"
                    ))),
                }
            }
            other => Ok(other?),
        }
    }
}

/// How long a request waits out a leader election before failing (Consul's
/// `rpc_hold_timeout`).
const HOLD: Duration = Duration::from_secs(7);

/// Whether a failed attempt surely did not apply, so that trying again is safe and may
/// succeed once a leader is known.
fn retryable(e: &CatalogError) -> bool {
    matches!(e, CatalogError::NoLeader | CatalogError::NotLeader(_))
}

/// Runs `attempt` until it succeeds, fails for good, or [`HOLD`] has passed, with a short
/// growing pause between tries: a leader change loses no request that a retry can save.
pub(crate) async fn hold<T, F, Fut>(mut attempt: F) -> Result<T, CatalogError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CatalogError>>,
{
    let deadline = tokio::time::Instant::now() + HOLD;
    let mut pause = Duration::from_millis(20);
    loop {
        match attempt().await {
            Err(e) if retryable(&e) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

impl Catalog for ServerCatalog {
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), CatalogError>> {
        Box::pin(async move {
            if self.forward.is_none() {
                return self.write_once(&cmd).await;
            }
            hold(|| self.write_once(&cmd)).await
        })
    }

    fn barrier(&self, mode: ReadMode) -> BoxFut<'_, Result<(), CatalogError>> {
        Box::pin(async move {
            if self.forward.is_none() {
                return self.barrier_once(mode).await;
            }
            hold(|| self.barrier_once(mode)).await
        })
    }

    fn raft_term(&self) -> u64 {
        self.raft.current_term()
    }

    fn leader_contact(&self) -> (bool, u64) {
        (
            self.raft.current_leader().is_some(),
            self.raft.last_contact_ms(),
        )
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
        if self.renew_here(id).is_ok() {
            return;
        }
        let (Some(client), Some(leader)) = (self.forward.clone(), self.raft.leader_addr()) else {
            return;
        };
        let Ok(addr) = leader.parse::<SocketAddr>() else {
            return;
        };
        let req = CatalogRequest::Forwarded(Box::new(CatalogRequest::RenewSession(id.to_string())));
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(e) = client.call(addr, req).await {
                tracing::warn!(session = %id, "forwarding a session renewal to {addr}: {e}");
            }
        });
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

    fn operator(
        &self,
        req: crate::operator::OperatorRequest,
    ) -> BoxFut<'_, Result<crate::operator::OperatorResponse, CatalogError>> {
        Box::pin(ServerCatalog::operator(self, req))
    }
}
