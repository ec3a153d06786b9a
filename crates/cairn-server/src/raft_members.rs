//! Leader duty: keep the Raft voters in step with the servers of the LAN pool.
//!
//! A live server of this datacenter that is not a voter is added as a learner (which
//! returns once it has caught up with the log) and then made a voter, one at a time. A
//! server that *left* the pool gracefully is removed from the voters. A server that
//! merely failed stays a voter (it may come back; removing dead servers while quorum is
//! safe is autopilot's job, [`crate::autopilot`]). The leader never removes itself.
//!
//! [`plan`] is pure; [`run`] carries it out on every membership event and every 10 s.

use std::collections::BTreeSet;
use std::time::Duration;

use cairn_gossip::MemberStatus;

use crate::bootstrap::{servers_in, ServerMember};
use crate::leader::Duties;

/// One change to the voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add this server (as a learner first, then a voter).
    Add { id: u64, addr: String, name: String },
    /// Remove this voter.
    Remove { id: u64, name: String },
}

/// The changes that bring `voters` in line with `servers`; `me` is never removed.
pub fn plan(servers: &[ServerMember], voters: &BTreeSet<u64>, me: u64) -> Vec<Change> {
    let mut changes = Vec::new();
    for s in servers {
        match s.status {
            MemberStatus::Alive if !voters.contains(&s.raft_id) => changes.push(Change::Add {
                id: s.raft_id,
                addr: s.rpc_addr.clone(),
                name: s.name.clone(),
            }),
            MemberStatus::Left if voters.contains(&s.raft_id) && s.raft_id != me => {
                changes.push(Change::Remove {
                    id: s.raft_id,
                    name: s.name.clone(),
                })
            }
            _ => {}
        }
    }
    changes
}

/// Carries out [`plan`] while this server leads.
pub(crate) async fn run(duties: Duties) {
    let (Some(raft), Some(gossip)) = (duties.raft.clone(), duties.gossip.clone()) else {
        return;
    };
    let mut events = gossip.subscribe();
    let me = raft.node_id();
    loop {
        let servers = servers_in(&gossip.members(), &duties.datacenter);
        // An uninitialized cluster has no voters yet: bootstrap comes first.
        let voters = raft.voter_ids();
        let mut retry = false;
        if !voters.is_empty() {
            for change in plan(&servers, &voters, me) {
                let result = match &change {
                    Change::Add { id, addr, name } => {
                        tracing::info!(server = %name, id, "adding server to the Raft voters");
                        match raft.add_learner(*id, addr.clone()).await {
                            Ok(_) => {
                                let mut v = raft.voter_ids();
                                v.insert(*id);
                                raft.change_membership(v).await.map(|_| ())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Change::Remove { id, name } => {
                        tracing::info!(server = %name, id, "server left: removing it from the Raft voters");
                        let mut v = raft.voter_ids();
                        v.remove(id);
                        raft.change_membership(v).await.map(|_| ())
                    }
                };
                if let Err(e) = result {
                    tracing::warn!("changing the Raft voters ({change:?}) failed: {e}; retrying");
                    retry = true;
                    break;
                }
            }
        }
        let wait = if retry {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        let _ = tokio::time::timeout(wait, events.recv()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, id: u64, status: MemberStatus) -> ServerMember {
        ServerMember {
            name: name.into(),
            raft_id: id,
            rpc_addr: format!("127.0.0.{id}:8300"),
            expect: Some(3),
            status,
            joined: true,
        }
    }

    #[test]
    fn new_live_servers_are_added_and_left_ones_removed() {
        let voters: BTreeSet<u64> = [1, 2, 3].into();
        let servers = [
            s("s1", 1, MemberStatus::Alive),
            s("s2", 2, MemberStatus::Failed),
            s("s3", 3, MemberStatus::Left),
            s("s4", 4, MemberStatus::Alive),
        ];
        let p = plan(&servers, &voters, 1);
        assert_eq!(
            p,
            vec![
                Change::Remove {
                    id: 3,
                    name: "s3".into()
                },
                Change::Add {
                    id: 4,
                    addr: "127.0.0.4:8300".into(),
                    name: "s4".into()
                },
            ]
        );
        // The leader never removes itself.
        let me_left = [s("s1", 1, MemberStatus::Left)];
        assert!(plan(&me_left, &voters, 1).is_empty());
    }
}
