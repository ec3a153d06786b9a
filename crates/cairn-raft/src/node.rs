//! [`RaftNode`]: the facade the agent uses to run a Cairn server.
//!
//! It hides openraft behind a handful of calls: start (open storage, restore the latest
//! snapshot, bootstrap a single-member cluster on first start, wait for leadership), write a
//! command and get `(index, Outcome)` back, ask about leadership for Consul's
//! `X-Consul-KnownLeader` / `X-Consul-LastContact` headers, and confirm leadership for
//! `?consistent` reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_state::{Command, Outcome, State};
use cairn_storage::{MemLogStore, WalLogStore};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::{BasicNode, Config, Raft, ReadPolicy, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::network::NetworkFactory;
use crate::state_machine::CairnStateMachine;
use crate::types::{Request, TypeConfig};

/// The openraft handle type used by Cairn.
pub type CairnRaft = Raft<TypeConfig, CairnStateMachine>;

/// Take a snapshot (and purge the log behind it) every this many applied entries
/// (Consul's `raft_snapshot_threshold` default).
pub const SNAPSHOT_EVERY_LOGS: u64 = crate::snapshot_policy::DEFAULT_THRESHOLD;

/// Where a durable server keeps its Raft log (a directory of segment files) inside its
/// data directory.
pub fn log_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("raft").join("log")
}

/// Where Cairn kept its Raft log before the segment log (a redb file, no longer read).
pub fn legacy_log_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("raft").join("raft.redb")
}

/// Refuses a data directory whose Raft log is in the old single-file format: it is not
/// read, and starting without it would lose every acknowledged write.
pub fn check_log_format(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let legacy = legacy_log_path(data_dir);
    if legacy.exists() {
        anyhow::bail!(
            "the Raft log {} was written by an older Cairn in a format this version does not \
             read (the log is now the segment files in {}). Move the data directory aside and \
             start again, or run the older version (see docs/operations.md, \"Upgrading\")",
            legacy.display(),
            log_path(data_dir).display()
        );
    }
    Ok(())
}

/// Opens a durable server's Raft log (blocking: it replays the segments).
pub fn open_log_store(data_dir: &std::path::Path) -> anyhow::Result<WalLogStore<TypeConfig>> {
    check_log_format(data_dir)?;
    let path = log_path(data_dir);
    WalLogStore::<TypeConfig>::open(&path).with_context(|| {
        format!(
            "opening the Raft log {} (to recover a damaged data directory, see \
             docs/operations.md)",
            path.display()
        )
    })
}

/// Where a durable server keeps its state-machine snapshots inside its data directory.
pub fn snapshot_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// How long [`RaftNode::start`] waits for this node to become leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Options for [`RaftNode::start`].
pub struct RaftOptions {
    /// This server's Raft node id (stable across restarts).
    pub node_id: u64,
    /// Advertised server-to-server RPC address, e.g. `127.0.0.1:8300`.
    pub addr: String,
    /// Data directory; `None` = in-memory (`-dev`).
    pub data_dir: Option<PathBuf>,
    /// The replicated state, shared with the readers.
    pub state: Arc<RwLock<State>>,
    /// Receives the last applied index after every applied batch.
    pub applied_tx: watch::Sender<u64>,
    /// Consul's `performance.raft_multiplier` (1-10): scales every Raft timeout; 1 is the
    /// fastest (and `-dev`'s), 5 Consul's default for production.
    pub raft_multiplier: u32,
}

/// Why a write (or a consistency check) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// No leader is known right now (election in progress, or quorum lost).
    #[error("No cluster leader")]
    NoLeader,
    /// Another server is the leader; the request should be forwarded there.
    #[error("not the leader; leader is node {leader_id} at {leader_addr:?}")]
    NotLeader {
        /// The leader's Raft node id.
        leader_id: u64,
        /// The leader's advertised RPC address, if known.
        leader_addr: Option<String>,
    },
    /// The entry was appended but then discarded by a leader change; it may or may not commit.
    #[error("leadership lost while committing; outcome unknown")]
    LeadershipLost,
    /// Raft has stopped (shutdown or fatal storage error).
    #[error("raft is shut down: {0}")]
    Shutdown(String),
    /// Any other Raft error.
    #[error("raft: {0}")]
    Other(String),
}

