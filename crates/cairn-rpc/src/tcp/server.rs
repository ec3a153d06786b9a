//! The TCP listener: accepts connections, speaks HTTP/2 on each, routes each call to its
//! protocol's service in a task of its own, and cancels that task the moment its caller goes
//! away.
//!
//! Per connection: a handshake deadline (garbage or silence on the port closes the connection
//! without disturbing anyone else), a keepalive, an idle close and a concurrent-stream limit;
//! per server: a connection limit and a graceful shutdown with a grace period.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::poll_fn;
use futures::StreamExt;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::codec::Codec;
use crate::config::ServerConfig;
use crate::error::Direction;
use crate::frame::{FrameDecoder, FrameError, FrameKind};
use crate::message::{encode_message, encode_status};
use crate::protocol::{content_type, CallContext, CallKind, DynService, Protocol};
use crate::routes::{parse_path, Routes};
use crate::status::{Code, Status};
use crate::tcp::body::{next_frame, send_all, RecvError};
use crate::tcp::io::{Acceptor, PlainTcp};
use crate::tcp::keepalive;
use crate::tcp::{OPEN_FAILED_HEADER, TIMEOUT_HEADER};

/// Serves one or more protocols on a TCP listener. Build it, then run [`RpcServer::serve`].
pub struct RpcServer {
    config: Arc<ServerConfig>,
    acceptor: Arc<dyn Acceptor>,
}

impl RpcServer {
    pub fn new(config: ServerConfig) -> Self {
        RpcServer {
            config: Arc::new(config),
            acceptor: Arc::new(PlainTcp),
        }
    }

    /// Replaces the plain-TCP acceptor (the TLS seam).
    pub fn with_acceptor(mut self, acceptor: impl Acceptor) -> Self {
        self.acceptor = Arc::new(acceptor);
        self
    }

    /// Accepts connections on `listener` and answers calls of the protocols in `routes` until
    /// `shutdown` completes. Then it stops accepting (the port closes at once), lets calls in
    /// flight run for [`ServerConfig::shutdown_grace`], and cuts whatever is left. Returns once
    /// every connection is closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        routes: Routes,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let routes = Arc::new(routes);
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        // Connections over the limit are told so in HTTP/2 terms (their calls were not
        // processed); this many at a time, the rest are simply closed.
        let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let Ok(permit) = limit.clone().try_acquire_owned() else {
                            warn!(%peer, limit = self.config.max_connections, "rpc: connection limit reached, refusing new connection");
                            if let Ok(slot) = refusals.clone().try_acquire_owned() {
                                let acceptor = self.acceptor.clone();
                                let deadline = self.config.handshake_timeout;
                                conns.spawn(async move {
                                    refuse(acceptor, peer, tcp, deadline).await;
                                    drop(slot);
                                });
                            }
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let conn = Connection {
                            config: self.config.clone(),
                            acceptor: self.acceptor.clone(),
                            routes: routes.clone(),
                            peer,
                        };
                        let stop = stop_rx.clone();
                        conns.spawn(async move {
                            conn.run(tcp, stop).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        warn!(error = %e, "rpc: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            debug!(
                remaining = conns.len(),
                "rpc: shutdown grace over, cutting connections"
            );
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// Connections over the limit being refused at once (each for at most the handshake timeout).
const REFUSALS_IN_FLIGHT: usize = 64;

/// Completes the HTTP/2 handshake only to send `GOAWAY(REFUSED_STREAM)` with no stream
/// processed: the client learns its calls were not delivered and may retry elsewhere.
async fn refuse(acceptor: Arc<dyn Acceptor>, peer: SocketAddr, tcp: TcpStream, within: Duration) {
    let work = async {
        let io = acceptor.accept(peer, tcp).await.ok()?;
        let mut conn = h2::server::handshake(io).await.ok()?;
        conn.abrupt_shutdown(h2::Reason::REFUSED_STREAM);
        let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
        Some(())
    };
    let _ = tokio::time::timeout(within, work).await;
}

/// One accepted connection.
struct Connection {
    config: Arc<ServerConfig>,
    acceptor: Arc<dyn Acceptor>,
    routes: Arc<Routes>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, tcp: TcpStream, mut stop: watch::Receiver<bool>) {
        let peer = self.peer;
        let cfg = self.config.clone();
        let handshake = async {
            let io = self
                .acceptor
                .accept(peer, tcp)
                .await
                .map_err(|e| e.to_string())?;
            h2::server::Builder::new()
                .max_concurrent_streams(cfg.max_streams_per_connection)
                .initial_window_size(cfg.stream_window)
                .initial_connection_window_size(cfg.connection_window)
                .max_header_list_size(16 << 10)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|e| e.to_string())
        };
        let mut conn = match tokio::time::timeout(cfg.handshake_timeout, handshake).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "rpc: handshake failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "rpc: handshake timed out");
                return;
            }
        };
        let keepalive = keepalive::run(
            conn.ping_pong(),
            cfg.keepalive_interval,
            cfg.keepalive_timeout,
        );
        tokio::pin!(keepalive);
        let mut calls = JoinSet::new();
        let mut last_active = Instant::now();
        let mut idle_check =
            tokio::time::interval((cfg.idle_timeout / 4).max(Duration::from_millis(10)));
        let mut closing = false;
        loop {
            tokio::select! {
                next = conn.accept() => match next {
                    Some(Ok((request, respond))) => {
                        last_active = Instant::now();
                        calls.spawn(dispatch(request, respond, self.routes.clone(), cfg.clone(), peer));
                    }
                    Some(Err(e)) => {
                        debug!(%peer, error = %e, "rpc: connection error");
                        break;
                    }
                    None => break,
                },
                Some(_) = calls.join_next(), if !calls.is_empty() => last_active = Instant::now(),
                reason = &mut keepalive => {
                    debug!(%peer, %reason, "rpc: peer stopped answering pings");
                    break;
                }
                _ = idle_check.tick(), if !closing => {
                    if calls.is_empty() && last_active.elapsed() >= cfg.idle_timeout {
                        debug!(%peer, "rpc: closing idle connection");
                        conn.graceful_shutdown();
                        closing = true;
                    }
                }
                _ = stop.changed(), if !closing => {
                    conn.graceful_shutdown();
                    closing = true;
                }
            }
        }
        // Dropping `calls` aborts the handlers still running: their caller is gone.
    }
}

