//! [`RaftService`]: the receiving end of `cairn.raft.v2`. It hands each message to the local
//! openraft instance and reassembles snapshot chunks (see [`crate::snapshot_transfer`]) before
//! installing them.

use cairn_rpc::{CallContext, Service, Status};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::SnapshotResponse;
use parking_lot::Mutex;

use crate::node::RaftNode;
use crate::protocol::{RaftRequest, RaftResponse, RaftRpc, MAX_SNAPSHOT_BYTES};
use crate::snapshot_transfer::Assembler;

/// Serves Raft messages for one [`RaftNode`]. Register it with [`RaftNode::route`].
pub struct RaftService {
    node: RaftNode,
    /// The snapshot transfer in progress.
    receiving: Mutex<Assembler>,
}

fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is not running: {e}"))
}

impl RaftService {
    pub(crate) fn new(node: RaftNode) -> Self {
        RaftService {
            node,
            receiving: Mutex::new(Assembler::new(MAX_SNAPSHOT_BYTES)),
        }
    }
}

impl Service<RaftRpc> for RaftService {
    async fn unary(&self, _ctx: CallContext, req: RaftRequest) -> Result<RaftResponse, Status> {
        let raft = self.node.raft();
        match req {
            RaftRequest::AppendEntries(rpc) => {
                let resp = raft.append_entries(*rpc).await.map_err(stopped)?;
                if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
                    self.node.record_leader_contact();
                }
                Ok(RaftResponse::AppendEntries(resp))
            }
            RaftRequest::Vote(rpc) => {
                Ok(RaftResponse::Vote(raft.vote(rpc).await.map_err(stopped)?))
            }
            RaftRequest::PreVote(rpc) => Ok(RaftResponse::Vote(
                raft.pre_vote(rpc).await.map_err(stopped)?,
            )),
            RaftRequest::TransferLeader(req) => Ok(RaftResponse::TransferLeader(
                raft.handle_transfer_leader(req).await.map_err(stopped)?,
            )),
            RaftRequest::SnapshotChunk(chunk) => {
                // A deposed leader's transfer is answered at once with the newer vote (which
                // tells it to step down) instead of being buffered.
                let mine = raft.metrics().borrow_watched().vote;
                if chunk.vote < mine {
                    return Ok(RaftResponse::Snapshot(SnapshotResponse::new(mine)));
                }
                let complete = self
                    .receiving
                    .lock()
                    .accept(*chunk)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                match complete {
                    None => Ok(RaftResponse::ChunkStored),
                    Some((vote, snapshot)) => Ok(RaftResponse::Snapshot(
                        raft.install_full_snapshot(vote, snapshot)
                            .await
                            .map_err(stopped)?,
                    )),
                }
            }
        }
    }
}
