//! The server side of the catalog protocol ([`crate::protocol`]), over the local Raft
//! node: forwarded writes and session renewals, the consistency barrier, and the stream of
//! applied entries that client agents follow into their replicas.

use std::sync::Arc;

use cairn_gossip::Gossip;
use cairn_raft::{RaftNode, WriteError};
use cairn_rpc::{CallContext, ItemStream, Service, Status};
use cairn_state::State;
use futures::StreamExt;
use parking_lot::RwLock;

use crate::protocol::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};
use crate::sessions::SessionTimers;

/// Serves writes, barriers and the applied-entry stream of one server.
pub struct CatalogService {
    pub raft: RaftNode,
    pub state: Arc<RwLock<State>>,
    /// Session TTL timers (renewals forwarded by clients land here).
    pub sessions: Arc<SessionTimers>,
    /// The LAN pool, hinted when a follower's stream breaks (none in some tests).
    pub gossip: Option<Arc<Gossip>>,
}

/// Dropped with a follower's stream: the connection to that node broke (or it left), so
/// the pool probes it at once rather than at its turn.
struct HintOnDrop {
    gossip: Option<Arc<Gossip>>,
    node: String,
}

impl Drop for HintOnDrop {
    fn drop(&mut self) {
        let (Some(gossip), false) = (self.gossip.clone(), self.node.is_empty()) else {
            return;
        };
        let node = std::mem::take(&mut self.node);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = gossip.hint_suspect(&node).await;
            });
        }
    }
}

fn status(e: WriteError) -> Status {
    match e {
        WriteError::NotLeader { leader_addr, .. } => Status::not_leader(leader_addr),
        WriteError::NoLeader => Status::unavailable("No cluster leader"),
        other => Status::unavailable(other.to_string()),
    }
}

impl Service<CatalogRpc> for CatalogService {
    async fn unary(
        &self,
        _ctx: CallContext,
        req: CatalogRequest,
    ) -> Result<CatalogResponse, Status> {
        match req {
            CatalogRequest::Write(cmd) => {
                let (index, outcome) = self.raft.write(*cmd).await.map_err(status)?;
                Ok(CatalogResponse::Written { index, outcome })
            }
            CatalogRequest::Barrier => {
                self.raft.ensure_linearizable().await.map_err(status)?;
                Ok(CatalogResponse::Index(self.state.read().index))
            }
            CatalogRequest::RenewSession(id) => {
                if !self.raft.is_leader() {
                    return Err(Status::not_leader(self.raft.leader_addr()));
                }
                self.sessions.renewed(&id);
                Ok(CatalogResponse::Done)
            }
            CatalogRequest::Follow { .. } => {
                Err(Status::invalid_argument("Follow is a stream call"))
            }
        }
    }

    async fn stream(
        &self,
        _ctx: CallContext,
        req: CatalogRequest,
    ) -> Result<ItemStream<ReplicaItem>, Status> {
        let CatalogRequest::Follow { node } = req else {
            return Err(Status::invalid_argument("only Follow is a stream call"));
        };
        let guard = HintOnDrop {
            gossip: self.gossip.clone(),
            node,
        };
        // Subscribe first, then copy: every entry after the copy is in the channel.
        let rx = self.raft.subscribe_applied();
        let copy = self.state.read().clone();
        let from = copy.index;
        let head = futures::stream::once(async move { Ok(ReplicaItem::State(Box::new(copy))) });
        let entries = futures::stream::unfold((rx, guard), move |(mut rx, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok((index, _)) if index <= from => continue,
                    Ok((index, cmd)) => {
                        let item = ReplicaItem::Entry {
                            index,
                            command: Box::new((*cmd).clone()),
                        };
                        return Some((Ok(item), (rx, guard)));
                    }
                    // Too far behind: end the stream; the follower starts over from a copy.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        return Some((
                            Err(Status::unavailable(format!(
                                "follower fell {n} entries behind; resubscribe"
                            ))),
                            (rx, guard),
                        ))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(head.chain(entries).boxed())
    }
}