fn ok_response(content_type: &str, open_failed: bool) -> Response<()> {
    let mut builder = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type);
    if open_failed {
        builder = builder.header(OPEN_FAILED_HEADER, "1");
    }
    builder.body(()).unwrap_or_default()
}

/// Sends a whole response that is just a status.
async fn reply_status(respond: &mut SendResponse<Bytes>, content_type: &str, status: Status) {
    if let Ok(mut body) = respond.send_response(ok_response(content_type, true), false) {
        let _ = send_all(&mut body, encode_status(&status), true).await;
    }
}

/// Waits until the client resets the stream (or the connection fails).
async fn client_gone(respond: &mut SendResponse<Bytes>) {
    let _ = poll_fn(|cx| respond.poll_reset(cx)).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads the one request message of a call.
async fn read_request(body: &mut RecvStream, limit: usize) -> Result<Bytes, Status> {
    let mut decoder = FrameDecoder::new(limit);
    let first = next_frame(body, &mut decoder).await.map_err(recv_status)?;
    let payload = match first {
        Some((FrameKind::Message, payload)) => payload,
        Some((FrameKind::Status, _)) => {
            return Err(Status::invalid_argument(
                "a request must be a message frame",
            ))
        }
        None => return Err(Status::invalid_argument("empty request body")),
    };
    match next_frame(body, &mut decoder).await.map_err(recv_status)? {
        None => Ok(payload),
        Some(_) => Err(Status::invalid_argument(
            "a request must be exactly one frame",
        )),
    }
}

fn recv_status(e: RecvError) -> Status {
    match e {
        RecvError::Frame(FrameError::TooLarge { len, limit }) => {
            Status::too_large(Direction::Request, len, limit)
        }
        RecvError::Frame(e) => Status::invalid_argument(format!("bad request framing: {e}")),
        RecvError::H2(e) => Status::unavailable(format!("request body failed: {e}")),
    }
}

/// Finds the protocol a call names and hands the call to it.
async fn dispatch(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    routes: Arc<Routes>,
    cfg: Arc<ServerConfig>,
    peer: SocketAddr,
) {
    let path = request.uri().path();
    let route = parse_path(path).and_then(|(name, kind)| Some((routes.lookup(name)?, kind)));
    match route {
        Some((route, kind)) => route.handle_tcp(kind, request, respond, cfg, peer).await,
        None => {
            let status = Status::unimplemented(format!(
                "no call at path {path} (protocols served: {})",
                routes.names().collect::<Vec<_>>().join(", ")
            ));
            reply_status(&mut respond, GENERIC_CONTENT_TYPE, status).await
        }
    }
}

/// Content type of answers to calls that match no protocol.
const GENERIC_CONTENT_TYPE: &str = "application/cairn-rpc";

/// Serves one call of protocol `P`.
pub(crate) async fn handle_call<P: Protocol>(
    kind: CallKind,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    service: Arc<dyn DynService<P>>,
    cfg: Arc<ServerConfig>,
    peer: SocketAddr,
) {
    let expected = content_type::<P>();
    let got = request.headers().get(http::header::CONTENT_TYPE);
    if got.map(|v| v.as_bytes()) != Some(expected.as_bytes()) {
        let status =
            Status::invalid_argument(format!("content-type must be {expected} (got {got:?})"));
        return reply_status(&mut respond, &expected, status).await;
    }
    let deadline = request
        .headers()
        .get(TIMEOUT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut body = request.into_body();

    let read = tokio::select! {
        r = tokio::time::timeout(cfg.request_read_timeout, read_request(&mut body, cfg.max_request_bytes)) => r,
        _ = client_gone(&mut respond) => return,
    };
    let payload = match read {
        Ok(Ok(payload)) => payload,
        Ok(Err(status)) => return reply_status(&mut respond, &expected, status).await,
        Err(_) => {
            return reply_status(
                &mut respond,
                &expected,
                Status::invalid_argument("request body did not arrive in time"),
            )
            .await
        }
    };
    drop(body);
    let req: P::Request = match <P::Codec as Codec>::decode(&payload) {
        Ok(req) => req,
        Err(e) => {
            return reply_status(
                &mut respond,
                &expected,
                Status::invalid_argument(format!("request could not be decoded: {e}")),
            )
            .await
        }
    };
    let ctx = CallContext { peer, deadline };
    match kind {
        CallKind::Unary => unary::<P>(respond, &expected, service, ctx, req, &cfg).await,
        CallKind::Stream => stream::<P>(respond, &expected, service, ctx, req, &cfg).await,
    }
}

fn deadline_status() -> Status {
    Status::new(Code::DeadlineExceeded, "the caller's deadline passed")
}

async fn unary<P: Protocol>(
    mut respond: SendResponse<Bytes>,
    content_type: &str,
    service: Arc<dyn DynService<P>>,
    ctx: CallContext,
    req: P::Request,
    cfg: &ServerConfig,
) {
    let deadline = ctx.deadline;
    let outcome = tokio::select! {
        r = service.call_unary(ctx, req) => r,
        _ = client_gone(&mut respond) => return,
        _ = sleep_until(deadline) => Err(deadline_status()),
    };
    let frame = match outcome {
        Ok(resp) => encode_message::<P::Codec, _>(&resp, cfg.max_response_bytes)
            .unwrap_or_else(|e| encode_status(&e.into_status())),
        Err(status) => encode_status(&status),
    };
    if let Ok(mut body) = respond.send_response(ok_response(content_type, false), false) {
        let _ = send_all(&mut body, frame, true).await;
    }
}

async fn stream<P: Protocol>(
    mut respond: SendResponse<Bytes>,
    content_type: &str,
    service: Arc<dyn DynService<P>>,
    ctx: CallContext,
    req: P::Request,
    cfg: &ServerConfig,
) {
    let deadline = ctx.deadline;
    let opened = tokio::select! {
        r = service.call_stream(ctx, req) => r,
        _ = client_gone(&mut respond) => return,
        _ = sleep_until(deadline) => Err(deadline_status()),
    };
    let mut items = match opened {
        Ok(items) => items,
        Err(status) => return reply_status(&mut respond, content_type, status).await,
    };
    let Ok(mut body) = respond.send_response(ok_response(content_type, false), false) else {
        return;
    };
    loop {
        let next = tokio::select! {
            n = items.next() => n,
            _ = poll_fn(|cx| body.poll_reset(cx)) => return,
        };
        let (frame, last) = match next {
            None => (Bytes::new(), true),
            Some(Ok(item)) => match encode_message::<P::Codec, _>(&item, cfg.max_response_bytes) {
                Ok(frame) => (frame, false),
                Err(e) => (encode_status(&e.into_status()), true),
            },
            Some(Err(status)) => (encode_status(&status), true),
        };
        if send_all(&mut body, frame, last).await.is_err() || last {
            return;
        }
    }
}
