//! Catalog and health: nodes, service instances and checks.
//!
//! Upserts are idempotent: writing a record identical to the stored one keeps its
//! `ModifyIndex`, so blocking queries do not wake for writes that change nothing
//! (anti-entropy re-syncs would otherwise wake every watcher).

use std::collections::BTreeMap;

use cairn_types::{HealthCheck, Node, NodeService, CRITICAL};

use crate::index::at_least_one;
use crate::{ApplyError, CheckUpdate, Deregistration, NodeRecord, Outcome, Registration, State};

/// One instance of a service with its node and all checks that decide its health
/// (the node-level checks, `serfHealth` included, and its own).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHealth<'a> {
    pub node: &'a Node,
    pub service: &'a NodeService,
    pub checks: Vec<&'a HealthCheck>,
}

impl ServiceHealth<'_> {
    /// Worst status among the checks ("passing" when there are none).
    pub fn aggregate_status(&self) -> &'static str {
        aggregate(self.checks.iter().map(|c| c.status.as_str()))
    }
}

/// Worst of a set of check statuses.
pub fn aggregate<'s>(statuses: impl Iterator<Item = &'s str>) -> &'static str {
    let mut worst = cairn_types::PASSING;
    for s in statuses {
        match s {
            CRITICAL => return CRITICAL,
            cairn_types::WARNING => worst = cairn_types::WARNING,
            cairn_types::PASSING => {}
            // Unknown states count as critical: never advertise what we cannot judge.
            _ => return CRITICAL,
        }
    }
    worst
}

fn same_node(a: &Node, b: &Node) -> bool {
    a.id == b.id
        && a.node == b.node
        && a.address == b.address
        && a.datacenter == b.datacenter
        && a.tagged_addresses == b.tagged_addresses
        && a.meta == b.meta
}

fn same_service(a: &NodeService, b: &NodeService) -> bool {
    let mut x = a.clone();
    x.create_index = b.create_index;
    x.modify_index = b.modify_index;
    &x == b
}

fn same_check(a: &HealthCheck, b: &HealthCheck) -> bool {
    let mut x = a.clone();
    x.create_index = b.create_index;
    x.modify_index = b.modify_index;
    &x == b
}

impl State {
    fn touch_service(&mut self, name: &str, idx: u64) {
        self.service_index.insert(name.to_string(), idx);
    }

    /// Marks every service on `node` as changed (node-level changes affect their health).
    fn touch_node_services(&mut self, node: &str, idx: u64) {
        let names: Vec<String> = self
            .nodes
            .get(node)
            .map(|r| r.services.values().map(|s| s.service.clone()).collect())
            .unwrap_or_default();
        for n in names {
            self.touch_service(&n, idx);
        }
    }

    pub(crate) fn register(&mut self, idx: u64, r: &Registration) -> Outcome {
        if r.node.node.is_empty() {
            return Outcome::Error(ApplyError::Invalid("Missing node name".into()));
        }
        let name = r.node.node.clone();
        // Validate before touching anything: a registration applies whole or not at all.
        for c in &r.checks {
            if !c.service_id.is_empty() {
                let known_here = r.service.as_ref().is_some_and(|s| s.id == c.service_id);
                let known_stored = self
                    .nodes
                    .get(&name)
                    .is_some_and(|rec| rec.services.contains_key(&c.service_id));
                if !known_here && !known_stored {
                    return Outcome::Error(ApplyError::UnknownService(c.service_id.clone()));
                }
            }
        }
        let exists = self.nodes.contains_key(&name);
        if !exists || !r.skip_node_update {
            let rec = self
                .nodes
                .entry(name.clone())
                .or_insert_with(|| NodeRecord {
                    node: Node::default(),
                    ..Default::default()
                });
            if !exists || !same_node(&rec.node, &r.node) {
                let create = if exists { rec.node.create_index } else { idx };
                rec.node = Node {
                    create_index: create,
                    modify_index: idx,
                    ..r.node.clone()
                };
                self.tables.nodes = idx;
                self.touch_node_services(&name, idx);
            }
        }
        if let Some(svc) = &r.service {
            let rec = self.nodes.get_mut(&name).expect("node inserted above");
            let old = rec.services.get(&svc.id).cloned();
            let changed = old.as_ref().is_none_or(|o| !same_service(svc, o));
            if changed {
                let create = old.as_ref().map(|o| o.create_index).unwrap_or(idx);
                rec.services.insert(
                    svc.id.clone(),
                    NodeService {
                        create_index: create,
                        modify_index: idx,
                        ..svc.clone()
                    },
                );
                // Keep the service name/tags denormalised into its checks.
                for c in rec.checks.values_mut().filter(|c| c.service_id == svc.id) {
                    if c.service_name != svc.service || c.service_tags != svc.tags {
                        c.service_name = svc.service.clone();
                        c.service_tags = svc.tags.clone();
                        c.modify_index = idx;
                        self.tables.checks = idx;
                    }
                }
                self.tables.services = idx;
                self.touch_service(&svc.service, idx);
                if let Some(o) = old.filter(|o| o.service != svc.service) {
                    self.touch_service(&o.service, idx);
                    self.unindex_service(&o.service, &name, &o.id);
                }
                self.index_service(&svc.service, &name, &svc.id);
            }
        }
        let mut critical = Vec::new();
        for c in &r.checks {
            if self.upsert_check(idx, &name, c) && c.status == CRITICAL {
                critical.push(c.check_id.clone());
            }
        }
        for cid in critical {
            self.invalidate_sessions_for_check(idx, &name, &cid, r.now_ms);
        }
        Outcome::None
    }

