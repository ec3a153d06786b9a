//! Cairn's DNS interface: Consul's `.consul` names over UDP and TCP.
//!
//! - [`catalog`]: the [`Catalog`] trait the agent implements, and [`DnsConfig`].
//! - [`resolver`]: the sans-IO [`Resolver`]: packet bytes in, [`Answer`] out.
//! - [`memory`]: [`MemoryCatalog`], a catalog over vectors (tests, fuzzing).
//! - [`server`]: [`serve`] / [`serve_sockets`], the UDP and TCP listeners
//!   (UDP on N `SO_REUSEPORT` sockets from [`bind_udp_reuseport`]), and
//!   recursor forwarding.
//! - `cache`, `wire` (private): the answer cache keyed by question and valid
//!   for one [`Catalog::generation`], and the fast path's direct encoder.
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

mod cache;
pub mod catalog;
pub mod memory;
mod name;
pub mod resolver;
mod rng;
pub mod server;
mod wire;

pub use catalog::{Catalog, DnsConfig, FixedGeneration, Health, Instance, NodeInfo};
pub use memory::MemoryCatalog;
pub use resolver::{Answer, Resolver, SerialClock, Transport};
pub use rng::ShuffleRng;
pub use server::{
    bind_udp_reuseport, forward, serve, serve_sockets, serve_with, udp_socket_count, ServerLimits,
};
