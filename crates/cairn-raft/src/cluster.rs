//! Multi-server mode for [`RaftNode`]: start a node that talks to its peers over cairn-rpc,
//! serve its Raft protocol on a server's [`Routes`], form a cluster and change its members.
//!
//! [`RaftNode::start`] stays the single-server entry point (it bootstraps a one-member
//! cluster and waits to lead). [`RaftNode::start_cluster`] only opens storage and starts Raft:
//! a fresh server waits for [`RaftNode::initialize`] (on one server, with the initial member
//! set) or for a leader to add it ([`RaftNode::add_learner`], then
//! [`RaftNode::change_membership`]); a restarted server rejoins from its durable log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn_rpc::{Client, Routes};
use openraft::error::{InitializeError, RaftError};
use openraft::BasicNode;

use crate::network::NetworkFactory;
use crate::node::{raft_config, RaftNode, RaftOptions, WriteError, SNAPSHOT_EVERY_LOGS};
use crate::protocol::RaftRpc;
use crate::service::RaftService;

/// What a server needs beyond [`RaftOptions`] to run in a cluster.
#[derive(Clone)]
pub struct ClusterOptions {
    /// How this server reaches its peers (TCP in production, the in-process network in tests).
    pub client: Client<RaftRpc>,
    /// Take a snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot, so a follower slightly behind catches up from the
    /// log rather than by a snapshot transfer.
    pub logs_kept_after_snapshot: u64,
    /// How often `snapshot_every` is checked (Consul's `raft_snapshot_interval`); `None`
    /// checks after every applied batch.
    pub snapshot_interval: Option<std::time::Duration>,
}

impl ClusterOptions {
    /// A snapshot every [`SNAPSHOT_EVERY_LOGS`] entries, checked after every applied
    /// batch, 1,000 entries kept behind it. The agent sets all three from its
    /// configuration ([`ClusterOptions::with_snapshots`]).
    pub fn new(client: Client<RaftRpc>) -> Self {
        ClusterOptions {
            client,
            snapshot_every: SNAPSHOT_EVERY_LOGS,
            logs_kept_after_snapshot: 1000,
            snapshot_interval: None,
        }
    }

    /// These options with the snapshot policy `s`.
    pub fn with_snapshots(mut self, s: crate::SnapshotSettings) -> Self {
        self.snapshot_every = s.threshold;
        self.logs_kept_after_snapshot = s.trailing_logs;
        self.snapshot_interval = s.interval;
        self
    }

    /// The snapshot policy these options describe.
    pub fn snapshots(&self) -> crate::SnapshotSettings {
        crate::SnapshotSettings {
            threshold: self.snapshot_every,
            interval: self.snapshot_interval,
            trailing_logs: self.logs_kept_after_snapshot,
        }
    }
}

/// Why [`RaftNode::initialize`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// This server already belongs to a cluster (it was initialized, or has a log).
    #[error("already initialized: {0}")]
    AlreadyInitialized(String),
    /// The member set was refused (for example it does not include this server).
    #[error("invalid member set: {0}")]
    InvalidMembers(String),
    /// Raft has stopped.
    #[error("raft is shut down: {0}")]
    Shutdown(String),
}

impl RaftNode {
    /// Opens storage and starts Raft with peers reached through `cluster.client`. Does not
    /// bootstrap and does not wait for a leader: see the module docs. Register
    /// [`route`](Self::route) on the server's RPC routes so that peers can reach this node.
    pub async fn start_cluster(
        opts: RaftOptions,
        cluster: ClusterOptions,
    ) -> anyhow::Result<RaftNode> {
        let mut config = raft_config(opts.raft_multiplier)?;
        let snapshots = cluster.snapshots();
        snapshots.configure(&mut config);
        // A server cut off from the others must not raise its term while away and depose a
        // healthy leader when it comes back.
        config.enable_pre_vote = Some(true);
        let network = NetworkFactory::new(opts.node_id, cluster.client);
        let node = RaftNode::open(opts, config, network).await?;
        node.spawn_snapshot_checker(snapshots);
        Ok(node)
    }

    /// The service answering `cairn.raft.v2` for this node.
    pub fn service(&self) -> Arc<RaftService> {
        Arc::new(RaftService::new(self.clone()))
    }

    /// `routes` plus this node's Raft service.
    pub fn route(&self, routes: Routes) -> Routes {
        routes.route::<RaftRpc, _>(self.service())
    }

    /// Forms a new cluster of `members` (node id -> advertised RPC address), which must
    /// include this server. Call it on one server of a fresh cluster; the others learn the
    /// membership from the leader.
    pub async fn initialize(&self, members: BTreeMap<u64, String>) -> Result<(), InitError> {
        let nodes: BTreeMap<u64, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match self.raft().initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                Err(InitError::AlreadyInitialized(e.to_string()))
            }
            Err(RaftError::APIError(e)) => Err(InitError::InvalidMembers(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(InitError::Shutdown(f.to_string())),
        }
    }

    /// On the leader: adds a non-voting member and waits until it has caught up with the
    /// log. Returns the log index of the membership change.
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<u64, WriteError> {
        self.raft()
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(|r| r.log_id.index())
            .map_err(WriteError::from_client_write)
    }

    /// On the leader: makes `voters` the voting members (each must already be a member, for
    /// example a caught-up learner); servers dropped from the voters are removed. Returns
    /// the log index at which the new membership is committed.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<u64, WriteError> {
        self.raft()
            .change_membership(voters, false)
            .await
            .map(|r| r.log_id.index())
            .map_err(WriteError::from_client_write)
    }

    /// The node ids of the current voters.
    pub fn voter_ids(&self) -> BTreeSet<u64> {
        self.raft().voter_ids().collect()
    }

    /// Whether this node leads *and* a quorum of voters acknowledged it within the leader
    /// lease (the longest election timeout). openraft keeps a leader that is cut off from
    /// the others in the Leader state and only refuses its writes; this is the view that
    /// matches Consul's, where such a leader has stepped down. A sole voter always has its
    /// quorum.
    pub fn leads_with_quorum(&self) -> bool {
        use openraft::async_runtime::watch::WatchReceiver;
        use openraft::Instant as _;
        // Borrowed, not cloned: this runs on every read.
        let rx = self.raft().metrics();
        let m = rx.borrow_watched();
        if m.state != openraft::ServerState::Leader {
            return false;
        }
        let membership = m.membership_config.membership();
        if membership.voter_ids().eq([self.node_id()]) {
            return true;
        }
        let lease = std::time::Duration::from_millis(self.raft().config().election_timeout_max);
        m.last_quorum_acked.is_some_and(|t| t.elapsed() < lease)
    }

    /// This node's current term.
    pub fn current_term(&self) -> u64 {
        use openraft::async_runtime::watch::WatchReceiver;
        self.raft().metrics().borrow_watched().current_term
    }

    /// The id of the leader this node currently knows, if any.
    pub fn current_leader(&self) -> Option<u64> {
        use openraft::async_runtime::watch::WatchReceiver;
        self.raft().metrics().borrow_watched().current_leader
    }
}
