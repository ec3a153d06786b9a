//! The server-to-server Raft protocol, `cairn.raft.v1`, carried by cairn-rpc on the server
//! RPC port next to the other server protocols.
//!
//! Every message is one unary call: AppendEntries, Vote, PreVote, and one chunk of a snapshot
//! transfer. Log entries carry state-machine commands, whose serde attributes need a
//! self-describing format, so the protocol is JSON-encoded (as the catalog protocol is).
//!
//! Sizes are bounded on both ends: an AppendEntries call is at most [`MAX_MESSAGE_BYTES`]
//! (the sender ships a prefix of a bigger batch and reports partial success, see
//! [`crate::network`]), and a snapshot travels in chunks of at most [`SNAPSHOT_CHUNK_BYTES`],
//! reassembled by the receiver up to [`MAX_SNAPSHOT_BYTES`].

use cairn_rpc::{JsonCodec, Protocol};
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::types::TypeConfig;

/// Largest Raft message either end sends or accepts: the server port's default request limit,
/// so the Raft service fits on a server configured with defaults.
pub const MAX_MESSAGE_BYTES: usize = cairn_rpc::DEFAULT_MAX_REQUEST_BYTES;

/// Snapshot bytes per chunk (the JSON escaping of a chunk stays well below
/// [`MAX_MESSAGE_BYTES`]).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Largest snapshot a server reassembles from chunks.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// The protocol marker.
pub struct RaftRpc;

impl Protocol for RaftRpc {
    const NAME: &'static str = "cairn.raft.v1";
    type Codec = JsonCodec;
    type Request = RaftRequest;
    type Response = RaftResponse;
    /// Raft has no stream calls.
    type Item = ();
}

/// One Raft message from a leader or a candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RaftRequest {
    /// Replicate entries (or a heartbeat, with none).
    AppendEntries(Box<AppendEntriesRequest<TypeConfig>>),
    /// Ask for a vote.
    Vote(VoteRequest<TypeConfig>),
    /// Ask whether a vote would be granted (no state change on the receiver).
    PreVote(VoteRequest<TypeConfig>),
    /// One chunk of a snapshot.
    SnapshotChunk(Box<SnapshotChunk>),
    /// The leader hands over leadership: the named node should campaign at once.
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// A piece of a snapshot transfer. Chunks of one transfer share `vote` and `meta` and arrive
/// in order (`offset` = bytes sent before); the one with `done` completes the transfer and
/// installs the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The sending leader's vote.
    pub vote: VoteOf<TypeConfig>,
    /// What the snapshot covers.
    pub meta: SnapshotMetaOf<TypeConfig>,
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The bytes (a snapshot is JSON text, so its chunks, cut at character boundaries, are
    /// strings; this keeps JSON's escaping overhead small).
    pub data: String,
    /// This is the last chunk.
    pub done: bool,
}

/// The answer to a [`RaftRequest`] (same variant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RaftResponse {
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    /// A chunk was stored; the transfer is not complete yet.
    ChunkStored,
    /// The last chunk was received and the snapshot installed (or refused by vote).
    Snapshot(SnapshotResponse<TypeConfig>),
    /// Whether the receiver took the hand-over.
    TransferLeader(TransferLeaderResponse<TypeConfig>),
}

impl RaftResponse {
    /// The variant's name, for errors about unexpected answers.
    pub fn kind(&self) -> &'static str {
        match self {
            RaftResponse::AppendEntries(_) => "AppendEntries",
            RaftResponse::Vote(_) => "Vote",
            RaftResponse::ChunkStored => "ChunkStored",
            RaftResponse::Snapshot(_) => "Snapshot",
            RaftResponse::TransferLeader(_) => "TransferLeader",
        }
    }
}
