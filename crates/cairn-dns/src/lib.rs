//! Cairn's DNS interface: Consul's `.consul` names over UDP and TCP.
//!
//! - [`catalog`]: the [`Catalog`] trait the agent implements, and [`DnsConfig`].
//! - [`resolver`]: the sans-IO [`Resolver`]: packet bytes in, [`Answer`] out.
//! - [`memory`]: [`MemoryCatalog`], a catalog over vectors (tests, fuzzing).
//! - [`server`]: [`serve`], the UDP and TCP listeners, and recursor forwarding.
//!
//! # Staleness
//!
//! Answers come from the agent's local in-memory view of the replicated
//! catalog: a query makes no round trip to the leader (as Consul's DNS with
//! `allow_stale`). An answer is therefore at most as stale as this agent's
//! replication lag: what the leader has committed but this agent has not
//! applied yet is not visible. In return DNS stays fast and keeps answering
//! while the servers are briefly unreachable.
//!
//! # Differences from Consul, on purpose
//!
//! - TC is set on trimmed UDP answers only with `enable_truncate` (Consul's
//!   default false is kept); sizes are measured on the compressed message.
//! - A service or node address that is a hostname, not an IP: SRV answers
//!   point at the hostname (no glue); A/AAAA answers leave it out (Consul
//!   answers a CNAME).
//! - Prepared queries (`.query.`), Connect, ingress, virtual IPs, peering and
//!   other datacenters are not served: another datacenter gives NXDOMAIN.

pub mod catalog;
pub mod memory;
mod name;
pub mod resolver;
mod rng;
pub mod server;

pub use catalog::{Catalog, DnsConfig, Health, Instance, NodeInfo};
pub use memory::MemoryCatalog;
pub use resolver::{Answer, Resolver, SerialClock, Transport};
pub use rng::ShuffleRng;
pub use server::{forward, serve, serve_with, ServerLimits};
