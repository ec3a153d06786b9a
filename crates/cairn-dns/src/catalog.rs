//! The contract between the DNS interface and whoever owns the catalog.
//!
//! The agent implements [`Catalog`] by reading its locally replicated state;
//! tests implement it over plain vectors. [`DnsConfig`] carries the
//! `dns_config` block of the agent configuration (Consul's names and
//! defaults).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Aggregated health of an instance or a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Every check passes.
    Passing,
    /// At least one check warns and none is critical.
    Warning,
    /// At least one check (service or node, e.g. `serfHealth`) is critical.
    Critical,
}

/// One service instance, with health already aggregated over the node's and
/// the service's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Node name.
    pub node: String,
    /// Node address (an IP literal).
    pub node_address: String,
    /// Datacenter of the node.
    pub datacenter: String,
    /// Service ID (unique per node).
    pub service_id: String,
    /// Service name.
    pub service: String,
    /// Service address; empty means "use the node address".
    pub service_address: String,
    /// Service port.
    pub port: u16,
    /// Service tags.
    pub tags: Vec<String>,
    /// Aggregated health.
    pub health: Health,
    /// `Weights.Passing`: the SRV weight when passing.
    pub weight_passing: u16,
    /// `Weights.Warning`: the SRV weight when warning.
    pub weight_warning: u16,
    /// The node's meta, published as TXT records.
    pub node_meta: BTreeMap<String, String>,
}

/// One node of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Node address (an IP literal).
    pub address: String,
    /// Datacenter of the node.
    pub datacenter: String,
    /// Tagged addresses (`lan`, `wan`, ...).
    pub tagged_addresses: BTreeMap<String, String>,
    /// Node meta, published as TXT records.
    pub meta: BTreeMap<String, String>,
    /// Aggregated node health.
    pub health: Health,
}

/// Read access to the catalog, as the DNS interface needs it.
///
/// Every method reads local state: no call may block on the network.
pub trait Catalog: Send + Sync + 'static {
    /// The local datacenter (e.g. `dc1`).
    fn datacenter(&self) -> String;
    /// Every instance of `service` (case-insensitive name match), in all
    /// health states; the resolver filters.
    fn service_instances(&self, service: &str) -> Vec<Instance>;
    /// The node called `name` (case-insensitive).
    fn node(&self, name: &str) -> Option<NodeInfo>;
    /// Nodes whose address is `ip` (reverse lookups).
    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo>;
    /// Instances whose service address is `ip` (reverse lookups).
    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance>;
    /// A version of everything the methods above return: it must grow
    /// whenever any of it may have changed (e.g. the applied Raft index).
    /// The resolver caches answers per generation; 0 (the default) means
    /// "never cache". Called once per query: keep it cheap (an atomic load).
    fn generation(&self) -> u64 {
        0
    }
}

/// A catalog answered with a fixed [`Catalog::generation`]: `FixedGeneration(c, 0)`
/// is `c` never cached (to compare cached with uncached answers, or to measure the
/// resolver without its cache).
pub struct FixedGeneration<C>(pub C, pub u64);

impl<C: Catalog> Catalog for FixedGeneration<C> {
    fn datacenter(&self) -> String {
        self.0.datacenter()
    }
    fn service_instances(&self, service: &str) -> Vec<Instance> {
        self.0.service_instances(service)
    }
    fn node(&self, name: &str) -> Option<NodeInfo> {
        self.0.node(name)
    }
    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo> {
        self.0.nodes_by_address(ip)
    }
    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance> {
        self.0.services_by_address(ip)
    }
    fn generation(&self) -> u64 {
        self.1
    }
}

/// The `dns_config` settings, with Consul's defaults in [`Default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The DNS domain, default `consul.` (a trailing dot is optional).
    pub domain: String,
    /// A second domain answered like `domain` (answers echo the query's
    /// domain; PTR answers always use `domain`).
    pub alt_domain: Option<String>,
    /// TTL of node records (default 0).
    pub node_ttl: Duration,
    /// TTL of service records by service name: exact names, `prefix*` and
    /// `*`; an exact match beats a prefix, the longest prefix wins.
    pub service_ttl: BTreeMap<String, Duration>,
    /// Drop warning instances too (default false: only critical ones go).
    pub only_passing: bool,
    /// Number of A/AAAA/SRV records in a UDP answer without EDNS (default 3).
    pub udp_answer_limit: usize,
    /// Set TC when a UDP answer was trimmed (default false, as in Consul, to
    /// avoid TCP retry storms: clients get a usable subset instead).
    pub enable_truncate: bool,
    /// Limit of A/AAAA records in any answer, both transports (0 = none).
    pub a_record_limit: usize,
    /// Add node-meta TXT records to the additional section of SRV answers
    /// (default true).
    pub enable_additional_node_meta_txt: bool,
    /// Upstream resolvers for names outside our domains, tried in order.
    pub recursors: Vec<SocketAddr>,
    /// Timeout of one attempt to one recursor (default 2 s).
    pub recursor_timeout: Duration,
    /// Address of this agent, published as the glue A/AAAA record of
    /// `ns.<domain>` (the apex NS). `None`: NS answers carry no glue.
    /// (An addition to the contract.)
    pub agent_address: Option<IpAddr>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            domain: "consul.".to_string(),
            alt_domain: None,
            node_ttl: Duration::ZERO,
            service_ttl: BTreeMap::new(),
            only_passing: false,
            udp_answer_limit: 3,
            enable_truncate: false,
            a_record_limit: 0,
            enable_additional_node_meta_txt: true,
            recursors: Vec::new(),
            recursor_timeout: Duration::from_secs(2),
            agent_address: None,
        }
    }
}

impl DnsConfig {
    /// The TTL of records of `service` per `service_ttl` (Consul's rules).
    pub fn service_ttl_for(&self, service: &str) -> Duration {
        let service = service.to_ascii_lowercase();
        let mut best: Option<(usize, Duration)> = None;
        for (pattern, ttl) in &self.service_ttl {
            let pattern = pattern.to_ascii_lowercase();
            if let Some(prefix) = pattern.strip_suffix('*') {
                if service.starts_with(prefix) && best.is_none_or(|(len, _)| prefix.len() >= len) {
                    best = Some((prefix.len(), *ttl));
                }
            } else if pattern == service {
                return *ttl;
            }
        }
        best.map(|(_, ttl)| ttl).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ttl_rules() {
        let mut c = DnsConfig::default();
        assert_eq!(c.service_ttl_for("web"), Duration::ZERO);
        c.service_ttl.insert("*".into(), Duration::from_secs(5));
        c.service_ttl.insert("web".into(), Duration::from_secs(10));
        c.service_ttl.insert("db*".into(), Duration::from_secs(20));
        c.service_ttl
            .insert("db-m*".into(), Duration::from_secs(25));
        c.service_ttl
            .insert("db-master".into(), Duration::from_secs(30));
        assert_eq!(c.service_ttl_for("web"), Duration::from_secs(10));
        assert_eq!(c.service_ttl_for("WEB"), Duration::from_secs(10));
        assert_eq!(c.service_ttl_for("web2"), Duration::from_secs(5));
        assert_eq!(c.service_ttl_for("db-slave"), Duration::from_secs(20));
        assert_eq!(c.service_ttl_for("db-mirror"), Duration::from_secs(25));
        assert_eq!(c.service_ttl_for("db-master"), Duration::from_secs(30));
        assert_eq!(c.service_ttl_for("other"), Duration::from_secs(5));
    }
}
