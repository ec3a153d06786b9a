//! An in-process cluster: N servers and M client agents in one test process, every one a
//! real [`Agent`] (gossip, catalog RPC, reconciliation, anti-entropy, the HTTP API) over
//! in-memory gossip and RPC networks whose faults are seeded. Scenarios read as steps with
//! named waits: `cluster.wait_until("c5 failed everywhere", status_everywhere("c5", 4))`.
//!
//! The seed is printed at the start (`CAIRN_SEED=... cargo test ...` replays the network's
//! fault decisions). Agents run on the multi-threaded tokio runtime, so timings vary; the
//! scenarios assert outcomes within deadlines, never exact interleavings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use cairn_agent::{Agent, Links};
use serde_json::Value;
use tower::ServiceExt;

/// Gossip timing for tests: ten times Cairn's defaults.
const FAST: &str = r#"gossip_lan {
  probe_interval = "50ms"
  probe_timeout = "25ms"
  gossip_interval = "20ms"
  suspicion_timeout = "200ms"
}"#;

/// How long a named wait may take before the scenario fails: 15 s, or
/// `CAIRN_TEST_WAIT_SECS` (for long runs on a machine busy with other work).
pub static WAIT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    let secs = std::env::var("CAIRN_TEST_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(secs)
});

/// One member of the test cluster.
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
    pub server: bool,
    args: Vec<String>,
    agent: Option<Agent>,
    /// Cleared when the agent is stopped, so [`Api`] handles taken earlier stop answering.
    alive: Arc<AtomicBool>,
}

impl Node {
    /// The running agent (panics if it was killed).
    pub fn agent(&self) -> &Agent {
        self.agent
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
    }
}

/// The cluster and its networks.
pub struct Cluster {
    pub seed: u64,
    gossip: cairn_gossip::MemoryNetwork,
    rpc: cairn_rpc::Network,
    nodes: BTreeMap<String, Node>,
    next_ip: u8,
    /// Data directories of durable servers (removed with the cluster).
    dirs: Option<tempfile::TempDir>,
}

/// The seed: `CAIRN_SEED` if set, else from the clock; printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("CAIRN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test}: seed {seed} (replay with CAIRN_SEED={seed})");
    seed
}

impl Cluster {
    pub fn new(test: &str) -> Cluster {
        Cluster::with_seed(seed(test))
    }

    /// A cluster whose networks draw from `seed` (the caller prints it).
    pub fn with_seed(seed: u64) -> Cluster {
        Cluster {
            seed,
            gossip: cairn_gossip::MemoryNetwork::new(seed, Default::default()),
            rpc: cairn_rpc::Network::new(seed),
            nodes: BTreeMap::new(),
            next_ip: 1,
            dirs: None,
        }
    }

    fn links(&self, ip: IpAddr) -> Links {
        Links::Memory {
            gossip: self.gossip.clone(),
            rpc: self.rpc.clone(),
            ip,
        }
    }

    /// The first server's address (what clients join).
    fn join_addr(&self) -> Option<String> {
        self.nodes
            .values()
            .find(|n| n.server)
            .map(|n| n.ip.to_string())
    }

    async fn boot(&mut self, name: &str, ip: IpAddr, server: bool, args: Vec<String>) {
        let cfg =
            cairn_agent::config::load(&args).unwrap_or_else(|e| panic!("config of {name}: {e}"));
        let agent = Agent::start_with(cfg, args.clone(), self.links(ip))
            .await
            .unwrap_or_else(|e| panic!("starting {name}: {e:#}"));
        self.nodes.insert(
            name.to_string(),
            Node {
                name: name.to_string(),
                ip,
                server,
                args,
                agent: Some(agent),
                alive: Arc::new(AtomicBool::new(true)),
            },
        );
    }

    fn ip(&mut self) -> IpAddr {
        let ip = IpAddr::from([10, 0, 0, self.next_ip]);
        self.next_ip += 1;
        ip
    }

    /// Starts a single server (`-dev`: in memory, bootstraps alone).
    pub async fn server(&mut self, name: &str) {
        self.server_with(name, "").await;
    }

    /// [`Cluster::server`] with extra `-hcl` configuration (a gossip key, ...).
    pub async fn server_with(&mut self, name: &str, hcl: &str) {
        let ip = self.ip();
        let mut args: Vec<String> = ["-dev", "-node", name, "-log-level", "warn", "-hcl", FAST]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !hcl.is_empty() {
            args.extend(["-hcl".into(), hcl.to_string()]);
        }
        self.boot(name, ip, true, args).await;
    }

