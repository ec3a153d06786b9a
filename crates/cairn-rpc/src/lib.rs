//! Cairn's server RPC layer: how client agents reach servers (forwarded writes and reads,
//! blocking queries, change streams) and, later, how servers reach each other (Raft).
//!
//! It knows nothing of Cairn's types. A user defines a [`Protocol`] (request, response and
//! stream-item types, plus a [`Codec`]) and implements [`Service`] for it. A server answers
//! the protocols in its [`Routes`], and callers hold a [`Client`]. Two transports sit behind
//! the same API and pass one contract test suite:
//!
//! - TCP ([`RpcServer`], [`TcpClient`]): HTTP/2 over TCP, messages framed inside stream bodies
//!   ([`frame`]), one multiplexed connection per peer, deadlines, cancellation, keepalive,
//!   limits, and a seam for TLS ([`tcp::io`]);
//! - in-process ([`Network`], [`LocalClient`]): servers registered under addresses in one
//!   process, with seeded fault injection (partitions, drops, delays) for cluster tests.
//!
//! Errors: handlers fail with a [`Status`]; callers see an [`RpcError`], whose
//! [`RpcError::delivery`] says whether the request may have been applied. See docs/rpc.md.

mod backoff;
mod client;
pub mod codec;
mod config;
mod error;
pub mod frame;
pub mod local;
mod message;
mod protocol;
mod routes;
mod status;
pub mod tcp;

pub use client::{CallOptions, Client, ConnectionEvent, ConnectionEventKind, RpcStream, Transport};
pub use codec::{Codec, CodecError, JsonCodec, PostcardCodec};
pub use config::{
    ClientConfig, ServerConfig, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{Delivery, Direction, RpcError};
pub use local::{LocalClient, LocalServer, Network};
pub use protocol::{CallContext, ItemStream, Message, Protocol, Service};
pub use routes::Routes;
pub use status::{Code, Status};
pub use tcp::{RpcServer, TcpClient};
