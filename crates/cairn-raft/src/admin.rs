//! Operator actions on a running cluster, on its leader: list the members with what the
//! leader knows of each (for autopilot's health), remove a member, hand leadership to
//! another voter. Consul's `operator raft remove-peer` and `transfer-leader`.
//!
//! Every action is refused with a typed [`AdminError`] that says why in Consul's words
//! (a peer not in the configuration, the last voter, no other voter to lead).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::{ChangeMembers, Instant as _, ServerState};

use crate::node::{RaftNode, WriteError};

/// One member of the Raft configuration, as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberFacts {
    pub id: u64,
    /// Advertised RPC address.
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
    /// The last log index known to be on this member (the leader's own last index for the
    /// leader).
    pub last_index: u64,
    /// Milliseconds since the leader last heard from this member (0 for the leader; `None`
    /// if never).
    pub last_contact_ms: Option<u64>,
}

/// The leader's view of its cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterFacts {
    pub term: u64,
    /// The leader's last log index.
    pub last_index: u64,
    /// How often the leader sends heartbeats: a member's last contact is up to this old
    /// even when all is well.
    pub heartbeat_interval_ms: u64,
    pub members: Vec<MemberFacts>,
}

/// Why an operator action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No such member (the message names what was asked for, as Consul's does).
    #[error("{0} was not found in the Raft configuration")]
    NotFound(String),
    /// Removing it would leave no voter.
    #[error("cannot remove the last voter (id {0}) from the Raft configuration")]
    LastVoter(u64),
    /// No voter other than the leader could take over.
    #[error("cannot transfer leadership: {0}")]
    NoTarget(String),
    /// Leadership did not move in time.
    #[error("leadership transfer to node {to} did not complete within {within:?}")]
    TransferTimedOut { to: u64, within: Duration },
    /// Not the leader, or Raft refused or stopped.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl RaftNode {
    /// The leader's view of each member; `NotLeader`/`NoLeader` on any other server.
    pub fn cluster_facts(&self) -> Result<ClusterFacts, AdminError> {
        let m = self.raft().metrics().borrow_watched().clone();
        if m.state != ServerState::Leader {
            return Err(self.not_leader().into());
        }
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let last_index = m.last_log_index.unwrap_or(0);
        let replication = m.replication.clone().unwrap_or_default();
        let heartbeat = m.heartbeat.clone().unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let me = *id == self.node_id();
                MemberFacts {
                    id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    leader: me,
                    last_index: if me {
                        last_index
                    } else {
                        replication
                            .get(id)
                            .and_then(|l| l.as_ref())
                            .map_or(0, |l| l.index())
                    },
                    last_contact_ms: if me {
                        Some(0)
                    } else {
                        heartbeat
                            .get(id)
                            .and_then(|t| t.as_ref())
                            .map(|t| t.elapsed().as_millis().try_into().unwrap_or(u64::MAX))
                    },
                }
            })
            .collect();
        Ok(ClusterFacts {
            term: m.current_term,
            last_index,
            heartbeat_interval_ms: self.raft().config().heartbeat_interval,
            members,
        })
    }

    /// The members' ids and addresses, from this server's view of the configuration.
    pub fn members(&self) -> BTreeMap<u64, String> {
        let m = self.raft().metrics().borrow_watched().clone();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// The member whose advertised address is `addr`.
    pub fn member_by_addr(&self, addr: &str) -> Option<u64> {
        self.members()
            .into_iter()
            .find(|(_, a)| a == addr)
            .map(|(id, _)| id)
    }

    /// On the leader: removes member `id` (a voter or a learner) from the configuration.
    /// Returns the log index of the change. The leader may remove itself; it steps down
    /// once the change commits.
    pub async fn remove_member(&self, id: u64) -> Result<u64, AdminError> {
        // Also waits for this term's first entry, so the configuration is committed (a
        // change is refused while another is in flight).
        self.ensure_linearizable().await?;
        let voters = self.voter_ids();
        if !self.members().contains_key(&id) {
            return Err(AdminError::NotFound(format!("id {id:?}")));
        }
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(AdminError::LastVoter(id));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft()
            .change_membership(change, false)
            .await
            .map(|r| r.log_id.index())
            .map_err(|e| WriteError::from_client_write(e).into())
    }

    /// On the leader: hands leadership to voter `to`, or to the most up-to-date other voter,
    /// and waits (at most `within`) until another server leads. Returns the new leader's id.
    pub async fn transfer_leadership(
        &self,
        to: Option<u64>,
        within: Duration,
    ) -> Result<u64, AdminError> {
        let facts = self.cluster_facts()?;
        let me = self.node_id();
        let target = match to {
            Some(id) if id == me => {
                return Err(AdminError::NoTarget(format!("node {id} already leads")))
            }
            Some(id) => {
                if !facts.members.iter().any(|m| m.id == id && m.voter) {
                    return Err(AdminError::NotFound(format!("id {id:?}")));
                }
                id
            }
            // A voter heard from lately (a dead one would never campaign), then the most
            // up to date, then the most recently heard from.
            None => facts
                .members
                .iter()
                .filter(|m| m.voter && m.id != me)
                .max_by_key(|m| {
                    let contact = m.last_contact_ms.unwrap_or(u64::MAX);
                    let lease = self.raft().config().election_timeout_max;
                    (contact <= lease, m.last_index, std::cmp::Reverse(contact))
                })
                .map(|m| m.id)
                .ok_or_else(|| {
                    AdminError::NoTarget("no other voter in the configuration".into())
                })?,
        };
        tracing::info!(to = target, "transferring Raft leadership");
        self.raft()
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| WriteError::Shutdown(e.to_string()))?;
        let moved = self
            .raft()
            .wait(Some(within))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "another server leads",
            )
            .await;
        match moved {
            Ok(m) => Ok(m.current_leader.unwrap_or(target)),
            Err(_) => Err(AdminError::TransferTimedOut { to: target, within }),
        }
    }

    /// The error a leader-only action gets on another server.
    fn not_leader(&self) -> WriteError {
        match (self.current_leader(), self.leader_addr()) {
            (Some(leader_id), leader_addr) if leader_id != self.node_id() => {
                WriteError::NotLeader {
                    leader_id,
                    leader_addr,
                }
            }
            _ => WriteError::NoLeader,
        }
    }
}
