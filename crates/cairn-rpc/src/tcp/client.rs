//! The TCP client: each call is one HTTP/2 stream on a connection from the pool
//! ([`super::pool`]), with its deadline, its delivery bookkeeping and its response framing.
//!
//! Cancellation needs no code: a call owns its HTTP/2 stream handles, and dropping them (the
//! caller dropped the future or the stream, or the deadline fired) makes `h2` send
//! `RST_STREAM(CANCEL)`, on which the server drops the handler.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream;
use h2::client::{ResponseFuture, SendRequest};
use h2::{Reason, RecvStream};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::client::{CallOptions, ConnectionEvent, RpcStream, Transport};
use crate::config::ClientConfig;
use crate::deadline::{deadline_call, CallDeadline};
use crate::error::{Direction, RpcError};
use crate::frame::{FrameDecoder, FrameError, FrameKind};
use crate::message::{decode_response, decode_status, encode_message};
use crate::protocol::{content_type, CallKind, Protocol};
use crate::tcp::body::{next_frame, send_all, RecvError};
use crate::tcp::io::{Connector, PlainTcp};
use crate::tcp::pool::{LiveConn, Pool};
use crate::tcp::{OPEN_FAILED_HEADER, TIMEOUT_HEADER};

/// Calls servers of protocol `P` over TCP. Cheap to clone (clones share connections).
pub struct TcpClient<P: Protocol> {
    inner: Arc<Pool>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> Clone for TcpClient<P> {
    fn clone(&self) -> Self {
        TcpClient {
            inner: self.inner.clone(),
            _protocol: PhantomData,
        }
    }
}

/// A call failed before the server could have seen it; worth one retry on a fresh connection.
struct NotSent(String);

impl<P: Protocol> TcpClient<P> {
    pub fn new(config: ClientConfig) -> Self {
        Self::with_connector(config, PlainTcp)
    }

