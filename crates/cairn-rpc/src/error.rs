//! [`RpcError`]: everything a call can end in other than its response, typed so the caller can
//! tell "surely not delivered, retry anywhere" from "may have been applied".

use std::net::SocketAddr;

use crate::codec::CodecError;
use crate::status::{Code, Status};

/// Which message of a call an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Request => "request",
            Direction::Response => "response",
        })
    }
}

/// What the caller can conclude about its request after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The handler surely never ran: safe to retry, on this peer or another.
    NotDelivered,
    /// The handler ran and answered (with a [`Status`], or with a response the client could not
    /// read). Whether it changed anything is the handler's contract (`NotLeader` means no).
    Processed,
    /// Unknown: the request may or may not have been applied. Retry only if it is idempotent.
    Unknown,
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// No connection to the peer could be made (refused, connect timeout, backing off after a
    /// failure, partitioned, nothing listening), or the peer refused the stream before
    /// processing it. The request was not delivered.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },
    /// The call's deadline passed. `request_sent` says whether the request had been handed to
    /// the connection by then (if not, it was surely not delivered).
    #[error("call timed out ({})", if *request_sent { "request sent" } else { "request not sent" })]
    Timeout { request_sent: bool },
    /// The connection broke (or the peer reset the stream) after the request was sent and
    /// before the answer was complete. The request may have been applied.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost { addr: SocketAddr, reason: String },
    /// The handler answered with a [`Status`].
    #[error("remote error: {0}")]
    Remote(Status),
    /// A message could not be encoded or decoded with the protocol's codec, or the peer broke
    /// the wire protocol.
    #[error("{direction} codec error: {error}")]
    Decode {
        direction: Direction,
        error: CodecError,
    },
    /// A message was larger than the limit of whichever side refused it.
    #[error("{direction} too large: {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        direction: Direction,
        len: u64,
        limit: u64,
    },
}

impl RpcError {
    /// What the caller can conclude about delivery (see [`Delivery`]).
    pub fn delivery(&self) -> Delivery {
        match self {
            RpcError::Unreachable { .. } => Delivery::NotDelivered,
            RpcError::Timeout {
                request_sent: false,
            } => Delivery::NotDelivered,
            RpcError::Timeout { request_sent: true } => Delivery::Unknown,
            RpcError::ConnectionLost { .. } => Delivery::Unknown,
            RpcError::Remote(_) => Delivery::Processed,
            RpcError::Decode {
                direction: Direction::Request,
                ..
            } => Delivery::NotDelivered,
            RpcError::Decode {
                direction: Direction::Response,
                ..
            } => Delivery::Processed,
            RpcError::TooLarge {
                direction: Direction::Request,
                ..
            } => Delivery::NotDelivered,
            RpcError::TooLarge {
                direction: Direction::Response,
                ..
            } => Delivery::Processed,
        }
    }

    /// True when the request surely did not reach the handler, so it may be retried anywhere
    /// even if it is not idempotent.
    pub fn is_not_delivered(&self) -> bool {
        self.delivery() == Delivery::NotDelivered
    }

    /// The handler's status, if the error came from the handler.
    pub fn status(&self) -> Option<&Status> {
        match self {
            RpcError::Remote(s) => Some(s),
            _ => None,
        }
    }

    /// Maps a status frame received from the peer. The transport's own refusals (a request
    /// over the server's limit, a request it could not decode) become the matching typed
    /// errors, and a server that gave up at the caller's deadline reads as the caller's own
    /// timeout (whichever side's timer fired first, the caller sees the same error);
    /// everything else is the handler's [`RpcError::Remote`].
    pub(crate) fn from_status(status: Status) -> Self {
        match status.code {
            Code::DeadlineExceeded => RpcError::Timeout { request_sent: true },
            Code::RequestTooLarge { len, limit } => RpcError::TooLarge {
                direction: Direction::Request,
                len,
                limit,
            },
            Code::ResponseTooLarge { len, limit } => RpcError::TooLarge {
                direction: Direction::Response,
                len,
                limit,
            },
            _ => RpcError::Remote(status),
        }
    }
}
