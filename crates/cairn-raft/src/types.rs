//! The openraft type configuration for Cairn.
//!
//! openraft is generic over a [`RaftTypeConfig`](openraft::RaftTypeConfig); this module pins it
//! once: log payloads are [`cairn_state::Command`] (wrapped in [`Request`], because openraft
//! requires `Display` on log payloads and `Command` is defined in another crate), responses
//! [`cairn_state::Outcome`], nodes are `u64` ids with a [`BasicNode`] carrying the advertised
//! RPC address.

use std::fmt;

use openraft::BasicNode;
use serde::{Deserialize, Serialize};

/// A log payload: one [`cairn_state::Command`]. Serialized exactly as the command itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Request(pub cairn_state::Command);

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Commands can be large (KV values); log a bounded rendering.
        let s = format!("{:?}", self.0);
        if s.len() > 128 {
            let cut = (0..=128)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            write!(f, "{}...", &s[..cut])
        } else {
            f.write_str(&s)
        }
    }
}

openraft::declare_raft_types!(
    /// Cairn's Raft type configuration.
    pub TypeConfig:
        D = Request,
        R = cairn_state::Outcome,
        NodeId = u64,
        Node = BasicNode,
);

/// Raft node id.
pub type NodeId = u64;
/// Node info stored in the membership (the advertised RPC `addr`).
pub type Node = BasicNode;
/// Snapshot bytes exchanged between the state machine and the network.
pub type SnapshotData = Vec<u8>;
