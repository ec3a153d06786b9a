//! HTTP/2 PING keepalive, used by both ends to notice a peer that vanished without closing
//! the connection (power loss, partition): a missed pong ends the connection.

use std::time::Duration;

use h2::{Ping, PingPong};

/// Pings every `interval`; returns (with the reason) when a pong is late or pinging fails.
/// Never returns while the peer answers.
pub(crate) async fn run(
    ping_pong: Option<PingPong>,
    interval: Duration,
    timeout: Duration,
) -> String {
    let Some(mut ping_pong) = ping_pong else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, ping_pong.ping(Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return format!("keepalive ping failed: {e}"),
            Err(_) => return format!("no keepalive pong within {timeout:?}"),
        }
    }
}
