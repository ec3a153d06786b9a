//! How an agent reaches the others: the LAN pool's datagram transport and the server RPC
//! transport. A real agent binds UDP and TCP sockets ([`Links::Sockets`]); the in-process
//! cluster harness gives every agent the same in-memory networks ([`Links::Memory`]), whose
//! seeded faults (loss, partitions, isolation) make cluster scenarios reproducible in one
//! test process. Everything above this seam (gossip, catalog RPC, reconciliation,
//! anti-entropy, HTTP, DNS) is the same code on both.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use cairn_gossip::{Gossip, GossipConfig, Tags};
use cairn_rpc::{Client, ClientConfig, Routes, ServerConfig};

use crate::config::Config;
use crate::tls::Tls;
use cairn_server::CatalogRpc;

/// The transports an agent uses.
#[derive(Clone, Default)]
pub enum Links {
    /// UDP for gossip, TCP for server RPC, bound from the configuration.
    #[default]
    Sockets,
    /// In-memory networks shared by every agent of a test cluster; the agent is reached at
    /// `ip` (ports from the configuration, 8301 and 8300 by default).
    Memory {
        gossip: cairn_gossip::MemoryNetwork,
        rpc: cairn_rpc::Network,
        ip: IpAddr,
    },
}

/// The server RPC port, bound but not serving yet (its port goes into the gossip tags).
pub(crate) enum RpcPort {
    Tcp(tokio::net::TcpListener),
    Memory(cairn_rpc::Network, SocketAddr),
}

impl RpcPort {
    pub(crate) fn port(&self) -> std::io::Result<u16> {
        match self {
            RpcPort::Tcp(l) => Ok(l.local_addr()?.port()),
            RpcPort::Memory(_, a) => Ok(a.port()),
        }
    }

    /// Serves `routes` until the returned handle is dropped (over TLS when `tls` gives the
    /// server a certificate).
    pub(crate) fn serve(self, routes: Routes, tls: &Tls) -> anyhow::Result<Serving> {
        match self {
            RpcPort::Tcp(listener) => {
                let acceptor = tls.rpc_acceptor();
                Ok(Serving::Task(tokio::spawn(async move {
                    let mut server = cairn_rpc::RpcServer::new(ServerConfig::default());
                    if let Some(a) = acceptor {
                        server = server.with_acceptor(a);
                    }
                    if let Err(e) = server.serve(listener, routes, std::future::pending()).await {
                        tracing::error!("server RPC listener stopped: {e}");
                    }
                })))
            }
            RpcPort::Memory(net, addr) => Ok(Serving::Memory(
                net.serve(addr, routes, ServerConfig::default())
                    .with_context(|| format!("serving RPC at {addr} in memory"))?,
            )),
        }
    }
}

/// A server RPC port being served; dropping it stops serving.
pub(crate) enum Serving {
    Task(tokio::task::JoinHandle<()>),
    Memory(#[allow(dead_code)] cairn_rpc::LocalServer),
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Serving::Task(t) = self {
            t.abort();
        }
    }
}

impl Links {
    /// The address this agent advertises (the memory network's ip, else `advertise` or
    /// `bind`, else 127.0.0.1).
    pub(crate) fn advertise(&self, cfg: &Config) -> IpAddr {
        if let Links::Memory { ip, .. } = self {
            return *ip;
        }
        cfg.advertise_addr
            .filter(|a| !a.is_unspecified())
            .unwrap_or_else(|| {
                if cfg.bind_addr.is_unspecified() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    cfg.bind_addr
                }
            })
    }

    /// Binds the server RPC port (servers only).
    pub(crate) async fn rpc_port(&self, cfg: &Config) -> anyhow::Result<Option<RpcPort>> {
        let Some(a) = cfg.server_rpc_addr() else {
            return Ok(None);
        };
        Ok(Some(match self {
            Links::Sockets => RpcPort::Tcp(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding the server RPC port {a}"))?,
            ),
            Links::Memory { rpc, ip, .. } => {
                let port = if a.port() == 0 { 8300 } else { a.port() };
                RpcPort::Memory(rpc.clone(), SocketAddr::new(*ip, port))
            }
        }))
    }

    /// Starts this agent's gossip member, or `None` when the serf LAN port is disabled.
    pub(crate) async fn gossip(
        &self,
        cfg: &Config,
        tags: Tags,
    ) -> anyhow::Result<Option<Arc<Gossip>>> {
        let Some(bind) = cfg.serf_lan_addr() else {
            return Ok(None);
        };
        let advertise = self.advertise(cfg);
        let mut gc = GossipConfig::new(cfg.node_name.clone(), bind);
        gc.tags = tags;
        (gc.keys, gc.keyring_file) = crate::keyring::start_keys(cfg)?;
        gc.timing = crate::lan::timing(cfg);
        let gossip = match self {
            Links::Sockets => {
                let transport = cairn_gossip::UdpTransport::bind(bind)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding the serf LAN port {bind}: {e}"))?;
                let port = cairn_gossip::Transport::local_addr(&transport).port();
                gc.advertise = Some(SocketAddr::new(advertise, port));
                Gossip::start(gc, transport)
            }
            Links::Memory { gossip, .. } => {
                let port = if bind.port() == 0 { 8301 } else { bind.port() };
                let addr = SocketAddr::new(advertise, port);
                let transport = gossip
                    .bind(addr)
                    .with_context(|| format!("binding {addr} in the memory network"))?;
                gc.advertise = Some(addr);
                Gossip::start(gc, transport)
            }
        }
        .map_err(|e| anyhow::anyhow!("gossip: {e}"))?;
        Ok(Some(Arc::new(gossip)))
    }

    /// The Raft client a server reaches its peers with.
    pub(crate) fn raft_client(&self, tls: &Tls) -> Client<cairn_raft::RaftRpc> {
        match self {
            Links::Sockets => Client::new(tcp_client::<cairn_raft::RaftRpc>(tls)),
            Links::Memory { rpc, ip, .. } => Client::new(rpc.client::<cairn_raft::RaftRpc>(
                SocketAddr::new(*ip, 8300),
                ClientConfig::default(),
            )),
        }
    }

    /// The catalog RPC client of a client agent.
    pub(crate) fn catalog_client(&self, tls: &Tls) -> Client<CatalogRpc> {
        match self {
            Links::Sockets => Client::new(tcp_client::<CatalogRpc>(tls)),
            Links::Memory { rpc, ip, .. } => Client::new(
                rpc.client::<CatalogRpc>(SocketAddr::new(*ip, 8300), ClientConfig::default()),
            ),
        }
    }
}

/// A TCP RPC client, over TLS with `verify_outgoing`.
fn tcp_client<P: cairn_rpc::Protocol>(tls: &Tls) -> cairn_rpc::TcpClient<P> {
    match tls.rpc_connector() {
        Some(c) => cairn_rpc::TcpClient::with_connector(ClientConfig::default(), c),
        None => cairn_rpc::TcpClient::new(ClientConfig::default()),
    }
}
