//! An in-memory [`Catalog`] over plain vectors, for tests, fuzzing and
//! examples (the agent implements the trait over its replicated state).

use std::net::IpAddr;

use crate::catalog::{Catalog, Instance, NodeInfo};

/// A fixed catalog: a datacenter, its nodes and its service instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryCatalog {
    /// The local datacenter.
    pub datacenter: String,
    /// Every node.
    pub nodes: Vec<NodeInfo>,
    /// Every service instance.
    pub instances: Vec<Instance>,
}

fn same_ip(text: &str, ip: IpAddr) -> bool {
    text.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

impl Catalog for MemoryCatalog {
    fn datacenter(&self) -> String {
        self.datacenter.clone()
    }

    fn service_instances(&self, service: &str) -> Vec<Instance> {
        self.instances
            .iter()
            .filter(|i| i.service.eq_ignore_ascii_case(service))
            .cloned()
            .collect()
    }

    fn node(&self, name: &str) -> Option<NodeInfo> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .filter(|n| same_ip(&n.address, ip))
            .cloned()
            .collect()
    }

    /// Always 1: once inside a resolver the catalog cannot change (the
    /// resolver only hands out `&MemoryCatalog`), so answers are cached.
    fn generation(&self) -> u64 {
        1
    }

    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance> {
        self.instances
            .iter()
            .filter(|i| same_ip(&i.service_address, ip))
            .cloned()
            .collect()
    }
}
