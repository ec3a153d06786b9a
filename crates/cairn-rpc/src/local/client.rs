//! The in-process client: runs the handler of a server registered in the same [`super::Network`]
//! in its own task, with the real codec and limits on both sides, so behaviour matches TCP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::faults::Verdict;
use super::stream::{item_stream, pump, stopped, Pumped, STREAM_BUFFER};
use super::{Host, NetInner};
use crate::client::{CallOptions, ConnectionEvent, ConnectionEventKind, RpcStream, Transport};
use crate::codec::Codec;
use crate::config::ClientConfig;
use crate::error::{Direction, RpcError};
use crate::message::{decode_response, encode_payload};
use crate::protocol::{CallContext, Protocol};
use crate::status::{Code, Status};

/// Calls servers in a [`super::Network`]. Cheap to clone.
pub struct LocalClient<P: Protocol> {
    inner: Arc<ClientInner<P>>,
}

impl<P: Protocol> Clone for LocalClient<P> {
    fn clone(&self) -> Self {
        LocalClient {
            inner: self.inner.clone(),
        }
    }
}

pub(super) struct ClientInner<P: Protocol> {
    net: Arc<NetInner>,
    pub(super) local: SocketAddr,
    config: ClientConfig,
    events: broadcast::Sender<ConnectionEvent>,
    /// Peers this client has "a connection" to, with the server generation it reached.
    connected: parking_lot::Mutex<HashMap<SocketAddr, u64>>,
    _protocol: std::marker::PhantomData<fn() -> P>,
}

/// Aborts a task when dropped: the caller's future owns the handler's task.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<Option<T>> {
    /// `None` if the task was cancelled by a server shutdown (or panicked).
    type Output = Option<T>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.ok().flatten())
    }
}

