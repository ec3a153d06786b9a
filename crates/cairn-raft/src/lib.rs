//! Cairn's consensus layer: openraft wired to Cairn's state machine and storage.
//!
//! Everything openraft-specific lives behind this crate so the rest of the workspace only sees
//! [`RaftNode`]: start a server, write a [`cairn_state::Command`], ask who leads. Modules:
//!
//! - [`types`]: the openraft type configuration ([`TypeConfig`]);
//! - [`state_machine`]: the adapter that applies committed entries to the shared
//!   [`cairn_state::State`] and builds/installs snapshots;
//! - [`protocol`]: the server-to-server protocol `cairn.raft.v2` on cairn-rpc;
//! - [`network`]: openraft's network over a cairn-rpc client (TCP or in-process);
//! - [`service`]: the receiving end, feeding the local Raft;
//! - [`snapshot_policy`]: when to snapshot and how much log to keep behind it;
//! - [`snapshot_transfer`]: snapshots cut into chunks and put back together;
//! - [`node`]: the [`RaftNode`] facade used by the agent;
//! - [`cluster`]: multi-server mode (start with a transport, initialize, change members);
//! - [`admin`]: operator actions on the leader (remove a member, transfer leadership);
//! - [`recovery`]: `raft/peers.json`, the manual recovery of a cluster that lost quorum.
//!
//! See docs/raft.md.

pub mod admin;
pub mod cluster;
pub mod network;
pub mod node;
pub mod protocol;
pub mod recovery;
pub mod service;
pub mod snapshot_policy;
pub mod snapshot_transfer;
pub mod state_machine;
pub mod types;

pub use admin::{AdminError, ClusterFacts, MemberFacts};
pub use cluster::{ClusterOptions, InitError};
pub use node::{
    check_log_format, legacy_log_path, log_path, open_log_store, snapshot_dir, RaftNode,
    RaftOptions, WriteError,
};
pub use protocol::RaftRpc;
pub use service::RaftService;
pub use snapshot_policy::SnapshotSettings;
pub use state_machine::{AppliedEntry, CairnStateMachine, APPLIED_ENTRIES_BUFFER};
pub use types::TypeConfig;
