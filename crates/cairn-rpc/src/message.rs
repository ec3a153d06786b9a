//! Encoding one message or status into a frame, with the size limit applied: shared by both
//! transports so they refuse and report exactly alike.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, CodecError, PostcardCodec};
use crate::error::{Direction, RpcError};
use crate::frame::{self, FrameKind};
use crate::status::Status;

/// Why a message could not be framed.
#[derive(Debug)]
pub(crate) enum EncodeError {
    Codec(CodecError),
    TooLarge { len: usize, limit: usize },
}

impl EncodeError {
    /// As the client reports its own request failing to encode (never sent).
    pub(crate) fn into_rpc(self, direction: Direction) -> RpcError {
        match self {
            EncodeError::Codec(error) => RpcError::Decode { direction, error },
            EncodeError::TooLarge { len, limit } => RpcError::TooLarge {
                direction,
                len: len as u64,
                limit: limit as u64,
            },
        }
    }

    /// As the server reports a response it cannot send.
    pub(crate) fn into_status(self) -> Status {
        match self {
            EncodeError::Codec(e) => {
                Status::internal(format!("response could not be encoded: {e}"))
            }
            EncodeError::TooLarge { len, limit } => {
                Status::too_large(Direction::Response, len, limit)
            }
        }
    }
}

/// The encoded payload of `value`, refused if over `limit` bytes.
pub(crate) fn encode_payload<C: Codec, T: Serialize>(
    value: &T,
    limit: usize,
) -> Result<Vec<u8>, EncodeError> {
    let payload = C::encode(value).map_err(EncodeError::Codec)?;
    if payload.len() > limit {
        return Err(EncodeError::TooLarge {
            len: payload.len(),
            limit,
        });
    }
    Ok(payload)
}

/// A message frame for `value`, refused if the payload is over `limit` bytes.
pub(crate) fn encode_message<C: Codec, T: Serialize>(
    value: &T,
    limit: usize,
) -> Result<Bytes, EncodeError> {
    Ok(frame::encode(
        FrameKind::Message,
        &encode_payload::<C, T>(value, limit)?,
    ))
}

/// A status frame (never refused: statuses are small).
pub(crate) fn encode_status(status: &Status) -> Bytes {
    let payload = PostcardCodec::encode(status).unwrap_or_else(|_| {
        PostcardCodec::encode(&Status::internal("status could not be encoded")).unwrap_or_default()
    });
    frame::encode(FrameKind::Status, &payload)
}

/// The status in a status frame's payload; an undecodable one becomes `Internal`.
pub(crate) fn decode_status(payload: &[u8]) -> Status {
    PostcardCodec::decode(payload)
        .unwrap_or_else(|e| Status::internal(format!("peer sent an undecodable status: {e}")))
}

/// Decodes a message payload (client side: a response or stream item).
pub(crate) fn decode_response<C: Codec, T: DeserializeOwned>(
    payload: &[u8],
) -> Result<T, RpcError> {
    C::decode(payload).map_err(|error| RpcError::Decode {
        direction: Direction::Response,
        error,
    })
}
