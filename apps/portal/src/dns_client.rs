//! A small stub resolver: one question to one server over UDP with a
//! timeout, retried once, and over TCP when the UDP answer is truncated.
//! Connected UDP sockets, each with its receive buffer, are kept in a small
//! pool after a clean exchange, so a lookup per request does not pay for
//! creating a socket or allocating a buffer; an answer must match the
//! query's id, question name and type (anything else on the socket is
//! ignored until the timeout; a matching answer with an error code ends the
//! lookup with that error), and a socket that timed out is dropped, so a
//! late answer never reaches a later query.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

use crate::dns_wire::{decode_answer, encode_query, Answer, DnsError, QName, Scratch, MAX_QUERY};

/// The largest UDP answer read (the EDNS size advertised).
const UDP_BUF: usize = 4096;
/// The most idle sockets kept.
const POOL_MAX: usize = 64;
/// The largest TCP answer read.
const TCP_MAX: usize = 65535;

/// A connected UDP socket and what one exchange on it needs.
#[derive(Debug)]
struct Conn {
    sock: UdpSocket,
    buf: Box<[u8; UDP_BUF]>,
    scratch: Scratch,
}

/// Where and how long to ask.
#[derive(Debug, Clone)]
pub struct DnsClient {
    server: SocketAddr,
    timeout: Duration,
    udp_tries: u32,
    idle: Arc<Mutex<Vec<Conn>>>,
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

    /// Asks for `qtype` records (e.g. [`crate::dns_wire::TYPE_SRV`]) of `name`.
    pub async fn ask(&self, name: &QName, qtype: u16) -> Result<Answer, DnsError> {
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

    async fn connect(&self) -> Result<Conn, DnsError> {
        let io = |e: std::io::Error| DnsError::Io(e.to_string());
        let local: SocketAddr = if self.server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await.map_err(io)?;
        sock.connect(self.server).await.map_err(io)?;
        Ok(Conn {
            sock,
            buf: Box::new([0; UDP_BUF]),
            scratch: Scratch::default(),
        })
    }

    async fn ask_udp(&self, name: &QName, qtype: u16) -> Result<Answer, DnsError> {
        let io = |e: std::io::Error| DnsError::Io(e.to_string());
        let id: u16 = rand::random();
        let mut query = [0u8; MAX_QUERY];
        let len = encode_query(id, name, qtype, &mut query);
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        conn.sock.send(&query[..len]).await.map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let Conn { sock, buf, scratch } = &mut conn;
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf[..])).await {
                // The socket is dropped: a late answer must not reach a later query.
                Err(_) => return Err(DnsError::Timeout(self.server.to_string())),
                Ok(r) => r.map_err(io)?,
            };
            // A stray or mismatched datagram (say, a duplicate of an earlier
            // answer on a pooled socket) is ignored, not trusted. An answer to
            // this query with an error code (SERVFAIL, REFUSED...) is the
            // server's answer: it ends the lookup at once.
            let decoded = decode_answer(&buf[..n], id, name, qtype, scratch);
            if matches!(decoded, Ok(_) | Err(DnsError::Rcode(_))) {
                // The runtime still marks the socket readable, so the next
                // lookup's first receive would be a wasted system call
                // (EAGAIN: the answer has not come yet). Clear the mark
                // without one. Should a stray datagram be queued after all,
                // the next answer's arrival wakes the receive again, which
                // reads and ignores the stray one first.
                let _ = sock.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < POOL_MAX {
                        idle.push(conn);
                    }
                }
                return decoded;
            }
        }
    }

    async fn ask_tcp(&self, name: &QName, qtype: u16) -> Result<Answer, DnsError> {
        let id: u16 = rand::random();
        let mut framed = [0u8; MAX_QUERY + 2];
        let len = {
            let query: &mut [u8; MAX_QUERY] = (&mut framed[2..])
                .try_into()
                .map_err(|_| DnsError::Io("query buffer".into()))?;
            encode_query(id, name, qtype, query)
        };
        // len <= MAX_QUERY, far below 65535.
        framed[..2].copy_from_slice(&(len as u16).to_be_bytes());
        let exchange = async {
            let io = |e: std::io::Error| DnsError::Io(e.to_string());
            let mut s = TcpStream::connect(self.server).await.map_err(io)?;
            s.write_all(&framed[..len + 2]).await.map_err(io)?;
            let mut n = [0u8; 2];
            s.read_exact(&mut n).await.map_err(io)?;
            let n = usize::from(u16::from_be_bytes(n)).min(TCP_MAX);
            let mut body = vec![0u8; n];
            s.read_exact(&mut body).await.map_err(io)?;
            decode_answer(&body, id, name, qtype, &mut Scratch::default())
        };
        timeout(self.timeout, exchange)
            .await
            .map_err(|_| DnsError::Timeout(self.server.to_string()))?
    }
}
