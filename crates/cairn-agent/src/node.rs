//! [`Agent`]: one running Cairn agent: starting it (state, Raft, gossip, listeners),
//! registering itself, reloading, leaving and shutting down. What the HTTP layer calls on
//! it (its `Backend` implementation) is [`crate::backend`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_http::Limits;
use cairn_raft::{RaftNode, RaftOptions};
use cairn_state::{Command, Outcome, Registration, State};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::{HealthCheck, Node, NodeService, PASSING, SERF_CHECK_ID, SERF_CHECK_NAME};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::catalog::{Catalog, CatalogError, ServerCatalog};
use crate::config::Config;
use crate::links::Links;
use crate::local::LocalState;
use cairn_server::coalesce::Coalescer;
use cairn_server::SessionTimers;

/// A running agent. Cheap to clone (all handles).
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: Config,
    pub node_id: String,
    pub address: String,
    /// The replicated catalog (the local Raft node on a server, RPC on a client).
    pub catalog: Arc<dyn Catalog>,
    /// This agent's LAN gossip member (`None` only on a server with `ports.serf_lan = -1`).
    pub gossip: Option<Arc<cairn_gossip::Gossip>>,
    /// The server RPC port actually bound (servers only).
    pub rpc_port: Option<u16>,
    /// TLS for HTTPS and server RPC (reloaded with the configuration).
    pub tls: Arc<crate::tls::Tls>,
    pub state: Arc<RwLock<State>>,
    pub applied: watch::Receiver<u64>,
    pub limits: Limits,
    pub local: parking_lot::Mutex<LocalState>,
    pub sessions: Arc<SessionTimers>,
    /// Serialises agent-local mutations with their catalog writes, so the local view
    /// and the catalog never diverge by interleaving.
    pub local_lock: tokio::sync::Mutex<()>,
    pub tasks: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The server RPC port being served (dropped at shutdown).
    pub serving: parking_lot::Mutex<Option<crate::links::Serving>>,
    /// Signalled by `PUT /v1/agent/leave`.
    pub leave: tokio::sync::Notify,
    /// Set, with the reason, when the agent must exit (`-retry-join` gave up).
    pub fatal: watch::Sender<Option<String>>,
    /// Signalled when a TTL deadline moves, so expiry happens on time.
    pub ttl_changed: tokio::sync::Notify,
    /// The agent's command-line arguments (re-read on reload).
    pub args: Vec<String>,
    /// Default-mode and `?consistent` read barriers, each shared by the reads waiting.
    pub barriers: [Coalescer<Result<(), CatalogError>>; 2],
    /// Since when each server has been healthy or not (autopilot's `StableSince`).
    pub stable: cairn_server::autopilot::StableTracker,
    /// ACL enforcement (`None`: ACLs disabled).
    pub acl: Option<Arc<cairn_http::AclRuntime>>,
    /// Signalled when the agent's tokens change (`/v1/agent/token/*`): anti-entropy
    /// retries what ACLs blocked.
    pub tokens_changed: Arc<tokio::sync::Notify>,
    /// Whether the last write of this node's entries was blocked by ACLs (anti-entropy
    /// then retries when the ACL tables change, besides its timer).
    pub acl_blocked: std::sync::atomic::AtomicBool,
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Agent {
    /// Starts Raft, registers this node and its config-file services, and starts the
    /// background tasks (TTL checks, session expiry).
    /// `args` are the command-line arguments the config came from; `reload` re-reads them.
    pub async fn start(cfg: Config, args: Vec<String>) -> anyhow::Result<Agent> {
        Agent::start_with(cfg, args, Links::Sockets).await
    }

    /// [`Agent::start`] over the given transports (in-memory ones in the cluster harness).
    pub async fn start_with(cfg: Config, args: Vec<String>, links: Links) -> anyhow::Result<Agent> {
        cfg.check_supported()?;
        let tls = Arc::new(crate::tls::Tls::load(&cfg)?);
        let state = Arc::new(RwLock::new(State::new()));
        let (applied_tx, applied_rx) = watch::channel(0u64);
        let address = links.advertise(&cfg);
        if let Some(d) = &cfg.data_dir {
            std::fs::create_dir_all(d)?;
            if cfg.server {
                // Only a server holds a Raft log to lose.
                crate::datadir::check_intact(d)?;
            }
        }
        let node_id = crate::datadir::node_id(cfg.node_id.as_deref(), cfg.data_dir.as_deref())?;
        // A server binds its RPC port first: its port goes into the gossip tags.
        let rpc_port_bound = links.rpc_port(&cfg).await?;
        let rpc_port = match &rpc_port_bound {
            Some(p) => Some(p.port()?),
            None => None,
        };
        let tags = crate::lan::tags(&cfg, &node_id, rpc_port);
        let gossip = links.gossip(&cfg, tags).await?;
        if gossip.is_none() && !cfg.server {
            anyhow::bail!(
                "a client agent needs the serf LAN port to find its servers (ports.serf_lan is -1)"
            );
        }
        let sessions = Arc::new(SessionTimers::default());
        let mut serving = None;
        let mut cluster_raft = None;
        let catalog: Arc<dyn Catalog> = if cfg.server {
            let opts = RaftOptions {
                node_id: 1,
                addr: format!("{address}:{}", rpc_port.unwrap_or(8300)),
                data_dir: cfg.data_dir.clone(),
                state: state.clone(),
                applied_tx,
                raft_multiplier: cfg.raft_multiplier,
            };
            // A server that bootstraps alone runs Raft without peers; any other server
            // (-bootstrap-expect N > 1, or one joining a running cluster) talks to its
            // peers over the server RPC port, under a Raft ID taken from its node ID.
            let raft = if cfg.bootstraps_alone() {
                RaftNode::start_with_snapshots(opts, cfg.raft_snapshots).await?
            } else {
                let opts = RaftOptions {
                    node_id: cairn_server::bootstrap::raft_id(&node_id),
                    ..opts
                };
                if let Some(dir) = &opts.data_dir {
                    // Manual outage recovery: data_dir/raft/peers.json (docs/operations.md).
                    cairn_raft::recovery::apply_peers_file(
                        dir,
                        opts.node_id,
                        cairn_server::bootstrap::raft_id,
                    )
                    .await?;
                }
                let node = RaftNode::start_cluster(
                    opts,
                    cairn_raft::ClusterOptions::new(links.raft_client(&tls))
                        .with_snapshots(cfg.raft_snapshots),
                )
                .await?;
                cluster_raft = Some(node.clone());
                node
            };
            let server_catalog = Arc::new(ServerCatalog {
                raft: raft.clone(),
                sessions: sessions.clone(),
                forward: cluster_raft.as_ref().map(|_| links.catalog_client(&tls)),
                applied: applied_rx.clone(),
            });
            if let Some(port) = rpc_port_bound {
                let service = cairn_server::CatalogService {
                    catalog: server_catalog.clone(),
                    state: state.clone(),
                    gossip: gossip.clone(),
                };
                let mut routes = cairn_rpc::Routes::new()
                    .route::<cairn_server::CatalogRpc, _>(Arc::new(service));
                if cluster_raft.is_some() {
                    routes = raft.route(routes);
                }
                serving = Some(port.serve(routes, &tls)?);
            }
            server_catalog
        } else {
            let gossip = gossip.clone().expect("checked above");
            let servers = Arc::new(crate::replica::servers::PoolServers::new(
                gossip,
                cfg.datacenter.clone(),
            ));
            Arc::new(crate::replica::remote::RemoteCatalog::start(
                links.catalog_client(&tls),
                servers,
                cfg.node_name.clone(),
                state.clone(),
                applied_tx,
            ))
        };
        let limits = Limits {
            kv_max_value_size: cfg.limits.kv_max_value_size as usize,
            txn_max_req_len: cfg.limits.txn_max_req_len as usize,
            max_body: (cfg.limits.kv_max_value_size as usize).max(1024 * 1024),
            default_query_time: cfg.default_query_time,
            max_query_time: cfg.max_query_time,
            session_ttl_min: cfg.session_ttl_min,
            discovery_max_stale: cfg.discovery_max_stale,
        };
        let (fatal, _) = watch::channel(None);
        let tokens_changed = Arc::new(tokio::sync::Notify::new());
        let agent = Agent {
            inner: Arc::new(Inner {
                node_id,
                address: address.to_string(),
                catalog,
                gossip,
                rpc_port,
                tls,
                state,
                applied: applied_rx,
                limits,
                local: parking_lot::Mutex::new(LocalState::default()),
                sessions,
                local_lock: tokio::sync::Mutex::new(()),
                tasks: parking_lot::Mutex::new(Vec::new()),
                serving: parking_lot::Mutex::new(serving),
                leave: tokio::sync::Notify::new(),
                fatal,
                ttl_changed: tokio::sync::Notify::new(),
                args,
                barriers: Default::default(),
                acl: crate::acl::runtime(&cfg, tokens_changed.clone()).map(Arc::new),
                tokens_changed,
                acl_blocked: Default::default(),
                cfg,
                stable: Default::default(),
            }),
        };
        let cfg = &agent.inner.cfg;
        if cfg.bootstraps_alone() {
            // A lone server leads at once and registers itself; in a cluster the leader's
            // reconciliation registers every server from the pool.
            agent.register_self().await?;
        }
        agent.restore_local()?;
        agent.load_config_services().await?;
        if let Some(gossip) = &agent.inner.gossip {
            if !cfg.start_join.is_empty() {
                // `-join` at start: the agent does not start if nobody answers (Consul).
                let n = crate::lan::join(gossip, &cfg.start_join)
                    .await
                    .map_err(|e| anyhow::anyhow!("-join {:?} failed: {e}", cfg.start_join))?;
                tracing::info!(joined = n, "joined the pool through {:?}", cfg.start_join);
            }
            if !cfg.retry_join.is_empty() {
                let (gossip, agent2) = (gossip.clone(), agent.clone());
                let (addrs, every, max) =
                    (cfg.retry_join.clone(), cfg.retry_interval, cfg.retry_max);
                let t = tokio::spawn(async move {
                    if let Err(e) = crate::lan::retry_join(gossip, addrs, every, max).await {
                        agent2.inner.fatal.send_replace(Some(e));
                    }
                });
                agent.inner.tasks.lock().push(t);
            }
        }
        let remembered = cfg
            .data_dir
            .as_deref()
            .map(crate::peers::load)
            .unwrap_or_default();
        if let (Some(gossip), Some(dir)) = (&agent.inner.gossip, &cfg.data_dir) {
            let mut tasks = agent.inner.tasks.lock();
            tasks.push(tokio::spawn(crate::peers::keep(
                gossip.clone(),
                dir.clone(),
            )));
            if !remembered.is_empty() {
                tasks.push(tokio::spawn(crate::peers::rejoin(
                    gossip.clone(),
                    remembered.clone(),
                    std::time::Duration::from_secs(1),
                    30,
                )));
            }
        }
        if let (false, Some(gossip)) = (cfg.server, &agent.inner.gossip) {
            let configured: Vec<String> = cfg
                .start_join
                .iter()
                .chain(&cfg.retry_join)
                .chain(&remembered)
                .cloned()
                .collect();
            let t = tokio::spawn(crate::lan::keep_servers(
                gossip.clone(),
                cfg.datacenter.clone(),
                configured,
                std::time::Duration::from_secs(2),
            ));
            agent.inner.tasks.lock().push(t);
        }
        // Bring the catalog in line with what was restored before serving (a client
        // that knows no server yet does this once it follows one).
        agent.sync().await;
        let t1 = tokio::spawn(crate::local::ttl_loop(agent.clone()));
        if let (Some(raft), Some(gossip)) = (&cluster_raft, &agent.inner.gossip) {
            let t = tokio::spawn(cairn_server::bootstrap::run(
                raft.clone(),
                gossip.clone(),
                cfg.node_name.clone(),
                cfg.datacenter.clone(),
                cfg.bootstrap_expect,
            ));
            agent.inner.tasks.lock().push(t);
        }
        let duties = cairn_server::Duties {
            catalog: agent.inner.catalog.clone(),
            state: agent.inner.state.clone(),
            gossip: agent.inner.gossip.clone(),
            sessions: agent.inner.sessions.clone(),
            raft: cluster_raft,
            datacenter: cfg.datacenter.clone(),
            kv_tombstone_ttl: cfg.kv_tombstone_ttl,
            kv_tombstone_granularity: cfg.kv_tombstone_granularity,
            acl_initial: crate::acl::initial_management_command(cfg, now_ms()),
            acl_enabled: cfg.acl.enabled,
        };
        let t2 = tokio::spawn(cairn_server::supervise(duties));
        let t3 = tokio::spawn(crate::antientropy::run(agent.clone()));
        agent.inner.tasks.lock().extend([t1, t2, t3]);
        Ok(agent)
    }

    /// The catalog entry of this node.
    pub(crate) fn self_node(&self) -> Node {
        let c = &self.inner.cfg;
        let mut tagged = std::collections::BTreeMap::new();
        tagged.insert("lan".to_string(), self.inner.address.clone());
        tagged.insert("lan_ipv4".to_string(), self.inner.address.clone());
        tagged.insert("wan".to_string(), self.inner.address.clone());
        tagged.insert("wan_ipv4".to_string(), self.inner.address.clone());
        let mut meta = c.node_meta.clone();
        meta.entry("consul-network-segment".into()).or_default();
        Node {
            id: self.inner.node_id.clone(),
            node: c.node_name.clone(),
            address: self.inner.address.clone(),
            datacenter: c.datacenter.clone(),
            tagged_addresses: tagged,
            meta,
            create_index: 0,
            modify_index: 0,
        }
    }

    async fn register_self(&self) -> anyhow::Result<()> {
        let serf = HealthCheck {
            node: self.inner.cfg.node_name.clone(),
            check_id: SERF_CHECK_ID.into(),
            name: SERF_CHECK_NAME.into(),
            status: PASSING.into(),
            output: "Agent alive and reachable".into(),
            check_type: String::new(),
            ..Default::default()
        };
        // Servers advertise themselves as the `consul` service, as Consul servers do
        // (clients and scripts look for it).
        let rpc_port = self.inner.rpc_port.unwrap_or(8300);
        let consul_svc = NodeService {
            id: "consul".into(),
            service: "consul".into(),
            port: rpc_port,
            meta: [
                ("raft_version", "3"),
                ("serf_protocol_current", "2"),
                ("serf_protocol_max", "5"),
                ("version", crate::CONSUL_API_VERSION),
                ("non_voter", "false"),
                ("read_replica", "false"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        };
        let reg = Registration {
            node: self.self_node(),
            service: self.inner.cfg.server.then_some(consul_svc),
            checks: vec![serf],
            skip_node_update: false,
            now_ms: now_ms(),
        };
        let cmd = Command::Register(reg);
        if !self.acl_allows(&cmd) {
            return Ok(());
        }
        self.write_cmd(cmd)
            .await
            .map_err(|e| anyhow::anyhow!("registering this node: {e}"))?;
        Ok(())
    }

    async fn load_config_services(&self) -> anyhow::Result<()> {
        for v in self.inner.cfg.services.clone() {
            let v = cairn_types::input::normalize(v);
            let def: ServiceDefinition = serde_json::from_value(v)
                .map_err(|e| anyhow::anyhow!("invalid service definition in config: {e}"))?;
            self.do_register_service(def, false, true)
                .await
                .map_err(|e| anyhow::anyhow!("registering service from config: {e}"))?;
        }
        for v in self.inner.cfg.checks.clone() {
            let v = cairn_types::input::normalize(v);
            let def: CheckDefinition = serde_json::from_value(v)
                .map_err(|e| anyhow::anyhow!("invalid check definition in config: {e}"))?;
            self.do_register_check(def, true)
                .await
                .map_err(|e| anyhow::anyhow!("registering check from config: {e}"))?;
        }
        Ok(())
    }

    /// Proposes a command; refusals of the state machine come back as `Outcome::Error`.
    pub(crate) async fn write_cmd(&self, cmd: Command) -> Result<(u64, Outcome), CatalogError> {
        cairn_http::metrics::global()
            .raft_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.catalog.write(cmd).await
    }

    /// Writes one of this node's own registrations (services, checks, their statuses).
    /// On a client agent, or a server of a cluster, the local state is the truth and
    /// anti-entropy carries it to the catalog, as in Consul: when no server (no leader)
    /// can take the write now, it is deferred (the next sync makes it) rather than failed.
    pub(crate) async fn write_local(&self, cmd: Command) -> Result<(u64, Outcome), CatalogError> {
        if !self.acl_allows(&cmd) {
            // Kept locally; anti-entropy writes it once a token allows.
            return Ok((0, Outcome::Bool(true)));
        }
        if self.inner.cfg.bootstraps_alone() {
            // A lone server's Raft always has a leader: a failure is real.
            return self.write_cmd(cmd).await;
        }
        cairn_http::metrics::global()
            .raft_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.inner.catalog.write(cmd).await {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::debug!("catalog write deferred to anti-entropy: {e}");
                Ok((0, Outcome::Bool(true)))
            }
        }
    }

    /// The address this agent advertises.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// A DNS catalog view over this agent's state.
    pub(crate) fn dns_catalog(&self) -> crate::dns::StateCatalog {
        let catalog = self.inner.catalog.clone();
        crate::dns::StateCatalog {
            state: self.inner.state.clone(),
            datacenter: self.inner.cfg.datacenter.clone(),
            acl: self.inner.acl.clone(),
            last_contact_ms: Arc::new(move || catalog.leader_contact().1),
            view: crate::dns::ViewEpoch::default(),
        }
    }

    /// Resolves when a graceful leave was requested over the API.
    pub async fn left(&self) {
        self.inner.leave.notified().await;
    }

    /// Resolves, with the reason, when the Raft server stopped by itself (fatal storage
    /// error): the agent must exit rather than serve without a working log.
    pub async fn raft_stopped(&self) -> String {
        self.inner.catalog.stopped().await
    }

    /// Resolves, with the reason, when the agent must exit (`-retry-join` gave up).
    pub async fn fatal(&self) -> String {
        let mut rx = self.inner.fatal.subscribe();
        let reason = match rx.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        match reason {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }

    /// Leaves the LAN pool gracefully: the others see this node `left` (not `failed`) and
    /// the leader deregisters it.
    /// A server of a cluster first hands over leadership if it leads, and afterwards
    /// makes sure it is out of the Raft configuration (see [`crate::operator`]).
    pub async fn leave_pool(&self) {
        self.hand_over_leadership().await;
        self.leave_gossip().await;
        self.leave_raft().await;
    }

    async fn leave_gossip(&self) {
        if let Some(g) = &self.inner.gossip {
            match g.leave().await {
                Ok(()) => tracing::info!("left the LAN pool"),
                Err(e) => tracing::warn!("leaving the LAN pool: {e}"),
            }
        }
    }

    /// Whether a shutdown by this signal leaves the pool first (`leave_on_terminate`,
    /// `skip_leave_on_interrupt`, with Consul's defaults: clients leave, servers do not).
    pub fn leaves_on(&self, interrupt: bool) -> bool {
        let c = &self.inner.cfg;
        if interrupt {
            !c.skip_leave_on_interrupt
        } else {
            c.leave_on_terminate
        }
    }

    /// The serf LAN address other members reach this agent at, if gossip runs.
    pub fn serf_advertised(&self) -> Option<std::net::SocketAddr> {
        self.inner.gossip.as_ref().map(|g| g.local_member().addr)
    }

    /// The HTTPS listener's TLS handshake, when HTTPS is configured.
    pub fn https_handshake(&self) -> Option<Arc<dyn cairn_http::Handshake>> {
        self.inner.tls.https_handshake()
    }

    /// The serf LAN address actually bound, if gossip runs.
    pub fn serf_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.gossip.as_ref().map(|g| g.local_addr())
    }

    /// Stops background tasks, gossip (without a leave) and the catalog.
    pub async fn shutdown(&self) {
        for t in self.inner.tasks.lock().drain(..) {
            t.abort();
        }
        drop(self.inner.serving.lock().take());
        if let Some(g) = &self.inner.gossip {
            g.shutdown().await;
        }
        self.inner.catalog.shutdown().await;
    }
}
