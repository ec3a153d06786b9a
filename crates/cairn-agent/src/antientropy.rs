//! Anti-entropy: the agent's local services and checks are the truth for its node, and
//! the catalog is made to match them.
//!
//! Consul syncs on a timer (every minute for up to 128 nodes, longer as the cluster grows)
//! plus partial syncs after local changes. Cairn does the same full sync on that
//! schedule, and additionally compares its node's catalog entries after every applied
//! Raft batch that touched them, so an entry removed or changed behind the agent's back
//! (`/v1/catalog/deregister`, a stray `/v1/catalog/register`) is repaired within
//! milliseconds rather than at the next full sync. The comparison is per node and cheap;
//! writes that change nothing do not bump indexes, so the loop cannot feed itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_state::{Command, Deregistration, Registration};
use cairn_types::{HealthCheck, NodeService, SERF_CHECK_ID};
use rand::Rng;
use tracing::{debug, info, warn};

use crate::node::{now_ms, Agent};

/// Full-sync interval for a cluster of `nodes` nodes (Consul's scaling: one minute up to
/// 128 nodes, one more minute for every doubling beyond).
pub fn full_sync_interval(nodes: usize) -> Duration {
    let factor = if nodes <= 128 {
        1.0
    } else {
        ((nodes as f64).log2() - 128f64.log2()).ceil() + 1.0
    };
    Duration::from_secs_f64(60.0 * factor)
}

