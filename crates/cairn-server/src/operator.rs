//! Operator requests on the Raft cluster: the leader's per-member facts (for autopilot's
//! health), removing a peer, transferring leadership. Like writes, they belong on the
//! leader: a server that does not lead forwards them there once (Consul forwards
//! `/v1/operator/raft/*` and `/v1/operator/autopilot/health` to the leader too).
//!
//! A refusal that retrying cannot cure (no such peer, the last voter) is an answer,
//! [`OperatorResponse::Refused`], with Consul's wording; an election in progress is a
//! [`CatalogError`] the caller's hold retries.

use std::time::Duration;

use cairn_raft::{AdminError, ClusterFacts, WriteError};
use serde::{Deserialize, Serialize};

use crate::catalog::{hold, CatalogError, ServerCatalog};
use crate::protocol::{CatalogRequest, CatalogResponse};

/// How long a leadership transfer may take before it is reported as failed.
pub const TRANSFER_WITHIN: Duration = Duration::from_secs(5);

/// An operator request (carried by [`CatalogRequest::Operator`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorRequest {
    /// The leader's view of each member.
    Facts,
    /// Remove a peer named by Raft ID or by address (`ip:port`).
    RemovePeer {
        id: Option<u64>,
        address: Option<String>,
    },
    /// Hand leadership to voter `id`, or to the most up-to-date one.
    TransferLeader { id: Option<u64> },
}

/// The answer to an [`OperatorRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorResponse {
    Facts(ClusterFacts),
    Removed {
        id: u64,
    },
    /// The server now leading.
    Transferred {
        id: u64,
    },
    /// Refused for good, with the reason.
    Refused(String),
}

fn admin_error(e: AdminError) -> Result<OperatorResponse, CatalogError> {
    match e {
        AdminError::Write(WriteError::NotLeader { leader_addr, .. }) => {
            Err(CatalogError::NotLeader(leader_addr))
        }
        AdminError::Write(WriteError::NoLeader) => Err(CatalogError::NoLeader),
        AdminError::Write(other) => Err(CatalogError::from(other)),
        refused => Ok(OperatorResponse::Refused(refused.to_string())),
    }
}

impl ServerCatalog {
    /// Carries out `req` on this server, which must lead (a forwarded request).
    pub async fn operator_here(
        &self,
        req: OperatorRequest,
    ) -> Result<OperatorResponse, CatalogError> {
        let raft = &self.raft;
        let done = match req {
            OperatorRequest::Facts => raft.cluster_facts().map(OperatorResponse::Facts),
            OperatorRequest::RemovePeer { id, address } => {
                let id = match (id, address) {
                    (Some(id), _) => Ok(id),
                    (None, Some(addr)) => raft
                        .member_by_addr(&addr)
                        .ok_or_else(|| AdminError::NotFound(format!("address {addr:?}"))),
                    (None, None) => {
                        return Ok(OperatorResponse::Refused(
                            "Must specify either ?id with the server's ID or ?address with \
                             IP:port of peer to remove"
                                .into(),
                        ))
                    }
                };
                match id {
                    Ok(id) => raft
                        .remove_member(id)
                        .await
                        .map(|_| OperatorResponse::Removed { id }),
                    Err(e) => Err(e),
                }
            }
            OperatorRequest::TransferLeader { id } => raft
                .transfer_leadership(id, TRANSFER_WITHIN)
                .await
                .map(|id| OperatorResponse::Transferred { id }),
        };
        done.or_else(admin_error)
    }

    /// One attempt: here if this server leads, else forwarded to the leader.
    async fn operator_once(&self, req: &OperatorRequest) -> Result<OperatorResponse, CatalogError> {
        if self.raft.is_leader() || self.forward.is_none() {
            return self.operator_here(req.clone()).await;
        }
        let leader = self.raft.leader_addr().ok_or(CatalogError::NoLeader)?;
        match self
            .to_leader(&leader, CatalogRequest::Operator(req.clone()))
            .await?
        {
            CatalogResponse::Operator(r) => Ok(r),
            other => Err(CatalogError::Unavailable(format!(
                "unexpected answer to an operator request: {other:?}"
            ))),
        }
    }

    /// Carries out `req` on the leader, holding it through an election.
    pub async fn operator(&self, req: OperatorRequest) -> Result<OperatorResponse, CatalogError> {
        hold(|| self.operator_once(&req)).await
    }
}
