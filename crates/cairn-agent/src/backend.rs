//! The agent as the HTTP layer sees it: [`Agent`]'s implementation of [`Backend`], each
//! method a thin mapping onto the agent's own operations (writes through Raft, reads from
//! the replica with the barrier the consistency mode asks for, agent-local work in
//! [`crate::local`]). Starting, reloading and stopping the agent are in [`crate::node`].

use cairn_http::{Backend, BoxFut, Consistency, HttpError, Limits, RaftInfo};
use cairn_state::{Command, Outcome, State};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::{HealthCheck, NodeService};
use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::catalog::{CatalogError, ReadMode};
use crate::local::LocalError;
use crate::node::{now_ms, Agent};

impl Backend for Agent {
    fn state(&self) -> &RwLock<State> {
        &self.inner.state
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.applied.clone()
    }

    fn acl(&self) -> Option<&cairn_http::AclRuntime> {
        self.inner.acl.as_deref()
    }

    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), HttpError>> {
        Box::pin(async move { self.write_cmd(cmd).await.map_err(catalog_error) })
    }

    fn barrier(&self, mode: Consistency) -> BoxFut<'_, Result<(), HttpError>> {
        let mode = match mode {
            Consistency::Stale => return Box::pin(async { Ok(()) }),
            Consistency::Leader if self.inner.cfg.debug_unsafe_local_reads => {
                return Box::pin(async { Ok(()) })
            }
            // A lone server is its own quorum: its state is the leader's.
            Consistency::Leader if self.inner.cfg.server && self.inner.cfg.bootstraps_alone() => {
                return Box::pin(async { Ok(()) })
            }
            Consistency::Leader => ReadMode::Lease,
            Consistency::Consistent => ReadMode::Quorum,
        };
        Box::pin(async move {
            let catalog = &self.inner.catalog;
            let shared = &self.inner.barriers[usize::from(mode == ReadMode::Quorum)];
            let result = shared.run(|| catalog.barrier(mode)).await;
            result.map_err(catalog_error)
        })
    }

    fn raft_term(&self) -> u64 {
        self.inner.catalog.raft_term()
    }

    fn leader_contact(&self) -> cairn_http::LeaderContact {
        let (known_leader, last_contact_ms) = self.inner.catalog.leader_contact();
        cairn_http::LeaderContact {
            known_leader,
            last_contact_ms,
        }
    }

    fn raft_info(&self) -> RaftInfo {
        let s = self.inner.catalog.status();
        RaftInfo {
            leader: s.leader,
            peers: s.peers,
            is_leader: s.is_leader,
            last_contact_ms: s.last_contact_ms,
        }
    }

    fn raft_configuration(&self) -> Value {
        let status = self.inner.catalog.status();
        let servers = self
            .inner
            .gossip
            .as_ref()
            .map(|g| cairn_server::bootstrap::servers_in(&g.members(), &self.inner.cfg.datacenter))
            .unwrap_or_default();
        let rows: Vec<Value> = status
            .peers
            .iter()
            .map(|addr| {
                let member = servers.iter().find(|s| s.rpc_addr == *addr);
                let (node, id) = match member {
                    Some(m) => (m.name.clone(), self.server_id(&m.name)),
                    // A lone server without gossip: itself.
                    None => (self.inner.cfg.node_name.clone(), self.inner.node_id.clone()),
                };
                json!({
                    "ID": id,
                    "Node": node,
                    "Address": addr,
                    "Leader": status.leader.as_deref() == Some(addr.as_str()),
                    "Voter": true,
                    "ProtocolVersion": "3",
                })
            })
            .collect();
        json!({ "Servers": rows, "Index": self.inner.state.read().index })
    }

    fn node_name(&self) -> &str {
        &self.inner.cfg.node_name
    }

    fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    fn datacenter(&self) -> &str {
        &self.inner.cfg.datacenter
    }

    fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn session_renewed(&self, id: &str) {
        self.inner.catalog.session_renewed(id);
    }

    fn read_ready(&self) -> Result<(), HttpError> {
        self.inner.catalog.ready().map_err(catalog_error)
    }

    fn register_service(
        &self,
        def: ServiceDefinition,
        replace_checks: bool,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_register_service(def, replace_checks, false))
    }

    fn deregister_service(&self, id: String) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_deregister_service(id))
    }

    fn local_services(&self) -> Vec<NodeService> {
        self.inner.local.lock().services.values().cloned().collect()
    }

    fn local_checks(&self) -> Vec<HealthCheck> {
        self.inner
            .local
            .lock()
            .checks
            .values()
            .map(|c| c.check.clone())
            .collect()
    }

    fn register_check(&self, def: CheckDefinition) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_register_check(def, false))
    }

    fn deregister_check(&self, id: String) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_deregister_check(id))
    }

    fn update_check(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_update_ttl(id, status, output))
    }

    fn service_maintenance(
        &self,
        id: String,
        enable: bool,
        reason: String,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_service_maintenance(id, enable, reason))
    }

    fn node_maintenance(&self, enable: bool, reason: String) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_node_maintenance(enable, reason))
    }

    fn members(&self) -> Vec<Value> {
        match &self.inner.gossip {
            Some(g) => g.members().iter().map(crate::lan::member_json).collect(),
            None => vec![self.member()],
        }
    }

    fn join(&self, addr: String) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(async move {
            let Some(g) = &self.inner.gossip else {
                return Err(HttpError::bad_request(
                    "gossip is disabled on this agent (ports.serf_lan = -1)",
                ));
            };
            crate::lan::join(g, &[addr])
                .await
                .map(|_| ())
                .map_err(HttpError::internal)
        })
    }

    fn force_leave(&self, node: String, prune: bool) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(async move {
            // Consul answers an unknown node with a 500 (clients such as py-consul rely on
            // it raising).
            let unknown =
                || HttpError::internal(format!("agent: No node found with name '{node}'"));
            let Some(g) = &self.inner.gossip else {
                return Err(unknown());
            };
            match g.force_leave(&node, prune).await {
                Ok(()) => Ok(()),
                Err(cairn_gossip::GossipError::UnknownMember(_)) => Err(unknown()),
                Err(e @ cairn_gossip::GossipError::MemberAlive(_)) => {
                    Err(HttpError::bad_request(e.to_string()))
                }
                Err(e) => Err(HttpError::internal(e.to_string())),
            }
        })
    }

    fn self_info(&self) -> Value {
        let c = &self.inner.cfg;
        let status = self.inner.catalog.status();
        json!({
            "Config": {
                "Datacenter": c.datacenter,
                "PrimaryDatacenter": c.primary_datacenter.clone().unwrap_or_else(|| c.datacenter.clone()),
                "NodeName": c.node_name,
                "NodeID": self.inner.node_id,
                "Server": c.server,
                "Revision": "cairn",
                "Version": crate::CONSUL_API_VERSION,
                "BuildDate": "",
            },
            "DebugConfig": {
                "Datacenter": c.datacenter,
                "NodeName": c.node_name,
                "DataDir": c.data_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
                "DevMode": c.dev,
                "Domain": c.domain,
                "ServerMode": c.server,
                "BootstrapExpect": c.bootstrap_expect,
                "EnableScriptChecks": c.enable_script_checks,
                "EnableLocalScriptChecks": c.enable_local_script_checks,
            },
            "Coord": null,
            "Member": self.member(),
            "Stats": {
                "consul": {
                    "server": c.server.to_string(),
                    "leader": status.is_leader.to_string(),
                    "leader_addr": status.leader.clone().unwrap_or_default(),
                    "bootstrap": c.bootstraps_alone().to_string(),
                    "known_datacenters": "1",
                },
                "raft": {
                    "applied_index": self.inner.state.read().index.to_string(),
                    "state": if status.is_leader { "Leader" } else { "Follower" },
                },
            },
            "Meta": {"consul-network-segment": "", "cairn-version": crate::VERSION},
            "xDS": null,
        })
    }

    fn reload(&self) -> BoxFut<'_, Result<(), HttpError>> {
        local_change(self.do_reload())
    }

    fn leave(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.leave_pool().await;
            self.inner.leave.notify_one();
        })
    }

    fn raft_remove_peer(
        &self,
        id: Option<String>,
        address: Option<String>,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        self.remove_peer_boxed(id, address)
    }

    fn raft_transfer_leader(&self, id: Option<String>) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(self.do_transfer_leader(id))
    }

    fn autopilot_health(&self) -> BoxFut<'_, Result<Value, HttpError>> {
        Box::pin(self.do_autopilot_health())
    }

    fn keyring(
        &self,
        op: cairn_http::KeyringOp,
        relay: u8,
    ) -> BoxFut<'_, Result<Vec<cairn_http::KeyringPool>, HttpError>> {
        Box::pin(crate::keyring::operate(
            self.inner.gossip.as_deref(),
            &self.inner.cfg.datacenter,
            op,
            relay,
        ))
    }
}

