//! Message framing inside one HTTP/2 stream body: a pure encoder and an incremental decoder.
//!
//! HTTP/2 DATA frames are a transport detail (they may split or join our messages), so each
//! message carries its own 5-byte header:
//!
//! ```text
//! +--------+----------------------+---------------------+
//! | kind:1 | length: u32 big-end. | payload: length B   |
//! +--------+----------------------+---------------------+
//! kind 0 = message (the protocol's codec), kind 1 = status (postcard-encoded Status)
//! ```
//!
//! A request body is exactly one message frame. A unary response body is one message frame or
//! one status frame. A stream response body is zero or more message frames, then either the end
//! of the stream (success) or one status frame (failure). The decoder refuses a length over its
//! limit as soon as the header arrives, before buffering the payload.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before each payload.
pub const HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Message = 0,
    Status = 1,
}

/// The peer broke the framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("stream ended inside a frame ({0} bytes buffered)")]
    Truncated(usize),
}

/// One frame: header plus payload, ready to send.
pub fn encode(kind: FrameKind, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    out.put_u8(kind as u8);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// Accumulates body chunks and yields whole frames, enforcing a payload size limit.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    limit: usize,
}

impl FrameDecoder {
    /// `limit`: the largest payload accepted, in bytes.
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            limit,
        }
    }

    /// Appends a chunk of body bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. Errors as soon as a header
    /// announces an unknown kind or a payload over the limit.
    pub fn next_frame(&mut self) -> Result<Option<(FrameKind, Bytes)>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let kind = match self.buf[0] {
            0 => FrameKind::Message,
            1 => FrameKind::Status,
            other => return Err(FrameError::UnknownKind(other)),
        };
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > self.limit {
            return Err(FrameError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        Ok(Some((kind, self.buf.split_to(len).freeze())))
    }

    /// Call at the end of the body: an error if a partial frame is left over.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated(self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_chunking() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode(FrameKind::Message, b"hello"));
        wire.extend_from_slice(&encode(FrameKind::Message, b""));
        wire.extend_from_slice(&encode(FrameKind::Status, &[7; 300]));
        for chunk in [1, 2, 5, 7, 64, wire.len()] {
            let mut d = FrameDecoder::new(1024);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            d.finish().unwrap();
            assert_eq!(got.len(), 3, "chunk size {chunk}");
            assert_eq!(got[0], (FrameKind::Message, Bytes::from_static(b"hello")));
            assert_eq!(got[1], (FrameKind::Message, Bytes::new()));
            assert_eq!(got[2].0, FrameKind::Status);
            assert_eq!(got[2].1.len(), 300);
        }
    }

    #[test]
    fn oversized_header_is_refused_before_the_payload_arrives() {
        let mut d = FrameDecoder::new(10);
        d.push(&encode(FrameKind::Message, &[0; 11])[..HEADER_LEN]);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 11, limit: 10 })
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = FrameDecoder::new(1 << 20);
        d.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(d.next_frame(), Err(FrameError::UnknownKind(b'G')));
        let mut d = FrameDecoder::new(1 << 20);
        d.push(&[0, 0, 0]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated(3)));
    }
}
