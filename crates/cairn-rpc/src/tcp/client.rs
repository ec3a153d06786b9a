//! The TCP client: a small pool of lazily opened HTTP/2 connections per peer (one by default),
//! shared by all calls to it; reconnects with backoff; reports connection health as
//! [`ConnectionEvent`]s.
//!
//! Cancellation needs no code: a call owns its HTTP/2 stream handles, and dropping them (the
//! caller dropped the future or the stream, or the deadline fired) makes `h2` send
//! `RST_STREAM(CANCEL)`, on which the server drops the handler.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream;
use h2::client::{ResponseFuture, SendRequest};
use h2::{Reason, RecvStream};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::debug;

use crate::backoff::Backoff;
use crate::client::{CallOptions, ConnectionEvent, ConnectionEventKind, RpcStream, Transport};
use crate::config::ClientConfig;
use crate::error::{Direction, RpcError};
use crate::frame::{FrameDecoder, FrameError, FrameKind};
use crate::message::{decode_response, decode_status, encode_message};
use crate::protocol::{content_type, CallKind, Protocol};
use crate::tcp::body::{next_frame, send_all, RecvError};
use crate::tcp::io::{Connector, PlainTcp};
use crate::tcp::keepalive;
use crate::tcp::{OPEN_FAILED_HEADER, TIMEOUT_HEADER};

/// Calls servers of protocol `P` over TCP. Cheap to clone (clones share connections).
pub struct TcpClient<P: Protocol> {
    inner: Arc<Inner>,
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

struct Inner {
    config: ClientConfig,
    connector: Arc<dyn Connector>,
    peers: parking_lot::Mutex<HashMap<SocketAddr, Arc<Peer>>>,
    events: broadcast::Sender<ConnectionEvent>,
}

/// One peer: its pool of connections (used in turn; each is a slot that is connected on
/// demand), and the connect state behind an async lock so only one caller connects at a time.
struct Peer {
    slots: Vec<parking_lot::Mutex<Option<LiveConn>>>,
    next: AtomicUsize,
    connecting: tokio::sync::Mutex<Backoff>,
}

impl Peer {
    fn live(&self, slot: usize) -> Option<LiveConn> {
        let live = self.slots[slot].lock();
        live.as_ref()
            .filter(|c| c.alive.load(Ordering::Acquire))
            .cloned()
    }
}

#[derive(Clone)]
struct LiveConn {
    send: Arc<SendRequest<Bytes>>,
    alive: Arc<AtomicBool>,
}

/// A call failed before the server could have seen it; worth one retry on a fresh connection.
struct NotSent(String);

impl<P: Protocol> TcpClient<P> {
    pub fn new(config: ClientConfig) -> Self {
        Self::with_connector(config, PlainTcp)
    }

    /// With a custom connector (the TLS seam).
    pub fn with_connector(config: ClientConfig, connector: impl Connector) -> Self {
        let (events, _) = broadcast::channel(256);
        TcpClient {
            inner: Arc::new(Inner {
                config,
                connector: Arc::new(connector),
                peers: parking_lot::Mutex::new(HashMap::new()),
                events,
            }),
            _protocol: PhantomData,
        }
    }
}

impl Inner {
    fn emit(&self, peer: SocketAddr, kind: ConnectionEventKind) {
        let _ = self.events.send(ConnectionEvent { peer, kind });
    }

    /// A live connection to `peer` (the pool's next slot), connecting if needed (one connect
    /// at a time per peer; concurrent callers wait for it and share the result).
    async fn connection(self: &Arc<Self>, peer: SocketAddr) -> Result<LiveConn, RpcError> {
        let pool = self
            .peers
            .lock()
            .entry(peer)
            .or_insert_with(|| {
                Arc::new(Peer {
                    slots: (0..self.config.connections_per_peer.max(1))
                        .map(|_| parking_lot::Mutex::new(None))
                        .collect(),
                    next: AtomicUsize::new(0),
                    connecting: tokio::sync::Mutex::new(Backoff::new(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                    )),
                })
            })
            .clone();
        let slot = pool.next.fetch_add(1, Ordering::Relaxed) % pool.slots.len();
        if let Some(conn) = pool.live(slot) {
            return Ok(conn);
        }
        let mut backoff = pool.connecting.lock().await;
        // Someone else may have connected while this caller waited for the lock.
        if let Some(conn) = pool.live(slot) {
            return Ok(conn);
        }
        if let Err((last, wait)) = backoff.check(Instant::now()) {
            return Err(RpcError::Unreachable {
                addr: peer,
                reason: format!("not retrying for {wait:?} after: {last}"),
            });
        }
        let attempt = tokio::time::timeout(self.config.connect_timeout, self.connect(peer)).await;
        let result = match attempt {
            Ok(result) => result,
            Err(_) => Err(format!(
                "connect timed out after {:?}",
                self.config.connect_timeout
            )),
        };
        match result {
            Ok(conn) => {
                backoff.succeeded();
                *pool.slots[slot].lock() = Some(conn.clone());
                Ok(conn)
            }
            Err(reason) => {
                backoff.failed(Instant::now(), reason.clone());
                Err(RpcError::Unreachable { addr: peer, reason })
            }
        }
    }