    /// Starts a server of a replicated cluster: in memory (`-dev`), expecting `expect`
    /// servers before it bootstraps, joining the first server started.
    pub async fn cluster_server(&mut self, name: &str, expect: u32) {
        self.cluster_server_with(name, expect, "").await;
    }

    /// [`Cluster::cluster_server`] with extra `-hcl` configuration.
    pub async fn cluster_server_with(&mut self, name: &str, expect: u32, hcl: &str) {
        let ip = self.ip();
        let mut args: Vec<String> = [
            "-dev",
            "-node",
            name,
            "-log-level",
            "warn",
            "-hcl",
            FAST,
            "-retry-interval",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["-bootstrap-expect".into(), expect.to_string()]);
        if let Some(j) = self.join_addr() {
            args.extend(["-retry-join".into(), j]);
        }
        if !hcl.is_empty() {
            args.extend(["-hcl".into(), hcl.to_string()]);
        }
        self.boot(name, ip, true, args).await;
    }

    /// [`Cluster::cluster_server`] with its Raft log and node ID in a data directory, so a
    /// [`Cluster::kill`] and [`Cluster::restart`] keep its storage; extra `-hcl` if not empty.
    pub async fn durable_server(&mut self, name: &str, expect: u32, hcl: &str) {
        let ip = self.ip();
        let dirs = self
            .dirs
            .get_or_insert_with(|| tempfile::tempdir().expect("a temporary directory"));
        let dir = dirs.path().join(name);
        let mut args: Vec<String> = [
            "-dev",
            "-node",
            name,
            "-log-level",
            "error",
            "-hcl",
            FAST,
            "-retry-interval",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["-data-dir".into(), dir.display().to_string()]);
        args.extend(["-bootstrap-expect".into(), expect.to_string()]);
        if let Some(j) = self.join_addr() {
            args.extend(["-retry-join".into(), j]);
        }
        if !hcl.is_empty() {
            args.extend(["-hcl".into(), hcl.to_string()]);
        }
        self.boot(name, ip, true, args).await;
    }

    /// The name of the leader `on` reports, if any.
    pub async fn leader_name(&self, on: &str) -> Option<String> {
        let v = self.get(on, "/v1/status/leader").await?;
        let ip: IpAddr = v.as_str()?.rsplit_once(':')?.0.parse().ok()?;
        self.nodes
            .values()
            .find(|n| n.ip == ip)
            .map(|n| n.name.clone())
    }

    /// Starts a client agent that joins the first server, with extra `-hcl` configuration
    /// (services, checks).
    pub async fn client(&mut self, name: &str, hcl: &str) {
        let ip = self.ip();
        let mut args: Vec<String> = ["-node", name, "-hcl", FAST, "-retry-interval", "100ms"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(j) = self.join_addr() {
            args.extend(["-retry-join".into(), j]);
        }
        if !hcl.is_empty() {
            args.extend(["-hcl".into(), hcl.to_string()]);
        }
        self.boot(name, ip, false, args).await;
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .get(name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Names of the running nodes.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.agent.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// Stops `name` at once, without leaving (a crash: `kill -9`).
    pub async fn kill(&mut self, name: &str) {
        let node = self.nodes.get_mut(name).expect("node");
        node.alive.store(false, Ordering::SeqCst);
        if let Some(a) = node.agent.take() {
            a.shutdown().await;
        }
    }

    /// Stops every running node at once, as [`Cluster::kill`] does (the cluster can be
    /// dropped afterwards with nothing left running).
    pub async fn stop_all(&mut self) {
        for name in self.running() {
            self.kill(&name).await;
        }
    }

    /// Leaves the pool gracefully, then stops.
    pub async fn leave(&mut self, name: &str) {
        let node = self.nodes.get_mut(name).expect("node");
        node.alive.store(false, Ordering::SeqCst);
        if let Some(a) = node.agent.take() {
            a.leave_pool().await;
            a.shutdown().await;
        }
    }

    /// Starts a stopped node again with its arguments (a new incarnation).
    pub async fn restart(&mut self, name: &str) {
        let node = self.nodes.get(name).expect("node");
        assert!(node.agent.is_none(), "{name} is running");
        let (ip, server, args) = (node.ip, node.server, node.args.clone());
        self.boot(name, ip, server, args).await;
    }

    /// Cuts `name` off from every other node (gossip and RPC), or heals it.
    pub fn isolate(&self, name: &str, isolated: bool) {
        let ip = self.node(name).ip;
        self.gossip
            .with_model(|m| m.isolate(std::net::SocketAddr::new(ip, 8301), isolated));
        for other in self.nodes.values().filter(|n| n.name != name) {
            let a = std::net::SocketAddr::new(ip, 8300);
            let b = std::net::SocketAddr::new(other.ip, 8300);
            if isolated {
                self.rpc.partition(a, b);
            } else {
                self.rpc.heal(a, b);
            }
        }
    }

    /// An HTTP request to `node`'s API, in process; (status, JSON body or null).
    pub async fn http(&self, node: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, v) = self.request(node, method, path, body).await;
        (status, v)
    }

    /// Like [`http`](Self::http), with the response headers.
    pub async fn request(
        &self,
        node: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, axum::http::HeaderMap, Value) {
        send(self.node(node).agent(), method, path, body).await
    }

    /// A handle on `node`'s HTTP API that outlives the borrow of the cluster (`None` if
    /// the node is not running).
    pub fn api(&self, node: &str) -> Option<Api> {
        let n = self.nodes.get(node)?;
        Some(Api {
            agent: n.agent.clone()?,
            alive: n.alive.clone(),
        })
    }

    /// Names of the servers (running or not).
    pub fn servers(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.server)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Splits the server RPC network (Raft and the catalog protocol) into `groups`: nodes
    /// in different groups cannot call each other; nodes not listed keep every link. The
    /// gossip pool is not split.
    pub fn partition_rpc(&self, groups: &[Vec<String>]) {
        let addr = |n: &str| SocketAddr::new(self.node(n).ip, 8300);
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                for x in a {
                    for y in b {
                        self.rpc.partition(addr(x), addr(y));
                    }
                }
            }
        }
    }

