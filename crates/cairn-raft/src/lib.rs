//! Cairn's consensus layer: openraft wired to Cairn's state machine and storage.
//!
//! Everything openraft-specific lives behind this crate so the rest of the workspace only sees
//! [`RaftNode`]: start a server, write a [`cairn_state::Command`], ask who leads. Modules:
//!
//! - [`types`]: the openraft type configuration ([`TypeConfig`]);
//! - [`state_machine`]: the adapter that applies committed entries to the shared
//!   [`cairn_state::State`] and builds/installs snapshots;
//! - [`network`]: server-to-server RPC (single-server for now: every peer is unreachable);
//! - [`node`]: the [`RaftNode`] facade used by the agent.

pub mod network;
pub mod node;
pub mod state_machine;
pub mod types;

pub use node::{log_path, snapshot_dir, RaftNode, RaftOptions, WriteError};
pub use state_machine::{AppliedEntry, CairnStateMachine, APPLIED_ENTRIES_BUFFER};
pub use types::TypeConfig;
