//! The network side: UDP and TCP listeners around a [`Resolver`], and
//! forwarding to recursors.
//!
//! - UDP: one receive loop per socket, each its own task (so a
//!   multi-threaded runtime answers on every core). [`bind_udp_reuseport`]
//!   binds N sockets to one address with `SO_REUSEPORT` (the kernel spreads
//!   clients over them by address hash) and a 4 MiB receive buffer;
//!   [`serve_sockets`] serves them. Local answers are computed inline in the
//!   socket's task (they only read memory; no task per query) with reused
//!   receive and reply buffers; forwarded queries run as tasks, at most
//!   [`ServerLimits::max_inflight_forwards`] at once over all sockets
//!   (beyond that the query is answered SERVFAIL at once rather than queued).
//! - TCP: 2-byte length framing, several queries per connection, answered in
//!   order; a connection idle for [`ServerLimits::tcp_idle_timeout`] is
//!   closed, and a query or a reply must cross within it (a client that
//!   trickles bytes or never reads is cut off); at most
//!   [`ServerLimits::max_tcp_connections`] at once and
//!   [`ServerLimits::max_tcp_conns_per_client`] per client IP (more are closed
//!   on accept); accept errors (out of descriptors) pause with a growing
//!   backoff instead of spinning.
//! - Forwarding ([`Answer::Forward`]): the query bytes go unchanged to each
//!   recursor in order over UDP (each attempt bounded by
//!   `recursor_timeout`); a truncated reply is retried over TCP; a reply
//!   other than NOERROR/NXDOMAIN, a timeout or an error moves on to the next
//!   recursor (as Consul); when all fail the client gets SERVFAIL. The
//!   recursor's reply goes back byte-for-byte unchanged (for a UDP client a
//!   TCP reply larger than its buffer is replaced by the truncated UDP one).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::catalog::Catalog;
use crate::resolver::{Answer, Resolver, Transport};

/// Bounds of the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Simultaneous TCP connections (default 256).
    pub max_tcp_connections: usize,
    /// Simultaneous TCP connections from one client IP (default 200, as Consul's
    /// `limits.http_max_conns_per_client`; 0 = no per-client limit).
    pub max_tcp_conns_per_client: usize,
    /// A TCP connection with no complete query for this long is closed
    /// (default 10 s).
    pub tcp_idle_timeout: Duration,
    /// Forwarded UDP queries in flight (default 1024).
    pub max_inflight_forwards: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_tcp_connections: 256,
            max_tcp_conns_per_client: 200,
            tcp_idle_timeout: Duration::from_secs(10),
            max_inflight_forwards: 1024,
        }
    }
}

/// Serves DNS on `udp` and `tcp` with default [`ServerLimits`] until
/// `shutdown` completes.
pub async fn serve<C: Catalog, F: Future>(
    udp: UdpSocket,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    shutdown: F,
) {
    serve_with(udp, tcp, resolver, ServerLimits::default(), shutdown).await;
}

/// Serves DNS on `udp` and `tcp` until `shutdown` completes; tasks still
/// running then are aborted.
pub async fn serve_with<C: Catalog, F: Future>(
    udp: UdpSocket,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    limits: ServerLimits,
    shutdown: F,
) {
    serve_all(vec![udp], tcp, resolver, limits, shutdown).await;
}

/// The number of UDP sockets worth binding: four per core (at least 8).
///
/// The kernel spreads datagrams over `SO_REUSEPORT` sockets by a hash of the
/// client's address and port, so with one socket per core a handful of busy
/// clients (a resolver, a load generator) can land mostly on one socket and
/// leave a core idle: with 4 client flows on 2 sockets, a 3:1 or 4:0 split
/// happens more often than not. Four sockets per core make the split finer, and
/// the runtime moves the socket tasks between its workers.
pub fn udp_socket_count() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores * 4).max(8)
}

