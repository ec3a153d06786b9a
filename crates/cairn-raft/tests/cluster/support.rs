//! A cluster of Raft servers on cairn-rpc's in-process network, for scenario tests: start,
//! stop and restart servers, cut links, write through whoever leads, and wait (bounded, by
//! polling) for named conditions.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_raft::{ClusterOptions, RaftNode, RaftOptions, RaftRpc, TypeConfig, WriteError};
use cairn_rpc::{Client, ClientConfig, LocalServer, Network, Routes, ServerConfig};
use cairn_state::{Command, KvOp, KvVerb, State};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use parking_lot::RwLock;
use tokio::sync::watch;

/// How long a named wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One server of a [`Cluster`].
pub struct Server {
    pub id: u64,
    pub addr: SocketAddr,
    pub node: RaftNode,
    pub state: Arc<RwLock<State>>,
    pub applied: watch::Receiver<u64>,
    registration: Option<LocalServer>,
}

/// How the servers of a cluster are built.
#[derive(Clone)]
pub struct Setup {
    /// Keep logs in redb under this directory (one sub-directory per server); `None` = memory.
    pub data_dir: Option<PathBuf>,
    pub snapshot_every: u64,
    pub logs_kept_after_snapshot: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            data_dir: None,
            snapshot_every: 10_000,
            logs_kept_after_snapshot: 1000,
        }
    }
}

pub struct Cluster {
    pub net: Network,
    pub setup: Setup,
    pub servers: BTreeMap<u64, Server>,
}

pub fn addr_of(id: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, id as u8], 8300))
}

/// A KV set of `key` to `value`.
pub fn set(key: &str, value: &str) -> Command {
    let mut op = KvOp::new(KvVerb::Set, key);
    op.value = value.as_bytes().to_vec();
    Command::Kv(op)
}

impl Cluster {
    /// `n` servers (ids 1..=n) on a fresh in-process network whose faults draw from `seed`;
    /// not yet initialized.
    pub async fn start(seed: u64, n: u64, setup: Setup) -> Cluster {
        let mut c = Cluster {
            net: Network::new(seed),
            setup,
            servers: BTreeMap::new(),
        };
        for id in 1..=n {
            c.start_server(id).await;
        }
        c
    }

    /// `n` servers, initialized as one cluster from server 1, with a leader elected.
    pub async fn formed(seed: u64, n: u64, setup: Setup) -> Cluster {
        let c = Cluster::start(seed, n, setup).await;
        let members = c.servers.keys().map(|id| (*id, addr_of(*id).to_string()));
        c.server(1)
            .node
            .initialize(members.collect())
            .await
            .expect("initialize");
        c.wait_until("a leader is elected", || c.leader().is_some())
            .await;
        c
    }

    /// Starts (or restarts, from its data directory) server `id` and registers it.
    pub async fn start_server(&mut self, id: u64) {
        let addr = addr_of(id);
        let state = Arc::new(RwLock::new(State::default()));
        let (applied_tx, applied) = watch::channel(0);
        let client: Client<RaftRpc> =
            Client::new(self.net.client::<RaftRpc>(addr, ClientConfig::default()));
        let mut cluster = ClusterOptions::new(client);
        cluster.snapshot_every = self.setup.snapshot_every;
        cluster.logs_kept_after_snapshot = self.setup.logs_kept_after_snapshot;
        let node = RaftNode::start_cluster(
            RaftOptions {
                node_id: id,
                addr: addr.to_string(),
                data_dir: self.setup.data_dir.as_ref().map(|d| d.join(id.to_string())),
                state: state.clone(),
                applied_tx,
                raft_multiplier: 1,
            },
            cluster,
        )
        .await
        .expect("start server");
        let registration = self
            .net
            .serve(addr, node.route(Routes::new()), ServerConfig::default())
            .expect("register server");
        self.servers.insert(
            id,
            Server {
                id,
                addr,
                node,
                state,
                applied,
                registration: Some(registration),
            },
        );
    }

    /// Stops server `id` (Raft shut down, storage closed, address unregistered).
    pub async fn stop_server(&mut self, id: u64) {
        let s = self.servers.remove(&id).expect("server exists");
        s.node.shutdown().await;
        drop(s);
    }

    pub fn server(&self, id: u64) -> &Server {
        &self.servers[&id]
    }

