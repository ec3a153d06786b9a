//! The network side: UDP and TCP listeners around a [`Resolver`], and
//! forwarding to recursors.
//!
//! - UDP: one OS thread per socket, blocked in `recv_from` (so the kernel
//!   wakes the thread that answers straight from the datagram's arrival: no
//!   event loop, no task wake-up and no cross-thread notification per
//!   query, which on a loaded host cost more than the answer itself).
//!   [`bind_udp_reuseport`] binds N sockets to one address with
//!   `SO_REUSEPORT` (the kernel spreads clients over them by address hash)
//!   and a 4 MiB receive buffer; [`serve_sockets`] serves them. Local
//!   answers are computed inline in the socket's thread (they only read
//!   memory) with reused receive and reply buffers; forwarded queries run as
//!   tasks on the caller's runtime, at most
//!   [`ServerLimits::max_inflight_forwards`] at once over all sockets
//!   (beyond that the query is answered SERVFAIL at once rather than
//!   queued). On shutdown the threads are woken (`shutdown(SHUT_RD)`, with a
//!   receive timeout as the fallback), joined, and their forwards aborted.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    match udp.into_std() {
        Ok(udp) => serve_all(vec![udp], tcp, resolver, limits, shutdown).await,
        Err(e) => tracing::error!(error = %e, "dns: udp socket"),
    }
}

/// The number of UDP sockets worth binding: four per core (at least 8).
///
/// The kernel spreads datagrams over `SO_REUSEPORT` sockets by a hash of the
/// client's address and port, so with one socket per core a handful of busy
/// clients (a resolver, a load generator) can land mostly on one socket and
/// leave a core idle: with 4 client flows on 2 sockets, a 3:1 or 4:0 split
/// happens more often than not. Four sockets per core make the split finer; each
/// socket has its own thread, which the kernel runs on any idle core.
pub fn udp_socket_count() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores * 4).max(8)
}

/// Receive buffer asked for each UDP socket (best effort: the kernel caps it
/// at `net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// How long a UDP thread waits in `recv_from` before it looks at the stop
/// flag again (the fallback when `shutdown(SHUT_RD)` does not wake it).
const UDP_STOP_POLL: Duration = Duration::from_millis(200);

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
/// each gets its own thread) and on `tcp` until `shutdown` completes; tasks
/// still running then are aborted and the UDP threads joined. Must run
/// inside a tokio runtime.
pub async fn serve_sockets<C: Catalog, F: Future>(
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    limits: ServerLimits,
    shutdown: F,
) -> io::Result<()> {
    serve_all(udp, tcp, resolver, limits, shutdown).await;
    Ok(())
}

async fn serve_all<C: Catalog, F: Future>(
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
    resolver: Arc<Resolver<C>>,
    limits: ServerLimits,
    shutdown: F,
) {
    let forwards = Arc::new(Semaphore::new(limits.max_inflight_forwards.max(1)));
    let mut udp = UdpThreads::start(udp, &resolver, &forwards);
    let tcp_loop = tcp_loop(tcp, resolver, limits);
    tokio::select! {
        _ = shutdown => {}
        _ = udp.failed() => {}
        _ = tcp_loop => {}
    }
    udp.stop().await;
}

/// The UDP side: one thread per socket, and the forwarded queries they
/// started (tasks on the runtime that called [`serve_all`]).
struct UdpThreads {
    stop: Arc<AtomicBool>,
    /// Duplicates of the sockets (same open file), to wake the threads.
    wake: Vec<std::net::UdpSocket>,
    threads: Vec<std::thread::JoinHandle<()>>,
    forwards: Arc<Mutex<JoinSet<()>>>,
    /// Completes when a thread ends on its own (it could not serve).
    ended: tokio::sync::mpsc::Receiver<()>,
}

