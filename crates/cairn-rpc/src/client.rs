//! The caller's side: one [`Transport`] trait with a TCP and an in-process implementation, and
//! the cloneable [`Client`] handle that code outside this crate holds.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream};
use tokio::sync::broadcast;

use crate::error::RpcError;
use crate::protocol::Protocol;

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Deadline for the call, overriding the client's default. For a unary call it bounds the
    /// whole call; for a stream call it bounds opening the stream (until the server has
    /// accepted it), after which items flow until the stream ends or is dropped. The server is
    /// told the deadline and drops its handler when it passes.
    pub timeout: Option<Duration>,
}

impl CallOptions {
    pub fn timeout(timeout: Duration) -> Self {
        CallOptions {
            timeout: Some(timeout),
        }
    }
}

/// What happened to the connection with a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEventKind {
    /// A connection was established.
    Connected,
    /// An established connection broke: I/O error, protocol error or missed keepalive. The
    /// peer may be dead (worth a gossip probe).
    Lost { reason: String },
    /// An established connection was closed in an orderly way (the peer said goodbye, e.g. it
    /// is shutting down or closed an idle connection).
    Closed,
}

/// A change in the health of the connection to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEvent {
    pub peer: SocketAddr,
    pub kind: ConnectionEventKind,
}

/// A stream call's items, in order. Ends after the last item, or with one `Err` (a handler
/// [`crate::Status`] as [`RpcError::Remote`], or a broken connection). Dropping it cancels the
/// stream on the server.
pub struct RpcStream<T> {
    inner: BoxStream<'static, Result<T, RpcError>>,
}

impl<T> RpcStream<T> {
    /// Wraps any stream; transports use this.
    pub fn new(inner: BoxStream<'static, Result<T, RpcError>>) -> Self {
        RpcStream { inner }
    }
}

impl<T> Stream for RpcStream<T> {
    type Item = Result<T, RpcError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T> std::fmt::Debug for RpcStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpcStream")
    }
}

/// A way to reach servers of protocol `P`. Implemented by [`crate::TcpClient`] and
/// [`crate::LocalClient`]; use it through [`Client`].
///
/// Contract (checked by the crate's contract test suite against both implementations):
/// concurrent calls are independent; dropping a returned future or stream cancels the call on
/// the server; errors follow [`RpcError`]'s delivery rules; size limits are enforced on both
/// ends; a peer that comes back on the same address is reached again without intervention.
pub trait Transport<P: Protocol>: Send + Sync + 'static {
    /// One request, one response. Without `opts.timeout` the transport's configured
    /// [`crate::ClientConfig::default_timeout`] applies.
    fn unary(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<P::Response, RpcError>>;

    /// One request, a stream of items.
    fn stream(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<RpcStream<P::Item>, RpcError>>;

    /// Connection-health events for all peers. Lagging receivers lose the oldest events.
    fn events(&self) -> broadcast::Receiver<ConnectionEvent>;
}

/// The handle other crates hold: cheap to clone, transport-agnostic.
pub struct Client<P: Protocol> {
    transport: Arc<dyn Transport<P>>,
}

impl<P: Protocol> Clone for Client<P> {
    fn clone(&self) -> Self {
        Client {
            transport: self.transport.clone(),
        }
    }
}

impl<P: Protocol> Client<P> {
    /// Wraps a transport.
    pub fn new(transport: impl Transport<P>) -> Self {
        Client {
            transport: Arc::new(transport),
        }
    }

    /// A unary call with the default deadline.
    pub async fn call(&self, peer: SocketAddr, req: P::Request) -> Result<P::Response, RpcError> {
        self.call_with(peer, req, CallOptions::default()).await
    }

    /// A unary call with options.
    pub async fn call_with(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> Result<P::Response, RpcError> {
        self.transport.unary(peer, req, opts).await
    }

    /// Opens a server stream with the default deadline for opening.
    pub async fn subscribe(
        &self,
        peer: SocketAddr,
        req: P::Request,
    ) -> Result<RpcStream<P::Item>, RpcError> {
        self.subscribe_with(peer, req, CallOptions::default()).await
    }

    /// Opens a server stream with options.
    pub async fn subscribe_with(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> Result<RpcStream<P::Item>, RpcError> {
        self.transport.stream(peer, req, opts).await
    }

    /// Connection-health events (see [`ConnectionEvent`]).
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.transport.events()
    }
}