    /// Inserts or updates a check; returns true when the stored check changed.
    fn upsert_check(&mut self, idx: u64, node: &str, c: &HealthCheck) -> bool {
        let Some(rec) = self.nodes.get_mut(node) else {
            return false;
        };
        let mut check = c.clone();
        check.node = node.to_string();
        if check.status.is_empty() {
            check.status = CRITICAL.to_string();
        }
        if !check.service_id.is_empty() {
            if let Some(s) = rec.services.get(&check.service_id) {
                check.service_name = s.service.clone();
                check.service_tags = s.tags.clone();
            }
        } else {
            check.service_name.clear();
            check.service_tags.clear();
        }
        let old = rec.checks.get(&check.check_id).cloned();
        if old.as_ref().is_some_and(|o| same_check(&check, o)) {
            return false;
        }
        check.create_index = old.as_ref().map(|o| o.create_index).unwrap_or(idx);
        check.modify_index = idx;
        let svc_name = check.service_name.clone();
        rec.checks.insert(check.check_id.clone(), check);
        self.tables.checks = idx;
        if svc_name.is_empty() {
            self.touch_node_services(node, idx);
        } else {
            self.touch_service(&svc_name, idx);
        }
        true
    }

    pub(crate) fn update_check(&mut self, idx: u64, u: &CheckUpdate) -> Outcome {
        let Some(existing) = self
            .nodes
            .get(&u.node)
            .and_then(|r| r.checks.get(&u.check_id))
            .cloned()
        else {
            return Outcome::Error(ApplyError::UnknownCheck(u.check_id.clone()));
        };
        let mut c = existing;
        c.status = u.status.clone();
        c.output = u.output.clone();
        if self.upsert_check(idx, &u.node, &c) && u.status == CRITICAL {
            self.invalidate_sessions_for_check(idx, &u.node, &u.check_id, u.now_ms);
        }
        Outcome::None
    }

    pub(crate) fn deregister(&mut self, idx: u64, d: &Deregistration, now_ms: u64) -> Outcome {
        if d.node.is_empty() {
            return Outcome::Error(ApplyError::Invalid("Missing node name".into()));
        }
        if !self.nodes.contains_key(&d.node) {
            return Outcome::None;
        }
        if let Some(sid) = &d.service_id {
            self.remove_service(idx, &d.node, sid, now_ms);
        } else if let Some(cid) = &d.check_id {
            self.remove_check(idx, &d.node, cid, now_ms);
        } else {
            self.touch_node_services(&d.node, idx);
            let rec = self.nodes.remove(&d.node).expect("checked above");
            for s in rec.services.values() {
                self.unindex_service(&s.service, &d.node, &s.id);
            }
            self.tables.nodes = idx;
            if !rec.services.is_empty() {
                self.tables.services = idx;
            }
            if !rec.checks.is_empty() {
                self.tables.checks = idx;
            }
            let sessions: Vec<String> = self
                .sessions
                .values()
                .filter(|s| s.node == d.node)
                .map(|s| s.id.clone())
                .collect();
            for s in sessions {
                self.session_destroy(idx, &s, now_ms);
            }
        }
        Outcome::None
    }

    fn remove_service(&mut self, idx: u64, node: &str, sid: &str, now_ms: u64) {
        let Some(rec) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(svc) = rec.services.remove(sid) else {
            return;
        };
        let checks: Vec<String> = rec
            .checks
            .values()
            .filter(|c| c.service_id == sid)
            .map(|c| c.check_id.clone())
            .collect();
        self.unindex_service(&svc.service, node, sid);
        self.tables.services = idx;
        self.touch_service(&svc.service, idx);
        for c in checks {
            self.remove_check(idx, node, &c, now_ms);
        }
    }

    fn remove_check(&mut self, idx: u64, node: &str, cid: &str, now_ms: u64) {
        let Some(rec) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(c) = rec.checks.remove(cid) else {
            return;
        };
        self.tables.checks = idx;
        if c.service_name.is_empty() {
            self.touch_node_services(node, idx);
        } else {
            self.touch_service(&c.service_name, idx);
        }
        self.invalidate_sessions_for_check(idx, node, cid, now_ms);
    }

    // ---- reads ---------------------------------------------------------------

    /// All nodes, sorted by name, and the nodes table index.
    pub fn nodes(&self) -> (Vec<&Node>, u64) {
        (
            self.nodes.values().map(|r| &r.node).collect(),
            at_least_one(self.tables.nodes),
        )
    }

