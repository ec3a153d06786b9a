//! A call's deadline, kept the same way by both transports so that they time out and report
//! alike: on the caller's side the frame of every call (encoded request, timeout, and whether
//! the request had gone out when it fired); on the server's side a handler racing the caller's
//! deadline.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::client::CallOptions;
use crate::config::ClientConfig;
use crate::error::{Direction, RpcError};
use crate::message::EncodeError;
use crate::status::{Code, Status};

/// The caller's side of one call's deadline.
pub(crate) struct CallDeadline {
    timeout: Option<Duration>,
    /// When the call's time is up (told to the server).
    pub(crate) at: Option<Instant>,
    /// Set once the request has been handed to the server.
    pub(crate) sent: AtomicBool,
}

/// One client call of either transport, from its encoded request (`encoded`, which failed if
/// the request could not be encoded or was over the limit) to its result. The clock starts when
/// the call is first polled: the call's own timeout, else the client's default. `call` gets the
/// encoded request and the deadline, whose `sent` it sets once the request reached the server.
pub(crate) fn deadline_call<B, T, F, Fut>(
    encoded: Result<B, EncodeError>,
    opts: &CallOptions,
    config: &ClientConfig,
    call: F,
) -> BoxFuture<'static, Result<T, RpcError>>
where
    B: Send + 'static,
    F: FnOnce(B, Arc<CallDeadline>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
{
    let timeout = opts.timeout.or(config.default_timeout);
    Box::pin(async move {
        let request = encoded.map_err(|e| e.into_rpc(Direction::Request))?;
        let deadline = Arc::new(CallDeadline {
            timeout,
            at: timeout.map(|t| Instant::now() + t),
            sent: AtomicBool::new(false),
        });
        deadline.run(call(request, deadline.clone())).await
    })
}

impl CallDeadline {
    /// Runs `call` within the timeout; a timeout reports whether the request had gone out.
    async fn run<T>(&self, call: impl Future<Output = Result<T, RpcError>>) -> Result<T, RpcError> {
        match self.timeout {
            None => call.await,
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(r) => r,
                Err(_) => Err(RpcError::Timeout {
                    request_sent: self.sent.load(Ordering::Acquire),
                }),
            },
        }
    }
}

/// Completes at `deadline` (never, without one).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs a handler until it answers, or fails it with `DeadlineExceeded` when the caller's
/// deadline passes first (dropping the handler).
pub(crate) async fn within<T>(
    deadline: Option<Instant>,
    handler: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    tokio::select! {
        r = handler => r,
        _ = sleep_until(deadline) => Err(Status::new(
            Code::DeadlineExceeded,
            "the caller's deadline passed",
        )),
    }
}
