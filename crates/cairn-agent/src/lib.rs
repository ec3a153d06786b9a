//! The Cairn agent: configuration, the Raft server, the local services and checks of
//! this node, and the HTTP API, wired together.
//!
//! `cairn agent -dev` runs one process that is a single in-memory server;
//! `cairn agent -server -bootstrap-expect=1 -data-dir DIR` runs the same on durable
//! storage. [`run`] is the whole life of the process: load config, start Raft, register
//! this node, bind listeners (port 0 = ephemeral, addresses are printed), serve until
//! SIGINT/SIGTERM.

mod acl;
mod acl_writes;
mod antientropy;
mod backend;
mod catalog;
mod checks;
pub mod config;
mod datadir;
mod dns;
mod keyring;
mod lan;
mod links;
mod local;
mod node;
mod operator;
mod peers;
mod persist;
mod replica;
mod rlimit;
pub mod tls;

use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

pub use links::Links;
pub use node::Agent;

/// File descriptors kept out of the HTTP and DNS connection budgets: the Raft log and
/// snapshots, the agent's persistence files, check probes, listeners, the runtime.
const FD_RESERVE: u64 = 128;

/// Version of Cairn itself.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Consul API version Cairn speaks (reported as `Config.Version` by `/v1/agent/self`,
/// which clients use to pick features).
pub const CONSUL_API_VERSION: &str = "1.22.0";