    /// Splits the cluster into `groups`, RPC and gossip alike (nodes not listed join the
    /// first group in gossip and keep every RPC link).
    pub fn partition(&self, groups: &[Vec<String>]) {
        self.partition_rpc(groups);
        let addrs: Vec<Vec<SocketAddr>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|n| SocketAddr::new(self.node(n).ip, 8301))
                    .collect()
            })
            .collect();
        let refs: Vec<&[SocketAddr]> = addrs.iter().map(Vec::as_slice).collect();
        self.gossip.with_model(|m| m.partition(&refs));
    }

    /// Heals every RPC link and every gossip partition and isolation.
    pub fn heal_all(&self) {
        self.rpc.heal_all();
        self.gossip.with_model(|m| m.heal());
        for n in self.nodes.values() {
            self.gossip
                .with_model(|m| m.isolate(SocketAddr::new(n.ip, 8301), false));
        }
    }

    /// Loses each RPC call with probability `drop` and delays each message by `delay`
    /// plus up to `jitter` (zeros restore a clean network).
    pub fn rpc_faults(&self, drop: f64, delay: Duration, jitter: Duration) {
        self.rpc.set_drop_probability(drop);
        self.rpc.set_delay(delay, jitter);
    }

    /// Streamed RPC items (the stream a client's replica follows) arrive `delay` after
    /// they were sent, whatever the calls' delay (`None`: as the calls).
    pub fn rpc_stream_delay(&self, delay: Option<Duration>) {
        self.rpc.set_stream_delay(delay);
    }

    /// How many RPC calls `node` has made to servers so far.
    pub fn rpc_calls_from(&self, node: &str) -> u64 {
        self.rpc.calls_from(self.node(node).ip)
    }

    /// An HTTP request with a binary body; (status, body bytes).
    pub async fn http_bytes(
        &self,
        node: &str,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let app: cairn_http::App = Arc::new(self.node(node).agent().clone());
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body))
            .expect("request");
        let resp = cairn_http::router(app)
            .oneshot(req)
            .await
            .expect("router answers");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        (status, bytes.to_vec())
    }

    /// `GET` returning the JSON body when the status is 200.
    pub async fn get(&self, node: &str, path: &str) -> Option<Value> {
        let (s, v) = self.http(node, "GET", path, "").await;
        (s == 200).then_some(v)
    }

    /// Polls `cond` every 20 ms until it holds; panics naming `what` after [`struct@WAIT`].
    pub async fn wait_until<C: Condition>(&self, what: &str, cond: C) -> Duration {
        let limit = *WAIT;
        match self.try_wait_until(cond).await {
            Some(took) => took,
            None => panic!(
                "timed out after {limit:?} waiting until {what} (seed {})",
                self.seed
            ),
        }
    }

    /// [`Cluster::wait_until`] that answers `None` instead of panicking.
    pub async fn try_wait_until<C: Condition>(&self, cond: C) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if cond.holds(self).await {
                return Some(start.elapsed());
            }
            if start.elapsed() >= *WAIT {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A cluster dropped with nodes still running stops them in the background: their tasks
/// (gossip, Raft, leader duties) hold their own handles and would otherwise run, and keep
/// their storage open, for the rest of the test process. The data directories go once
/// they have stopped.
impl Drop for Cluster {
    fn drop(&mut self) {
        let agents: Vec<Agent> = self
            .nodes
            .values_mut()
            .filter_map(|n| {
                n.alive.store(false, Ordering::SeqCst);
                n.agent.take()
            })
            .collect();
        let dirs = self.dirs.take();
        if agents.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for a in agents {
                    a.shutdown().await;
                }
                drop(dirs);
            });
        }
    }
}

