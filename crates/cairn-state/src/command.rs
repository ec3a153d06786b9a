//! The commands of the replicated log and their outcomes.

use cairn_types::{HealthCheck, Node, NodeService, Session};
use serde::{Deserialize, Serialize};

/// A replicated write.
// Commands live briefly (proposed once, applied once); boxing the large variants would
// only add allocations on the write path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A blank entry (no state change).
    Noop,
    /// Catalog register: upsert a node, optionally a service and checks.
    Register(Registration),
    /// Catalog deregister: a node, or one service or check of it.
    Deregister(Deregistration),
    /// Status/output change of an existing check (agent check runners, TTL endpoints).
    UpdateCheck(CheckUpdate),
    /// A KV operation.
    Kv(KvOp),
    /// Create a session (its ID is chosen by the proposer).
    SessionCreate { session: Session },
    /// Destroy (invalidate) a session, releasing or deleting its locks.
    SessionDestroy { id: String, now_ms: u64 },
    /// An atomic transaction of KV operations.
    Txn(TxnRequest),
    /// Forget KV tombstones (deletion markers) created at or below `upto`: the leader's
    /// tombstone GC, once they are older than the tombstone TTL.
    KvReap { upto: u64 },
    /// Replace the whole state with a snapshot's (`PUT /v1/snapshot`): one entry, so
    /// every server switches at the same index and no reader sees half of it.
    Restore { state: Box<crate::State> },
    /// Store autopilot's settings; with `cas`, only if the stored ones were last modified
    /// at that index (0: none stored yet). Outcome `Bool`.
    AutopilotSetConfig {
        config: crate::AutopilotConfig,
        cas: Option<u64>,
    },
    /// `PUT /v1/acl/bootstrap`, or the leader installing `acl.tokens.initial_management`:
    /// creates the built-in policy and anonymous token, then the management token.
    /// Outcome `AclToken`, or `Error(AclBootstrapDone)` after the first bootstrap.
    AclBootstrap(crate::AclBootstrap),
    /// Create (`create`: the AccessorID must be new) or update (it must exist) a token.
    /// Outcome `AclToken` (as reads show it).
    AclTokenSet {
        token: crate::AclToken,
        create: bool,
    },
    /// Delete a token. Outcome `Bool` (whether it existed).
    AclTokenDelete { accessor_id: String },
    /// Forget every token whose expiration time is at or before `now_ms` (the leader's
    /// reaper). Outcome `Bool` (whether any was removed).
    AclTokenReap { now_ms: u64 },
    /// Create or update a policy. Outcome `AclPolicy`.
    AclPolicySet {
        policy: crate::AclPolicy,
        create: bool,
    },
    /// Delete a policy (links to it dangle and are ignored). Outcome `Bool`.
    AclPolicyDelete { id: String },
    /// Create or update a role. Outcome `AclRole`.
    AclRoleSet { role: crate::AclRole, create: bool },
    /// Delete a role. Outcome `Bool`.
    AclRoleDelete { id: String },
}

/// Body of a catalog registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub node: Node,
    pub service: Option<NodeService>,
    pub checks: Vec<HealthCheck>,
    pub skip_node_update: bool,
    /// Leader wall-clock time: sessions invalidated by a critical check set lock-delays.
    pub now_ms: u64,
}

/// Body of a catalog deregistration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deregistration {
    pub node: String,
    pub service_id: Option<String>,
    pub check_id: Option<String>,
    pub now_ms: u64,
}

/// A check status change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckUpdate {
    pub node: String,
    pub check_id: String,
    pub status: String,
    pub output: String,
    pub now_ms: u64,
}

/// The KV verbs of `/v1/kv` and `/v1/txn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Delete,
    DeleteCas,
    DeleteTree,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
}

impl KvVerb {
    /// Parses a `/v1/txn` verb name.
    pub fn from_txn_name(s: &str) -> Option<KvVerb> {
        Some(match s {
            "set" => KvVerb::Set,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "delete" => KvVerb::Delete,
            "delete-cas" => KvVerb::DeleteCas,
            "delete-tree" => KvVerb::DeleteTree,
            "get" => KvVerb::Get,
            "get-or-empty" => KvVerb::GetOrEmpty,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            _ => return None,
        })
    }

    /// True for verbs that do not change state.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            KvVerb::Get
                | KvVerb::GetOrEmpty
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

/// One KV operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    /// `cas` / `delete-cas` / `check-index` index.
    pub index: u64,
    /// `lock` / `unlock` / `check-session` session.
    pub session: String,
    pub now_ms: u64,
}

impl KvOp {
    /// A KV operation with default fields.
    pub fn new(verb: KvVerb, key: impl Into<String>) -> Self {
        KvOp {
            verb,
            key: key.into(),
            value: Vec::new(),
            flags: 0,
            index: 0,
            session: String::new(),
            now_ms: 0,
        }
    }
}

/// A transaction: all operations apply, or none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub ops: Vec<KvOp>,
}

/// One failed operation of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Result of a transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TxnResult {
    /// Entries returned by each op (reads return the entry; writes the new entry
    /// without its value, as Consul does).
    pub results: Vec<cairn_types::KvEntry>,
    pub errors: Vec<TxnError>,
}

/// What applying a command produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    #[default]
    None,
    /// `true`/`false` of KV writes and session destroy.
    Bool(bool),
    /// A rejected write (unknown session, unknown service, ...). Maps to HTTP 4xx/5xx.
    Error(ApplyError),
    Txn(TxnResult),
    /// The token an ACL write stored, as reads show it.
    AclToken(Box<crate::AclToken>),
    /// The policy an ACL write stored.
    AclPolicy(Box<crate::AclPolicy>),
    /// The role an ACL write stored, as reads show it.
    AclRole(Box<crate::AclRole>),
}

/// Errors the state machine reports for writes it refuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid session {0:?}")]
    InvalidSession(String),
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("unknown check {0:?}")]
    UnknownCheck(String),
    #[error("check {0:?} is in critical state")]
    CriticalCheck(String),
    #[error("{0}")]
    Invalid(String),
    /// A second ACL bootstrap; carries the reset index (Consul's wording).
    #[error("ACL bootstrap no longer allowed (reset index: {0})")]
    AclBootstrapDone(u64),
    /// An ACL update of a token, policy or role that does not exist.
    #[error("{0}")]
    AclNotFound(String),
}
