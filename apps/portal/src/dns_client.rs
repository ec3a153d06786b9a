//! A small stub resolver: one question to one server over UDP with a
//! timeout, retried once, and over TCP when the UDP answer is truncated.
//! Connected UDP sockets are kept in a small pool after a clean exchange, so
//! a lookup per request does not pay for creating and closing a socket.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

use crate::dns_wire::{decode_answer, encode_query, Answer, DnsError};

/// The largest UDP answer read (the EDNS size advertised).
const UDP_BUF: usize = 4096;
/// The most idle sockets kept.
const POOL_MAX: usize = 64;

/// Where and how long to ask.
#[derive(Debug, Clone)]
pub struct DnsClient {
    server: SocketAddr,
    timeout: Duration,
    udp_tries: u32,
    idle: Arc<Mutex<Vec<UdpSocket>>>,
}

impl DnsClient {
    /// Asks `server` (e.g. `127.0.0.1:8600`), waiting `timeout` per try.
    pub fn new(server: SocketAddr, timeout: Duration) -> Self {
        Self {
            server,
            timeout,
            udp_tries: 2,
            idle: Arc::default(),
        }
    }

    /// The server asked.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Asks for `qtype` records of `name`.
    pub async fn ask(&self, name: &Name, qtype: RecordType) -> Result<Answer, DnsError> {
        let mut last = DnsError::Timeout(self.server.to_string());
        for _ in 0..self.udp_tries {
            match self.ask_udp(name, qtype).await {
                Ok(a) if a.truncated => return self.ask_tcp(name, qtype).await,
                Ok(a) => return Ok(a),
                Err(e @ DnsError::Timeout(_)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn ask_udp(&self, name: &Name, qtype: RecordType) -> Result<Answer, DnsError> {
        let id: u16 = rand::random();
        let query = encode_query(id, name, qtype)?;
        let local: SocketAddr = if self.server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let io = |e: std::io::Error| DnsError::Io(e.to_string());
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let sock = match pooled {
            Some(s) => s,
            None => {
                let s = UdpSocket::bind(local).await.map_err(io)?;
                s.connect(self.server).await.map_err(io)?;
                s
            }
        };
        sock.send(&query).await.map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; UDP_BUF];
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                // The socket is dropped: a late answer must not reach a later query.
                Err(_) => return Err(DnsError::Timeout(self.server.to_string())),
                Ok(r) => r.map_err(io)?,
            };
            // A stray or mismatched datagram (say, a duplicate of an earlier
            // answer on a pooled socket) is ignored, not trusted.
            if let Ok(a) = decode_answer(&buf[..n], id, name) {
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < POOL_MAX {
                        idle.push(sock);
                    }
                }
                return Ok(a);
            }
        }
    }

    async fn ask_tcp(&self, name: &Name, qtype: RecordType) -> Result<Answer, DnsError> {
        let id: u16 = rand::random();
        let query = encode_query(id, name, qtype)?;
        let exchange = async {
            let io = |e: std::io::Error| DnsError::Io(e.to_string());
            let mut s = TcpStream::connect(self.server).await.map_err(io)?;
            let len = u16::try_from(query.len()).map_err(|_| DnsError::BadName(name.to_ascii()))?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&query);
            s.write_all(&framed).await.map_err(io)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.map_err(io)?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut body).await.map_err(io)?;
            decode_answer(&body, id, name)
        };
        timeout(self.timeout, exchange)
            .await
            .map_err(|_| DnsError::Timeout(self.server.to_string()))?
    }
}
