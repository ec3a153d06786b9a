//! The agent's side of the Raft operator API and of a server's graceful leave.
//!
//! Operator requests go through the catalog seam to the leader
//! ([`cairn_server::operator`]); this file turns Consul's inputs (node IDs, `ip:port`)
//! into Raft IDs, renders the answers, and judges autopilot health from the leader's facts
//! and this agent's view of the LAN pool.
//!
//! A server that leaves a multi-server cluster (`cairn leave`, or a signal with
//! `leave_on_terminate`) first hands leadership to another voter if it leads, then leaves
//! the pool, then makes sure it is out of the Raft configuration before it exits, so the
//! cluster's quorum never counts a server that is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_http::{BoxFut, HttpError};
use cairn_server::autopilot::{health, PoolView};
use cairn_server::bootstrap::{raft_id, servers_in};
use cairn_server::{OperatorRequest, OperatorResponse};
use serde_json::Value;

use crate::backend::catalog_error;
use crate::node::{now_ms, Agent};

/// How long a leaving server tries to get itself out of the Raft configuration.
const LEAVE_RAFT_WITHIN: Duration = Duration::from_secs(10);

/// The wording of a refusal for a peer that is not in the configuration.
const NOT_FOUND: &str = "was not found in the Raft configuration";

impl Agent {
    /// This server's Raft ID (a server that bootstraps alone uses 1).
    pub(crate) fn my_raft_id(&self) -> u64 {
        if self.inner.cfg.bootstraps_alone() {
            1
        } else {
            raft_id(&self.inner.node_id)
        }
    }

    /// Whether this agent is a server of a multi-server cluster.
    fn clustered(&self) -> bool {
        self.inner.cfg.server && !self.inner.cfg.bootstraps_alone()
    }

    async fn operator(&self, req: OperatorRequest) -> Result<OperatorResponse, HttpError> {
        self.inner
            .catalog
            .operator(req)
            .await
            .map_err(catalog_error)
    }

    /// A server's node ID as a Raft ID; an ID that names no server is still tried (the
    /// leader answers that it is not in the configuration).
    fn raft_id_of(&self, id: &str) -> u64 {
        if id == self.inner.node_id {
            return self.my_raft_id();
        }
        raft_id(id)
    }

    pub(crate) async fn do_remove_peer(
        &self,
        id: Option<String>,
        address: Option<String>,
    ) -> Result<(), HttpError> {
        let shown = match (&id, &address) {
            (Some(i), _) => format!("id {i:?}"),
            (None, Some(a)) => format!("address {a:?}"),
            (None, None) => return Err(HttpError::bad_request("Must specify ?id or ?address")),
        };
        let req = OperatorRequest::RemovePeer {
            id: id.as_deref().map(|i| self.raft_id_of(i)),
            address,
        };
        match self.operator(req).await? {
            OperatorResponse::Removed { id } => {
                tracing::info!(id, "removed a peer from the Raft configuration");
                Ok(())
            }
            OperatorResponse::Refused(m) if m.ends_with(NOT_FOUND) => {
                Err(HttpError::internal(format!("{shown} {NOT_FOUND}")))
            }
            OperatorResponse::Refused(m) => Err(HttpError::internal(m)),
            other => Err(HttpError::internal(format!("unexpected answer {other:?}"))),
        }
    }

    pub(crate) async fn do_transfer_leader(&self, id: Option<String>) -> Result<(), HttpError> {
        let shown = id.as_ref().map(|i| format!("id {i:?}"));
        let req = OperatorRequest::TransferLeader {
            id: id.as_deref().map(|i| self.raft_id_of(i)),
        };
        match self.operator(req).await? {
            OperatorResponse::Transferred { id } => {
                tracing::info!(to = id, "Raft leadership transferred");
                Ok(())
            }
            OperatorResponse::Refused(m) if m.ends_with(NOT_FOUND) => Err(HttpError::internal(
                format!("{} {NOT_FOUND}", shown.unwrap_or_default()),
            )),
            OperatorResponse::Refused(m) => Err(HttpError::internal(m)),
            other => Err(HttpError::internal(format!("unexpected answer {other:?}"))),
        }
    }

