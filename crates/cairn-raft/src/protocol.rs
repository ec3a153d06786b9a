//! The server-to-server Raft protocol, `cairn.raft.v1`, carried by cairn-rpc on the server
//! RPC port next to the other server protocols.
//!
//! Every message is one unary call: AppendEntries, Vote, PreVote, and one chunk of a snapshot
//! transfer. Messages are postcard-encoded, as the log on disk is: a log entry's command goes
//! through [`crate::types::Request`]'s binary form (KV and transaction commands natively,
//! every other command as JSON inside, because some of their serde attributes need a
//! self-describing format). Replicating an entry therefore costs no JSON for the commands
//! that dominate a write load, and a 100-byte KV value takes about 100 bytes on the wire.
//!
//! Sizes are bounded on both ends: an AppendEntries call is at most [`MAX_MESSAGE_BYTES`]
//! (the sender ships a prefix of a bigger batch and reports partial success, see
//! [`crate::network`]), and a snapshot travels in chunks of at most [`SNAPSHOT_CHUNK_BYTES`],
//! reassembled by the receiver up to [`MAX_SNAPSHOT_BYTES`].

use cairn_rpc::{PostcardCodec, Protocol};
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

/// Snapshot bytes per chunk (well below [`MAX_MESSAGE_BYTES`]).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Largest snapshot a server reassembles from chunks.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// The protocol marker.
pub struct RaftRpc;

impl Protocol for RaftRpc {
    /// v2: postcard messages (v1 was JSON); a v1 and a v2 server refuse each other's calls.
    const NAME: &'static str = "cairn.raft.v2";
    type Codec = PostcardCodec;
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
    /// The bytes (a snapshot is JSON text; its chunks are cut at character boundaries).
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_rpc::Codec;
    use cairn_state::{Command, KvOp, KvVerb, Registration};
    use cairn_types::HealthCheck;
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderId;
    use openraft::{BasicNode, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    use crate::types::Request;

    type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;
    type Vote = VoteOf<TypeConfig>;

    fn lid(i: u64) -> openraft::alias::LogIdOf<TypeConfig> {
        LogId::new(openraft::vote::leader_id_adv::LeaderId::new(3, 1), i)
    }

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(v: &T) {
        let bytes = <PostcardCodec as Codec>::encode(v).unwrap();
        let back: T = <PostcardCodec as Codec>::decode(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{v:?}"));
    }

    /// Every message of the protocol, with every kind of log entry, comes back the same
    /// from postcard; a KV write's value travels as its bytes.
    #[test]
    fn every_message_round_trips_through_postcard() {
        let mut kv = KvOp::new(KvVerb::Set, "app/config");
        kv.value = vec![b'v'; 100];
        let register = Command::Register(Registration {
            checks: vec![HealthCheck {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let nodes: BTreeMap<u64, BasicNode> = [(1, BasicNode::new("127.0.0.1:8300"))].into();
        let membership = Membership::new(vec![BTreeSet::from([1])], nodes).unwrap();
        let entries = vec![
            Entry::new_blank(lid(1)),
            Entry::new_normal(lid(2), Request(Command::Kv(kv))),
            Entry::new_normal(lid(3), Request(register)),
            Entry::new_membership(lid(4), membership.clone()),
        ];
        let vote = Vote::new(3, 1);
        let append = AppendEntriesRequest {
            vote,
            prev_log_id: Some(lid(0)),
            entries: entries.clone(),
            leader_commit: Some(lid(1)),
        };
        let one_kv = AppendEntriesRequest {
            entries: vec![entries[1].clone()],
            ..append.clone()
        };
        let kv_bytes =
            <PostcardCodec as Codec>::encode(&RaftRequest::AppendEntries(Box::new(one_kv)))
                .unwrap();
        assert!(kv_bytes.len() < 100 + 64, "{} bytes", kv_bytes.len());
        let requests = [
            RaftRequest::AppendEntries(Box::new(append)),
            RaftRequest::Vote(VoteRequest::new(vote, Some(lid(4)))),
            RaftRequest::PreVote(VoteRequest::new(vote, None)),
            RaftRequest::SnapshotChunk(Box::new(SnapshotChunk {
                vote,
                meta: openraft::SnapshotMeta {
                    last_log_id: Some(lid(4)),
                    last_membership: openraft::StoredMembership::new(Some(lid(4)), membership),
                },
                offset: 7,
                data: "{\"kv\":[]}".into(),
                done: true,
            })),
            RaftRequest::TransferLeader(TransferLeaderRequest::new(vote, 2, Some(lid(4)))),
        ];
        for r in &requests {
            round_trip(r);
        }
        let responses = [
            RaftResponse::AppendEntries(AppendEntriesResponse::Success),
            RaftResponse::AppendEntries(AppendEntriesResponse::PartialSuccess(Some(lid(2)))),
            RaftResponse::AppendEntries(AppendEntriesResponse::Conflict),
            RaftResponse::AppendEntries(AppendEntriesResponse::HigherVote(Vote::new(4, 2))),
            RaftResponse::Vote(VoteResponse::new(vote, Some(lid(4)), true)),
            RaftResponse::ChunkStored,
            RaftResponse::Snapshot(SnapshotResponse::new(vote)),
            RaftResponse::TransferLeader(Ok(())),
        ];
        for r in &responses {
            round_trip(r);
        }
    }
}
