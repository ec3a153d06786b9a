//! What a user of this crate defines: a [`Protocol`] (message types + codec) and a [`Service`]
//! that answers it. Both transports take the same two things.
//!
//! Multiplexing: one protocol has one request type, so its methods are variants of the user's
//! request enum (and the response enum answers them). Several protocols can share one server:
//! [`crate::Routes`] maps each [`Protocol::NAME`] to its service. Each call carries its
//! protocol and kind in the HTTP/2 path (`/NAME/unary`, `/NAME/stream`). So two protocols (for
//! example forwarding and Raft) are never confused, and a versioned name (`...v1`) lets a later
//! change be refused cleanly instead of misread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::panic::AssertUnwindSafe;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::codec::Codec;
use crate::status::Status;

/// A message type usable in a protocol.
pub trait Message: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Message for T {}

/// The types of one RPC protocol. Implement it on an empty marker type.
///
/// ```
/// use cairn_rpc::{PostcardCodec, Protocol};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// enum Req { Get(String), Put(String, u64) }
/// #[derive(Serialize, Deserialize)]
/// enum Resp { Value(Option<u64>), Done }
///
/// struct KvProtocol;
/// impl Protocol for KvProtocol {
///     const NAME: &'static str = "example.kv.v1";
///     type Codec = PostcardCodec;
///     type Request = Req;
///     type Response = Resp;
///     type Item = u64;
/// }
/// ```
pub trait Protocol: Send + Sync + 'static {
    /// Unique, versioned name; part of every call's path. ASCII letters, digits, `.`, `-`, `_`.
    const NAME: &'static str;
    /// How messages are encoded (see [`crate::codec`] for choosing).
    type Codec: Codec;
    /// What the client sends (for unary and stream calls alike).
    type Request: Message;
    /// What a unary call returns.
    type Response: Message;
    /// What a stream call yields, item by item.
    type Item: Message;
}

/// What the server knows about a call besides its request.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The remote address the call came from (for the in-process network: the client's
    /// registered address).
    pub peer: SocketAddr,
    /// When the caller stops waiting, if it said. The transport already drops the handler at
    /// this instant; a blocking read can use it to bound its wait.
    pub deadline: Option<Instant>,
}

/// A stream of items from a stream handler; an `Err` item ends the stream with that status.
pub type ItemStream<T> = BoxStream<'static, Result<T, Status>>;

/// The server side of a protocol. Handlers are plain futures: when the caller goes away (drops
/// the call, its deadline passes, its connection breaks) the transport drops the future, so
/// anything the handler holds (a blocking-query watch, a subscription) is released at once.
pub trait Service<P: Protocol>: Send + Sync + 'static {
    /// Answers one unary call.
    fn unary(
        &self,
        ctx: CallContext,
        req: P::Request,
    ) -> impl Future<Output = Result<P::Response, Status>> + Send;

    /// Opens a server stream. Return the stream once the subscription is set up (errors before
    /// that are returned as the call's status); the transport pulls items only as fast as the
    /// client consumes them. The default refuses with `Unimplemented`.
    fn stream(
        &self,
        ctx: CallContext,
        req: P::Request,
    ) -> impl Future<Output = Result<ItemStream<P::Item>, Status>> + Send {
        let _ = (ctx, req);
        async { Err(Status::unimplemented("this service has no stream calls")) }
    }
}

/// Object-safe form of [`Service`], used inside the transports.
pub(crate) trait DynService<P: Protocol>: Send + Sync + 'static {
    fn call_unary(
        self: Arc<Self>,
        ctx: CallContext,
        req: P::Request,
    ) -> BoxFuture<'static, Result<P::Response, Status>>;
    fn call_stream(
        self: Arc<Self>,
        ctx: CallContext,
        req: P::Request,
    ) -> BoxFuture<'static, Result<ItemStream<P::Item>, Status>>;
}

/// A handler that panics answers `Internal` instead of taking its connection down with it.
fn panicked() -> Status {
    Status::internal("the handler panicked")
}

impl<P: Protocol, S: Service<P>> DynService<P> for S {
    fn call_unary(
        self: Arc<Self>,
        ctx: CallContext,
        req: P::Request,
    ) -> BoxFuture<'static, Result<P::Response, Status>> {
        Box::pin(async move {
            AssertUnwindSafe(self.unary(ctx, req))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(panicked()))
        })
    }
    fn call_stream(
        self: Arc<Self>,
        ctx: CallContext,
        req: P::Request,
    ) -> BoxFuture<'static, Result<ItemStream<P::Item>, Status>> {
        Box::pin(async move {
            let items = AssertUnwindSafe(self.stream(ctx, req))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(panicked()))?;
            // A panic while producing an item ends the stream with `Internal`.
            let items = AssertUnwindSafe(items)
                .catch_unwind()
                .map(|item| match item {
                    Ok(item) => item,
                    Err(_) => Err(panicked()),
                });
            let items: ItemStream<P::Item> = Box::pin(items);
            Ok(items)
        })
    }
}

/// The kind of call, as carried in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Unary,
    Stream,
}

impl CallKind {
    pub(crate) fn path<P: Protocol>(self) -> String {
        match self {
            CallKind::Unary => format!("/{}/unary", P::NAME),
            CallKind::Stream => format!("/{}/stream", P::NAME),
        }
    }
}

/// The `content-type` both ends send for protocol `P`.
pub(crate) fn content_type<P: Protocol>() -> String {
    format!("application/cairn-rpc+{}", <P::Codec as Codec>::NAME)
}
