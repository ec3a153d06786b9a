//! The payload inside every (decrypted) packet: either a foca message or
//! one of Cairn's own messages around it (join handshake with name-conflict
//! check, push/pull state exchange, direct suspicion notice, and the direct
//! ping of `hint_suspect`, and the pool-wide keyring operations of
//! `keyquery.rs`).

use std::net::SocketAddr;

use foca::Member;

use crate::codec::{decode_member, encode_member};
use crate::error::DecodeError;
use crate::identity::NodeId;
use crate::keyquery::{KeyAction, KeyAnswer, MAX_RELAY_FACTOR};
use crate::wire::{Reader, Writer};

/// Most members accepted in one state packet (bounded by the packet size
/// anyway; this guards the allocation).
const MAX_STATE_MEMBERS: u16 = 1024;

/// One decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A foca SWIM message, handed to foca as is.
    Foca(Vec<u8>),
    /// "Let me join": the joiner's identity, so the seed can refuse a
    /// duplicate name.
    JoinRequest { nonce: u64, id: NodeId },
    /// The seed accepts; its identity lets the joiner announce to it.
    JoinAccept { nonce: u64, seed: NodeId },
    /// The name is used by a live member at `existing`.
    JoinRefuse { nonce: u64, existing: SocketAddr },
    /// Part of a full membership state (push/pull anti-entropy).
    State {
        reply: bool,
        members: Vec<Member<NodeId>>,
    },
    /// "I suspect you": sent straight to the suspect so that it can refute
    /// at once instead of waiting for the rumour to reach it.
    Suspected {
        incarnation: u16,
        target: NodeId,
        from: NodeId,
    },
    /// Direct ping used by `hint_suspect`.
    Ping { nonce: u64 },
    /// Answer to [`Envelope::Ping`].
    Ack { nonce: u64 },
    /// "Apply this keyring operation and tell me your keys"; `relay`: how
    /// many other members should also carry the answer back.
    KeyRequest {
        id: u64,
        action: KeyAction,
        relay: u8,
    },
    /// A member's answer to [`Envelope::KeyRequest`] `id`.
    KeyResponse { id: u64, answer: KeyAnswer },
    /// "Forward this answer to `to`" (a relayed [`Envelope::KeyResponse`]).
    KeyRelay {
        id: u64,
        to: SocketAddr,
        answer: KeyAnswer,
    },
}

