//! The in-process client: runs the handler of a server registered in the same [`super::Network`]
//! in its own task, with the real codec and limits on both sides, so behaviour matches TCP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::faults::Verdict;
use super::stream::{item_stream, pump, stopped, Pumped, STREAM_BUFFER};
use super::{Host, NetInner};
use crate::client::{CallOptions, ConnectionEvent, ConnectionEventKind, RpcStream, Transport};
use crate::codec::Codec;
use crate::config::ClientConfig;
use crate::deadline::{deadline_call, within, CallDeadline};
use crate::error::{Direction, RpcError};
use crate::message::{decode_response, encode_payload};
use crate::protocol::{CallContext, Protocol};
use crate::status::Status;

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

/// Fault-injected latency; zero costs nothing (a zero `sleep` would still wait for the next
/// timer tick, about a millisecond).
async fn delay_by(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
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

    /// How late a streamed item arrives now.
    pub(super) fn item_delay(&self) -> Duration {
        self.net.faults.lock().item_delay()
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

    /// Takes a call to the server at `peer`: routes it, decodes the request there (from then
    /// on it counts as sent) and waits out the injected delay; the injected loss is the
    /// caller's to apply.
    async fn deliver(
        &self,
        peer: SocketAddr,
        payload: &[u8],
        call: &CallDeadline,
    ) -> Result<(Routed<P>, CallContext, P::Request), RpcError> {
        let routed = self.route(peer)?;
        let req = self.server_decode(&routed.host, payload)?;
        call.sent.store(true, Ordering::Release);
        delay_by(routed.delay).await;
        let ctx = CallContext {
            peer: self.local,
            deadline: call.at,
        };
        Ok((routed, ctx, req))
    }

    /// Waits for a handler's task, which the server's shutdown cancels; if the link to `peer`
    /// is cut first, dropping the task drops the handler.
    async fn answer<T>(
        &self,
        peer: SocketAddr,
        task: AbortOnDrop<Option<T>>,
    ) -> Result<T, RpcError> {
        tokio::select! {
            answer = task => answer.ok_or_else(|| self.lost(peer, "server shut down")),
            _ = self.cut(peer) => Err(self.lost(peer, "partitioned")),
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

impl<P: Protocol> Transport<P> for LocalClient<P> {
    fn unary(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<P::Response, RpcError>> {
        let inner = self.inner.clone();
        let config = &self.inner.config;
        let encoded = encode_payload::<P::Codec, _>(&req, config.max_request_bytes);
        deadline_call(encoded, &opts, config, move |payload, call| async move {
            let (routed, ctx, req) = inner.deliver(peer, &payload, &call).await?;
            if routed.drop == Some(Direction::Request) {
                return Err(inner.lost(peer, "request lost (fault injection)"));
            }
            let (deadline, service) = (call.at, routed.service);
            let limit = routed.host.config.max_response_bytes;
            let stop = routed.host.stopped.clone();
            let task = AbortOnDrop(tokio::spawn(async move {
                let outcome = tokio::select! {
                    r = within(deadline, service.call_unary(ctx, req)) => r,
                    _ = stopped(stop) => return None,
                };
                Some(outcome.and_then(|resp| {
                    encode_payload::<P::Codec, _>(&resp, limit).map_err(|e| e.into_status())
                }))
            }));
            let answer = inner.answer(peer, task).await?;
            delay_by(routed.delay).await;
            if inner.partitioned(peer) {
                return Err(inner.lost(peer, "partitioned"));
            }
            if routed.drop == Some(Direction::Response) {
                return Err(inner.lost(peer, "response lost (fault injection)"));
            }
            match answer {
                Ok(bytes) => inner.client_decode::<P::Response>(&bytes),
                Err(status) => Err(RpcError::from_status(status)),
            }
        })
    }

    fn stream(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<RpcStream<P::Item>, RpcError>> {
        let inner = self.inner.clone();
        let config = &self.inner.config;
        let encoded = encode_payload::<P::Codec, _>(&req, config.max_request_bytes);
        deadline_call(encoded, &opts, config, move |payload, call| async move {
            let (routed, ctx, req) = inner.deliver(peer, &payload, &call).await?;
            if routed.drop.is_some() {
                return Err(inner.lost(peer, "stream lost (fault injection)"));
            }
            let (deadline, service) = (call.at, routed.service);
            let (tx, rx) = mpsc::channel::<Pumped>(STREAM_BUFFER);
            let limit = routed.host.config.max_response_bytes;
            let stop = routed.host.stopped.clone();
            let task = AbortOnDrop(tokio::spawn(async move {
                let opened = tokio::select! {
                    r = within(deadline, service.call_stream(ctx, req)) => r,
                    _ = stopped(stop.clone()) => return None,
                };
                let items = match opened {
                    Ok(items) => items,
                    Err(status) => return Some(Err(status)),
                };
                tokio::spawn(pump::<P>(items, tx, limit, stop));
                Some(Ok(()))
            }));
            inner
                .answer(peer, task)
                .await?
                .map_err(RpcError::from_status)?;
            Ok(item_stream(inner.clone(), peer, rx))
        })
    }

    fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }
}
