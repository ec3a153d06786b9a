//! The TCP transport: HTTP/2 (the `h2` crate) over TCP, one connection per peer carrying many
//! concurrent calls, each call one HTTP/2 stream (`POST /<protocol>/unary|stream`).

mod body;
pub(crate) mod call;
mod client;
pub mod io;
mod keepalive;
mod pool;
mod server;
pub mod tls;

pub use client::TcpClient;
pub use server::RpcServer;

/// Request header: the caller's remaining deadline in milliseconds.
pub(crate) const TIMEOUT_HEADER: &str = "cairn-timeout-ms";
/// Response header: the stream could not be opened; the body is one status frame.
pub(crate) const OPEN_FAILED_HEADER: &str = "cairn-open-failed";