/// Where a call goes and what happens to it on the way.
struct Routed<P: Protocol> {
    host: Host,
    service: Arc<dyn crate::protocol::DynService<P>>,
    delay: Duration,
    drop: Option<Direction>,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Fault-injected latency; zero costs nothing (a zero `sleep` would still wait for the next
/// timer tick, about a millisecond).
async fn delay_by(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

fn deadline_status() -> Status {
    Status::new(Code::DeadlineExceeded, "the caller's deadline passed")
}

impl<P: Protocol> LocalClient<P> {
    pub(crate) fn new(net: Arc<NetInner>, local: SocketAddr, config: ClientConfig) -> Self {
        let (events, _) = broadcast::channel(256);
        LocalClient {
            inner: Arc::new(ClientInner {
                net,
                local,
                config,
                events,
                connected: parking_lot::Mutex::new(HashMap::new()),
                _protocol: std::marker::PhantomData,
            }),
        }
    }
}

impl<P: Protocol> ClientInner<P> {
    fn emit(&self, peer: SocketAddr, kind: ConnectionEventKind) {
        let _ = self.events.send(ConnectionEvent { peer, kind });
    }

    /// Forgets the "connection" to `peer`, reporting how it ended.
    fn disconnected(&self, peer: SocketAddr, kind: ConnectionEventKind) {
        if self.connected.lock().remove(&peer).is_some() {
            self.emit(peer, kind);
        }
    }

    /// Finds the server at `peer` and draws the call's fate.
    fn route(&self, peer: SocketAddr) -> Result<Routed<P>, RpcError> {
        let verdict = self.net.faults.lock().decide(self.local, peer);
        let (delay, drop) = match verdict {
            Verdict::Partitioned => {
                self.disconnected(
                    peer,
                    ConnectionEventKind::Lost {
                        reason: "partitioned".into(),
                    },
                );
                return Err(RpcError::Unreachable {
                    addr: peer,
                    reason: "partitioned".into(),
                });
            }
            Verdict::Deliver { delay, drop } => (delay, drop),
        };
        let Some(server) = self.net.lookup(peer) else {
            self.disconnected(peer, ConnectionEventKind::Closed);
            return Err(RpcError::Unreachable {
                addr: peer,
                reason: "connection refused (no server at this address)".into(),
            });
        };
        let previous = self.connected.lock().insert(peer, server.generation);
        if previous != Some(server.generation) {
            if previous.is_some() {
                self.emit(peer, ConnectionEventKind::Closed);
            }
            self.emit(peer, ConnectionEventKind::Connected);
        }
        // As over TCP: the server answers a protocol it does not serve, or serves with other
        // types, with a status.
        let service = match server.routes.service::<P>() {
            Some(Some(service)) => service,
            Some(None) => {
                return Err(RpcError::Remote(Status::invalid_argument(format!(
                    "protocol {} is served at {peer} with another codec or other message types",
                    P::NAME
                ))))
            }
            None => {
                return Err(RpcError::Remote(Status::unimplemented(format!(
                    "protocol {} is not served at {peer} (protocols served: {})",
                    P::NAME,
                    server.routes.names().collect::<Vec<_>>().join(", ")
                ))))
            }
        };
        Ok(Routed {
            host: server,
            service,
            delay,
            drop,
        })
    }

    pub(super) fn lost(&self, peer: SocketAddr, reason: &str) -> RpcError {
        self.disconnected(
            peer,
            ConnectionEventKind::Lost {
                reason: reason.into(),
            },
        );
        RpcError::ConnectionLost {
            addr: peer,
            reason: reason.into(),
        }
    }

    pub(super) fn partitioned(&self, peer: SocketAddr) -> bool {
        self.net.faults.lock().is_partitioned(self.local, peer)
    }

    /// Completes when the link to `peer` is cut (never, while it is not).
    pub(super) async fn cut(&self, peer: SocketAddr) {
        let mut cuts = self.net.cuts.subscribe();
        loop {
            if self.partitioned(peer) {
                return;
            }
            if cuts.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Server side of the transport: the request as the handler will see it.
    fn server_decode(&self, server: &Host, payload: &[u8]) -> Result<P::Request, RpcError> {
        if payload.len() > server.config.max_request_bytes {
            return Err(RpcError::TooLarge {
                direction: Direction::Request,
                len: payload.len() as u64,
                limit: server.config.max_request_bytes as u64,
            });
        }
        <P::Codec as Codec>::decode(payload).map_err(|e| {
            RpcError::Remote(Status::invalid_argument(format!(
                "request could not be decoded: {e}"
            )))
        })
    }

    /// Client side: a payload from the server, through the client's limit and codec.
    pub(super) fn client_decode<T: crate::protocol::Message>(
        &self,
        payload: &[u8],
    ) -> Result<T, RpcError> {
        if payload.len() > self.config.max_response_bytes {
            return Err(RpcError::TooLarge {
                direction: Direction::Response,
                len: payload.len() as u64,
                limit: self.config.max_response_bytes as u64,
            });
        }
        decode_response::<P::Codec, T>(payload)
    }
}

async fn with_deadline<T>(
    timeout: Option<Duration>,
    sent: &AtomicBool,
    call: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    match timeout {
        None => call.await,
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::Timeout {
                request_sent: sent.load(Ordering::Acquire),
            }),
        },
    }
}

impl<P: Protocol> Transport<P> for LocalClient<P> {
    fn unary(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<P::Response, RpcError>> {
        let inner = self.inner.clone();
        let encoded = encode_payload::<P::Codec, _>(&req, inner.config.max_request_bytes);
        Box::pin(async move {
            let payload = encoded.map_err(|e| e.into_rpc(Direction::Request))?;
            let timeout = opts.timeout.or(inner.config.default_timeout);
            let deadline = timeout.map(|t| Instant::now() + t);
            let sent = AtomicBool::new(false);
            with_deadline(timeout, &sent, async {
                let Routed {
                    host: server,
                    service,
                    delay,
                    drop,
                } = inner.route(peer)?;
                let req = inner.server_decode(&server, &payload)?;
                sent.store(true, Ordering::Release);
                delay_by(delay).await;
                if drop == Some(Direction::Request) {
                    return Err(inner.lost(peer, "request lost (fault injection)"));
                }
                let ctx = CallContext {
                    peer: inner.local,
                    deadline,
                };
                let limit = server.config.max_response_bytes;
                let stop = server.stopped.clone();
                let task = AbortOnDrop(tokio::spawn(async move {
                    let outcome = tokio::select! {
                        r = service.call_unary(ctx, req) => r,
                        _ = sleep_until(deadline) => Err(deadline_status()),
                        _ = stopped(stop) => return None,
                    };
                    Some(outcome.and_then(|resp| {
                        encode_payload::<P::Codec, _>(&resp, limit).map_err(|e| e.into_status())
                    }))
                }));
                let answer = tokio::select! {
                    answer = task => match answer {
                        Some(answer) => answer,
                        None => return Err(inner.lost(peer, "server shut down")),
                    },
                    // Dropping `task` here drops the handler.
                    _ = inner.cut(peer) => return Err(inner.lost(peer, "partitioned")),
                };
                delay_by(delay).await;
                if inner.partitioned(peer) {
                    return Err(inner.lost(peer, "partitioned"));
                }
                if drop == Some(Direction::Response) {
                    return Err(inner.lost(peer, "response lost (fault injection)"));
                }
                match answer {
                    Ok(bytes) => inner.client_decode::<P::Response>(&bytes),
                    Err(status) => Err(RpcError::from_status(status)),
                }
            })
            .await
        })
    }

    fn stream(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<RpcStream<P::Item>, RpcError>> {
        let inner = self.inner.clone();
        let encoded = encode_payload::<P::Codec, _>(&req, inner.config.max_request_bytes);
        Box::pin(async move {
            let payload = encoded.map_err(|e| e.into_rpc(Direction::Request))?;
            let timeout = opts.timeout.or(inner.config.default_timeout);
            let deadline = timeout.map(|t| Instant::now() + t);
            let sent = AtomicBool::new(false);
            with_deadline(timeout, &sent, async {
                let Routed {
                    host: server,
                    service,
                    delay,
                    drop,
                } = inner.route(peer)?;
                let req = inner.server_decode(&server, &payload)?;
                sent.store(true, Ordering::Release);
                delay_by(delay).await;
                if drop.is_some() {
                    return Err(inner.lost(peer, "stream lost (fault injection)"));
                }
                let ctx = CallContext {
                    peer: inner.local,
                    deadline,
                };
                let (tx, rx) = mpsc::channel::<Pumped>(STREAM_BUFFER);
                let limit = server.config.max_response_bytes;
                let stop = server.stopped.clone();
                let task = AbortOnDrop(tokio::spawn(async move {
                    let opened = tokio::select! {
                        r = service.call_stream(ctx, req) => r,
                        _ = sleep_until(deadline) => Err(deadline_status()),
                        _ = stopped(stop.clone()) => return None,
                    };
                    let items = match opened {
                        Ok(items) => items,
                        Err(status) => return Some(Err(status)),
                    };
                    tokio::spawn(pump::<P>(items, tx, limit, stop));
                    Some(Ok(()))
                }));
                let opened = tokio::select! {
                    opened = task => opened,
                    _ = inner.cut(peer) => return Err(inner.lost(peer, "partitioned")),
                };
                match opened {
                    None => return Err(inner.lost(peer, "server shut down")),
                    Some(Err(status)) => return Err(RpcError::from_status(status)),
                    Some(Ok(())) => {}
                }
                Ok(item_stream(inner.clone(), peer, rx))
            })
            .await
        })
    }

    fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }
}
