//! From a built record set to reply bytes: encoding with hickory, trimming
//! to the transport's size limit (and the UDP answer-count limit), and the
//! error replies (FORMERR, NOTIMP, REFUSED, SERVFAIL, ...) down to a bare
//! 12-byte header when nothing else can be written.

use std::collections::HashSet;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;

use super::{Built, Resolver, Transport, MAX_TCP, MAX_UDP_EDNS, MAX_UDP_PLAIN};
use crate::catalog::Catalog;

impl<C: Catalog> Resolver<C> {
    /// A SERVFAIL reply to `packet` (used when every recursor failed);
    /// `None` when the packet has no recoverable ID.
    pub fn servfail(&self, packet: &[u8]) -> Option<Vec<u8>> {
        if packet.len() < 12 {
            return None;
        }
        match Message::from_vec(packet) {
            Ok(request) => Some(self.error_reply(&request, ResponseCode::ServFail)),
            Err(_) => {
                let id = u16::from_be_bytes([packet[0], packet[1]]);
                let op_code = OpCode::from_u8((packet[2] >> 3) & 0x0f);
                Some(self.bare_error(id, op_code, ResponseCode::ServFail))
            }
        }
    }

    /// The UDP payload limit a client announced in `packet` (512 without
    /// EDNS, its EDNS buffer capped at 4096 otherwise).
    pub fn udp_limit(packet: &[u8]) -> usize {
        match Message::from_vec(packet) {
            Ok(m) => udp_limit_of(&m),
            Err(_) => MAX_UDP_PLAIN,
        }
    }

    /// A header-only error (the packet did not parse).
    pub(super) fn bare_error(&self, id: u16, op_code: OpCode, rcode: ResponseCode) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Response, op_code);
        msg.metadata.response_code = rcode;
        msg.metadata.recursion_available = !self.config.recursors.is_empty();
        msg.to_vec().unwrap_or_else(|_| header_only(id, rcode))
    }

    /// An error echoing the request's question (and OPT).
    pub(super) fn error_reply(&self, request: &Message, rcode: ResponseCode) -> Vec<u8> {
        let mut msg = Message::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        msg.metadata.recursion_desired = request.metadata.recursion_desired;
        msg.metadata.recursion_available = !self.config.recursors.is_empty();
        msg.metadata.response_code = rcode;
        msg.queries = request.queries.clone();
        if request.edns.is_some() {
            msg.edns = Some(our_edns());
        }
        match msg.to_vec() {
            Ok(bytes) if bytes.len() <= MAX_UDP_PLAIN => bytes,
            _ => self.bare_error(request.metadata.id, request.metadata.op_code, rcode),
        }
    }

    /// Encodes `built`, trimmed for `transport`.
    pub(super) fn encode(&self, request: &Message, built: Built, transport: Transport) -> Vec<u8> {
        let max_size = match transport {
            Transport::Udp => udp_limit_of(request),
            Transport::Tcp => MAX_TCP,
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = built.authoritative;
        metadata.recursion_available = !self.config.recursors.is_empty();
        metadata.response_code = built.rcode;
        let mut msg = Message::new(metadata.id, MessageType::Response, metadata.op_code);
        msg.metadata = metadata;
        msg.queries = request.queries.clone();
        if request.edns.is_some() {
            msg.edns = Some(our_edns());
        }
        msg.authorities = built.authorities;

        let mut entries = built.answers;
        let total = entries.len();
        if transport == Transport::Udp
            && max_size <= MAX_UDP_PLAIN
            && self.config.udp_answer_limit > 0
        {
            let mut kept = 0;
            entries.retain(|e| {
                if matches!(
                    e.record.record_type(),
                    RecordType::A | RecordType::AAAA | RecordType::SRV
                ) {
                    kept += 1;
                    kept <= self.config.udp_answer_limit
                } else {
                    true
                }
            });
        }

        let fill = |msg: &mut Message, n: usize, with_extras: bool| {
            msg.answers = entries[..n].iter().map(|e| e.record.clone()).collect();
            msg.additionals.clear();
            if with_extras {
                let mut seen = HashSet::new();
                for e in &entries[..n] {
                    for x in &e.extras {
                        if seen.insert((x.name.to_lowercase(), x.data.clone())) {
                            msg.additionals.push(x.clone());
                        }
                    }
                }
            }
        };
        let fits = |msg: &Message| -> Option<Vec<u8>> {
            // hickory stops at 65535 bytes and sets TC itself: not a fit.
            msg.to_vec()
                .ok()
                .filter(|b| b.len() <= max_size && b[2] & 0x02 == 0)
        };

        let mut kept = entries.len();
        fill(&mut msg, kept, true);
        let mut result = fits(&msg);
        if result.is_none() && !entries.is_empty() {
            msg.authorities.clear();
            // The largest prefix of answers (with their extras) that fits.
            let (mut lo, mut hi) = (0usize, entries.len());
            let mut best = None;
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                fill(&mut msg, mid, true);
                match fits(&msg) {
                    Some(bytes) => {
                        best = Some((mid, bytes));
                        lo = mid;
                    }
                    None => hi = mid - 1,
                }
            }
            result = match best {
                Some((n, bytes)) if n > 0 => {
                    kept = n;
                    Some(bytes)
                }
                _ => {
                    // Not even one answer with its extras: try it bare.
                    fill(&mut msg, 1, false);
                    match fits(&msg) {
                        Some(bytes) => {
                            kept = 1;
                            Some(bytes)
                        }
                        None => {
                            kept = 0;
                            None
                        }
                    }
                }
            };
        }
        let trimmed = kept < total;
        let set_tc = trimmed && transport == Transport::Udp && self.config.enable_truncate;
        match result {
            Some(bytes) if !set_tc => bytes,
            Some(mut bytes) => {
                bytes[2] |= 0x02; // TC
                bytes
            }
            None => {
                // Nothing fits (or a record failed to encode): header and
                // question, TC set when answers were lost.
                fill(&mut msg, 0, false);
                msg.authorities.clear();
                if total > 0 {
                    msg.metadata.truncation = true;
                } else {
                    msg.metadata.response_code = ResponseCode::ServFail;
                }
                match msg.to_vec() {
                    Ok(bytes) if bytes.len() <= max_size => bytes,
                    _ => self.bare_error(
                        request.metadata.id,
                        request.metadata.op_code,
                        ResponseCode::ServFail,
                    ),
                }
            }
        }
    }
}

/// The OPT record we send back: version 0, our 4096-byte buffer.
fn our_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_EDNS);
    edns.set_version(0);
    edns
}

fn udp_limit_of(request: &Message) -> usize {
    match &request.edns {
        None => MAX_UDP_PLAIN,
        Some(edns) => usize::from(edns.max_payload().clamp(MAX_UDP_PLAIN as u16, MAX_UDP_EDNS)),
    }
}

/// A 12-byte response header, the last resort.
fn header_only(id: u16, rcode: ResponseCode) -> Vec<u8> {
    let id = id.to_be_bytes();
    vec![
        id[0],
        id[1],
        0x80,
        rcode.low() & 0x0f,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}