    async fn connect(self: &Arc<Self>, peer: SocketAddr) -> Result<LiveConn, String> {
        let tcp = TcpStream::connect(peer)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io = self
            .connector
            .connect(peer, tcp)
            .await
            .map_err(|e| format!("connector: {e}"))?;
        let (send, mut conn) = h2::client::Builder::new()
            .initial_window_size(self.config.stream_window)
            .initial_connection_window_size(self.config.connection_window)
            .max_header_list_size(16 << 10)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| format!("http/2 handshake: {e}"))?;
        let alive = Arc::new(AtomicBool::new(true));
        let keepalive = keepalive::run(
            conn.ping_pong(),
            self.config.keepalive_interval,
            self.config.keepalive_timeout,
        );
        let me = Arc::downgrade(self);
        let flag = alive.clone();
        let send = Arc::new(send);
        // Only a weak handle: the connection must still end when the pool lets go of it.
        let probe = Arc::downgrade(&send);
        tokio::spawn(async move {
            let outcome = tokio::select! {
                r = conn => match r {
                    Ok(()) => ended_how(probe).await,
                    Err(e) if e.is_go_away() && e.is_remote() => ConnectionEventKind::Closed,
                    Err(e) => ConnectionEventKind::Lost { reason: e.to_string() },
                },
                reason = keepalive => ConnectionEventKind::Lost { reason },
            };
            flag.store(false, Ordering::Release);
            debug!(%peer, ?outcome, "rpc: connection ended");
            if let Some(inner) = me.upgrade() {
                inner.emit(peer, outcome);
            }
        });
        self.emit(peer, ConnectionEventKind::Connected);
        Ok(LiveConn { send, alive })
    }
}

/// Why a connection whose I/O ended cleanly ended: after the peer's GOAWAY it was an orderly
/// close (`Closed`); a bare end of stream (the peer's process or host dropped it, or cut it
/// after its shutdown grace) is `Lost`. h2 keeps the reason as the connection's error, which
/// a request handle reports.
async fn ended_how(probe: std::sync::Weak<SendRequest<Bytes>>) -> ConnectionEventKind {
    let Some(send) = probe.upgrade() else {
        return ConnectionEventKind::Closed;
    };
    let mut send = (*send).clone();
    match futures::future::poll_fn(|cx| send.poll_ready(cx)).await {
        Err(e) if e.is_go_away() && e.is_remote() => ConnectionEventKind::Closed,
        Err(e) => ConnectionEventKind::Lost {
            reason: e.to_string(),
        },
        Ok(()) => ConnectionEventKind::Lost {
            reason: "connection closed".into(),
        },
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
/// headers. `sent` flips once the request has been handed to the connection.
async fn start<P: Protocol>(
    conn: &LiveConn,
    peer: SocketAddr,
    kind: CallKind,
    frame: Bytes,
    deadline: Option<Instant>,
    sent: &AtomicBool,
) -> Result<Result<http::Response<RecvStream>, RpcError>, NotSent> {
    let mut ready = SendRequest::clone(&conn.send)
        .ready()
        .await
        .map_err(|e| NotSent(e.to_string()))?;
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{peer}{}", kind.path::<P>()))
        .header(http::header::CONTENT_TYPE, content_type::<P>());
    if let Some(deadline) = deadline {
        // What is left of the caller's deadline, so the server gives up when the caller does.
        let left = deadline.saturating_duration_since(Instant::now());
        request = request.header(TIMEOUT_HEADER, left.as_millis().to_string());
    }
    let request = request
        .body(())
        .map_err(|e| NotSent(format!("bad request: {e}")))?;
    let (mut response, mut body): (ResponseFuture, _) = ready
        .send_request(request, false)
        .map_err(|e| NotSent(e.to_string()))?;
    sent.store(true, Ordering::Release);
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
    inner: &Arc<Inner>,
    peer: SocketAddr,
    kind: CallKind,
    frame: Bytes,
    deadline: Option<Instant>,
    sent: &AtomicBool,
) -> Result<http::Response<RecvStream>, RpcError> {
    let mut last = String::new();
    for _ in 0..2 {
        let conn = inner.connection(peer).await?;
        match start::<P>(&conn, peer, kind, frame.clone(), deadline, sent).await {
            Ok(result) => return result,
            Err(NotSent(reason)) => {
                conn.alive.store(false, Ordering::Release);
                sent.store(false, Ordering::Release);
                last = reason;
            }
        }
    }
    Err(RpcError::Unreachable {
        addr: peer,
        reason: last,
    })
}

/// Applies the deadline; a timeout reports whether the request had gone out.
async fn with_deadline<T>(
    timeout: Option<Duration>,
    sent: &AtomicBool,
    call: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    match timeout {
        None => call.await,
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::Timeout {
                request_sent: sent.load(Ordering::Acquire),
            }),
        },
    }
}

