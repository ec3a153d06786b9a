//! [`RaftService`]: the receiving end of `cairn.raft.v1`. It hands each message to the local
//! openraft instance and reassembles snapshot chunks before installing them.

use cairn_rpc::{CallContext, Service, Status};
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::SnapshotResponse;
use parking_lot::Mutex;

use crate::node::RaftNode;
use crate::protocol::{RaftRequest, RaftResponse, RaftRpc, SnapshotChunk, MAX_SNAPSHOT_BYTES};
use crate::types::{SnapshotData, TypeConfig};

type Vote = VoteOf<TypeConfig>;
type Snapshot = SnapshotOf<TypeConfig, SnapshotData>;

/// Serves Raft messages for one [`RaftNode`]. Register it with [`RaftNode::route`].
pub struct RaftService {
    node: RaftNode,
    /// The snapshot transfer in progress (one at a time: a new leader's transfer replaces an
    /// older one).
    receiving: Mutex<Option<Partial>>,
}

/// A snapshot being received.
struct Partial {
    vote: Vote,
    meta: SnapshotMetaOf<TypeConfig>,
    bytes: Vec<u8>,
}

fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is not running: {e}"))
}

impl RaftService {
    pub(crate) fn new(node: RaftNode) -> Self {
        RaftService {
            node,
            receiving: Mutex::new(None),
        }
    }

    /// Adds a chunk to the transfer; returns the whole snapshot once `done`.
    fn receive(&self, chunk: SnapshotChunk) -> Result<Option<(Vote, Snapshot)>, Status> {
        let mut receiving = self.receiving.lock();
        if chunk.offset == 0 {
            *receiving = Some(Partial {
                vote: chunk.vote,
                meta: chunk.meta.clone(),
                bytes: Vec::new(),
            });
        }
        let Some(p) = receiving.as_mut() else {
            return Err(Status::invalid_argument(format!(
                "snapshot chunk at offset {} without a transfer in progress",
                chunk.offset
            )));
        };
        if p.vote != chunk.vote || p.meta != chunk.meta || p.bytes.len() as u64 != chunk.offset {
            let expected = p.bytes.len();
            *receiving = None;
            return Err(Status::invalid_argument(format!(
                "snapshot chunk out of order (offset {}, expected {expected} of the same \
                 transfer); restart the transfer",
                chunk.offset
            )));
        }
        if p.bytes.len() + chunk.data.len() > MAX_SNAPSHOT_BYTES {
            *receiving = None;
            return Err(Status::invalid_argument(format!(
                "snapshot larger than the limit of {MAX_SNAPSHOT_BYTES} bytes"
            )));
        }
        p.bytes.extend_from_slice(chunk.data.as_bytes());
        if !chunk.done {
            return Ok(None);
        }
        let Some(p) = receiving.take() else {
            return Ok(None);
        };
        Ok(Some((
            p.vote,
            Snapshot {
                meta: p.meta,
                snapshot: p.bytes,
            },
        )))
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
            RaftRequest::SnapshotChunk(chunk) => {
                // A deposed leader's transfer is answered at once with the newer vote (which
                // tells it to step down) instead of being buffered.
                let mine = raft.metrics().borrow_watched().vote;
                if chunk.vote < mine {
                    return Ok(RaftResponse::Snapshot(SnapshotResponse::new(mine)));
                }
                match self.receive(*chunk)? {
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
