//! The HTTP listener: an accept loop with connection limits and timeouts in front of the
//! router.
//!
//! axum's own `serve` accepts every connection and keeps it forever: 5,000 idle clients
//! are 5,000 descriptors held, a client trickling a header byte per second is never cut
//! off, and at the open-file limit the API is gone for everyone. This loop bounds all of
//! that:
//!
//! - per-client and total connection limits (`cairn_types::conn::Gate`): a client over Consul's
//!   `limits.http_max_conns_per_client` gets Consul's 429 and the connection is closed;
//!   over the total (derived from the open-file limit) a 503;
//! - a header-read timeout (hyper's: a request head must arrive within it, which ends a
//!   slow-header client);
//! - an idle keep-alive timeout: a connection with no request in flight and no bytes
//!   moving for that long is closed (a blocking query in flight is not idle);
//! - `accept()` errors (out of descriptors) pause with a growing back-off instead of
//!   spinning, and are logged sparsely.
//!
//! HTTPS is the same loop with a [`Handshake`] run on each admitted connection (within the
//! header-read timeout) before HTTP starts; the TLS itself lives with the caller, so this
//! crate does not depend on a TLS library.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use cairn_types::conn::{Gate, Refused, Step};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Connection limits and timeouts of the HTTP listener.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Connections one client IP may hold (Consul's `limits.http_max_conns_per_client`,
    /// default 200; 0 = no limit).
    pub max_conns_per_client: usize,
    /// Connections the listener holds at most (from the open-file limit).
    pub max_conns: usize,
    /// A request head must arrive within this (default 10 s).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed
    /// (default 60 s).
    pub idle_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_conns_per_client: 200,
            max_conns: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Consul's answer to a client over its connection limit.
const TOO_MANY_PER_CLIENT: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 81\r\n\r\nYour IP is issuing too many concurrent connections, please rate limit your calls\n";
const TOO_MANY_TOTAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 54\r\n\r\nThe agent is at its connection limit, try again later\n";

/// A byte stream HTTP can run over (a TLS stream, for HTTPS).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Turns an accepted TCP stream into the stream HTTP runs over: the HTTPS seam.
pub trait Handshake: Send + Sync + 'static {
    /// Runs the handshake with `peer`; an error closes the connection.
    fn handshake(
        &self,
        peer: SocketAddr,
        stream: TcpStream,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxStream>> + Send>>;
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting and lets open connections finish.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router_with(listener, router, limits, None, shutdown).await
}

/// [`serve_router`] with a `handshake` run on every admitted connection first (HTTPS).
pub async fn serve_router_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    handshake: Option<Arc<dyn Handshake>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut gate = Gate::new(limits.max_conns_per_client, limits.max_conns);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer, slot) = match gate.step(accepted.map(|(s, p)| ((s, p), p))) {
            Step::Admit((stream, peer), slot) => (stream, peer, slot),
            Step::Refuse((stream, peer), why) => {
                tracing::debug!(%peer, ?why, "http: connection refused");
                let reply = match why {
                    Refused::PerClient => TOO_MANY_PER_CLIENT,
                    Refused::Total => TOO_MANY_TOTAL,
                };
                conns.spawn(refuse(stream, reply));
                continue;
            }
            Step::Pause(pause, e) => {
                if pause.log {
                    tracing::warn!(error = %e, failures = gate.failures(), "http: accept failed; pausing");
                }
                tokio::time::sleep(pause.wait).await;
                continue;
            }
        };
        let router = router.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        let handshake = handshake.clone();
        conns.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            match handshake {
                None => connection(stream, peer, router, &limits, stop).await,
                Some(h) => {
                    let done =
                        tokio::time::timeout(limits.header_read_timeout, h.handshake(peer, stream))
                            .await;
                    match done {
                        Ok(Ok(io)) => connection(io, peer, router, &limits, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http: handshake failed"),
                        Err(_) => tracing::debug!(%peer, "http: handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Open connections finish their request in flight, bounded by the caller's timeout.
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Answers a refused connection with a short response and closes it.
async fn refuse(mut stream: TcpStream, reply: &'static [u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Serves one connection: hyper's HTTP/1 with the header timeout, plus the idle watchdog.
async fn connection<S: Stream>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    limits: &ServeLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let started = Instant::now();
    let activity = Arc::new(Activity {
        started,
        last_ms: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let svc_activity = activity.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            let guard = InFlight::new(svc_activity.clone());
            async move {
                let (req, leftover) = crate::unread_body::watch(req);
                let mut resp = tower::ServiceExt::oneshot(router, req).await;
                if let Ok(resp) = resp.as_mut() {
                    leftover.settle(resp).await;
                }
                drop(guard);
                resp
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let idle = limits.idle_timeout;
    loop {
        let deadline = tokio::time::Instant::from_std(activity.last() + idle);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep_until(deadline) => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 && activity.last().elapsed() >= idle {
                    tracing::debug!(%peer, "http: closing idle connection");
                    return;
                }
            }
            _ = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
                return;
            }
        }
    }
}

/// Resolves once the listener is told to stop.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// When a connection last moved bytes, and how many requests it has in flight.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// A stream that records when bytes last moved.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: Stream> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: Stream> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