/// What only the HTTP layer asks of the agent.
impl Agent {
    /// A server's node ID as the pool knows it (tag `id`).
    fn server_id(&self, name: &str) -> String {
        self.inner
            .gossip
            .as_ref()
            .and_then(|g| g.member(name))
            .and_then(|m| m.tags.get("id").cloned())
            .unwrap_or_default()
    }

    /// This agent as a member, in `/v1/agent/members` shape.
    fn member(&self) -> Value {
        match &self.inner.gossip {
            Some(g) => crate::lan::member_json(&g.local_member()),
            None => {
                let c = &self.inner.cfg;
                let tags = crate::lan::tags(c, &self.inner.node_id, self.inner.rpc_port);
                json!({
                    "Name": c.node_name, "Addr": self.inner.address, "Port": 0,
                    "Tags": tags, "Status": 1,
                    "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                    "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
                })
            }
        }
    }
}

/// The HTTP edge's rendering of a catalog error (Consul answers these with a 500).
pub(crate) fn catalog_error(e: CatalogError) -> HttpError {
    HttpError::internal(e.to_string())
}

/// A local change as the HTTP layer calls it, its error given a status (below).
fn local_change<'a>(
    change: impl std::future::Future<Output = Result<(), LocalError>> + Send + 'a,
) -> BoxFut<'a, Result<(), HttpError>> {
    Box::pin(async move { Ok(change.await?) })
}

/// The HTTP edge's statuses for a refused or failed local change, as Consul answers
/// them: 400 for a bad definition or a write the state machine refused, 404 for an
/// unknown ID, 500 when the change could not be saved or written.
impl From<LocalError> for HttpError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Invalid(m) | LocalError::Refused(m) => HttpError::bad_request(m),
            LocalError::Unknown(m) => HttpError::not_found(m),
            LocalError::Persist(m) => HttpError::internal(m),
            LocalError::Catalog(e) => catalog_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors_get_consul_s_statuses_and_keep_their_text() {
        let status = |e: LocalError| {
            let h = HttpError::from(e);
            (h.status.as_u16(), h.message)
        };
        assert_eq!(
            status(LocalError::Invalid("bad".into())),
            (400, "bad".into())
        );
        assert_eq!(status(LocalError::Refused("no".into())), (400, "no".into()));
        assert_eq!(
            status(LocalError::Unknown("who".into())),
            (404, "who".into())
        );
        assert_eq!(
            status(LocalError::Persist("disk".into())),
            (500, "disk".into())
        );
        assert_eq!(
            status(LocalError::Catalog(CatalogError::NoLeader)),
            (500, "No cluster leader".into())
        );
    }
}
