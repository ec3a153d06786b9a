//! The catalog RPC protocol (`cairn.catalog.v1`): forwarded writes, the consistency
//! barrier, and the stream of applied entries. JSON-encoded, because the state machine's
//! commands use serde attributes that a non-self-describing codec cannot carry.

use cairn_rpc::{JsonCodec, Protocol};
use cairn_state::{Command, Outcome, State};
use serde::{Deserialize, Serialize};

use crate::catalog::ReadMode;

/// The protocol marker.
pub struct CatalogRpc;

impl Protocol for CatalogRpc {
    const NAME: &'static str = "cairn.catalog.v1";
    type Codec = JsonCodec;
    type Request = CatalogRequest;
    type Response = CatalogResponse;
    type Item = ReplicaItem;
}

/// What a client asks of a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogRequest {
    /// Replicate this command (unary).
    Write(Box<Command>),
    /// Confirm leadership as the mode says and answer the index everything committed so
    /// far is at: a reader waits until its replica reaches it (unary).
    Barrier(ReadMode),
    /// Stream a copy of the state, then every applied entry after it (stream). `node` is
    /// the follower's node name: when its stream breaks the server hints the LAN pool to
    /// probe that node at once.
    Follow { node: String },
    /// A session was renewed through this client: restart its TTL on the leader (unary).
    RenewSession(String),
    /// A request a server forwards to the one it believes leads: handled there, never
    /// forwarded again (a stale belief during an election gets `NotLeader`, not a loop).
    Forwarded(Box<CatalogRequest>),
}

/// A server's answer to a unary request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogResponse {
    /// The write's log index and outcome.
    Written { index: u64, outcome: Outcome },
    /// The index a replica must reach to be consistent with the leader now.
    Index(u64),
    /// Done, nothing to report.
    Done,
}

/// One item of the `Follow` stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReplicaItem {
    /// The whole state at `state.index`; replaces the replica's.
    State(Box<State>),
    /// A command applied at `index` (always above the copy's index, in order).
    Entry { index: u64, command: Box<Command> },
    /// Who leads now (RPC address) and the voters, sent at the start and on every change.
    /// Also sent as a heartbeat when nothing else was sent for a while, so that a
    /// follower knows how fresh its copy is.
    Leader {
        leader: Option<String>,
        peers: Vec<String>,
        /// Milliseconds since the sending server last heard from the leader (0 on the
        /// leader itself).
        #[serde(default)]
        last_contact_ms: u64,
    },
}