/// Runs `cairn agent ARGS...` until a shutdown signal.
pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let cfg = match config::load(&args) {
        Ok(c) => c,
        Err(config::ConfigError::Help(text)) => {
            println!("{text}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    init_logging(&cfg.log_level, cfg.log_json);
    let nofile = match rlimit::raise_nofile() {
        Ok(n) => n,
        Err(e) => {
            warn!("could not raise the open-file limit: {e}");
            1024
        }
    };
    for w in &cfg.warnings {
        warn!("config: {w}");
    }
    let agent = Agent::start(cfg.clone(), args.clone()).await?;
    let https_addr = cfg.https_addr();
    let listener = match cfg.http_addr() {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the HTTP API to {a}"))?,
        ),
        None if https_addr.is_some() => None,
        None => anyhow::bail!(
            "the HTTP API is disabled (ports.http = -1, ports.https = -1); nothing to serve"
        ),
    };
    let https_listener = match https_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the HTTPS API to {a}"))?,
        ),
        None => None,
    };
    let bound = listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let https_bound = https_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    if let Some(p) = &cfg.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing pid file {}", p.display()))?;
    }
    println!("==> Cairn agent running!");
    println!("           Version: '{VERSION}' (Consul API {CONSUL_API_VERSION})");
    println!("         Node name: '{}'", cfg.node_name);
    println!("        Datacenter: '{}'", cfg.datacenter);
    println!(
        "            Server: {} (Bootstrap: {})",
        cfg.server,
        cfg.bootstraps_alone()
    );
    println!(
        "           Storage: {}",
        match (&cfg.data_dir, cfg.server) {
            (Some(d), true) => format!("durable, {}", d.display()),
            (None, true) => "in-memory (-dev)".to_string(),
            (Some(d), false) => format!("client agent: catalog replica in memory, local services in {}", d.display()),
            (None, false) => "client agent: catalog replica in memory, local services not persisted (no -data-dir)".to_string(),
        }
    );
    if let Some(bound) = bound {
        println!("      HTTP address: {bound}");
    }
    if let Some(bound) = https_bound {
        println!("     HTTPS address: {bound}");
    }
    if let Some(serf) = agent.serf_addr() {
        println!(
            "   Serf LAN address: {serf} (udp; advertised as {})",
            agent
                .serf_advertised()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
    }
    if let Some(port) = agent.inner.rpc_port {
        println!(
            "        RPC address: {}:{port} (advertised as {}:{port})",
            cfg.bind_addr,
            agent.address()
        );
    }
    let dns_task = match cfg.dns_addr() {
        None => None,
        Some(addr) => {
            let (udp, tcp) = dns::bind(addr).await?;
            let dns_bound = udp[0].local_addr()?;
            println!("       DNS address: {dns_bound} (udp+tcp)");
            info!(dns = %dns_bound, "DNS interface started");
            let resolver = Arc::new(cairn_dns::Resolver::new(
                agent.dns_catalog(),
                dns::config(&cfg, &agent),
            ));
            let (dns_stop_tx, mut dns_stop_rx) = tokio::sync::watch::channel(false);
            let dns_limits = cairn_dns::ServerLimits {
                // A quarter of the descriptors left after the reserve; HTTP gets the rest.
                max_tcp_connections: cairn_types::conn::budget(nofile, FD_RESERVE, 1, 4),
                max_tcp_conns_per_client: cfg.limits.http_max_conns_per_client as usize,
                tcp_idle_timeout: cfg.limits.dns_tcp_idle_timeout,
                ..cairn_dns::ServerLimits::default()
            };
            let task = tokio::spawn(async move {
                let stop = async move {
                    let _ = dns_stop_rx.wait_for(|s| *s).await;
                };
                if let Err(e) = cairn_dns::serve_sockets(udp, tcp, resolver, dns_limits, stop).await
                {
                    tracing::error!("DNS server stopped: {e}");
                }
            });
            Some((dns_stop_tx, task))
        }
    };
    info!(http = ?bound, https = ?https_bound, "agent started");
    let app: cairn_http::App = Arc::new(agent.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http_limits = cairn_http::ServeLimits {
        max_conns_per_client: cfg.limits.http_max_conns_per_client as usize,
        max_conns: cairn_types::conn::budget(nofile, FD_RESERVE, 3, 4),
        header_read_timeout: cfg.limits.http_header_read_timeout,
        idle_timeout: cfg.limits.http_idle_timeout,
    };
    info!(
        nofile,
        http_max_conns = http_limits.max_conns,
        "connection limits from the open-file limit"
    );
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut servers = Vec::new();
    let mut http_limits = http_limits;
    if listener.is_some() && https_listener.is_some() {
        // Two listeners share the descriptor budget.
        http_limits.max_conns = (http_limits.max_conns / 2).max(1);
    }
    if let Some(listener) = listener {
        servers.push(tokio::spawn(cairn_http::serve(
            listener,
            app.clone(),
            http_limits.clone(),
            stopped(stop_rx.clone()),
        )));
    }
    if let Some(listener) = https_listener {
        let handshake = agent
            .https_handshake()
            .context("HTTPS is enabled but no TLS configuration was loaded")?;
        servers.push(tokio::spawn(cairn_http::serve_with(
            listener,
            app,
            http_limits,
            handshake,
            stopped(stop_rx),
        )));
    }
    // SIGHUP reloads service and check definitions, as in Consul.
    let reloader = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                if let Err(e) = agent.do_reload().await {
                    warn!("reload on SIGHUP failed: {e}");
                }
            }
        })
    };
    let mut fatal = None;
    let mut exit_error = None;
    tokio::select! {
        interrupt = shutdown_signal() => {
            if agent.leaves_on(interrupt) {
                info!("leaving the pool before shutting down");
                agent.leave_pool().await;
            }
        }
        _ = agent.left() => {
            info!("left the pool on request over the API");
            // Let the 200 reach the client first.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        reason = agent.fatal() => {
            tracing::error!(%reason, "exiting");
            exit_error = Some(reason);
        }
        reason = agent.raft_stopped() => {
            // Crash-only: a server whose log cannot be written must not keep answering
            // (every write would fail while reads and checks look healthy). Exit non-zero
            // at once so a supervisor restarts it; every acknowledged write is on disk.
            tracing::error!(%reason, "the Raft log failed; exiting so that a supervisor restarts the agent");
            fatal = Some(reason);
        }
    }
    reloader.abort();
    info!("shutting down");
    let _ = stop_tx.send(true);
    // After a fatal error nothing is drained: the listeners close with the process.
    let grace = |d: u64| std::time::Duration::from_secs(if fatal.is_some() { 0 } else { d });
    if let Some((tx, task)) = dns_task {
        let _ = tx.send(true);
        let _ = tokio::time::timeout(grace(2), task).await;
    }
    let _ = tokio::time::timeout(grace(5), futures::future::join_all(servers)).await;
    if let Some(p) = &cfg.pid_file {
        let _ = std::fs::remove_file(p);
    }
    if let Some(reason) = fatal {
        anyhow::bail!(
            "the Raft log failed ({reason}); every acknowledged write is on disk, restart the agent once the cause (disk full, file descriptors) is fixed"
        );
    }
    agent.shutdown().await;
    if let Some(reason) = exit_error {
        anyhow::bail!(reason);
    }
    Ok(())
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| {
        // Quiet the dependencies unless asked: openraft at debug is very chatty.
        tracing_subscriber::EnvFilter::new(format!(
            "warn,cairn={level},cairn_agent={level},cairn_http={level},cairn_raft={level},cairn_gossip={level},cairn_rpc={level}"
        ))
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

/// Waits for SIGINT (returns true) or SIGTERM (false).
async fn shutdown_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return true;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => true,
        _ = term.recv() => false,
    }
}
