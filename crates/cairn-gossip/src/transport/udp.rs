//! UDP transport: a tokio socket bound to the gossip address.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::Transport;

/// Gossip over a UDP socket.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
}

impl UdpTransport {
    /// Binds `addr` (port 0 picks an ephemeral port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        Ok(Self { socket, local })
    }
}

impl Transport for UdpTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn send_to(&self, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
        self.socket.send_to(packet, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }
}