    /// Every node record (for the DNS interface's lookups).
    pub fn node_records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values()
    }

    /// One node's record, and the index covering its node entry and services.
    pub fn node(&self, name: &str) -> (Option<&NodeRecord>, u64) {
        (
            self.nodes.get(name),
            at_least_one(self.tables.nodes.max(self.tables.services)),
        )
    }

    /// Every service instance of every node (for `/v1/catalog/services`).
    pub fn all_instances(&self) -> (Vec<(&Node, &NodeService)>, u64) {
        let v = self
            .nodes
            .values()
            .flat_map(|r| r.services.values().map(move |s| (&r.node, s)))
            .collect();
        (v, at_least_one(self.tables.services.max(self.tables.nodes)))
    }

    /// Index a blocking query on service `name` compares against.
    pub fn service_name_index(&self, name: &str) -> u64 {
        at_least_one(
            self.service_index
                .get(name)
                .copied()
                .unwrap_or(self.tables.services),
        )
    }

    /// Instances of service `name` with their health checks (via the name index).
    pub fn service_health(&self, name: &str) -> (Vec<ServiceHealth<'_>>, u64) {
        let v = self
            .service_health_ignore_case(name)
            .into_iter()
            .filter(|h| h.service.service == name)
            .collect();
        (v, self.service_name_index(name))
    }

    /// Connect-capable instances for service `name` (proxies to it, native instances).
    pub fn connect_health(&self, name: &str) -> (Vec<ServiceHealth<'_>>, u64) {
        let (v, _) = self.health_where(name, |s| s.connect_target() == Some(name));
        // Proxies are registered under their own names; any service change may matter.
        (
            v,
            at_least_one(self.tables.services.max(self.tables.checks)),
        )
    }

    fn health_where(
        &self,
        name: &str,
        pred: impl Fn(&NodeService) -> bool,
    ) -> (Vec<ServiceHealth<'_>>, u64) {
        let mut out = Vec::new();
        for rec in self.nodes.values() {
            for s in rec.services.values().filter(|s| pred(s)) {
                out.push(Self::with_checks(rec, s));
            }
        }
        (out, self.service_name_index(name))
    }

    fn with_checks<'a>(rec: &'a NodeRecord, s: &'a NodeService) -> ServiceHealth<'a> {
        let checks = rec
            .checks
            .values()
            .filter(|c| c.service_id.is_empty() || c.service_id == s.id)
            .collect();
        ServiceHealth {
            node: &rec.node,
            service: s,
            checks,
        }
    }

    fn index_service(&mut self, name: &str, node: &str, id: &str) {
        self.by_name
            .entry(name.to_ascii_lowercase())
            .or_default()
            .insert((node.to_string(), id.to_string()));
    }

    fn unindex_service(&mut self, name: &str, node: &str, id: &str) {
        let key = name.to_ascii_lowercase();
        if let Some(set) = self.by_name.get_mut(&key) {
            set.remove(&(node.to_string(), id.to_string()));
            if set.is_empty() {
                self.by_name.remove(&key);
            }
        }
    }

    /// Instances whose service name equals `name` ignoring ASCII case (DNS names are
    /// case-insensitive), found through the name index: the cost is proportional to the
    /// instances of that name, not to the size of the catalog.
    pub fn service_health_ignore_case(&self, name: &str) -> Vec<ServiceHealth<'_>> {
        let Some(set) = self.by_name.get(&name.to_ascii_lowercase()) else {
            return Vec::new();
        };
        set.iter()
            .filter_map(|(node, id)| {
                let rec = self.nodes.get(node)?;
                let s = rec.services.get(id)?;
                Some(Self::with_checks(rec, s))
            })
            .collect()
    }

    /// Checks of every instance of service `name`.
    pub fn service_checks(&self, name: &str) -> (Vec<&HealthCheck>, u64) {
        let v = self
            .nodes
            .values()
            .flat_map(|r| r.checks.values())
            .filter(|c| c.service_name == name)
            .collect();
        (v, self.service_name_index(name))
    }

    /// Checks of one node (node-level and service-level).
    pub fn node_checks(&self, node: &str) -> (Vec<&HealthCheck>, u64) {
        let v = self
            .nodes
            .get(node)
            .map(|r| r.checks.values().collect())
            .unwrap_or_default();
        (v, at_least_one(self.tables.checks))
    }

    /// All checks of the catalog.
    pub fn all_checks(&self) -> (Vec<&HealthCheck>, u64) {
        let v = self
            .nodes
            .values()
            .flat_map(|r| r.checks.values())
            .collect();
        (v, at_least_one(self.tables.checks))
    }

    /// A single check, if present.
    pub fn check(&self, node: &str, check_id: &str) -> Option<&HealthCheck> {
        self.nodes.get(node).and_then(|r| r.checks.get(check_id))
    }

    /// Table indexes (for metrics and `/v1/agent/self`).
    pub fn table_indexes(&self) -> &crate::TableIndexes {
        &self.tables
    }

    /// Names of all services with the union of their tags (sorted, deduplicated).
    pub fn service_tags(instances: &[(&Node, &NodeService)]) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, s) in instances {
            let tags = out.entry(s.service.clone()).or_default();
            for t in &s.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        for tags in out.values_mut() {
            tags.sort();
        }
        out
    }
}
