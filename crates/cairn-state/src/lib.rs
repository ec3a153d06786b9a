//! The replicated state machine: catalog, health, KV, sessions and ACLs.
//!
//! Every write to Cairn is a [`Command`] in the Raft log; [`State::apply`] turns it into
//! a new state and an [`Outcome`] deterministically. There is no clock, no randomness
//! and no I/O in here: the leader stamps wall-clock time into the commands that need it
//! (`now_ms`), and IDs (session UUIDs) are chosen before the command is proposed. That
//! makes every replica reach the same state and lets tests drive it directly.
//!
//! Reads are plain methods on [`State`] that also return the index a blocking query
//! should compare against (see [`index`] for the rules).

pub mod acl;
mod autopilot;
pub mod catalog;
mod command;
pub mod index;
mod kv;
mod restore;
mod session;
mod txn;

use std::collections::BTreeMap;

use cairn_types::{HealthCheck, KvEntry, Node, NodeService, Session};
use serde::{Deserialize, Serialize};

pub use acl::{
    AclBootstrap, AclLink, AclPolicy, AclRole, AclToken, NodeIdentity, ResolvedToken,
    ServiceIdentity,
};
pub use autopilot::AutopilotConfig;
pub use catalog::{aggregate, ServiceHealth};
pub use command::*;
pub use index::TableIndexes;

/// Everything registered on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node: Node,
    pub services: BTreeMap<String, NodeService>,
    pub checks: BTreeMap<String, HealthCheck>,
}

/// The whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Index of the last applied log entry.
    pub index: u64,
    /// Added to log indexes before they are stamped into the data. 0 until a snapshot is
    /// restored: the restored data keeps its indexes, and every later write must stamp
    /// higher ones even though this cluster's log may be shorter (see `restore`).
    #[serde(default)]
    pub index_offset: u64,
    /// How many snapshots were restored into this state: the leader restarts its session
    /// timers when it changes.
    #[serde(default)]
    pub(crate) restores: u64,
    pub(crate) nodes: BTreeMap<String, NodeRecord>,
    pub(crate) kv: BTreeMap<String, KvEntry>,
    /// Index at which a key was last deleted: keeps blocking indexes of a prefix
    /// monotonic after deletes.
    pub(crate) kv_tombstones: BTreeMap<String, u64>,
    /// What reaped tombstones leave behind, so prefix indexes stay monotonic without
    /// them: see [`kv::ReapedFloors`].
    #[serde(default)]
    pub(crate) kv_reaped: kv::ReapedFloors,
    pub(crate) sessions: BTreeMap<String, Session>,
    /// Key -> wall-clock ms until which it cannot be acquired (session lock-delay).
    pub(crate) lock_delays: BTreeMap<String, u64>,
    pub(crate) tables: TableIndexes,
    /// Service name -> last index at which any instance, check or hosting node changed.
    pub(crate) service_index: BTreeMap<String, u64>,
    /// Lower-cased service name -> (node, service ID) of every instance: derived from
    /// `nodes`, kept in step by every write so lookups by name need no scan.
    pub(crate) by_name: BTreeMap<String, std::collections::BTreeSet<(String, String)>>,
    /// Node name -> index of the last catalog write addressed to that node (even one
    /// that changed nothing): lets an agent notice writes to its own node cheaply.
    pub(crate) node_writes: BTreeMap<String, u64>,
    /// Autopilot's settings, once an operator stored some (see [`AutopilotConfig`]).
    #[serde(default)]
    pub(crate) autopilot: Option<AutopilotConfig>,
    /// ACL tokens, policies and roles (see [`acl`]).
    #[serde(default)]
    pub(crate) acl: acl::AclTables,
}

impl State {
    /// Creates an empty state.
    pub fn new() -> Self {
        State::default()
    }

    /// Applies one committed command at log `index`.
    pub fn apply(&mut self, log_index: u64, cmd: &Command) -> Outcome {
        if log_index > self.index {
            self.index = log_index;
        }
        // The index stamped into the data (CreateIndex, ModifyIndex, table indexes):
        // the log index, shifted past a restored snapshot's indexes (see `restore`).
        let index = log_index + self.index_offset;
        match cmd {
            Command::Noop => Outcome::None,
            Command::Register(r) => {
                self.node_writes.insert(r.node.node.clone(), index);
                self.register(index, r)
            }
            Command::Deregister(d) => {
                self.node_writes.insert(d.node.clone(), index);
                self.deregister(index, d, d.now_ms)
            }
            Command::UpdateCheck(u) => {
                self.node_writes.insert(u.node.clone(), index);
                self.update_check(index, u)
            }
            Command::Kv(op) => self.kv_op(index, op),
            Command::SessionCreate { session } => self.session_create(index, session),
            Command::SessionDestroy { id, now_ms } => {
                Outcome::Bool(self.session_destroy(index, id, *now_ms))
            }
            Command::Txn(t) => self.txn(index, t),
            Command::KvReap { upto } => {
                self.kv_reap(*upto);
                Outcome::None
            }
            Command::Restore { state } => {
                self.restore_at(log_index, (**state).clone());
                Outcome::None
            }
            Command::AutopilotSetConfig { config, cas } => self.autopilot_set(index, config, *cas),
            Command::AclBootstrap(b) => self.acl_bootstrap(index, b),
            Command::AclTokenSet { token, create } => self.acl_token_set(index, token, *create),
            Command::AclTokenDelete { accessor_id } => self.acl_token_delete(index, accessor_id),
            Command::AclTokenReap { now_ms } => self.acl_token_reap(index, *now_ms),
            Command::AclPolicySet { policy, create } => self.acl_policy_set(index, policy, *create),
            Command::AclPolicyDelete { id } => self.acl_policy_delete(index, id),
            Command::AclRoleSet { role, create } => self.acl_role_set(index, role, *create),
            Command::AclRoleDelete { id } => self.acl_role_delete(index, id),
        }
    }

    /// Restores the state from a snapshot, keeping `index` monotonic.
    pub fn restore(&mut self, other: State) {
        *self = other;
    }

    /// How many snapshot restores this state has seen (see [`Command::Restore`]).
    pub fn restore_count(&self) -> u64 {
        self.restores
    }

    /// Index of the last catalog write addressed to `node` (0 if none).
    pub fn node_write_index(&self, node: &str) -> u64 {
        self.node_writes.get(node).copied().unwrap_or(0)
    }

    /// Index of the last applied entry as stamped into the data (the log index plus
    /// [`State::index_offset`]), never below 1.
    pub fn last_index(&self) -> u64 {
        (self.index + self.index_offset).max(1)
    }
}

#[cfg(test)]
mod tests;
