//! The TCP client's connections: per peer, a small pool of lazily opened HTTP/2 connections
//! (one by default) used in turn, one connect at a time with backoff after failures, a task
//! per connection that drives it, pings it and reports how it ended as a [`ConnectionEvent`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::debug;

use crate::backoff::Backoff;
use crate::client::{ConnectionEvent, ConnectionEventKind};
use crate::config::ClientConfig;
use crate::error::RpcError;
use crate::tcp::io::Connector;
use crate::tcp::keepalive;

pub(crate) struct Pool {
    pub(crate) config: ClientConfig,
    connector: Arc<dyn Connector>,
    peers: parking_lot::Mutex<HashMap<SocketAddr, Arc<Peer>>>,
    pub(crate) events: broadcast::Sender<ConnectionEvent>,
}

/// One peer: its pool of connections (used in turn; each is a slot that is connected on
/// demand), and the connect state behind an async lock so only one caller connects at a time.
struct Peer {
    slots: Vec<parking_lot::Mutex<Option<LiveConn>>>,
    next: AtomicUsize,
    connecting: tokio::sync::Mutex<Backoff>,
}

impl Peer {
    fn live(&self, slot: usize) -> Option<LiveConn> {
        let live = self.slots[slot].lock();
        live.as_ref()
            .filter(|c| c.alive.load(Ordering::Acquire))
            .cloned()
    }
}

/// An established connection: the handle calls are started on, and whether it still works.
#[derive(Clone)]
pub(crate) struct LiveConn {
    pub(crate) send: Arc<SendRequest<Bytes>>,
    pub(crate) alive: Arc<AtomicBool>,
}

impl Pool {
    pub(crate) fn new(config: ClientConfig, connector: Arc<dyn Connector>) -> Self {
        let (events, _) = broadcast::channel(256);
        Pool {
            config,
            connector,
            peers: parking_lot::Mutex::new(HashMap::new()),
            events,
        }
    }

    fn emit(&self, peer: SocketAddr, kind: ConnectionEventKind) {
        let _ = self.events.send(ConnectionEvent { peer, kind });
    }

    /// A live connection to `peer` (the pool's next slot), connecting if needed (one connect
    /// at a time per peer; concurrent callers wait for it and share the result).
    pub(crate) async fn connection(
        self: &Arc<Self>,
        peer: SocketAddr,
    ) -> Result<LiveConn, RpcError> {
        let pool = self
            .peers
            .lock()
            .entry(peer)
            .or_insert_with(|| {
                Arc::new(Peer {
                    slots: (0..self.config.connections_per_peer.max(1))
                        .map(|_| parking_lot::Mutex::new(None))
                        .collect(),
                    next: AtomicUsize::new(0),
                    connecting: tokio::sync::Mutex::new(Backoff::new(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                    )),
                })
            })
            .clone();
        let slot = pool.next.fetch_add(1, Ordering::Relaxed) % pool.slots.len();
        if let Some(conn) = pool.live(slot) {
            return Ok(conn);
        }
        let mut backoff = pool.connecting.lock().await;
        // Someone else may have connected while this caller waited for the lock.
        if let Some(conn) = pool.live(slot) {
            return Ok(conn);
        }
        if let Err((last, wait)) = backoff.check(Instant::now()) {
            return Err(RpcError::Unreachable {
                addr: peer,
                reason: format!("not retrying for {wait:?} after: {last}"),
            });
        }
        let attempt = tokio::time::timeout(self.config.connect_timeout, self.connect(peer)).await;
        let result = match attempt {
            Ok(result) => result,
            Err(_) => Err(format!(
                "connect timed out after {:?}",
                self.config.connect_timeout
            )),
        };
        match result {
            Ok(conn) => {
                backoff.succeeded();
                *pool.slots[slot].lock() = Some(conn.clone());
                Ok(conn)
            }
            Err(reason) => {
                backoff.failed(Instant::now(), reason.clone());
                Err(RpcError::Unreachable { addr: peer, reason })
            }
        }
    }

    async fn connect(self: &Arc<Self>, peer: SocketAddr) -> Result<LiveConn, String> {
        let tcp = TcpStream::connect(peer)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io = self
            .connector
            .connect(peer, tcp)
            .await
            .map_err(|e| format!("connector: {e}"))?;
        let (send, mut conn) = h2::client::Builder::new()
            .initial_window_size(self.config.stream_window)
            .initial_connection_window_size(self.config.connection_window)
            .max_header_list_size(16 << 10)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| format!("http/2 handshake: {e}"))?;
        let alive = Arc::new(AtomicBool::new(true));
        let keepalive = keepalive::run(
            conn.ping_pong(),
            self.config.keepalive_interval,
            self.config.keepalive_timeout,
        );
        let me = Arc::downgrade(self);
        let flag = alive.clone();
        let send = Arc::new(send);
        // Only a weak handle: the connection must still end when the pool lets go of it.
        let probe = Arc::downgrade(&send);
        tokio::spawn(async move {
            let outcome = tokio::select! {
                r = conn => match r {
                    Ok(()) => ended_how(probe).await,
                    Err(e) if e.is_go_away() && e.is_remote() => ConnectionEventKind::Closed,
                    Err(e) => ConnectionEventKind::Lost { reason: e.to_string() },
                },
                reason = keepalive => ConnectionEventKind::Lost { reason },
            };
            flag.store(false, Ordering::Release);
            debug!(%peer, ?outcome, "rpc: connection ended");
            if let Some(inner) = me.upgrade() {
                inner.emit(peer, outcome);
            }
        });
        self.emit(peer, ConnectionEventKind::Connected);
        Ok(LiveConn { send, alive })
    }
}

/// Why a connection whose I/O ended cleanly ended: after the peer's GOAWAY it was an orderly
/// close (`Closed`); a bare end of stream (the peer's process or host dropped it, or cut it
/// after its shutdown grace) is `Lost`. h2 keeps the reason as the connection's error, which
/// a request handle reports.
async fn ended_how(probe: std::sync::Weak<SendRequest<Bytes>>) -> ConnectionEventKind {
    let Some(send) = probe.upgrade() else {
        return ConnectionEventKind::Closed;
    };
    let mut send = (*send).clone();
    match futures::future::poll_fn(|cx| send.poll_ready(cx)).await {
        Err(e) if e.is_go_away() && e.is_remote() => ConnectionEventKind::Closed,
        Err(e) => ConnectionEventKind::Lost {
            reason: e.to_string(),
        },
        Ok(()) => ConnectionEventKind::Lost {
            reason: "connection closed".into(),
        },
    }
}
