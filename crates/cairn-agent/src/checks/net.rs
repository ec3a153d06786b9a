//! TCP and UDP checks.
//!
//! TCP: a connection to `host:port` (every resolved address, IPv4 and IPv6, in turn)
//! within the timeout is passing, anything else critical. UDP, as Consul: a datagram
//! (`data`) is sent and one byte of answer awaited; an answer or silence until the
//! timeout is passing (UDP services need not answer), an error, typically the ICMP
//! "port unreachable" surfacing as "connection refused", is critical.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{lookup_host, TcpStream, UdpSocket};

use super::Outcome;

/// A configured TCP check.
#[derive(Debug)]
pub(crate) struct TcpProbe {
    pub(crate) addr: String,
    pub(crate) timeout: Duration,
}

impl TcpProbe {
    pub(crate) async fn run(&self) -> Outcome {
        match tokio::time::timeout(self.timeout, connect_not_self(&self.addr)).await {
            Ok(Ok(_stream)) => Outcome::passing(format!("TCP connect {}: Success", self.addr)),
            Ok(Err(e)) => Outcome::critical(format!("dial tcp {}: {}", self.addr, os_error(&e))),
            Err(_) => Outcome::critical(format!("dial tcp {}: i/o timeout", self.addr)),
        }
    }
}

/// A configured UDP check.
#[derive(Debug)]
pub(crate) struct UdpProbe {
    pub(crate) addr: String,
    pub(crate) timeout: Duration,
}

impl UdpProbe {
    pub(crate) async fn run(&self) -> Outcome {
        let success = || Outcome::passing(format!("UDP connect {}: Success", self.addr));
        let fail = |e: std::io::Error| {
            Outcome::critical(format!("dial udp {}: {}", self.addr, os_error(&e)))
        };
        let attempt = async {
            let target = lookup_host(&self.addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))?;
            let local: SocketAddr = if target.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let sock = bind_avoiding(local, target).await?;
            sock.connect(target).await?;
            sock.send(b"data").await?;
            let mut buf = [0u8; 1];
            sock.recv(&mut buf).await.map(|_| ())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(())) | Err(_) => success(),
            Ok(Err(e)) => fail(e),
        }
    }
}

/// Connects, refusing a TCP "simultaneous open" with itself: connecting to a free port
/// in the ephemeral range can, rarely, be given that very port as the local end, and
/// the kernel then reports a connection to nothing. Go's dialer retries such a
/// connection; so does this, and a second self-connection counts as refused.
async fn connect_not_self(addr: &str) -> std::io::Result<TcpStream> {
    for _ in 0..2 {
        let stream = TcpStream::connect(addr).await?;
        if !is_self_connected(&stream) {
            return Ok(stream);
        }
    }
    Err(std::io::ErrorKind::ConnectionRefused.into())
}

fn is_self_connected(stream: &TcpStream) -> bool {
    matches!((stream.local_addr(), stream.peer_addr()), (Ok(l), Ok(p)) if l == p)
}

/// Binds a UDP socket at `local` whose port is not `target`'s. A socket that got the
/// target's own (free) port would, once connected, read back its own datagram and
/// report an unreachable target as passing; the second bind happens while the first
/// socket is still held, so the two ports cannot coincide.
async fn bind_avoiding(local: SocketAddr, target: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(local).await?;
    if sock.local_addr()?.port() != target.port() {
        return Ok(sock);
    }
    let mut any = local;
    any.set_port(0);
    UdpSocket::bind(any).await
}

/// An I/O error as Go prints it (`connect: connection refused`), without Rust's
/// `(os error 111)` suffix.
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let s = s.to_lowercase();
    if e.kind() == std::io::ErrorKind::ConnectionRefused || e.kind() == std::io::ErrorKind::TimedOut
    {
        format!("connect: {s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn tcp_passing_then_critical() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let p = TcpProbe {
            addr: addr.clone(),
            timeout: Duration::from_secs(2),
        };
        let o = p.run().await;
        assert_eq!(o, Outcome::passing(format!("TCP connect {addr}: Success")));
        drop(l);
        let o = p.run().await;
        assert_eq!(o.status, "critical");
        assert_eq!(
            o.output,
            format!("dial tcp {addr}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn tcp_unknown_port_is_critical() {
        let p = TcpProbe {
            addr: free_port_addr(),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(p.run().await.status, "critical");
    }

    #[tokio::test]
    async fn udp_probe_socket_never_takes_the_target_port() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        drop(s);
        let target: SocketAddr = ([127, 0, 0, 1], port).into();
        // Ask for exactly the target's port: the helper must move elsewhere.
        let local: SocketAddr = ([0, 0, 0, 0], port).into();
        let sock = bind_avoiding(local, target).await.unwrap();
        assert_ne!(sock.local_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn tcp_self_connection_is_recognised() {
        // Bound to P and connecting to P, a socket opens a connection with itself.
        use socket2::{Domain, Socket, Type};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.connect(&addr.into()).unwrap();
        s.set_nonblocking(true).unwrap();
        let stream = TcpStream::from_std(std::net::TcpStream::from(s)).unwrap();
        assert!(is_self_connected(&stream));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ok = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        assert!(!is_self_connected(&ok));
    }

    #[tokio::test]
    async fn udp_refused_is_critical_silence_is_passing() {
        // Nothing listens: the kernel answers with ICMP port unreachable.
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap().to_string();
        drop(s);
        let p = UdpProbe {
            addr: addr.clone(),
            timeout: Duration::from_millis(500),
        };
        let o = p.run().await;
        assert_eq!(o.status, "critical", "{}", o.output);
        // A silent listener: passing after the timeout.
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap().to_string();
        let p = UdpProbe {
            addr: addr.clone(),
            timeout: Duration::from_millis(300),
        };
        assert_eq!(
            p.run().await,
            Outcome::passing(format!("UDP connect {addr}: Success"))
        );
    }
}
