//! Three Raft servers over real TCP on 127.0.0.1 (ephemeral ports), with redb logs: the same
//! network code as the in-process tests, on cairn-rpc's TCP transport.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_raft::{ClusterOptions, RaftNode, RaftOptions, RaftRpc};
use cairn_rpc::{Client, ClientConfig, Routes, RpcServer, ServerConfig, TcpClient};
use cairn_state::{Command, KvOp, KvVerb, State};
use parking_lot::RwLock;
use tokio::sync::{oneshot, watch};

struct TcpServer {
    node: RaftNode,
    state: Arc<RwLock<State>>,
    applied: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_over_tcp_elect_and_replicate() {
    // Bind first: the advertised addresses are the ports the OS picked.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: BTreeMap<u64, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string()))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for (listener, (id, addr)) in listeners.into_iter().zip(addrs.clone()) {
        let state = Arc::new(RwLock::new(State::default()));
        let (applied_tx, applied) = watch::channel(0);
        let client: Client<RaftRpc> =
            Client::new(TcpClient::<RaftRpc>::new(ClientConfig::default()));
        let node = RaftNode::start_cluster(
            RaftOptions {
                node_id: id,
                addr,
                data_dir: Some(dir.path().join(id.to_string())),
                state: state.clone(),
                applied_tx,
                raft_multiplier: 1,
            },
            ClusterOptions::new(client),
        )
        .await
        .expect("start");
        let routes = node.route(Routes::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            RpcServer::new(ServerConfig::default())
                .serve(listener, routes, async {
                    let _ = stopped.await;
                })
                .await
        });
        servers.push(TcpServer {
            node,
            state,
            applied,
            stop,
            serving,
        });
    }

    servers[0]
        .node
        .initialize(addrs.clone())
        .await
        .expect("initialize");
    wait_until("one leader that all three follow", || {
        let leaders: Vec<u64> = servers
            .iter()
            .filter(|s| s.node.is_leader())
            .map(|s| s.node.node_id())
            .collect();
        leaders.len() == 1
            && servers
                .iter()
                .all(|s| s.node.current_leader() == Some(leaders[0]))
    })
    .await;
    let leader = servers.iter().find(|s| s.node.is_leader()).unwrap();
    // A new leader takes writes once a quorum has acknowledged it (its lease).
    wait_until("the leader's quorum acknowledged it", || {
        leader.node.leads_with_quorum()
    })
    .await;

    let mut last = 0;
    let t0 = Instant::now();
    for i in 0..50 {
        let mut op = KvOp::new(KvVerb::Set, format!("tcp/{i}"));
        op.value = i.to_string().into_bytes();
        last = leader.node.write(Command::Kv(op)).await.expect("write").0;
    }
    let took = t0.elapsed();
    eprintln!(
        "50 sequential writes, 3 servers over TCP with redb logs: {took:?} ({:?} each)",
        took / 50
    );
    wait_until("all three applied every write", || {
        servers.iter().all(|s| *s.applied.borrow() >= last)
    })
    .await;
    for s in &servers {
        let state = s.state.read();
        let (entry, _) = state.kv_get("tcp/49");
        assert_eq!(entry.map(|e| e.value.as_slice()), Some(b"49".as_slice()));
    }
    for s in &servers {
        assert_eq!(s.node.peers().len(), 3);
    }

    for s in servers {
        s.node.shutdown().await;
        let _ = s.stop.send(());
        s.serving.await.unwrap().unwrap();
    }
}
