//! Tunables for both ends, with defaults sized for Cairn's server port. The in-process network
//! honours the size limits; the timing knobs apply to TCP only.

use std::time::Duration;

/// 4 MiB: the default largest request (forwarded writes and reads are small; raise it for a
/// protocol that ships snapshots in requests, as Raft's InstallSnapshot does).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 << 20;
/// 64 MiB: the default largest response or stream item (big catalog reads, snapshot chunks).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Client side (one per [`crate::TcpClient`] or [`crate::LocalClient`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Largest request this client will send; bigger ones fail locally with `TooLarge`.
    pub max_request_bytes: usize,
    /// Largest response or stream item this client will accept.
    pub max_response_bytes: usize,
    /// Deadline applied to calls that do not set their own (`None`: wait for ever).
    pub default_timeout: Option<Duration>,
    /// HTTP/2 connections kept to each peer, used in turn. One multiplexes any number of calls;
    /// more spread a very busy link over several connections (and server threads).
    pub connections_per_peer: usize,
    /// Bound on TCP connect + HTTP/2 handshake.
    pub connect_timeout: Duration,
    /// First wait after a failed connect before the next attempt; doubles per failure.
    pub backoff_initial: Duration,
    /// Cap on that wait.
    pub backoff_max: Duration,
    /// Ping an established connection this often...
    pub keepalive_interval: Duration,
    /// ...and declare it dead (event `Lost`) if the pong takes longer than this.
    pub keepalive_timeout: Duration,
    /// HTTP/2 per-stream receive window: how much of a response stream may be in flight
    /// before the server must wait for this client to consume.
    pub stream_window: u32,
    /// HTTP/2 per-connection receive window.
    pub connection_window: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            default_timeout: None,
            connections_per_peer: 1,
            connect_timeout: Duration::from_secs(3),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            stream_window: 1 << 20,
            connection_window: 8 << 20,
        }
    }
}

/// Server side (one per [`crate::RpcServer`] or in-process registration).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request accepted; bigger ones are refused with `RequestTooLarge` before the
    /// handler runs.
    pub max_request_bytes: usize,
    /// Largest response or stream item a handler may return; bigger ones become a
    /// `ResponseTooLarge` status.
    pub max_response_bytes: usize,
    /// Connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: calls in flight per connection (more wait in
    /// the client). It binds once the client has the server's settings, i.e. after the first
    /// round trip of a connection.
    pub max_streams_per_connection: u32,
    /// A new connection must complete the HTTP/2 preface and settings exchange within this.
    pub handshake_timeout: Duration,
    /// A request's body must arrive within this once its headers have.
    pub request_read_timeout: Duration,
    /// A connection with no call in flight for this long is closed (gracefully).
    pub idle_timeout: Duration,
    /// Ping each connection this often...
    pub keepalive_interval: Duration,
    /// ...and close it if the pong takes longer than this (the peer is gone).
    pub keepalive_timeout: Duration,
    /// On shutdown, calls in flight get this long to finish before their connections are cut.
    pub shutdown_grace: Duration,
    /// HTTP/2 per-stream receive window (request bodies).
    pub stream_window: u32,
    /// HTTP/2 per-connection receive window.
    pub connection_window: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_connections: 4096,
            max_streams_per_connection: 1024,
            handshake_timeout: Duration::from_secs(5),
            request_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            stream_window: 1 << 20,
            connection_window: 8 << 20,
        }
    }
}
