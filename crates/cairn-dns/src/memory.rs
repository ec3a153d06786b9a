//! An in-memory [`Catalog`] over plain vectors, for tests, fuzzing and
//! examples (the agent implements the trait over its replicated state).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::catalog::{Catalog, Health, Instance, NodeInfo};

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

impl MemoryCatalog {
    /// The benchmark data set: `services` services (`svc000`, ...) with `per_service`
    /// passing instances each, one node per instance (`svcNNN-nK`, addresses in
    /// 127.1.0.0/16), as the DNS benchmark scripts register them.
    pub fn synthetic(services: u16, per_service: u16) -> MemoryCatalog {
        let mut c = MemoryCatalog {
            datacenter: "dc1".into(),
            ..Default::default()
        };
        for s in 0..services {
            let service = format!("svc{s:03}");
            for k in 0..per_service {
                let idx = s * per_service + k + 1;
                let node = format!("{service}-n{k}");
                let address = format!("127.1.{}.{}", idx / 250, idx % 250 + 1);
                c.nodes.push(NodeInfo {
                    name: node.clone(),
                    address: address.clone(),
                    datacenter: "dc1".into(),
                    tagged_addresses: BTreeMap::new(),
                    meta: BTreeMap::new(),
                    health: Health::Passing,
                });
                c.instances.push(Instance {
                    node,
                    node_address: address,
                    datacenter: "dc1".into(),
                    service_id: service.clone(),
                    service: service.clone(),
                    service_address: String::new(),
                    port: 20000 + idx,
                    tags: Vec::new(),
                    health: Health::Passing,
                    weight_passing: 1,
                    weight_warning: 1,
                    node_meta: BTreeMap::new(),
                });
            }
        }
        c
    }
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