impl UdpThreads {
    fn start<C: Catalog>(
        sockets: Vec<std::net::UdpSocket>,
        resolver: &Arc<Resolver<C>>,
        permits: &Arc<Semaphore>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let forwards = Arc::new(Mutex::new(JoinSet::new()));
        let (ended_tx, ended) = tokio::sync::mpsc::channel(sockets.len().max(1));
        let mut wake = Vec::new();
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            // Blocking, with a timeout to look at the stop flag.
            if let Err(e) = socket
                .set_nonblocking(false)
                .and_then(|()| socket.set_read_timeout(Some(UDP_STOP_POLL)))
            {
                tracing::error!(error = %e, "dns: udp socket");
                continue;
            }
            // Best effort: without a duplicate, the receive timeout still
            // lets the thread see the stop flag.
            if let Ok(dup) = socket.try_clone() {
                wake.push(dup);
            }
            let job = UdpJob {
                socket,
                resolver: resolver.clone(),
                permits: permits.clone(),
                forwards: forwards.clone(),
                runtime: tokio::runtime::Handle::current(),
                stop: stop.clone(),
            };
            let ended = Ended(ended_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || {
                    let _ended = ended; // also when the thread panics
                    job.run();
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "dns: cannot start a udp thread"),
            }
        }
        Self {
            stop,
            wake,
            threads,
            forwards,
            ended,
        }
    }

    /// Completes when a UDP thread ends before [`UdpThreads::stop`] (or
    /// there is none).
    async fn failed(&mut self) {
        let _ = self.ended.recv().await;
    }

    /// Tells the threads to end, wakes them and aborts their forwards.
    fn signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in &self.wake {
            // Linux wakes a thread blocked in recv_from on any socket
            // (returning ENOTCONN for an unconnected one, but waking it).
            let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Read);
        }
        if let Ok(mut set) = self.forwards.lock() {
            set.abort_all();
        }
    }

    /// Ends the threads and waits until they have (and closed their sockets).
    async fn stop(mut self) {
        self.signal();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for UdpThreads {
    /// When the serving future is dropped rather than shut down, the threads
    /// still end (without being waited for).
    fn drop(&mut self) {
        self.signal();
    }
}

/// Tells [`UdpThreads::failed`] that a thread ended, however it ended.
struct Ended(tokio::sync::mpsc::Sender<()>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// What one UDP thread needs.
struct UdpJob<C: Catalog> {
    socket: std::net::UdpSocket,
    resolver: Arc<Resolver<C>>,
    permits: Arc<Semaphore>,
    forwards: Arc<Mutex<JoinSet<()>>>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
}

impl<C: Catalog> UdpJob<C> {
    fn run(self) {
        let mut buf = vec![0u8; 65535];
        let mut reply = Vec::with_capacity(4096);
        while !self.stop.load(Ordering::Relaxed) {
            let (n, peer) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) => {
                    match e.kind() {
                        // The stop poll, or ICMP errors of earlier sends.
                        io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset => {}
                        _ => {
                            // Anything else: back off a little rather than spin.
                            tracing::debug!(error = %e, "dns: udp receive");
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    continue;
                }
            };
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let packet = &buf[..n];
            match self
                .resolver
                .answer_into(packet, Transport::Udp, &mut reply)
            {
                Answer::Reply(_) => self.send(&reply, peer),
                Answer::Drop => {}
                Answer::Forward => self.forward(packet, peer),
            }
        }
    }

    fn send(&self, reply: &[u8], peer: SocketAddr) {
        if let Err(e) = self.socket.send_to(reply, peer) {
            tracing::debug!(error = %e, %peer, "dns: udp send");
        }
    }

    fn forward(&self, packet: &[u8], peer: SocketAddr) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("dns: too many forwarded queries in flight");
            if let Some(reply) = self.resolver.servfail(packet) {
                self.send(&reply, peer);
            }
            return;
        };
        let socket = match self.socket.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "dns: udp socket for a forward");
                return;
            }
        };
        let packet = packet.to_vec();
        let resolver = self.resolver.clone();
        let task = async move {
            let _permit = permit;
            if let Some(reply) = forward(&resolver, &packet, Transport::Udp).await {
                // A blocking socket: a UDP send waits only for buffer space.
                let _ = socket.send_to(&reply, peer);
            }
        };
        if let Ok(mut set) = self.forwards.lock() {
            while set.try_join_next().is_some() {}
            set.spawn_on(task, &self.runtime);
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
