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
//!   limits, and TLS at a seam ([`tcp::io`], implemented by [`tcp::tls`]);
//! - in-process ([`Network`], [`LocalClient`]): servers registered under addresses in one
//!   process, with seeded fault injection (partitions, drops, delays) for cluster tests.
//!
//! Errors: handlers fail with a [`Status`]; callers see an [`RpcError`], whose
//! [`RpcError::delivery`] says whether the request may have been applied. See docs/rpc.md.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use cairn_rpc::*;
//!
//! struct Upper;
//! impl Protocol for Upper {
//!     const NAME: &'static str = "example.upper.v1";
//!     type Codec = PostcardCodec;
//!     type Request = String;
//!     type Response = String;
//!     type Item = char;
//! }
//!
//! struct UpperService;
//! impl Service<Upper> for UpperService {
//!     async fn unary(&self, _ctx: CallContext, req: String) -> Result<String, Status> {
//!         if req.is_empty() {
//!             return Err(Status::invalid_argument("empty"));
//!         }
//!         Ok(req.to_uppercase())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let routes = Routes::new().route::<Upper, _>(Arc::new(UpperService));
//!
//! // Over TCP ...
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn({
//!     let routes = routes.clone();
//!     async move {
//!         RpcServer::new(ServerConfig::default())
//!             .serve(listener, routes, async { let _ = stopped.await; })
//!             .await
//!     }
//! });
//! let client = Client::new(TcpClient::<Upper>::new(ClientConfig::default()));
//! assert_eq!(client.call(addr, "hi".into()).await.unwrap(), "HI");
//! let err = client.call(addr, String::new()).await.unwrap_err();
//! assert_eq!(err.status().unwrap().code, Code::InvalidArgument);
//! stop.send(()).unwrap();
//! server.await.unwrap().unwrap();
//!
//! // ... and in process, with the same service and client API.
//! let net = Network::new(7);
//! let server_addr: SocketAddr = "127.0.0.1:8300".parse().unwrap();
//! let _server = net.serve(server_addr, routes, ServerConfig::default()).unwrap();
//! let local: SocketAddr = "127.0.0.2:8300".parse().unwrap();
//! let client = Client::new(net.client::<Upper>(local, ClientConfig::default()));
//! assert_eq!(client.call(server_addr, "hi".into()).await.unwrap(), "HI");
//! net.partition(local, server_addr);
//! let err = client.call(server_addr, "hi".into()).await.unwrap_err();
//! assert!(err.is_not_delivered());
//! # }
//! ```

mod backoff;
mod client;
pub mod codec;
mod config;
mod deadline;
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