    /// With a custom connector (the TLS seam).
    pub fn with_connector(config: ClientConfig, connector: impl Connector) -> Self {
        TcpClient {
            inner: Arc::new(Pool::new(config, Arc::new(connector))),
            _protocol: PhantomData,
        }
    }
}

/// Maps a failure after the request was sent.
fn lost(peer: SocketAddr, e: &h2::Error) -> RpcError {
    RpcError::ConnectionLost {
        addr: peer,
        reason: e.to_string(),
    }
}

fn recv_error(peer: SocketAddr, e: RecvError) -> RpcError {
    match e {
        RecvError::H2(e) => lost(peer, &e),
        RecvError::Frame(FrameError::TooLarge { len, limit }) => RpcError::TooLarge {
            direction: Direction::Response,
            len: len as u64,
            limit: limit as u64,
        },
        RecvError::Frame(e) => RpcError::Decode {
            direction: Direction::Response,
            error: crate::codec::CodecError {
                codec: "frame",
                message: e.to_string(),
            },
        },
    }
}

/// Starts one call on `conn`: sends headers and the request frame, waits for the response
/// headers. `call.sent` flips once the request has been handed to the connection.
async fn start<P: Protocol>(
    conn: &LiveConn,
    peer: SocketAddr,
    kind: CallKind,
    frame: Bytes,
    call: &CallDeadline,
) -> Result<Result<http::Response<RecvStream>, RpcError>, NotSent> {
    let mut ready = SendRequest::clone(&conn.send)
        .ready()
        .await
        .map_err(|e| NotSent(e.to_string()))?;
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{peer}{}", kind.path::<P>()))
        .header(http::header::CONTENT_TYPE, content_type::<P>());
    if let Some(deadline) = call.at {
        // What is left of the caller's deadline, so the server gives up when the caller does.
        // Rounded up to the next millisecond: rounded down, the server's timer (started on
        // receipt) could fire just before the caller's deadline and end the call early.
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_nanos().div_ceil(1_000_000);
        request = request.header(TIMEOUT_HEADER, ms.to_string());
    }
    let request = request
        .body(())
        .map_err(|e| NotSent(format!("bad request: {e}")))?;
    let (mut response, mut body): (ResponseFuture, _) = ready
        .send_request(request, false)
        .map_err(|e| NotSent(e.to_string()))?;
    call.sent.store(true, Ordering::Release);
    // Send the body while watching for an early answer (the server may refuse the request
    // before reading all of it, e.g. when it is over the server's limit).
    let early = {
        let send = send_all(&mut body, frame, true);
        tokio::pin!(send);
        tokio::select! {
            r = &mut response => Some(r),
            _ = &mut send => None,
        }
    };
    let response = match early {
        Some(r) => r,
        None => response.await,
    };
    match response {
        Ok(r) => Ok(Ok(r)),
        Err(e) if e.reason() == Some(Reason::REFUSED_STREAM) => {
            Err(NotSent(format!("stream refused: {e}")))
        }
        Err(e) => Ok(Err(lost(peer, &e))),
    }
}

/// Runs `start` with one retry on a fresh connection when the first connection turned out to
/// be stale before the request was processed.
async fn open<P: Protocol>(
    inner: &Arc<Pool>,
    peer: SocketAddr,
    kind: CallKind,
    frame: Bytes,
    call: &CallDeadline,
) -> Result<http::Response<RecvStream>, RpcError> {
    let mut last = String::new();
    for _ in 0..2 {
        let conn = inner.connection(peer).await?;
        match start::<P>(&conn, peer, kind, frame.clone(), call).await {
            Ok(result) => return result,
            Err(NotSent(reason)) => {
                conn.alive.store(false, Ordering::Release);
                call.sent.store(false, Ordering::Release);
                last = reason;
            }
        }
    }
    Err(RpcError::Unreachable {
        addr: peer,
        reason: last,
    })
}

/// The next frame of a response body, with failures as the caller sees them.
async fn next(
    peer: SocketAddr,
    body: &mut RecvStream,
    decoder: &mut FrameDecoder,
) -> Result<Option<(FrameKind, Bytes)>, RpcError> {
    next_frame(body, decoder)
        .await
        .map_err(|e| recv_error(peer, e))
}

/// The error a status frame carries.
fn remote(payload: &[u8]) -> RpcError {
    RpcError::from_status(decode_status(payload))
}

impl<P: Protocol> Transport<P> for TcpClient<P> {
    fn unary(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<P::Response, RpcError>> {
        let inner = self.inner.clone();
        let config = &self.inner.config;
        let encoded = encode_message::<P::Codec, _>(&req, config.max_request_bytes);
        deadline_call(encoded, &opts, config, move |frame, call| async move {
            let response = open::<P>(&inner, peer, CallKind::Unary, frame, &call).await?;
            let mut body = response.into_body();
            let mut decoder = FrameDecoder::new(inner.config.max_response_bytes);
            match next(peer, &mut body, &mut decoder).await? {
                Some((FrameKind::Message, payload)) => {
                    decode_response::<P::Codec, P::Response>(&payload)
                }
                Some((FrameKind::Status, payload)) => Err(remote(&payload)),
                None => Err(RpcError::ConnectionLost {
                    addr: peer,
                    reason: "response ended without a message".into(),
                }),
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
        let encoded = encode_message::<P::Codec, _>(&req, config.max_request_bytes);
        deadline_call(encoded, &opts, config, move |frame, call| async move {
            let response = open::<P>(&inner, peer, CallKind::Stream, frame, &call).await?;
            let failed = response.headers().contains_key(OPEN_FAILED_HEADER);
            let mut body = response.into_body();
            let mut decoder = FrameDecoder::new(inner.config.max_response_bytes);
            if failed {
                return match next(peer, &mut body, &mut decoder).await? {
                    Some((FrameKind::Status, payload)) => Err(remote(&payload)),
                    _ => Err(RpcError::ConnectionLost {
                        addr: peer,
                        reason: "stream refused without a status".into(),
                    }),
                };
            }
            Ok(item_stream::<P>(peer, body, decoder))
        })
    }

    fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }
}

/// The items of an open stream; reads (and so returns flow-control window) only when polled.
fn item_stream<P: Protocol>(
    peer: SocketAddr,
    body: RecvStream,
    decoder: FrameDecoder,
) -> RpcStream<P::Item> {
    let state = Some((body, decoder));
    RpcStream::new(Box::pin(stream::unfold(state, move |state| async move {
        let (mut body, mut decoder) = state?;
        match next_frame(&mut body, &mut decoder).await {
            Ok(Some((FrameKind::Message, payload))) => {
                let item = decode_response::<P::Codec, P::Item>(&payload);
                let next = item.is_ok().then_some((body, decoder));
                Some((item, next))
            }
            Ok(Some((FrameKind::Status, payload))) => Some((Err(remote(&payload)), None)),
            Ok(None) => None,
            Err(e) => Some((Err(recv_error(peer, e)), None)),
        }
    })))
}
