//! The agent's road to the replicated catalog: the [`Catalog`] seam of `cairn-server`,
//! implemented by the local Raft node on a server ([`ServerCatalog`]) and by
//! [`crate::replica::remote::RemoteCatalog`] on a client agent. This module holds the
//! contract suite both implementations pass.

pub(crate) use cairn_server::{
    BoxFut, Catalog, CatalogError, ClusterStatus, ReadMode, ServerCatalog,
};

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
        s.catalog.barrier(super::ReadMode::Quorum).await.unwrap();
        s.catalog.barrier(super::ReadMode::Lease).await.unwrap();
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
            catalog: Arc::new(cairn_server::ServerCatalog {
                raft: node,
                sessions: Default::default(),
                forward: None,
                applied: applied.clone(),
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
        use crate::replica::remote::RemoteCatalog;
        use cairn_server::{CatalogRpc, CatalogService};
        let (node, server_state, server_applied) = raft_server().await;
        for i in 0..5 {
            node.write(Command::Kv(KvOp::new(KvVerb::Set, format!("early/{i}"))))
                .await
                .unwrap();
        }
        let net = cairn_rpc::Network::new(7);
        let server: std::net::SocketAddr = "127.0.0.1:8300".parse().unwrap();
        let server_catalog = Arc::new(cairn_server::ServerCatalog {
            raft: node.clone(),
            sessions: Default::default(),
            forward: None,
            applied: server_applied,
        });
        let routes = cairn_rpc::Routes::new().route::<CatalogRpc, _>(Arc::new(CatalogService {
            catalog: server_catalog,
            state: server_state.clone(),
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
