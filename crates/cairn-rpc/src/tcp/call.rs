//! One call on the server: find its protocol, read and decode its request within the limits,
//! run the handler while watching for the caller to go away or its deadline to pass, and send
//! the answer (or the stream of items, at the pace the caller reads them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::poll_fn;
use futures::StreamExt;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Request, Response};
use tokio::time::Instant;

use crate::codec::Codec;
use crate::config::ServerConfig;
use crate::deadline::within;
use crate::error::Direction;
use crate::frame::{FrameDecoder, FrameError, FrameKind};
use crate::message::{encode_message, encode_status};
use crate::protocol::{content_type, CallContext, CallKind, DynService, ItemStream, Protocol};
use crate::routes::{parse_path, Routes};
use crate::status::Status;
use crate::tcp::body::{next_frame, send_all, RecvError};
use crate::tcp::{OPEN_FAILED_HEADER, TIMEOUT_HEADER};

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

/// One call as the server hands it to the protocol it names.
pub(crate) struct IncomingCall {
    pub(crate) kind: CallKind,
    pub(crate) request: Request<RecvStream>,
    pub(crate) respond: SendResponse<Bytes>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) peer: SocketAddr,
}

/// Finds the protocol a call names and hands the call to it.
pub(crate) async fn dispatch(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    routes: Arc<Routes>,
    cfg: Arc<ServerConfig>,
    peer: SocketAddr,
) {
    let path = request.uri().path();
    let route = parse_path(path).and_then(|(name, kind)| Some((routes.lookup(name)?, kind)));
    match route {
        Some((route, kind)) => {
            let call = IncomingCall {
                kind,
                request,
                respond,
                config: cfg,
                peer,
            };
            route.handle_tcp(call).await
        }
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
pub(crate) async fn handle_call<P: Protocol>(call: IncomingCall, service: Arc<dyn DynService<P>>) {
    let IncomingCall {
        kind,
        request,
        mut respond,
        config: cfg,
        peer,
    } = call;
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
        CallKind::Unary => {
            let handler = service.call_unary(ctx, req);
            if let Some(outcome) = run_handler(&mut respond, deadline, handler).await {
                unary::<P>(respond, &expected, outcome, &cfg).await
            }
        }
        CallKind::Stream => {
            let handler = service.call_stream(ctx, req);
            if let Some(opened) = run_handler(&mut respond, deadline, handler).await {
                stream::<P>(respond, &expected, opened, &cfg).await
            }
        }
    }
}

/// Runs a handler within the caller's deadline; `None` if the client went away first.
async fn run_handler<T>(
    respond: &mut SendResponse<Bytes>,
    deadline: Option<Instant>,
    handler: impl std::future::Future<Output = Result<T, Status>>,
) -> Option<Result<T, Status>> {
    tokio::select! {
        r = within(deadline, handler) => Some(r),
        _ = client_gone(respond) => None,
    }
}

/// Sends a unary handler's outcome.
async fn unary<P: Protocol>(
    mut respond: SendResponse<Bytes>,
    content_type: &str,
    outcome: Result<P::Response, Status>,
    cfg: &ServerConfig,
) {
    let frame = match outcome {
        Ok(resp) => encode_message::<P::Codec, _>(&resp, cfg.max_response_bytes)
            .unwrap_or_else(|e| encode_status(&e.into_status())),
        Err(status) => encode_status(&status),
    };
    if let Ok(mut body) = respond.send_response(ok_response(content_type, false), false) {
        let _ = send_all(&mut body, frame, true).await;
    }
}

/// Sends an opened stream's items as the caller reads them, or why it did not open.
async fn stream<P: Protocol>(
    mut respond: SendResponse<Bytes>,
    content_type: &str,
    opened: Result<ItemStream<P::Item>, Status>,
    cfg: &ServerConfig,
) {
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