/// A node's HTTP API, callable without holding the cluster.
#[derive(Clone)]
pub struct Api {
    agent: Agent,
    alive: Arc<AtomicBool>,
}

impl Api {
    /// As [`Cluster::http`]; `None` if the node was stopped before it answered (as a
    /// connection to a crashed process breaks).
    pub async fn call(&self, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
        if !self.alive.load(Ordering::SeqCst) {
            return None;
        }
        let (status, _, v) = send(&self.agent, method, path, body).await;
        self.alive.load(Ordering::SeqCst).then_some((status, v))
    }
}

async fn send(
    agent: &Agent,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, axum::http::HeaderMap, Value) {
    let app: cairn_http::App = Arc::new(agent.clone());
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = cairn_http::router(app)
        .oneshot(req)
        .await
        .expect("router answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, v)
}

/// A named condition over the cluster.
pub trait Condition {
    fn holds(&self, c: &Cluster) -> impl std::future::Future<Output = bool>;
}

/// `name`'s member status (1 alive, 3 left, 4 failed) as `on` sees it.
pub async fn status_seen(c: &Cluster, on: &str, name: &str) -> Option<i64> {
    let v = c.get(on, "/v1/agent/members").await?;
    v.as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_i64())
}

/// Every running node sees exactly `n` members alive.
pub struct MembersAlive(pub usize);

impl Condition for MembersAlive {
    async fn holds(&self, c: &Cluster) -> bool {
        for on in c.running() {
            let Some(v) = c.get(&on, "/v1/agent/members").await else {
                return false;
            };
            let alive = v
                .as_array()
                .map(|a| a.iter().filter(|m| m["Status"] == 1).count())
                .unwrap_or(0);
            if alive != self.0 {
                return false;
            }
        }
        true
    }
}

pub fn members_alive(n: usize) -> MembersAlive {
    MembersAlive(n)
}

/// Every running node other than `name` sees `name` with `status` (`None`: not listed).
pub struct StatusEverywhere(pub String, pub Option<i64>);

impl Condition for StatusEverywhere {
    async fn holds(&self, c: &Cluster) -> bool {
        for on in c.running().into_iter().filter(|n| *n != self.0) {
            if status_seen(c, &on, &self.0).await != self.1 {
                return false;
            }
        }
        true
    }
}

pub fn status_everywhere(name: &str, status: i64) -> StatusEverywhere {
    StatusEverywhere(name.to_string(), Some(status))
}

/// Every running node answers `?passing` health for `service` with `n` instances.
pub struct Passing(pub String, pub usize);

impl Condition for Passing {
    async fn holds(&self, c: &Cluster) -> bool {
        for on in c.running() {
            let path = format!("/v1/health/service/{}?passing", self.0);
            let Some(v) = c.get(&on, &path).await else {
                return false;
            };
            if v.as_array().map(Vec::len) != Some(self.1) {
                return false;
            }
        }
        true
    }
}

pub fn passing_everywhere(service: &str, n: usize) -> Passing {
    Passing(service.to_string(), n)
}

/// A service definition in HCL.
/// ACLs on (default deny) with `root` as the management token and as the agent's
/// `default` and `agent` tokens: requests without a token, the harness's waits
/// included, act as management.
pub fn acl_managed_by(root: &str) -> String {
    format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{root}\"\n    default = \"{root}\"\n    agent = \"{root}\"\n  }}\n}}\n"
    )
}

pub fn service(name: &str, port: u16) -> String {
    format!("service {{\n name = \"{name}\"\n port = {port}\n}}")
}

/// Every running node (but the excluded one) reports the same leader, which is not the
/// excluded node.
pub struct LeaderAgreed(pub Option<String>);

impl Condition for LeaderAgreed {
    async fn holds(&self, c: &Cluster) -> bool {
        let mut seen: Option<String> = None;
        for on in c.running() {
            if Some(&on) == self.0.as_ref() {
                continue;
            }
            let Some(l) = c.leader_name(&on).await else {
                return false;
            };
            if Some(&l) == self.0.as_ref() || seen.as_ref().is_some_and(|s| *s != l) {
                return false;
            }
            seen = Some(l);
        }
        seen.is_some()
    }
}
