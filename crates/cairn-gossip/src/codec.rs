//! foca's wire codec for [`NodeId`]: a compact, hand-written binary format
//! with explicit bounds (see `wire.rs`), so the decoder is cheap to fuzz
//! and needs no serialization framework.

use bytes::{Buf, BufMut};
use foca::{Header, Member, Message, State};

use crate::error::DecodeError;
use crate::identity::NodeId;
use crate::wire::{Reader, Writer};

/// The [`foca::Codec`] used by every node.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCodec;

/// Encoding failed: the message does not fit the packet buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message does not fit in the packet")]
pub struct BufferFull;

/// The codec's error: either side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Full(#[from] BufferFull),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

fn put_all(mut buf: impl BufMut, bytes: &[u8]) -> Result<(), CodecError> {
    if buf.remaining_mut() < bytes.len() {
        return Err(BufferFull.into());
    }
    buf.put_slice(bytes);
    Ok(())
}

fn encode_message(msg: &Message<NodeId>, out: &mut Vec<u8>) {
    match msg {
        Message::Ping(n) => {
            out.wr_u8(0);
            out.wr_u8(*n);
        }
        Message::Ack(n) => {
            out.wr_u8(1);
            out.wr_u8(*n);
        }
        Message::PingReq {
            target,
            probe_number,
        } => {
            out.wr_u8(2);
            target.encode(out);
            out.wr_u8(*probe_number);
        }
        Message::IndirectPing {
            origin,
            probe_number,
        } => {
            out.wr_u8(3);
            origin.encode(out);
            out.wr_u8(*probe_number);
        }
        Message::IndirectAck {
            target,
            probe_number,
        } => {
            out.wr_u8(4);
            target.encode(out);
            out.wr_u8(*probe_number);
        }
        Message::ForwardedAck {
            origin,
            probe_number,
        } => {
            out.wr_u8(5);
            origin.encode(out);
            out.wr_u8(*probe_number);
        }
        Message::Announce => out.wr_u8(6),
        Message::Feed => out.wr_u8(7),
        Message::Gossip => out.wr_u8(8),
        Message::Broadcast => out.wr_u8(9),
        Message::TurnUndead => out.wr_u8(10),
    }
}

fn decode_message(r: &mut Reader<'_>) -> Result<Message<NodeId>, DecodeError> {
    Ok(match r.u8()? {
        0 => Message::Ping(r.u8()?),
        1 => Message::Ack(r.u8()?),
        2 => Message::PingReq {
            target: NodeId::decode(r)?,
            probe_number: r.u8()?,
        },
        3 => Message::IndirectPing {
            origin: NodeId::decode(r)?,
            probe_number: r.u8()?,
        },
        4 => Message::IndirectAck {
            target: NodeId::decode(r)?,
            probe_number: r.u8()?,
        },
        5 => Message::ForwardedAck {
            origin: NodeId::decode(r)?,
            probe_number: r.u8()?,
        },
        6 => Message::Announce,
        7 => Message::Feed,
        8 => Message::Gossip,
        9 => Message::Broadcast,
        10 => Message::TurnUndead,
        other => return Err(DecodeError::BadTag("message", other)),
    })
}

pub(crate) fn encode_member(member: &Member<NodeId>, out: &mut Vec<u8>) {
    member.id().encode(out);
    out.wr_u16(member.incarnation());
    out.wr_u8(match member.state() {
        State::Alive => 0,
        State::Suspect => 1,
        State::Down => 2,
    });
}

pub(crate) fn decode_member(r: &mut Reader<'_>) -> Result<Member<NodeId>, DecodeError> {
    let id = NodeId::decode(r)?;
    let incarnation = r.u16()?;
    let state = match r.u8()? {
        0 => State::Alive,
        1 => State::Suspect,
        2 => State::Down,
        other => return Err(DecodeError::BadTag("member state", other)),
    };
    Ok(Member::new(id, incarnation, state))
}

/// Decodes a foca header from a plain slice (used by tests and the fuzz
/// target to exercise the decoder without a foca instance).
pub fn decode_header_bytes(bytes: &[u8]) -> Result<(Header<NodeId>, usize), DecodeError> {
    let mut r = Reader::new(bytes);
    let src = NodeId::decode(&mut r)?;
    let src_incarnation = r.u16()?;
    let dst = NodeId::decode(&mut r)?;
    let message = decode_message(&mut r)?;
    Ok((
        Header {
            src,
            src_incarnation,
            dst,
            message,
        },
        bytes.len() - r.remaining(),
    ))
}

impl foca::Codec<NodeId> for NodeCodec {
    type Error = CodecError;

    fn encode_header(
        &mut self,
        header: &Header<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        let mut out = Vec::with_capacity(256);
        header.src.encode(&mut out);
        out.wr_u16(header.src_incarnation);
        header.dst.encode(&mut out);
        encode_message(&header.message, &mut out);
        put_all(buf, &out)
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<NodeId>, Self::Error> {
        let (header, used) = decode_header_bytes(buf.chunk())?;
        buf.advance(used);
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), Self::Error> {
        let mut out = Vec::with_capacity(128);
        encode_member(member, &mut out);
        put_all(buf, &out)
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<NodeId>, Self::Error> {
        let mut r = Reader::new(buf.chunk());
        let before = r.remaining();
        let member = decode_member(&mut r)?;
        let used = before - r.remaining();
        buf.advance(used);
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Tags;
    use foca::Codec;

    fn id(name: &str) -> NodeId {
        NodeId::new(name, "10.0.0.1:8301".parse().unwrap(), 3, Tags::new()).unwrap()
    }

    #[test]
    fn header_round_trip_every_message() {
        let messages = [
            Message::Ping(1),
            Message::Ack(2),
            Message::PingReq {
                target: id("t"),
                probe_number: 3,
            },
            Message::IndirectPing {
                origin: id("o"),
                probe_number: 4,
            },
            Message::IndirectAck {
                target: id("t"),
                probe_number: 5,
            },
            Message::ForwardedAck {
                origin: id("o"),
                probe_number: 6,
            },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ];
        for message in messages {
            let header = Header {
                src: id("a"),
                src_incarnation: 9,
                dst: id("b"),
                message,
            };
            let mut buf = Vec::new();
            NodeCodec.encode_header(&header, &mut buf).unwrap();
            let mut slice = &buf[..];
            let back = NodeCodec.decode_header(&mut slice).unwrap();
            assert_eq!(back, header);
            assert!(slice.is_empty());
        }
    }

    #[test]
    fn member_round_trip_and_full_buffer() {
        let m = Member::new(id("x"), 7, State::Suspect);
        let mut buf = Vec::new();
        NodeCodec.encode_member(&m, &mut buf).unwrap();
        let mut slice = &buf[..];
        assert_eq!(NodeCodec.decode_member(&mut slice).unwrap(), m);
        let mut small = [0u8; 4];
        let err = NodeCodec.encode_member(&m, &mut small[..]).unwrap_err();
        assert_eq!(err, CodecError::Full(BufferFull));
    }
}