impl WriteError {
    pub(crate) fn from_client_write(
        e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> Self {
        match e {
            RaftError::APIError(e) => match &e {
                ClientWriteError::ForwardToLeader(f) => WriteError::forward(f),
                ClientWriteError::LogEntryDiscarded(_) => WriteError::LeadershipLost,
                other => WriteError::Other(other.to_string()),
            },
            RaftError::Fatal(f) => WriteError::Shutdown(f.to_string()),
        }
    }

    fn forward(f: &ForwardToLeader<TypeConfig>) -> Self {
        match f.leader_id {
            Some(leader_id) => WriteError::NotLeader {
                leader_id,
                leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
            },
            None => WriteError::NoLeader,
        }
    }
}

/// A running Cairn Raft server. Cloning yields another handle on the same node.
#[derive(Clone)]
pub struct RaftNode {
    raft: CairnRaft,
    node_id: u64,
    last_contact: Arc<Mutex<Option<Instant>>>,
    /// Set by [`RaftNode::shutdown`], so [`RaftNode::stopped`] tells a requested stop
    /// from a fatal one.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// The state machine, for followers of the applied entries.
    applied_entries: CairnStateMachine,
}

/// Raft timing scaled by `multiplier`: election timeout 200-400 ms per unit, heartbeats
/// at a quarter of its minimum (multiplier 1: 50 ms / 200-400 ms; 5: 250 ms / 1-2 s).
pub(crate) fn raft_config(multiplier: u32) -> anyhow::Result<Config> {
    let m = u64::from(multiplier.clamp(1, 10));
    let (emin, emax) = (200 * m, 400 * m);
    let config = Config {
        cluster_name: "cairn".to_string(),
        heartbeat_interval: emin / 4,
        election_timeout_min: emin,
        election_timeout_max: emax,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_LOGS),
        ..Default::default()
    };
    config.validate().context("invalid raft config")
}

impl RaftNode {
    /// Opens storage, restores the latest snapshot, starts Raft, bootstraps a single-member
    /// cluster on first start, and waits (bounded) until this node leads and its state machine
    /// has caught up with everything committed before the restart. Snapshots follow
    /// Consul's defaults ([`SnapshotSettings::default`](crate::SnapshotSettings)).
    pub async fn start(opts: RaftOptions) -> anyhow::Result<RaftNode> {
        Self::start_with_snapshots(opts, crate::SnapshotSettings::default()).await
    }

    /// [`start`](Self::start) with the given snapshot policy.
    pub async fn start_with_snapshots(
        opts: RaftOptions,
        snapshots: crate::SnapshotSettings,
    ) -> anyhow::Result<RaftNode> {
        let mut config = raft_config(opts.raft_multiplier)?;
        snapshots.configure(&mut config);
        let (node_id, addr) = (opts.node_id, opts.addr.clone());
        let node = Self::open(opts, config, NetworkFactory::default()).await?;
        node.spawn_snapshot_checker(snapshots);
        let raft = &node.raft;

        if !raft.is_initialized().await? {
            tracing::info!(node_id, %addr, "bootstrapping single-server raft cluster");
            let members = BTreeMap::from([(node_id, BasicNode::new(addr))]);
            raft.initialize(members).await?;
        } else {
            let voters: Vec<u64> = raft.voter_ids().collect();
            if voters == [node_id] {
                // Sole voter: no need to sit out an election timeout after a restart.
                raft.trigger().elect(false).await?;
            }
        }

        match node
            .raft
            .wait(Some(LEADER_WAIT))
            .state(ServerState::Leader, "become leader")
            .await
        {
            Ok(_) => {
                // A read index barrier: returns once the new term's blank entry, and therefore
                // every entry committed before a restart, has been applied.
                tokio::time::timeout(LEADER_WAIT, node.ensure_linearizable())
                    .await
                    .context("waiting for the state machine to catch up")??;
            }
            Err(e) => tracing::warn!(error = %e, "raft node did not become leader in time"),
        }
        Ok(node)
    }

    /// Opens storage and the state machine and starts Raft with `network`; no bootstrap, no
    /// waiting (shared by [`start`](Self::start) and [`start_cluster`](Self::start_cluster)).
    pub(crate) async fn open(
        opts: RaftOptions,
        config: Config,
        network: NetworkFactory,
    ) -> anyhow::Result<RaftNode> {
        let RaftOptions {
            node_id,
            addr: _,
            data_dir,
            state,
            applied_tx,
            raft_multiplier: _,
        } = opts;
        let config = Arc::new(config.validate().context("invalid raft config")?);
        let snapshot_dir = data_dir.as_deref().map(snapshot_dir);
        let sm = tokio::task::spawn_blocking(move || {
            CairnStateMachine::open(state, applied_tx, snapshot_dir)
        })
        .await?
        .context("restoring state machine snapshot")?;
        let applied_entries = sm.clone();

        let raft = match &data_dir {
            Some(dir) => {
                let dir = dir.clone();
                let store = tokio::task::spawn_blocking(move || open_log_store(&dir)).await??;
                Raft::new(node_id, config, network, store, sm).await?
            }
            None => {
                let store = MemLogStore::<TypeConfig>::new();
                Raft::new(node_id, config, network, store, sm).await?
            }
        };

        let node = RaftNode {
            raft,
            node_id,
            last_contact: Arc::new(Mutex::new(None)),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            applied_entries,
        };
        node.spawn_contact_tracker();
        Ok(node)
    }