/// What has to change in the catalog for this node to match the agent.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub register_node: bool,
    pub services: Vec<NodeService>,
    pub checks: Vec<HealthCheck>,
    pub remove_services: Vec<String>,
    pub remove_checks: Vec<String>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Equal apart from the Raft indexes (field by field: this runs for every local
/// service on every sync, so it must not allocate).
fn same_service(a: &NodeService, b: &NodeService) -> bool {
    a.id == b.id
        && a.service == b.service
        && a.tags == b.tags
        && a.address == b.address
        && a.tagged_addresses == b.tagged_addresses
        && a.meta == b.meta
        && a.port == b.port
        && a.weights == b.weights
        && a.enable_tag_override == b.enable_tag_override
        && a.kind == b.kind
        && a.proxy == b.proxy
        && a.connect == b.connect
        && a.locality == b.locality
}

/// Equal apart from indexes and the fields the catalog fills in itself (node, and the
/// service name and tags denormalised into service checks).
fn same_check(local: &HealthCheck, cat: &HealthCheck) -> bool {
    local.check_id == cat.check_id
        && local.name == cat.name
        && local.status == cat.status
        && local.notes == cat.notes
        && local.output == cat.output
        && local.service_id == cat.service_id
        && local.check_type == cat.check_type
        && local.interval == cat.interval
        && local.timeout == cat.timeout
        && local.exposed_port == cat.exposed_port
        && local.definition == cat.definition
}

impl Agent {
    /// Compares the catalog's view of this node with the local state.
    pub(crate) fn sync_plan(&self) -> Plan {
        let me = self.self_node();
        let st = self.inner.state.read();
        let local = self.inner.local.lock();
        let (rec, _) = st.node(&me.node);
        let mut plan = Plan::default();
        let Some(rec) = rec else {
            plan.register_node = true;
            plan.services = local.services.values().cloned().collect();
            plan.checks = local.checks.values().map(|c| c.check.clone()).collect();
            return plan;
        };
        let n = &rec.node;
        if n.address != me.address
            || n.meta != me.meta
            || n.tagged_addresses != me.tagged_addresses
            || n.id != me.id
        {
            plan.register_node = true;
        }
        for (id, s) in &local.services {
            if rec.services.get(id).is_none_or(|c| !same_service(s, c)) {
                plan.services.push(s.clone());
            }
        }
        for (id, c) in local.checks.iter() {
            if rec
                .checks
                .get(id)
                .is_none_or(|cat| !same_check(&c.check, cat))
            {
                plan.checks.push(c.check.clone());
            }
        }
        let server = self.inner.cfg.server;
        for id in rec.services.keys() {
            let server_own = server && id == "consul";
            if !local.services.contains_key(id) && !server_own {
                plan.remove_services.push(id.clone());
            }
        }
        for (id, c) in &rec.checks {
            let owned_by_removed = plan.remove_services.contains(&c.service_id);
            if !local.checks.contains_key(id) && id != SERF_CHECK_ID && !owned_by_removed {
                plan.remove_checks.push(id.clone());
            }
        }
        plan
    }

    /// Makes the catalog match the local state; returns whether anything was written.
    pub(crate) async fn sync(&self) -> bool {
        let _guard = self.inner.local_lock.lock().await;
        let plan = self.sync_plan();
        if plan.is_empty() {
            return false;
        }
        info!(
            node_changed = plan.register_node,
            services = plan.services.len(),
            checks = plan.checks.len(),
            removed_services = plan.remove_services.len(),
            removed_checks = plan.remove_checks.len(),
            "anti-entropy: syncing this node's catalog entries"
        );
        let node = self.self_node();
        let mut writes = Vec::new();
        if plan.register_node {
            writes.push(Command::Register(Registration {
                node: node.clone(),
                now_ms: now_ms(),
                ..Default::default()
            }));
        }
        for s in plan.services {
            // A service goes with its checks, so a check never refers to a missing service.
            let checks = plan
                .checks
                .iter()
                .filter(|c| c.service_id == s.id)
                .cloned()
                .collect();
            writes.push(Command::Register(Registration {
                node: node.clone(),
                service: Some(s),
                checks,
                skip_node_update: true,
                now_ms: now_ms(),
            }));
        }
        let svc_ids: Vec<String> = writes
            .iter()
            .filter_map(|w| match w {
                Command::Register(r) => r.service.as_ref().map(|s| s.id.clone()),
                _ => None,
            })
            .collect();
        let loose: Vec<HealthCheck> = plan
            .checks
            .into_iter()
            .filter(|c| !svc_ids.contains(&c.service_id))
            .collect();
        if !loose.is_empty() {
            writes.push(Command::Register(Registration {
                node: node.clone(),
                checks: loose,
                skip_node_update: true,
                now_ms: now_ms(),
                ..Default::default()
            }));
        }
        for id in plan.remove_services {
            writes.push(Command::Deregister(Deregistration {
                node: node.node.clone(),
                service_id: Some(id),
                check_id: None,
                now_ms: now_ms(),
            }));
        }
        for id in plan.remove_checks {
            writes.push(Command::Deregister(Deregistration {
                node: node.node.clone(),
                service_id: None,
                check_id: Some(id),
                now_ms: now_ms(),
            }));
        }
        // Each write is checked against this agent's tokens: a denied one is logged (with
        // the permission it lacks) and skipped, the others still go through, and the
        // next sync tries it again.
        self.inner.acl_blocked.store(false, Ordering::Relaxed);
        let mut wrote = false;
        for w in writes {
            if !self.acl_allows(&w) {
                continue;
            }
            if let Err(e) = self.write_cmd(w).await {
                warn!("anti-entropy write failed: {e}");
                return false;
            }
            wrote = true;
        }
        wrote
    }
}

/// How long to let writes to this node settle before comparing (coalesces bursts, such
/// as thousands of registrations, into one comparison).
const SETTLE: Duration = Duration::from_millis(100);

/// Runs anti-entropy for the life of the agent.
pub(crate) async fn run(agent: Agent) {
    let mut applied = agent.inner.applied.clone();
    let node = agent.inner.cfg.node_name.clone();
    let mut seen = agent.inner.state.read().node_write_index(&node);
    let acl_tables = |agent: &Agent| {
        let st = agent.inner.state.read();
        let t = st.table_indexes();
        (t.acl_tokens, t.acl_policies, t.acl_roles)
    };
    let mut acl_seen = acl_tables(&agent);
    loop {
        let nodes = agent.inner.state.read().nodes().0.len();
        let base = full_sync_interval(nodes);
        // Stagger so agents do not all sync at once.
        let jitter = rand::rng().random_range(0.0..0.25);
        let full = tokio::time::sleep(base.mul_f64(1.0 + jitter));
        tokio::pin!(full);
        loop {
            tokio::select! {
                _ = &mut full => {
                    debug!("anti-entropy: full sync");
                    agent.sync().await;
                    break;
                }
                _ = agent.inner.tokens_changed.notified() => {
                    debug!("anti-entropy: the agent's tokens changed");
                    agent.sync().await;
                }
                r = applied.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // What ACLs blocked is retried when tokens, policies or roles change
                    // (a write there may be what grants it), not in a loop.
                    if agent.inner.acl_blocked.load(Ordering::Relaxed) {
                        let now = acl_tables(&agent);
                        if now != acl_seen {
                            acl_seen = now;
                            agent.sync().await;
                            continue;
                        }
                    }
                    // Only writes addressed to this node can make it drift. (The index
                    // can also go down: a client's replica restarted from a server that
                    // lost its state, e.g. a restarted -dev server.)
                    if agent.inner.state.read().node_write_index(&node) == seen {
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    seen = agent.inner.state.read().node_write_index(&node);
                    if !agent.sync_plan().is_empty() {
                        // sync() takes the local lock: an in-flight local operation finishes first.
                        agent.sync().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_scales_like_consul() {
        assert_eq!(full_sync_interval(1), Duration::from_secs(60));
        assert_eq!(full_sync_interval(128), Duration::from_secs(60));
        assert_eq!(full_sync_interval(129), Duration::from_secs(120));
        assert_eq!(full_sync_interval(256), Duration::from_secs(120));
        assert_eq!(full_sync_interval(257), Duration::from_secs(180));
        assert_eq!(full_sync_interval(1024), Duration::from_secs(240));
    }
}