    pub fn ids(&self) -> BTreeSet<u64> {
        self.servers.keys().copied().collect()
    }

    /// The server that leads with a majority of its voters following it, if any (an
    /// isolated old leader that still believes it leads does not count).
    pub fn leader(&self) -> Option<u64> {
        self.leader_among(&self.ids())
    }

    /// A leader among `ids` that a majority of its voters follows.
    pub fn leader_among(&self, ids: &BTreeSet<u64>) -> Option<u64> {
        ids.iter().copied().find(|id| {
            let node = &self.server(*id).node;
            let voters = node.voter_ids();
            let following = voters
                .iter()
                .filter(|v| {
                    self.servers
                        .get(v)
                        .is_some_and(|s| s.node.current_leader() == Some(*id))
                })
                .count();
            node.is_leader() && following > voters.len() / 2
        })
    }

    pub fn server_state(&self, id: u64) -> ServerState {
        self.server(id).node.raft().metrics().borrow_watched().state
    }

    pub fn metrics(&self, id: u64) -> openraft::RaftMetrics<TypeConfig> {
        self.server(id)
            .node
            .raft()
            .metrics()
            .borrow_watched()
            .clone()
    }

    /// The value of `key` on server `id`.
    pub fn kv(&self, id: u64, key: &str) -> Option<String> {
        let state = self.server(id).state.read();
        state
            .kv_get(key)
            .0
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
    }

    /// Server `id`'s whole state, as JSON (for comparing replicas).
    pub fn state_json(&self, id: u64) -> serde_json::Value {
        serde_json::to_value(&*self.server(id).state.read()).expect("state to json")
    }

    /// Writes through whoever leads, retrying while there is no leader or it changes;
    /// fails the test after [`WAIT`]. Returns the write's log index.
    pub async fn write(&self, cmd: Command) -> u64 {
        let t0 = Instant::now();
        loop {
            let result = match self.leader() {
                Some(leader) => {
                    self.write_on(leader, cmd.clone(), Duration::from_secs(2))
                        .await
                }
                None => Err(WriteError::NoLeader),
            };
            match result {
                Ok(index) => return index,
                Err(e) => assert!(
                    t0.elapsed() < WAIT,
                    "write failed for {WAIT:?}: {e}; servers: {}",
                    self.describe()
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each server's role and known leader, for failure messages.
    pub fn describe(&self) -> String {
        self.servers
            .values()
            .map(|s| {
                let m = s.node.raft().metrics().borrow_watched().clone();
                format!(
                    "{}: {:?} term {} leader {:?} applied {:?}",
                    s.id, m.state, m.current_term, m.current_leader, m.last_applied
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Writes on server `id`, giving up after `timeout` (reported as `Other`).
    pub async fn write_on(
        &self,
        id: u64,
        cmd: Command,
        timeout: Duration,
    ) -> Result<u64, WriteError> {
        match tokio::time::timeout(timeout, self.server(id).node.write(cmd)).await {
            Ok(r) => r.map(|(index, _)| index),
            Err(_) => Err(WriteError::Other(format!("no answer within {timeout:?}"))),
        }
    }

    /// Cuts every link between `id` and the other servers.
    pub fn isolate(&self, id: u64) {
        for other in self.ids() {
            if other != id {
                self.net.partition(addr_of(id), addr_of(other));
            }
        }
    }

    /// Polls `cond` until it holds; fails the test, naming `what`, after [`WAIT`].
    pub async fn wait_until(&self, what: &str, cond: impl Fn() -> bool) -> Duration {
        wait_until(what, cond).await
    }

    pub async fn shutdown(self) {
        for s in self.servers.values() {
            s.node.shutdown().await;
        }
    }
}

/// Polls `cond` every 10 ms until it holds; fails the test, naming `what`, after [`WAIT`].
/// Returns how long it took.
pub async fn wait_until(what: &str, cond: impl Fn() -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        if cond() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The seed for a randomised test: `CAIRN_RAFT_SEED` if set, else from the clock. Printed so
/// a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("CAIRN_RAFT_SEED") {
        Ok(s) => s.parse().expect("CAIRN_RAFT_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!("{test}: seed {seed} (replay: CAIRN_RAFT_SEED={seed} cargo test -p cairn-raft --test cluster {test})");
    seed
}