impl Envelope {
    /// Encodes the payload (before encryption).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Envelope::Foca(data) => {
                out.wr_u8(0);
                out.wr(data);
            }
            Envelope::JoinRequest { nonce, id } => {
                out.wr_u8(1);
                out.wr_u64(*nonce);
                id.encode(&mut out);
            }
            Envelope::JoinAccept { nonce, seed } => {
                out.wr_u8(2);
                out.wr_u64(*nonce);
                seed.encode(&mut out);
            }
            Envelope::JoinRefuse { nonce, existing } => {
                out.wr_u8(3);
                out.wr_u64(*nonce);
                out.wr_socket_addr(*existing);
            }
            Envelope::State { reply, members } => {
                out.wr_u8(4);
                out.wr_u8(u8::from(*reply));
                out.wr_u16(u16::try_from(members.len()).unwrap_or(u16::MAX));
                for m in members.iter().take(usize::from(u16::MAX)) {
                    encode_member(m, &mut out);
                }
            }
            Envelope::Suspected {
                incarnation,
                target,
                from,
            } => {
                out.wr_u8(5);
                out.wr_u16(*incarnation);
                target.encode(&mut out);
                from.encode(&mut out);
            }
            Envelope::Ping { nonce } => {
                out.wr_u8(6);
                out.wr_u64(*nonce);
            }
            Envelope::Ack { nonce } => {
                out.wr_u8(7);
                out.wr_u64(*nonce);
            }
            Envelope::KeyRequest { id, action, relay } => {
                out.wr_u8(8);
                out.wr_u64(*id);
                action.encode(&mut out);
                out.wr_u8(*relay);
            }
            Envelope::KeyResponse { id, answer } => {
                out.wr_u8(9);
                out.wr_u64(*id);
                answer.encode(&mut out);
            }
            Envelope::KeyRelay { id, to, answer } => {
                out.wr_u8(10);
                out.wr_u64(*id);
                out.wr_socket_addr(*to);
                answer.encode(&mut out);
            }
        }
        out
    }

    /// Decodes a payload; every field is bounds-checked and trailing bytes
    /// are an error (except for foca messages, which foca checks itself).
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let env = match r.u8()? {
            0 => return Ok(Envelope::Foca(r.rest().to_vec())),
            1 => Envelope::JoinRequest {
                nonce: r.u64()?,
                id: NodeId::decode(&mut r)?,
            },
            2 => Envelope::JoinAccept {
                nonce: r.u64()?,
                seed: NodeId::decode(&mut r)?,
            },
            3 => Envelope::JoinRefuse {
                nonce: r.u64()?,
                existing: r.socket_addr()?,
            },
            4 => {
                let reply = match r.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(DecodeError::BadTag("state flag", other)),
                };
                let n = r.u16()?;
                if n > MAX_STATE_MEMBERS {
                    return Err(DecodeError::TooLarge("state member count"));
                }
                let mut members = Vec::with_capacity(usize::from(n).min(r.remaining() / 16));
                for _ in 0..n {
                    members.push(decode_member(&mut r)?);
                }
                Envelope::State { reply, members }
            }
            5 => Envelope::Suspected {
                incarnation: r.u16()?,
                target: NodeId::decode(&mut r)?,
                from: NodeId::decode(&mut r)?,
            },
            6 => Envelope::Ping { nonce: r.u64()? },
            7 => Envelope::Ack { nonce: r.u64()? },
            8 => {
                let id = r.u64()?;
                let action = KeyAction::decode(&mut r)?;
                let relay = r.u8()?;
                if relay > MAX_RELAY_FACTOR {
                    return Err(DecodeError::TooLarge("relay factor"));
                }
                Envelope::KeyRequest { id, action, relay }
            }
            9 => Envelope::KeyResponse {
                id: r.u64()?,
                answer: KeyAnswer::decode(&mut r)?,
            },
            10 => Envelope::KeyRelay {
                id: r.u64()?,
                to: r.socket_addr()?,
                answer: KeyAnswer::decode(&mut r)?,
            },
            other => return Err(DecodeError::BadTag("envelope", other)),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::Trailing(r.remaining()));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Tags;
    use foca::State;

    #[test]
    fn round_trip() {
        let id = NodeId::new("n", "127.0.0.1:1".parse().unwrap(), 1, Tags::new()).unwrap();
        let all = [
            Envelope::Foca(vec![1, 2, 3]),
            Envelope::JoinRequest {
                nonce: 5,
                id: id.clone(),
            },
            Envelope::JoinAccept {
                nonce: 6,
                seed: id.clone(),
            },
            Envelope::JoinRefuse {
                nonce: 7,
                existing: "[::1]:4".parse().unwrap(),
            },
            Envelope::State {
                reply: true,
                members: vec![Member::new(id.clone(), 3, State::Down)],
            },
            Envelope::Suspected {
                incarnation: 2,
                target: id.clone(),
                from: id,
            },
            Envelope::Ping { nonce: 8 },
            Envelope::Ack { nonce: 9 },
            Envelope::KeyRequest {
                id: 10,
                action: KeyAction::Remove([7; 32]),
                relay: 2,
            },
            Envelope::KeyResponse {
                id: 11,
                answer: KeyAnswer {
                    node: "n".into(),
                    error: None,
                    keys: vec![[1; 32]],
                },
            },
            Envelope::KeyRelay {
                id: 12,
                to: "10.0.0.1:8301".parse().unwrap(),
                answer: KeyAnswer {
                    node: "m".into(),
                    error: Some("no".into()),
                    keys: vec![],
                },
            },
        ];
        for e in all {
            assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
        assert_eq!(
            Envelope::decode(&[6, 0, 0, 0, 0, 0, 0, 0, 1, 9]),
            Err(DecodeError::Trailing(1))
        );
        assert_eq!(Envelope::decode(&[]), Err(DecodeError::Truncated));
        let mut req = vec![8, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        req.extend_from_slice(&[0; 32]);
        req.push(6);
        assert_eq!(
            Envelope::decode(&req),
            Err(DecodeError::TooLarge("relay factor"))
        );
        assert_eq!(
            Envelope::decode(&[4, 0, 0xff, 0xff]),
            Err(DecodeError::TooLarge("state member count"))
        );
    }
}
