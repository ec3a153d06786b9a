//! In-process server streams: a pump task on the server side that pulls items only when the
//! bounded channel to the client has room (the stand-in for HTTP/2 flow control), and the
//! client's stream of items, which fails (rather than ends) if the server or the link goes away.
//! An item reaches the client the network's delay after the server sent it (items stay in
//! order), so a test can make a stream's follower, such as a client's replica, lag.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::client::ClientInner;
use crate::client::RpcStream;
use crate::error::RpcError;
use crate::message::encode_payload;
use crate::protocol::Protocol;
use crate::status::Status;

/// Items a stream may have in flight between server and client (the in-process stand-in for
/// the HTTP/2 window).
pub(super) const STREAM_BUFFER: usize = 16;

/// One message of an in-process stream.
pub(super) enum Pumped {
    /// An encoded item and when the server sent it.
    Item(Vec<u8>, Instant),
    /// The handler's stream ended normally.
    End,
    Status(Status),
    Lost(String),
}

/// Completes once the server is shut down.
pub(super) async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Server side of an in-process stream: pulls items only when the channel has room.
pub(super) async fn pump<P: Protocol>(
    mut items: crate::protocol::ItemStream<P::Item>,
    tx: mpsc::Sender<Pumped>,
    limit: usize,
    stop: watch::Receiver<bool>,
) {
    const SHUT_DOWN: &str = "server shut down";
    loop {
        // Room first, then the item: an item is pulled, and stamped as sent, only when
        // the window lets it go.
        let permit = tokio::select! {
            p = tx.reserve() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stopped(stop.clone()) => {
                let _ = tx.try_send(Pumped::Lost(SHUT_DOWN.into()));
                return;
            }
        };
        let next = tokio::select! {
            n = items.next() => Some(n),
            _ = tx.closed() => return,
            _ = stopped(stop.clone()) => None,
        };
        let Some(next) = next else {
            permit.send(Pumped::Lost(SHUT_DOWN.into()));
            return;
        };
        let msg = match next {
            None => Pumped::End,
            Some(Ok(item)) => match encode_payload::<P::Codec, _>(&item, limit) {
                Ok(bytes) => Pumped::Item(bytes, Instant::now()),
                Err(e) => Pumped::Status(e.into_status()),
            },
            Some(Err(status)) => Pumped::Status(status),
        };
        let last = !matches!(msg, Pumped::Item(..));
        permit.send(msg);
        if last {
            return;
        }
    }
}

pub(super) fn item_stream<P: Protocol>(
    inner: Arc<ClientInner<P>>,
    peer: SocketAddr,
    rx: mpsc::Receiver<Pumped>,
) -> RpcStream<P::Item> {
    RpcStream::new(Box::pin(futures::stream::unfold(Some(rx), move |rx| {
        let inner = inner.clone();
        async move {
            let mut rx = rx?;
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                _ = inner.cut(peer) => None,
            };
            if inner.partitioned(peer) {
                return Some((Err(inner.lost(peer, "partitioned")), None));
            }
            let Some(msg) = msg else {
                // The server side went away without ending the stream.
                return Some((Err(inner.lost(peer, "stream ended abruptly")), None));
            };
            match msg {
                Pumped::End => None,
                Pumped::Item(bytes, sent) => {
                    let delay = inner.item_delay();
                    if !delay.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep_until(sent + delay) => {}
                            _ = inner.cut(peer) => {}
                        }
                        if inner.partitioned(peer) {
                            return Some((Err(inner.lost(peer, "partitioned")), None));
                        }
                    }
                    let item = inner.client_decode::<P::Item>(&bytes);
                    let next = item.is_ok().then_some(rx);
                    Some((item, next))
                }
                Pumped::Status(status) => Some((Err(RpcError::from_status(status)), None)),
                Pumped::Lost(reason) => Some((Err(inner.lost(peer, &reason)), None)),
            }
        }
    })))
}
