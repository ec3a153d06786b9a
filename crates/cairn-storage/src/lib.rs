//! Durable and in-memory Raft log storage for Cairn.
//!
//! Raft needs three things persisted before it may acknowledge anything: the log entries,
//! the vote (term + who we voted for) and, optionally, the committed log id. This crate
//! provides two implementations of openraft's [`RaftLogStorage`](openraft::storage::RaftLogStorage)
//! that are generic over any [`RaftTypeConfig`](openraft::RaftTypeConfig) whose types are serde
//! serializable (which openraft guarantees when its `serde` feature is on):
//!
//! - [`WalLogStore`]: the production store, append-only segment files in one directory
//!   (see [`wal`]); every write is synced before openraft is told the I/O is flushed.
//! - [`MemLogStore`]: the `-dev` store, a `BTreeMap` behind a mutex; nothing survives a restart.
//!
//! State-machine snapshots are not stored in the log: they are whole files written atomically with
//! the helpers in [`snapshot_file`].

mod codec;
mod hold;
pub mod mem_store;
mod recent;
pub mod snapshot_file;
mod stats;
pub mod wal;

pub use hold::WriteHold;
pub use mem_store::MemLogStore;
pub use snapshot_file::{prune_snapshots, read_latest_snapshot, write_snapshot_file};
pub use stats::syncs;
pub use wal::{WalLogStore, WalOptions};
