//! Leader duties: the work only the Raft leader does, started when this server gains
//! leadership and stopped when it loses it (Consul's establish/revoke leadership).
//!
//! The duties are the session TTL timers ([`crate::sessions`]), KV tombstone GC
//! ([`crate::tombstones`]), the reconciliation of the LAN pool's members into the
//! catalog ([`crate::reconcile`]), the Raft voters ([`crate::raft_members`]) and the
//! cleanup of dead servers ([`crate::autopilot`]). None asks `is_leader()` on each tick: each runs only
//! while this server leads, and starts from scratch on every new term of leadership
//! (timers are not replicated, so a new leader gives every session a full TTL, as Consul
//! does).

use std::sync::Arc;
use std::time::Duration;

use cairn_gossip::Gossip;
use cairn_state::{Command, Outcome, State};
use parking_lot::RwLock;

use crate::catalog::{Catalog, CatalogError};
use crate::sessions::SessionTimers;

/// What the duties work with: the catalog they write through, the state they read, the
/// pool they reconcile, and their settings.
#[derive(Clone)]
pub struct Duties {
    pub catalog: Arc<dyn Catalog>,
    pub state: Arc<RwLock<State>>,
    /// The LAN pool (`None` on a server without gossip: nothing to reconcile).
    pub gossip: Option<Arc<Gossip>>,
    pub sessions: Arc<SessionTimers>,
    /// This server's Raft node in a multi-server cluster (`None` for a lone server): the
    /// voters are kept in step with the pool's servers.
    pub raft: Option<cairn_raft::RaftNode>,
    pub datacenter: String,
    /// How long a KV tombstone is kept (`kv_tombstone_ttl`).
    pub kv_tombstone_ttl: Duration,
    /// How often tombstones are looked at (`kv_tombstone_granularity`).
    pub kv_tombstone_granularity: Duration,
    /// `acl.tokens.initial_management`, as the command that installs it (`None`: not
    /// configured).
    pub acl_initial: Option<Command>,
    /// Whether ACLs are enabled (expired tokens are reaped).
    pub acl_enabled: bool,
}

impl Duties {
    /// Writes through the catalog; a refusal of the state machine is an `Outcome::Error`.
    pub async fn write(&self, cmd: Command) -> Result<(u64, Outcome), CatalogError> {
        self.catalog.write(cmd).await
    }
}

/// Starts the duties whenever this server becomes leader and stops them when it steps
/// down. Runs for the life of the server.
pub async fn supervise(duties: Duties) {
    let catalog = duties.catalog.clone();
    loop {
        catalog.leadership_is(true).await;
        tracing::info!("leadership established: starting leader duties");
        let running = Running(vec![
            tokio::spawn(crate::sessions::reaper_loop(duties.clone())),
            tokio::spawn(crate::tombstones::gc_loop(duties.clone())),
            tokio::spawn(crate::reconcile::run(duties.clone())),
            tokio::spawn(crate::raft_members::run(duties.clone())),
            tokio::spawn(crate::autopilot::run(duties.clone())),
            tokio::spawn(crate::acl::initial_management(duties.clone())),
            tokio::spawn(crate::acl::reap_loop(duties.clone())),
        ]);
        catalog.leadership_is(false).await;
        drop(running);
        tracing::info!("leadership lost: leader duties stopped");
    }
}

/// The running duties; dropping them (leadership lost, or the supervisor itself stopped
/// at shutdown) stops them.
struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for d in &self.0 {
            d.abort();
        }
    }
}
