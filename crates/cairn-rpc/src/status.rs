//! [`Status`]: the typed failure a handler returns, carried to the caller unchanged.
//!
//! A handler answers either with its response or with a `Status`; the transport adds none of
//! its own meaning to it. The codes are the few a caller acts on differently (retry elsewhere,
//! follow the leader hint, give up). Status frames are always postcard-encoded: the type is
//! ours and has none of the shapes postcard cannot read.

use serde::{Deserialize, Serialize};

/// What kind of failure, so callers can branch without parsing messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Code {
    /// This server is not the Raft leader; `leader` is its best guess at who is (an address or
    /// node name, as the protocol defines it). The request was not applied.
    NotLeader { leader: Option<String> },
    /// The named thing does not exist.
    NotFound,
    /// The request is malformed or refused by validation (also: it could not be decoded).
    InvalidArgument,
    /// The caller is not allowed to do this.
    PermissionDenied,
    /// The server cannot serve now (no leader, shutting down, overloaded); retry later.
    Unavailable,
    /// The server gave up at the deadline the caller sent (the client reports this as
    /// [`crate::RpcError::Timeout`]).
    DeadlineExceeded,
    /// The request was larger than the server's limit; the handler did not run (the client
    /// maps this to [`crate::RpcError::TooLarge`]).
    RequestTooLarge { len: u64, limit: u64 },
    /// The handler's response (or a stream item) was larger than the server's limit (the client
    /// maps this to [`crate::RpcError::TooLarge`]).
    ResponseTooLarge { len: u64, limit: u64 },
    /// The service does not implement this kind of call (or this protocol).
    Unimplemented,
    /// A bug or an unexpected failure on the server.
    Internal,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::NotLeader { leader: Some(l) } => write!(f, "not leader (leader: {l})"),
            Code::NotLeader { leader: None } => f.write_str("not leader (leader unknown)"),
            Code::NotFound => f.write_str("not found"),
            Code::InvalidArgument => f.write_str("invalid argument"),
            Code::PermissionDenied => f.write_str("permission denied"),
            Code::Unavailable => f.write_str("unavailable"),
            Code::DeadlineExceeded => f.write_str("deadline exceeded"),
            Code::RequestTooLarge { len, limit } => {
                write!(f, "request too large ({len} > {limit} bytes)")
            }
            Code::ResponseTooLarge { len, limit } => {
                write!(f, "response too large ({len} > {limit} bytes)")
            }
            Code::Unimplemented => f.write_str("unimplemented"),
            Code::Internal => f.write_str("internal error"),
        }
    }
}

/// A handler's refusal or failure: a [`Code`] plus a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }
    pub fn not_leader(leader: Option<String>) -> Self {
        Status::new(Code::NotLeader { leader }, "not the leader")
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Status::new(Code::NotFound, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Status::new(Code::InvalidArgument, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Status::new(Code::PermissionDenied, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Status::new(Code::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Status::new(Code::Internal, message)
    }
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Status::new(Code::Unimplemented, message)
    }
    pub(crate) fn too_large(direction: crate::Direction, len: usize, limit: usize) -> Self {
        let (len, limit) = (len as u64, limit as u64);
        let code = match direction {
            crate::Direction::Request => Code::RequestTooLarge { len, limit },
            crate::Direction::Response => Code::ResponseTooLarge { len, limit },
        };
        Status::new(
            code,
            format!("{direction} of {len} bytes exceeds the server's limit of {limit} bytes"),
        )
    }
}
