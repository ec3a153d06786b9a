//! TCP and UDP checks.
//!
//! TCP: a connection to `host:port` (every resolved address, IPv4 and IPv6, in turn)
//! within the timeout is passing, anything else critical. UDP, as Consul: a datagram
//! (`data`) is sent and one byte of answer awaited; an answer or silence until the
//! timeout is passing (UDP services need not answer), an error, typically the ICMP
//! "port unreachable" surfacing as "connection refused", is critical.

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
        match tokio::time::timeout(self.timeout, TcpStream::connect(&self.addr)).await {
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
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(local).await?;
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
