//! The TCP listener: accepts connections, speaks HTTP/2 on each, and runs each call
//! ([`super::call`]) in a task of its own, owned by its connection.
//!
//! Per connection: a handshake deadline (garbage or silence on the port closes the connection
//! without disturbing anyone else), a keepalive, an idle close and a concurrent-stream limit;
//! per server: a connection limit and a graceful shutdown with a grace period.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::poll_fn;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::ServerConfig;
use crate::routes::Routes;
use crate::tcp::call::dispatch;
use crate::tcp::io::{Acceptor, PlainTcp};
use crate::tcp::keepalive;

/// Serves one or more protocols on a TCP listener. Build it, then run [`RpcServer::serve`].
pub struct RpcServer {
    config: Arc<ServerConfig>,
    acceptor: Arc<dyn Acceptor>,
}

impl RpcServer {
    pub fn new(config: ServerConfig) -> Self {
        RpcServer {
            config: Arc::new(config),
            acceptor: Arc::new(PlainTcp),
        }
    }

    /// Replaces the plain-TCP acceptor (the TLS seam).
    pub fn with_acceptor(mut self, acceptor: impl Acceptor) -> Self {
        self.acceptor = Arc::new(acceptor);
        self
    }

    /// Accepts connections on `listener` and answers calls of the protocols in `routes` until
    /// `shutdown` completes. Then it stops accepting (the port closes at once), lets calls in
    /// flight run for [`ServerConfig::shutdown_grace`], and cuts whatever is left. Returns once
    /// every connection is closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        routes: Routes,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let routes = Arc::new(routes);
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        // Connections over the limit are told so in HTTP/2 terms (their calls were not
        // processed); this many at a time, the rest are simply closed.
        let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let Ok(permit) = limit.clone().try_acquire_owned() else {
                            warn!(%peer, limit = self.config.max_connections, "rpc: connection limit reached, refusing new connection");
                            if let Ok(slot) = refusals.clone().try_acquire_owned() {
                                let acceptor = self.acceptor.clone();
                                let deadline = self.config.handshake_timeout;
                                conns.spawn(async move {
                                    refuse(acceptor, peer, tcp, deadline).await;
                                    drop(slot);
                                });
                            }
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let conn = Connection {
                            config: self.config.clone(),
                            acceptor: self.acceptor.clone(),
                            routes: routes.clone(),
                            peer,
                        };
                        let stop = stop_rx.clone();
                        conns.spawn(async move {
                            conn.run(tcp, stop).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        warn!(error = %e, "rpc: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            debug!(
                remaining = conns.len(),
                "rpc: shutdown grace over, cutting connections"
            );
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// Connections over the limit being refused at once (each for at most the handshake timeout).
const REFUSALS_IN_FLIGHT: usize = 64;

/// Completes the HTTP/2 handshake only to send `GOAWAY(REFUSED_STREAM)` with no stream
/// processed: the client learns its calls were not delivered and may retry elsewhere.
async fn refuse(acceptor: Arc<dyn Acceptor>, peer: SocketAddr, tcp: TcpStream, within: Duration) {
    let work = async {
        let io = acceptor.accept(peer, tcp).await.ok()?;
        let mut conn = h2::server::handshake(io).await.ok()?;
        conn.abrupt_shutdown(h2::Reason::REFUSED_STREAM);
        let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
        Some(())
    };
    let _ = tokio::time::timeout(within, work).await;
}

/// One accepted connection.
struct Connection {
    config: Arc<ServerConfig>,
    acceptor: Arc<dyn Acceptor>,
    routes: Arc<Routes>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, tcp: TcpStream, mut stop: watch::Receiver<bool>) {
        let peer = self.peer;
        let cfg = self.config.clone();
        let handshake = async {
            let io = self
                .acceptor
                .accept(peer, tcp)
                .await
                .map_err(|e| e.to_string())?;
            h2::server::Builder::new()
                .max_concurrent_streams(cfg.max_streams_per_connection)
                .initial_window_size(cfg.stream_window)
                .initial_connection_window_size(cfg.connection_window)
                .max_header_list_size(16 << 10)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|e| e.to_string())
        };
        let mut conn = match tokio::time::timeout(cfg.handshake_timeout, handshake).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "rpc: handshake failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "rpc: handshake timed out");
                return;
            }
        };
        let keepalive = keepalive::run(
            conn.ping_pong(),
            cfg.keepalive_interval,
            cfg.keepalive_timeout,
        );
        tokio::pin!(keepalive);
        let mut calls = JoinSet::new();
        let mut last_active = Instant::now();
        let mut idle_check =
            tokio::time::interval((cfg.idle_timeout / 4).max(Duration::from_millis(10)));
        let mut closing = false;
        loop {
            tokio::select! {
                next = conn.accept() => match next {
                    Some(Ok((request, respond))) => {
                        last_active = Instant::now();
                        calls.spawn(dispatch(request, respond, self.routes.clone(), cfg.clone(), peer));
                    }
                    Some(Err(e)) => {
                        debug!(%peer, error = %e, "rpc: connection error");
                        break;
                    }
                    None => break,
                },
                Some(_) = calls.join_next(), if !calls.is_empty() => last_active = Instant::now(),
                reason = &mut keepalive => {
                    debug!(%peer, %reason, "rpc: peer stopped answering pings");
                    break;
                }
                _ = idle_check.tick(), if !closing => {
                    if calls.is_empty() && last_active.elapsed() >= cfg.idle_timeout {
                        debug!(%peer, "rpc: closing idle connection");
                        conn.graceful_shutdown();
                        closing = true;
                    }
                }
                _ = stop.changed(), if !closing => {
                    conn.graceful_shutdown();
                    closing = true;
                }
            }
        }
        // Dropping `calls` aborts the handlers still running: their caller is gone.
    }
}
