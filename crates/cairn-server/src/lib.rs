//! The server side of Cairn: the catalog seam and its Raft implementation, the catalog RPC
//! protocol and its handler, and the leader's duties (session TTL timers, KV tombstone GC,
//! reconciliation of the LAN pool into the catalog), started when a server gains
//! leadership and stopped when it loses it.
//!
//! Nothing here knows about HTTP, DNS or the agent's local services: the agent
//! (`cairn-agent`) builds a [`ServerCatalog`] on a server, serves [`CatalogService`] on the
//! server RPC port, and runs [`leader::supervise`]; a client agent uses the same
//! [`protocol`] to reach a server.

mod acl;
pub mod autopilot;
pub mod bootstrap;
pub mod catalog;
pub mod coalesce;
pub mod leader;
pub mod operator;
pub mod protocol;
pub mod raft_members;
pub mod reconcile;
pub mod service;
pub mod sessions;
pub mod tombstones;

pub use catalog::{BoxFut, Catalog, CatalogError, ClusterStatus, ReadMode, ServerCatalog};
pub use leader::{supervise, Duties};
pub use operator::{OperatorRequest, OperatorResponse};
pub use protocol::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};
pub use service::CatalogService;
pub use sessions::SessionTimers;

/// Wall-clock milliseconds since the Unix epoch (stamped into commands that need time).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
