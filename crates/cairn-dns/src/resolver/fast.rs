//! The answer cache and its fast path. A positive service or node lookup is
//! remembered pre-encoded for the catalog generation it was built from; a
//! later plain query that hits it is answered without hickory, with the
//! same shuffle draws and trimming rules as the slow path, so the bytes are
//! the same (see the module docs of [`super`]).

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::{Built, Entry, Resolver, Transport, MAX_TCP, MAX_UDP_EDNS, MAX_UDP_PLAIN};
use crate::catalog::Catalog;
use crate::wire::{self, FastQuery, Head, WireRr};

/// An [`Entry`], pre-encoded; `extras` carry their deduplication id.
struct WireEntry {
    record: WireRr,
    extras: Vec<(WireRr, usize)>,
}

/// A cached lookup result: the entries in catalog order, in both forms.
pub(super) struct Cached {
    /// hickory form, for answers that need trimming.
    entries: Vec<Entry>,
    /// Pre-encoded, same order.
    wire: Vec<WireEntry>,
    /// Distinct additional records (ids are `0..ids`).
    ids: usize,
    /// A service lookup: shuffled on every answer.
    shuffle: bool,
    /// Service addresses: `a_record_limit` applies after the shuffle.
    limit_addresses: bool,
}

impl<C: Catalog> Resolver<C> {
    /// Caches a positive lookup result for `generation` (never 0), when
    /// every record has a pre-encoded form and the name is plain.
    pub(super) fn remember(
        &self,
        qname: &Name,
        qtype: RecordType,
        generation: u64,
        answers: &[Entry],
        shuffle: bool,
        limit_addresses: bool,
    ) {
        if generation == 0 || answers.is_empty() {
            return;
        }
        let qname_wire = wire::name_wire(qname);
        if qname.iter().any(|l| {
            !l.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        }) {
            return;
        }
        let lower = qname_wire.to_ascii_lowercase();
        let mut ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut wire_entries = Vec::with_capacity(answers.len());
        for e in answers {
            let Some(record) = WireRr::from_record(&e.record, &qname_wire) else {
                return;
            };
            let mut extras = Vec::with_capacity(e.extras.len());
            for x in &e.extras {
                let Some(x) = WireRr::from_record(x, &qname_wire) else {
                    return;
                };
                let next = ids.len();
                let id = *ids.entry(x.dedup_key(&lower)).or_insert(next);
                extras.push((x, id));
            }
            wire_entries.push(WireEntry { record, extras });
        }
        let cached = Cached {
            entries: answers.to_vec(),
            wire: wire_entries,
            ids: ids.len(),
            shuffle,
            limit_addresses,
        };
        let mut buf = [0u8; 260];
        let key = wire::key_of(&qname_wire, u16::from(qtype), &mut buf);
        self.cache.put(key, generation, Arc::new(cached));
    }

    /// Answers a plain query from the cache (see the module docs).
    pub(super) fn reply_cached(
        &self,
        packet: &[u8],
        query: &FastQuery<'_>,
        cached: &Cached,
        transport: Transport,
        out: &mut Vec<u8>,
    ) {
        let arranged = self.arrange(cached.wire.len(), cached.shuffle, cached.limit_addresses);
        let max_size = match transport {
            Transport::Udp => query.edns.map_or(MAX_UDP_PLAIN, |p| {
                usize::from(p.clamp(MAX_UDP_PLAIN as u16, MAX_UDP_EDNS))
            }),
            Transport::Tcp => MAX_TCP,
        };
        let total = arranged.len();
        let limit = self.config.udp_answer_limit;
        let counted = |i: &usize| cached.wire[*i].record.is_address_or_srv();
        let retained: Vec<usize>;
        let order: &[usize] = if transport == Transport::Udp
            && max_size <= MAX_UDP_PLAIN
            && limit > 0
            && arranged.iter().filter(|i| counted(i)).count() > limit
        {
            let mut kept = 0;
            retained = arranged
                .iter()
                .copied()
                .filter(|i| {
                    if counted(i) {
                        kept += 1;
                        kept <= limit
                    } else {
                        true
                    }
                })
                .collect();
            &retained
        } else {
            &arranged
        };
        let answers: Vec<&WireRr> = order.iter().map(|&i| &cached.wire[i].record).collect();
        let mut seen = vec![false; cached.ids];
        let mut extras = Vec::new();
        for &i in order {
            for (x, id) in &cached.wire[i].extras {
                if !std::mem::replace(&mut seen[*id], true) {
                    extras.push(x);
                }
            }
        }
        let head = Head {
            id: [packet[0], packet[1]],
            rd: packet[2] & 0x01 != 0,
            cd: packet[3] & 0x10 != 0,
            ra: !self.config.recursors.is_empty(),
        };
        wire::write_response(out, head, query, &answers, &extras, query.edns.is_some());
        if out.len() <= max_size {
            if order.len() < total && transport == Transport::Udp && self.config.enable_truncate {
                out[2] |= 0x02; // TC
            }
            return;
        }
        // Too large: hickory's trimming, on the same (already shuffled)
        // entries.
        out.clear();
        let id = u16::from_be_bytes(head.id);
        let Ok(request) = Message::from_vec(packet) else {
            // Unreachable: the fast parser only accepts what hickory parses.
            *out = self.bare_error(id, OpCode::Query, ResponseCode::ServFail);
            return;
        };
        // Owners that were the question name of the query that filled the
        // cache become this query's (its case may differ).
        let qname = request.queries.first().map(|q| q.name());
        let built = Built {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: arranged
                .iter()
                .map(|&i| Self::entry_for(&cached.entries[i], &cached.wire[i], qname))
                .collect(),
            authorities: Vec::new(),
        };
        *out = self.encode(&request, built, transport);
    }

    /// A cached entry in hickory form, owners that stand for the question
    /// name replaced by `qname`.
    fn entry_for(entry: &Entry, wire: &WireEntry, qname: Option<&Name>) -> Entry {
        let mut entry = entry.clone();
        if let Some(qname) = qname {
            if wire.record.owner_is_qname() {
                entry.record.name = qname.clone();
            }
            for (x, (w, _)) in entry.extras.iter_mut().zip(&wire.extras) {
                if w.owner_is_qname() {
                    x.name = qname.clone();
                }
            }
        }
        entry
    }
}
