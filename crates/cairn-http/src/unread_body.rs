//! Request bodies a handler answered without reading.
//!
//! A request refused early (a 403 before the JSON is parsed, a 400 for a bad query, a
//! 405) leaves its body unread on the connection. hyper then closes the connection after
//! the response without saying so, and an HTTP client that reuses it for its next request
//! (as Consul's clients do) sees "connection closed without response" on a request the
//! server never got. Here the rest of a small body is read and dropped before the answer
//! goes out, so the connection stays usable; a large or slow one is not waited for, and
//! the response says `Connection: close` instead, as HTTP/1.1 asks.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use parking_lot::Mutex;

/// The most of a leftover body that is read to keep the connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// How long reading a leftover body may take.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Where a request body that was dropped unfinished ends up (`None`: the request had no
/// body to leave).
pub(crate) struct Leftover(Option<Arc<Mutex<Option<Incoming>>>>);

/// Gives `req` a body that reports being dropped unfinished to the returned [`Leftover`].
/// A request without a body (most reads) is passed on as it is, at no cost.
pub(crate) fn watch(req: Request<Incoming>) -> (Request<Body>, Leftover) {
    if req.body().is_end_stream() {
        return (req.map(Body::new), Leftover(None));
    }
    let slot = Arc::new(Mutex::new(None));
    let req = req.map(|inner| {
        Body::new(Watched {
            inner: Some(inner),
            slot: slot.clone(),
        })
    });
    (req, Leftover(Some(slot)))
}

impl Leftover {
    /// Once the handler answered: reads what it left of a small body, or marks `resp`
    /// `Connection: close` when there is too much, it is too slow, or it fails.
    pub(crate) async fn settle<B>(self, resp: &mut Response<B>) {
        let Some(mut body) = self.0.and_then(|slot| slot.lock().take()) else {
            return;
        };
        let small = body.size_hint().upper().is_some_and(|n| n <= DRAIN_MAX);
        if small && tokio::time::timeout(DRAIN_WAIT, drain(&mut body)).await == Ok(true) {
            return;
        }
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Reads `body` to its end; false if it fails or holds more than [`DRAIN_MAX`].
async fn drain(body: &mut Incoming) -> bool {
    let mut read = 0u64;
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > DRAIN_MAX {
                    return false;
                }
            }
        }
    }
}

/// An [`Incoming`] body that, dropped before its end, leaves the rest in `slot`.
struct Watched {
    inner: Option<Incoming>,
    slot: Arc<Mutex<Option<Incoming>>>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(b) = self.inner.take() {
            if !b.is_end_stream() {
                *self.slot.lock() = Some(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::routing::{get, put};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use crate::serve::{serve_router, ServeLimits};

    /// Reads one response: the head (lowercased) and the body.
    async fn response(s: &mut TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
                .await
                .expect("a response in time")
                .unwrap();
            assert_eq!(n, 1, "connection closed inside a response head");
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
        (head, body)
    }

    #[tokio::test]
    async fn a_body_left_unread_does_not_cost_the_client_its_connection() {
        let router = axum::Router::new()
            .route("/refuse", put(|| async { StatusCode::FORBIDDEN }))
            .route("/ok", get(|| async { "fine" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_router(
            listener,
            router,
            ServeLimits::default(),
            async move {
                let _ = stopped.await;
            },
        ));

        // A small body the handler never read, sent after the head (as Python's clients
        // do, so that the server answers before it arrives): drained, and the
        // connection goes on.
        let mut s = TcpStream::connect(addr).await.unwrap();
        for _ in 0..20 {
            let body = "x".repeat(300);
            let head = format!(
                "PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.write_all(body.as_bytes()).await.unwrap();
            let (head, _) = response(&mut s).await;
            assert!(head.starts_with("http/1.1 403"), "{head}");
            assert!(!head.contains("connection: close"), "{head}");
            s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .unwrap();
            let (head, body) = response(&mut s).await;
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert_eq!(body, b"fine");
        }

        // A large one is not read: the answer says the connection closes.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            1 << 20
        );
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(&vec![b'x'; 4096]).await.unwrap();
        let (head, _) = response(&mut s).await;
        assert!(head.starts_with("http/1.1 403"), "{head}");
        assert!(head.contains("connection: close"), "{head}");

        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
}