    pub(crate) async fn do_autopilot_health(&self) -> Result<Value, HttpError> {
        let facts = match self.operator(OperatorRequest::Facts).await? {
            OperatorResponse::Facts(f) => f,
            OperatorResponse::Refused(m) => return Err(HttpError::internal(m)),
            other => return Err(HttpError::internal(format!("unexpected answer {other:?}"))),
        };
        let mut pool: BTreeMap<u64, PoolView> = BTreeMap::new();
        if let Some(g) = &self.inner.gossip {
            let members = g.members();
            for s in servers_in(&members, &self.inner.cfg.datacenter) {
                let m = members.iter().find(|m| m.name == s.name);
                pool.insert(
                    s.raft_id,
                    PoolView {
                        name: s.name.clone(),
                        node_id: m
                            .and_then(|m| m.tags.get("id").cloned())
                            .unwrap_or_default(),
                        status: s.status,
                        version: m
                            .and_then(|m| m.tags.get("build"))
                            .map(|b| b.split(':').next().unwrap_or_default().to_string())
                            .unwrap_or_default(),
                    },
                );
            }
        }
        if !self.clustered() {
            // A lone server's Raft ID is not derived from its node ID.
            pool.insert(
                self.my_raft_id(),
                PoolView {
                    name: self.inner.cfg.node_name.clone(),
                    node_id: self.inner.node_id.clone(),
                    status: cairn_gossip::MemberStatus::Alive,
                    version: crate::CONSUL_API_VERSION.to_string(),
                },
            );
        }
        let config = self.inner.state.read().autopilot_config();
        let now = now_ms();
        let h = health(&facts, &pool, &config, |id, ok| {
            self.inner.stable.since(id, ok, now)
        });
        serde_json::to_value(h).map_err(|e| HttpError::internal(e.to_string()))
    }

    /// On a leaving server of a cluster that leads: hands leadership to another voter
    /// first, so the cluster does not sit out an election timeout.
    pub(crate) async fn hand_over_leadership(&self) {
        if !self.clustered() || !self.inner.catalog.status().is_leader {
            return;
        }
        tracing::info!("leaving while leading: transferring leadership first");
        match self
            .operator(OperatorRequest::TransferLeader { id: None })
            .await
        {
            Ok(OperatorResponse::Transferred { id }) => {
                tracing::info!(to = id, "leadership transferred")
            }
            Ok(other) => tracing::warn!("leadership transfer refused: {other:?}"),
            Err(e) => tracing::warn!("leadership transfer failed: {e}"),
        }
    }

    /// On a leaving server of a cluster: waits until it is out of the Raft configuration,
    /// asking the leader to remove it (the leader also does so when it sees the server
    /// leave the pool). Bounded by [`LEAVE_RAFT_WITHIN`].
    pub(crate) async fn leave_raft(&self) {
        // A server whose cluster never formed has no configuration to leave.
        if !self.clustered() || self.inner.catalog.status().peers.is_empty() {
            return;
        }
        let me = self.my_raft_id();
        let deadline = tokio::time::Instant::now() + LEAVE_RAFT_WITHIN;
        while tokio::time::Instant::now() < deadline {
            let req = OperatorRequest::RemovePeer {
                id: Some(me),
                address: None,
            };
            match self.operator(req).await {
                Ok(OperatorResponse::Removed { .. }) => {
                    tracing::info!("removed from the Raft configuration");
                    return;
                }
                Ok(OperatorResponse::Refused(m)) if m.ends_with(NOT_FOUND) => {
                    tracing::info!("no longer in the Raft configuration");
                    return;
                }
                // Refusals are final (the last voter stays).
                Ok(OperatorResponse::Refused(m)) => {
                    tracing::warn!("staying in the Raft configuration: {m}");
                    return;
                }
                Ok(other) => tracing::debug!("leaving Raft: {other:?}; retrying"),
                Err(e) => tracing::debug!("leaving Raft: {e}; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!("could not confirm removal from the Raft configuration in time");
    }
}

/// The Backend methods, boxed.
impl Agent {
    pub(crate) fn remove_peer_boxed(
        &self,
        id: Option<String>,
        address: Option<String>,
    ) -> BoxFut<'_, Result<(), HttpError>> {
        Box::pin(self.do_remove_peer(id, address))
    }
}
