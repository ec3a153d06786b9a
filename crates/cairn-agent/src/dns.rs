//! The agent's side of the DNS interface: [`cairn_dns::Catalog`] over the agent's
//! replicated state, and the DNS listeners.
//!
//! DNS answers come from the local in-memory state (the same state the HTTP API reads),
//! with no round trip to the leader: on a server, staleness is bounded by Raft
//! replication lag (zero on the leader); Consul allows the same for DNS (`allow_stale`).

use std::net::IpAddr;
use std::sync::Arc;

use cairn_dns::{Catalog, Health, Instance, NodeInfo};
use cairn_state::{aggregate, State};
use cairn_types::{HealthCheck, Node, NodeService};
use parking_lot::RwLock;

/// A [`Catalog`] reading the agent's state.
pub struct StateCatalog {
    pub state: Arc<RwLock<State>>,
    pub datacenter: String,
}

fn health_of<'a>(checks: impl Iterator<Item = &'a HealthCheck>) -> Health {
    match aggregate(checks.map(|c| c.status.as_str())) {
        cairn_types::PASSING => Health::Passing,
        cairn_types::WARNING => Health::Warning,
        _ => Health::Critical,
    }
}

fn weight(w: i64) -> u16 {
    w.clamp(0, u16::MAX as i64) as u16
}

fn instance(node: &Node, s: &NodeService, health: Health) -> Instance {
    Instance {
        node: node.node.clone(),
        node_address: node.address.clone(),
        datacenter: node.datacenter.clone(),
        service_id: s.id.clone(),
        service: s.service.clone(),
        service_address: s.address.clone(),
        port: s.port,
        tags: s.tags.clone(),
        health,
        weight_passing: weight(s.weights.passing),
        weight_warning: weight(s.weights.warning),
        node_meta: node.meta.clone(),
    }
}

fn node_info(rec: &cairn_state::NodeRecord) -> NodeInfo {
    NodeInfo {
        name: rec.node.node.clone(),
        address: rec.node.address.clone(),
        datacenter: rec.node.datacenter.clone(),
        tagged_addresses: rec.node.tagged_addresses.clone(),
        meta: rec.node.meta.clone(),
        health: health_of(rec.checks.values().filter(|c| c.service_id.is_empty())),
    }
}

impl StateCatalog {
    fn instances_where(&self, pred: impl Fn(&Node, &NodeService) -> bool) -> Vec<Instance> {
        let st = self.state.read();
        let mut out = Vec::new();
        for rec in st.node_records() {
            for s in rec.services.values().filter(|s| pred(&rec.node, s)) {
                let checks = rec
                    .checks
                    .values()
                    .filter(|c| c.service_id.is_empty() || c.service_id == s.id);
                out.push(instance(&rec.node, s, health_of(checks)));
            }
        }
        out
    }
}

fn same_ip(text: &str, ip: IpAddr) -> bool {
    text.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

impl Catalog for StateCatalog {
    fn datacenter(&self) -> String {
        self.datacenter.clone()
    }

    /// The last applied Raft index: it moves on every change to the catalog, so the
    /// resolver's answer cache is exact.
    fn generation(&self) -> u64 {
        self.state.read().last_index()
    }

    fn service_instances(&self, service: &str) -> Vec<Instance> {
        let st = self.state.read();
        st.service_health_ignore_case(service)
            .into_iter()
            .map(|h| instance(h.node, h.service, health_of(h.checks.into_iter())))
            .collect()
    }

    fn node(&self, name: &str) -> Option<NodeInfo> {
        let st = self.state.read();
        let found = st
            .node_records()
            .find(|r| r.node.node.eq_ignore_ascii_case(name))
            .map(node_info);
        found
    }

    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo> {
        let st = self.state.read();
        let found = st
            .node_records()
            .filter(|r| same_ip(&r.node.address, ip))
            .map(node_info)
            .collect();
        found
    }

    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance> {
        self.instances_where(|_, s| same_ip(&s.address, ip))
    }
}

/// Binds the DNS listeners: one UDP socket per core (SO_REUSEPORT, so the kernel spreads
/// queries over them) and TCP on the same port. With port 0 the first UDP socket picks the
/// port; TCP then takes it too (retried a few times in the rare case it is taken on TCP).
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
) -> anyhow::Result<(Vec<std::net::UdpSocket>, tokio::net::TcpListener)> {
    use anyhow::Context;
    let mut last_err = None;
    for _ in 0..16 {
        let udp = cairn_dns::bind_udp_reuseport(addr, cairn_dns::udp_socket_count())
            .with_context(|| format!("binding DNS (udp) to {addr}"))?;
        let port = udp[0].local_addr()?.port();
        match tokio::net::TcpListener::bind((addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e).with_context(|| format!("binding DNS (tcp) to {addr}")),
        }
    }
    Err(anyhow::anyhow!(
        "binding DNS (tcp) next to an ephemeral udp port: {last_err:?}"
    ))
}

/// The resolver settings from the agent configuration.
pub(crate) fn config(cfg: &crate::config::Config, agent: &crate::Agent) -> cairn_dns::DnsConfig {
    let d = &cfg.dns;
    cairn_dns::DnsConfig {
        domain: cfg.domain.clone(),
        alt_domain: cfg.alt_domain.clone(),
        node_ttl: d.node_ttl,
        service_ttl: d.service_ttl.clone(),
        only_passing: d.only_passing,
        udp_answer_limit: d.udp_answer_limit as usize,
        enable_truncate: d.enable_truncate,
        a_record_limit: d.a_record_limit as usize,
        enable_additional_node_meta_txt: d.enable_additional_node_meta_txt,
        recursors: cfg.recursors.clone(),
        recursor_timeout: std::time::Duration::from_secs(2),
        agent_address: agent.address().parse().ok(),
    }
}
