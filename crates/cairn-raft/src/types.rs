//! The openraft type configuration for Cairn.
//!
//! openraft is generic over a [`RaftTypeConfig`](openraft::RaftTypeConfig); this module pins it
//! once: log payloads are [`cairn_state::Command`] (wrapped in [`Request`], because openraft
//! requires `Display` on log payloads and `Command` is defined in another crate), responses
//! [`cairn_state::Outcome`], nodes are `u64` ids with a [`BasicNode`] carrying the advertised
//! RPC address.

use std::fmt;

use cairn_state::{Command, KvOp, TxnRequest};
use openraft::BasicNode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A log payload: one [`cairn_state::Command`].
///
/// In human-readable formats (JSON: the Raft RPCs, debugging) it is serialized exactly as
/// the command itself. In binary formats (postcard: the Raft log on disk) the frequent,
/// plain commands (KV writes and transactions, no-ops) are written natively and every other
/// command as its JSON inside: some of them carry types a non-self-describing format
/// cannot read back (`skip_serializing_if` fields, free-form JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Request(pub Command);

/// The binary form of a [`Request`] being written (variant order is the format).
#[derive(Serialize)]
enum BinRef<'a> {
    Kv(&'a KvOp),
    Txn(&'a TxnRequest),
    Noop,
    Json(Vec<u8>),
}

/// The binary form of a [`Request`] being read (the same variants as [`BinRef`]).
#[derive(Deserialize)]
enum BinOwned {
    Kv(KvOp),
    Txn(TxnRequest),
    Noop,
    Json(Vec<u8>),
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        let bin = match &self.0 {
            Command::Kv(op) => BinRef::Kv(op),
            Command::Txn(t) => BinRef::Txn(t),
            Command::Noop => BinRef::Noop,
            other => BinRef::Json(serde_json::to_vec(other).map_err(serde::ser::Error::custom)?),
        };
        bin.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return Command::deserialize(deserializer).map(Request);
        }
        Ok(Request(match BinOwned::deserialize(deserializer)? {
            BinOwned::Kv(op) => Command::Kv(op),
            BinOwned::Txn(t) => Command::Txn(t),
            BinOwned::Noop => Command::Noop,
            BinOwned::Json(bytes) => {
                serde_json::from_slice(&bytes).map_err(serde::de::Error::custom)?
            }
        }))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_state::{KvVerb, Registration};
    use cairn_types::HealthCheck;
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderId;
    use openraft::{EntryPayload, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;

    fn lid(i: u64) -> openraft::alias::LogIdOf<TypeConfig> {
        LogId::new(openraft::vote::leader_id_adv::LeaderId::new(2, 1), i)
    }

    /// Every kind of entry the log holds comes back equal from the binary form the log
    /// store writes, and from JSON; commands that postcard cannot carry natively (a check
    /// with empty optional fields) survive through their JSON fallback.
    #[test]
    fn entries_round_trip_through_postcard_and_json() {
        let mut kv = KvOp::new(KvVerb::Set, "k/ey");
        kv.value = (0..=255).collect();
        kv.flags = 7;
        let register = Command::Register(Registration {
            checks: vec![HealthCheck {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let commands = vec![
            Command::Noop,
            Command::Kv(kv.clone()),
            Command::Txn(TxnRequest {
                ops: vec![kv.clone(), KvOp::new(KvVerb::Delete, "x")],
            }),
            register,
            Command::KvReap { upto: 9 },
            Command::SessionDestroy {
                id: "s".into(),
                now_ms: 3,
            },
        ];
        let mut entries: Vec<Entry> = commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| Entry::new_normal(lid(i as u64), Request(c)))
            .collect();
        entries.push(Entry::new_blank(lid(10)));
        let nodes: BTreeMap<u64, BasicNode> = [
            (1, BasicNode::new("127.0.0.1:1")),
            (2, BasicNode::new("127.0.0.1:2")),
        ]
        .into();
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap();
        entries.push(Entry::new_membership(lid(11), membership));
        for e in &entries {
            let bin = postcard::to_stdvec(e).unwrap();
            let back: Entry = postcard::from_bytes(&bin).unwrap();
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
            if let (EntryPayload::Normal(a), EntryPayload::Normal(b)) = (&back.payload, &e.payload)
            {
                assert_eq!(a, b);
            }
            let json = serde_json::to_vec(e).unwrap();
            let back: Entry = serde_json::from_slice(&json).unwrap();
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
        // A KV write is compact: its value's bytes are written as they are.
        let kv_entry = postcard::to_stdvec(&entries[1]).unwrap();
        assert!(kv_entry.len() < 256 + 64, "{} bytes", kv_entry.len());
    }
}
