//! The seam between the runtime and the network: one datagram trait with
//! a UDP implementation for production and an in-memory one (seeded loss,
//! delay and partitions) for tests. Both pass `tests/transport_contract.rs`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

pub mod memory;
pub mod udp;

pub use memory::{LinkRules, MemoryNetwork, MemoryTransport, NetworkModel};
pub use udp::UdpTransport;

/// Largest datagram a transport must carry.
pub const MAX_DATAGRAM: usize = 65_507;

/// Sends and receives datagrams. Delivery is best-effort (datagrams may be
/// lost, delayed or reordered); a received datagram is never truncated
/// silently below the buffer's size.
pub trait Transport: Send + Sync + 'static {
    /// The address this transport receives on.
    fn local_addr(&self) -> SocketAddr;

    /// Sends one datagram (errors are local failures, not non-delivery).
    fn send_to(&self, to: SocketAddr, packet: &[u8])
        -> impl Future<Output = io::Result<()>> + Send;

    /// Waits for the next datagram; returns its length and sender. Must be
    /// cancel-safe (the runtime uses it in `select!`).
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
}
