//! The server side of the catalog protocol, over the local Raft node.

use std::sync::Arc;

use cairn_raft::{RaftNode, WriteError};
use cairn_rpc::{CallContext, ItemStream, Service, Status};
use cairn_state::State;
use futures::StreamExt;
use parking_lot::RwLock;

use super::protocol::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};

/// Serves writes, barriers and the applied-entry stream of one server.
pub(crate) struct CatalogService {
    pub raft: RaftNode,
    pub state: Arc<RwLock<State>>,
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
            CatalogRequest::Follow => Err(Status::invalid_argument("Follow is a stream call")),
        }
    }

    async fn stream(
        &self,
        _ctx: CallContext,
        req: CatalogRequest,
    ) -> Result<ItemStream<ReplicaItem>, Status> {
        if !matches!(req, CatalogRequest::Follow) {
            return Err(Status::invalid_argument("only Follow is a stream call"));
        }
        // Subscribe first, then copy: every entry after the copy is in the channel.
        let rx = self.raft.subscribe_applied();
        let copy = self.state.read().clone();
        let from = copy.index;
        let head = futures::stream::once(async move { Ok(ReplicaItem::State(Box::new(copy))) });
        let entries = futures::stream::unfold(rx, move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok((index, _)) if index <= from => continue,
                    Ok((index, cmd)) => {
                        let item = ReplicaItem::Entry {
                            index,
                            command: Box::new((*cmd).clone()),
                        };
                        return Some((Ok(item), rx));
                    }
                    // Too far behind: end the stream; the follower starts over from a copy.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        return Some((
                            Err(Status::unavailable(format!(
                                "follower fell {n} entries behind; resubscribe"
                            ))),
                            rx,
                        ))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(head.chain(entries).boxed())
    }
}
