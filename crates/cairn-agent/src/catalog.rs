//! The agent's one road to the replicated catalog: the [`Catalog`] seam.
//!
//! Everything the agent writes (registrations, check results, sessions, KV) and every
//! consistency question it asks goes through this trait; reads go to the state replica the
//! agent holds (`Inner::state`, advanced by the `applied` watch). On a server the seam is
//! the local Raft node ([`RaftNode`] implements it here). A client agent implements the
//! same trait over the server RPC port, with its state replica fed by the server's stream
//! of applied entries, so HTTP reads, blocking queries, DNS, checks and anti-entropy work
//! unchanged on both kinds of node.
//!
//! Errors are the agent's own ([`CatalogError`]); they become HTTP statuses only at the
//! HTTP edge (`Backend for Agent`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cairn_raft::{RaftNode, WriteError};
use cairn_state::{Command, Outcome};

use crate::sessions::SessionTimers;

/// A boxed future borrowing the catalog.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the catalog could not take a write or answer a consistency question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CatalogError {
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
pub(crate) struct ClusterStatus {
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
pub(crate) trait Catalog: Send + Sync + 'static {
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
pub(crate) struct ServerCatalog {
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

#[cfg(test)]
pub(crate) mod contract {
    //! What every [`Catalog`] must do, run against each implementation.

    use std::sync::Arc;

    use cairn_state::{Command, KvOp, KvVerb, Outcome, State};
    use parking_lot::RwLock;
    use tokio::sync::watch;

    use super::Catalog;

    /// A catalog, the state replica it feeds, and that replica's applied-index watch.
    pub(crate) struct Subject {
        pub catalog: Arc<dyn Catalog>,
        pub state: Arc<RwLock<State>>,
        pub applied: watch::Receiver<u64>,
    }

    /// `leads`: whether the subject's node is the leader (a server) or not (a client).
    pub(crate) async fn writes_are_ordered_applied_and_visible(s: Subject, leads: bool) {
        let mut last = 0;
        for i in 0..20u32 {
            let mut op = KvOp::new(KvVerb::Set, format!("contract/{i}"));
            op.value = i.to_be_bytes().to_vec();
            let (index, outcome) = s.catalog.write(Command::Kv(op)).await.unwrap();
            assert!(index > last, "index {index} after {last}");
            assert_eq!(outcome, Outcome::Bool(true));
            last = index;
            // Visible in the replica once the write is acknowledged, with that index.
            assert!(*s.applied.borrow() >= index);
            let st = s.state.read();
            let (entry, _) = st.kv_get(&format!("contract/{i}"));
            assert_eq!(entry.map(|e| e.modify_index), Some(index));
        }
        s.catalog.barrier().await.unwrap();
        let status = s.catalog.status();
        assert_eq!(status.is_leader, leads, "{status:?}");
        assert!(status.leader.is_some(), "{status:?}");
        let wait = std::time::Duration::from_secs(2);
        let led = tokio::time::timeout(wait, s.catalog.leadership_is(true)).await;
        assert_eq!(led.is_ok(), leads);
        s.catalog.shutdown().await;
    }

    /// A write the state machine refuses comes back as its outcome, not as an error.
    pub(crate) async fn refusals_are_outcomes(s: &Subject) {
        let mut op = KvOp::new(KvVerb::Lock, "contract/locked");
        op.session = "no-such-session".into();
        let (_, outcome) = s.catalog.write(Command::Kv(op)).await.unwrap();
        assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    }

    async fn raft_server() -> (
        cairn_raft::RaftNode,
        Arc<RwLock<State>>,
        watch::Receiver<u64>,
    ) {
        let state = Arc::new(RwLock::new(State::new()));
        let (applied_tx, applied) = watch::channel(0);
        let node = cairn_raft::RaftNode::start(cairn_raft::RaftOptions {
            node_id: 1,
            addr: "127.0.0.1:8300".into(),
            data_dir: None,
            state: state.clone(),
            applied_tx,
            raft_multiplier: 1,
        })
        .await
        .unwrap();
        (node, state, applied)
    }

    #[tokio::test]
    async fn raft_node() {
        let (node, state, applied) = raft_server().await;
        let s = Subject {
            catalog: Arc::new(super::ServerCatalog {
                raft: node,
                sessions: Default::default(),
            }),
            state,
            applied,
        };
        refusals_are_outcomes(&s).await;
        writes_are_ordered_applied_and_visible(s, true).await;
    }

    /// A client agent's catalog: a replica following a server over the in-process RPC
    /// network, writes forwarded. It also starts late (after writes) and must catch up.
    #[tokio::test]
    async fn remote_catalog_over_in_process_rpc() {
        use crate::replica::{protocol::CatalogRpc, remote::RemoteCatalog, serve::CatalogService};
        let (node, server_state, _) = raft_server().await;
        for i in 0..5 {
            node.write(Command::Kv(KvOp::new(KvVerb::Set, format!("early/{i}"))))
                .await
                .unwrap();
        }
        let net = cairn_rpc::Network::new(7);
        let server: std::net::SocketAddr = "127.0.0.1:8300".parse().unwrap();
        let routes = cairn_rpc::Routes::new().route::<CatalogRpc, _>(Arc::new(CatalogService {
            raft: node.clone(),
            state: server_state.clone(),
            sessions: Default::default(),
            gossip: None,
        }));
        let _served = net
            .serve(server, routes, cairn_rpc::ServerConfig::default())
            .unwrap();
        let client = cairn_rpc::Client::new(net.client::<CatalogRpc>(
            "127.0.0.2:8300".parse().unwrap(),
            cairn_rpc::ClientConfig::default(),
        ));
        let state = Arc::new(RwLock::new(State::new()));
        let (applied_tx, applied) = watch::channel(0);
        let servers = Arc::new(crate::replica::servers::FixedServers::new(vec![(
            "server".to_string(),
            server,
        )]));
        let remote =
            RemoteCatalog::start(client, servers, "client".into(), state.clone(), applied_tx);
        let s = Subject {
            catalog: Arc::new(remote),
            state: state.clone(),
            applied,
        };
        refusals_are_outcomes(&s).await;
        // The replica caught up with what was written before it followed.
        assert!(state.read().kv_get("early/4").0.is_some());
        // A write made on the server directly reaches the replica too, and the replica
        // is then identical to the server's state.
        let (index, _) = node
            .write(Command::Kv(KvOp::new(KvVerb::Set, "late")))
            .await
            .unwrap();
        let mut rx = s.applied.clone();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            rx.wait_for(|i| *i >= index),
        )
        .await
        .expect("the replica follows")
        .unwrap();
        assert!(*state.read() == *server_state.read(), "replica diverged");
        writes_are_ordered_applied_and_visible(s, false).await;
    }
}