/// Receive buffer asked for each UDP socket (best effort: the kernel caps it
/// at `net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Binds `n` (at least 1) non-blocking UDP sockets to `addr` with
/// `SO_REUSEPORT`, each with a 4 MiB receive buffer (best effort). When
/// `addr` has port 0, the first socket gets an ephemeral port and the others
/// are bound to that same port: read it from `sockets[0].local_addr()`.
pub fn bind_udp_reuseport(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(n.max(1));
    let mut addr = addr;
    for _ in 0..n.max(1) {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_reuse_port(true)?;
        if let Err(e) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
            tracing::debug!(error = %e, "dns: udp receive buffer");
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        if addr.port() == 0 {
            addr.set_port(socket.local_addr()?.port());
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Serves DNS on every socket of `udp` (e.g. from [`bind_udp_reuseport`];
/// each gets its own task) and on `tcp` until `shutdown` completes; tasks
/// still running then are aborted. Must run inside a tokio runtime; the
/// sockets must be non-blocking (as [`bind_udp_reuseport`] leaves them).
pub async fn serve_sockets<C: Catalog, F: Future>(
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    limits: ServerLimits,
    shutdown: F,
) -> io::Result<()> {
    let udp = udp
        .into_iter()
        .map(|s| {
            s.set_nonblocking(true)?;
            UdpSocket::from_std(s)
        })
        .collect::<io::Result<Vec<_>>>()?;
    serve_all(udp, tcp, resolver, limits, shutdown).await;
    Ok(())
}

async fn serve_all<C: Catalog, F: Future>(
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    limits: ServerLimits,
    shutdown: F,
) {
    let forwards = Arc::new(Semaphore::new(limits.max_inflight_forwards.max(1)));
    // Dropping the set (on shutdown) aborts the socket tasks.
    let mut udp_tasks = JoinSet::new();
    for socket in udp {
        udp_tasks.spawn(udp_loop(socket, resolver.clone(), forwards.clone()));
    }
    let tcp_loop = tcp_loop(tcp, resolver, limits);
    tokio::select! {
        _ = shutdown => {}
        _ = udp_tasks.join_next() => {}
        _ = tcp_loop => {}
    }
}

async fn udp_loop<C: Catalog>(
    udp: UdpSocket,
    resolver: Arc<Resolver<C>>,
    forwards: Arc<Semaphore>,
) {
    let udp = Arc::new(udp);
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    let mut reply = Vec::with_capacity(4096);
    loop {
        let received = tokio::select! {
            biased;
            r = udp.recv_from(&mut buf) => r,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors of earlier sends surface here on some systems;
                // anything else: back off a little rather than spin.
                tracing::debug!(error = %e, "dns: udp receive");
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
        };
        let packet = &buf[..n];
        match resolver.answer_into(packet, Transport::Udp, &mut reply) {
            Answer::Reply(_) => {
                if let Err(e) = udp.send_to(&reply, peer).await {
                    tracing::debug!(error = %e, %peer, "dns: udp send");
                }
            }
            Answer::Drop => {}
            Answer::Forward => match forwards.clone().try_acquire_owned() {
                Ok(permit) => {
                    let packet = packet.to_vec();
                    let udp = udp.clone();
                    let resolver = resolver.clone();
                    tasks.spawn(async move {
                        let _permit = permit;
                        if let Some(reply) = forward(&resolver, &packet, Transport::Udp).await {
                            let _ = udp.send_to(&reply, peer).await;
                        }
                    });
                }
                Err(_) => {
                    tracing::warn!("dns: too many forwarded queries in flight");
                    if let Some(reply) = resolver.servfail(packet) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                }
            },
        }
    }
}

async fn tcp_loop<C: Catalog>(tcp: TcpListener, resolver: Arc<Resolver<C>>, limits: ServerLimits) {
    use cairn_types::conn::{Gate, Step};
    let mut gate = Gate::new(limits.max_tcp_conns_per_client, limits.max_tcp_connections);
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer, slot) = match gate.step(accepted.map(|(s, p)| ((s, p), p))) {
            Step::Admit((stream, peer), slot) => (stream, peer, slot),
            Step::Refuse((_, peer), why) => {
                tracing::debug!(%peer, ?why, "dns: tcp connection over the limit, closing");
                continue;
            }
            Step::Pause(pause, e) => {
                // E.g. out of file descriptors: wait for connections to close.
                if pause.log {
                    tracing::warn!(error = %e, failures = gate.failures(), "dns: tcp accept failed; pausing");
                }
                tokio::time::sleep(pause.wait).await;
                continue;
            }
        };
        let resolver = resolver.clone();
        let idle = limits.tcp_idle_timeout;
        conns.spawn(async move {
            let _slot = slot;
            if let Err(e) = tcp_connection(stream, &resolver, idle).await {
                tracing::debug!(error = %e, %peer, "dns: tcp connection");
            }
        });
    }
}

async fn tcp_connection<C: Catalog>(
    mut stream: TcpStream,
    resolver: &Resolver<C>,
    idle: Duration,
) -> std::io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match timeout(idle, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()), // idle
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let len = usize::from(u16::from_be_bytes(len));
        let mut packet = vec![0u8; len];
        timeout(idle, stream.read_exact(&mut packet))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "partial query"))??;
        let reply = match resolver.answer(&packet, Transport::Tcp) {
            Answer::Reply(bytes) => bytes,
            Answer::Drop => continue,
            Answer::Forward => match forward(resolver, &packet, Transport::Tcp).await {
                Some(bytes) => bytes,
                None => continue,
            },
        };
        // A client that never reads its replies must not hold the connection forever.
        timeout(idle, write_framed(&mut stream, &reply))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "reply not read"))??;
    }
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "message too large"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Whether `reply` answers `query` (same ID) and is usable (NOERROR or
/// NXDOMAIN: anything else moves on to the next recursor).
fn usable(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12
        && reply[..2] == query[..2]
        && reply[2] & 0x80 != 0
        && matches!(reply[3] & 0x0f, 0 | 3)
}

fn truncated(reply: &[u8]) -> bool {
    reply[2] & 0x02 != 0
}

/// Forwards `packet` to the recursors; the first usable reply, unchanged,
/// or our SERVFAIL when every recursor failed.
pub async fn forward<C: Catalog>(
    resolver: &Resolver<C>,
    packet: &[u8],
    client: Transport,
) -> Option<Vec<u8>> {
    let per_try = resolver.config().recursor_timeout;
    for &recursor in &resolver.config().recursors {
        let reply = match timeout(per_try, exchange_udp(recursor, packet)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %recursor, "dns: recursor (udp)");
                continue;
            }
            Err(_) => {
                tracing::debug!(%recursor, "dns: recursor timed out (udp)");
                continue;
            }
        };
        if !usable(packet, &reply) {
            continue;
        }
        if !truncated(&reply) {
            return Some(reply);
        }
        match timeout(per_try, exchange_tcp(recursor, packet)).await {
            Ok(Ok(full)) if usable(packet, &full) => {
                let fits = match client {
                    Transport::Tcp => true,
                    Transport::Udp => full.len() <= Resolver::<C>::udp_limit(packet),
                };
                return Some(if fits { full } else { reply });
            }
            // The truncated UDP reply is still a valid answer.
            _ => return Some(reply),
        }
    }
    resolver.servfail(packet)
}

async fn exchange_udp(recursor: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if recursor.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(recursor).await?;
    socket.send(packet).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Skip stray datagrams that do not carry our ID.
        if n >= 12 && buf[..2] == packet[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(recursor: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(recursor).await?;
    write_framed(&mut stream, packet).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}