impl<P: Protocol> Transport<P> for TcpClient<P> {
    fn unary(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<P::Response, RpcError>> {
        let inner = self.inner.clone();
        let encoded = encode_message::<P::Codec, _>(&req, inner.config.max_request_bytes);
        Box::pin(async move {
            let frame = encoded.map_err(|e| e.into_rpc(Direction::Request))?;
            let timeout = opts.timeout.or(inner.config.default_timeout);
            let deadline = timeout.map(|t| Instant::now() + t);
            let sent = AtomicBool::new(false);
            with_deadline(timeout, &sent, async {
                let response =
                    open::<P>(&inner, peer, CallKind::Unary, frame, deadline, &sent).await?;
                let mut body = response.into_body();
                let mut decoder = FrameDecoder::new(inner.config.max_response_bytes);
                match next_frame(&mut body, &mut decoder)
                    .await
                    .map_err(|e| recv_error(peer, e))?
                {
                    Some((FrameKind::Message, payload)) => {
                        decode_response::<P::Codec, P::Response>(&payload)
                    }
                    Some((FrameKind::Status, payload)) => {
                        Err(RpcError::from_status(decode_status(&payload)))
                    }
                    None => Err(RpcError::ConnectionLost {
                        addr: peer,
                        reason: "response ended without a message".into(),
                    }),
                }
            })
            .await
        })
    }

    fn stream(
        &self,
        peer: SocketAddr,
        req: P::Request,
        opts: CallOptions,
    ) -> BoxFuture<'static, Result<RpcStream<P::Item>, RpcError>> {
        let inner = self.inner.clone();
        let encoded = encode_message::<P::Codec, _>(&req, inner.config.max_request_bytes);
        Box::pin(async move {
            let frame = encoded.map_err(|e| e.into_rpc(Direction::Request))?;
            let timeout = opts.timeout.or(inner.config.default_timeout);
            let deadline = timeout.map(|t| Instant::now() + t);
            let sent = AtomicBool::new(false);
            let limit = inner.config.max_response_bytes;
            with_deadline(timeout, &sent, async {
                let response =
                    open::<P>(&inner, peer, CallKind::Stream, frame, deadline, &sent).await?;
                let failed = response.headers().contains_key(OPEN_FAILED_HEADER);
                let mut body = response.into_body();
                let mut decoder = FrameDecoder::new(limit);
                if failed {
                    return match next_frame(&mut body, &mut decoder)
                        .await
                        .map_err(|e| recv_error(peer, e))?
                    {
                        Some((FrameKind::Status, payload)) => {
                            Err(RpcError::from_status(decode_status(&payload)))
                        }
                        _ => Err(RpcError::ConnectionLost {
                            addr: peer,
                            reason: "stream refused without a status".into(),
                        }),
                    };
                }
                Ok(item_stream::<P>(peer, body, decoder))
            })
            .await
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
            Ok(Some((FrameKind::Status, payload))) => {
                Some((Err(RpcError::from_status(decode_status(&payload))), None))
            }
            Ok(None) => None,
            Err(e) => Some((Err(recv_error(peer, e)), None)),
        }
    })))
}