    /// Records contact when a new leader other than us is learnt of (for
    /// `X-Consul-LastContact`; every accepted AppendEntries records it too, see
    /// [`record_leader_contact`](Self::record_leader_contact)). Only a change of leader
    /// counts: metrics also change while a follower hears nothing (its own timers), and
    /// counting those would make a cut-off follower look fresh.
    fn spawn_contact_tracker(&self) {
        let mut rx = self.raft.metrics();
        let last = self.last_contact.clone();
        let me = self.node_id;
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                {
                    let m = rx.borrow_watched();
                    let leader = m.current_leader;
                    if leader != seen && matches!(leader, Some(l) if l != me) {
                        *last.lock() = Some(Instant::now());
                    }
                    seen = leader;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// The underlying openraft handle (for the RPC server, admin operations and tests).
    pub fn raft(&self) -> &CairnRaft {
        &self.raft
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Replicates `cmd`; returns its log index and what applying it produced.
    pub async fn write(&self, cmd: Command) -> Result<(u64, Outcome), WriteError> {
        match self.raft.client_write(Request(cmd)).await {
            Ok(resp) => Ok((resp.log_id.index(), resp.data)),
            Err(e) => Err(WriteError::from_client_write(e)),
        }
    }

    /// Resolves once this node's leadership is `leader` (at once if it already is): the
    /// edge on which leader-only duties start and stop. Never resolves after Raft stopped.
    pub async fn leadership_is(&self, leader: bool) {
        let mut rx = self.raft.metrics();
        loop {
            if (rx.borrow_watched().state == ServerState::Leader) == leader {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The commands applied from now on (see [`CairnStateMachine::subscribe_applied`]).
    pub fn subscribe_applied(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::state_machine::AppliedEntry> {
        self.applied_entries.subscribe_applied()
    }

    /// Whether this node currently is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    /// The current leader's advertised RPC address, if a leader is known.
    pub fn leader_addr(&self) -> Option<String> {
        // Borrowed, not cloned: every API response reports the leader.
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Advertised RPC addresses of all voters (Consul's `/v1/status/peers`).
    pub fn peers(&self) -> Vec<String> {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone()))
            .collect()
    }

    /// Milliseconds since this node last heard from the leader: 0 on the leader, `u64::MAX` if
    /// no leader was ever seen.
    pub fn last_contact_ms(&self) -> u64 {
        if self.raft.is_leader() {
            return 0;
        }
        match *self.last_contact.lock() {
            Some(t) => t.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }

    /// Records contact from the leader. The server-to-server RPC handler calls this on every
    /// AppendEntries it accepts, which makes [`last_contact_ms`](Self::last_contact_ms) exact.
    pub fn record_leader_contact(&self) {
        *self.last_contact.lock() = Some(Instant::now());
    }

    /// Confirms with a quorum that we are still the leader and waits until the state machine has
    /// applied everything committed so far (read index). For `?consistent` reads.
    pub async fn ensure_linearizable(&self) -> Result<(), WriteError> {
        self.linearize(ReadPolicy::ReadIndex).await
    }

    /// Like [`ensure_linearizable`](Self::ensure_linearizable) but trusts the leader lease
    /// instead of a quorum round trip (Consul's default read consistency).
    pub async fn ensure_leader_lease(&self) -> Result<(), WriteError> {
        self.linearize(ReadPolicy::LeaseRead).await
    }

    async fn linearize(&self, policy: ReadPolicy) -> Result<(), WriteError> {
        match self.raft.ensure_linearizable(policy).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(WriteError::forward(&f))
            }
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                Err(WriteError::NoLeader)
            }
            Err(RaftError::Fatal(f)) => Err(WriteError::Shutdown(f.to_string())),
        }
    }

    /// Resolves when Raft stops by itself, with the reason: a fatal error such as a failed
    /// log append (disk full, out of file descriptors) or a corrupt store. openraft does not
    /// recover from these, so a node that keeps running after one refuses every write while
    /// looking healthy; the agent exits instead (see docs/operations.md, failure policy).
    /// Never resolves after [`shutdown`](Self::shutdown) was called.
    pub async fn stopped(&self) -> String {
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_watched();
                if let Err(fatal) = &m.running_state {
                    if !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                        return fatal.to_string();
                    }
                }
            }
            if rx.changed().await.is_err() {
                if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                return "raft core exited".to_string();
            }
        }
    }

    /// Stops Raft; storage is closed once the Raft tasks have exited.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}
