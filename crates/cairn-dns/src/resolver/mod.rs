//! The sans-IO resolver: query bytes in, [`Answer`] out.
//!
//! [`Resolver::answer`] parses a packet with hickory-proto, dispatches on the
//! name form (see [`crate::name`]), reads the [`Catalog`], and encodes the
//! reply, trimmed to the transport's size limit. It never panics on input and
//! does no I/O: time (the SOA serial) and randomness (the shuffle) are
//! injected with [`Resolver::with_parts`], so tests are deterministic.
//!
//! Rules, as in Consul:
//! - critical instances are left out; warning ones too when `only_passing`;
//!   the remaining order is shuffled on every answer;
//! - no instance left, unknown service/node, bad name or another datacenter
//!   (no federation) -> NXDOMAIN with the SOA in authority; a name that exists
//!   but has no record of the asked type -> NOERROR/NODATA with the SOA;
//! - names outside our domains: [`Answer::Forward`] with recursors, REFUSED
//!   without; malformed packets -> FORMERR (when 12 header bytes exist),
//!   opcodes other than QUERY -> NOTIMP, EDNS version > 0 -> BADVERS;
//! - size: UDP gets 512 bytes, or the client's EDNS buffer capped at 4096;
//!   UDP answers limited to 512 bytes also keep at most `udp_answer_limit`
//!   A/AAAA/SRV records; then records are dropped from the end until the
//!   message fits, the additional section following the answers kept. TC is
//!   set on a trimmed UDP answer only when `enable_truncate` is true
//!   (Consul's default is false: a client gets a usable subset instead of a
//!   TCP retry storm). TCP answers are only cut at 65535 bytes, never TC.
//!
//! # Answer cache and fast path
//!
//! When the catalog has a non-zero [`Catalog::generation`], the record set
//! of a positive service or node lookup (before shuffling and trimming) is
//! cached by (lowercased question name, question type), pre-encoded, for
//! that generation (see [`crate::cache`]). A later query in the plain form
//! (see [`crate::wire`]) that hits the cache skips hickory entirely: the
//! cached entries are shuffled (the same draws as the uncached path), the
//! `a_record_limit` and `udp_answer_limit` rules applied, and the response
//! written directly — header, the question as sent, records whose owner is
//! the question name compressed to it — byte-for-byte what hickory would
//! write. Only when that message does not fit the transport's limit does the
//! answer go through hickory's trimming (`encode.rs`). Transport and size limit are
//! therefore not part of the key: they only change the encoding, done per
//! answer.
//!
//! # Layout
//!
//! This file holds the public types, the constructors and the dispatch from
//! a parsed question to a record set. The private submodules: `records`
//! builds the record sets from the catalog, `fast` is the answer cache and
//! its fast path, `encode` turns a record set (or an error) into reply bytes.

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};

use crate::cache::AnswerCache;
use crate::catalog::{Catalog, DnsConfig, Health, Instance};
use crate::name::{self, Form, Target};
use crate::rng::ShuffleRng;
use crate::wire;

use fast::Cached;
use records::{addr_record, wants_addr};

mod encode;
mod fast;
mod records;

/// UDP payload without EDNS (RFC 1035).
pub const MAX_UDP_PLAIN: usize = 512;
/// Cap of a client's EDNS UDP buffer, and the buffer size we advertise.
pub const MAX_UDP_EDNS: u16 = 4096;
/// Largest DNS message over TCP.
pub const MAX_TCP: usize = 65535;

/// The transport a query came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: size limits and trimming apply.
    Udp,
    /// TCP: everything up to 65535 bytes.
    Tcp,
}

/// What to do with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Outside our domains and recursors are configured: forward the query
    /// bytes unchanged (see [`crate::server`]).
    Forward,
    /// Not answerable (shorter than a header, or itself a response).
    Drop,
}

/// The SOA serial source: seconds since the epoch, truncated, as Consul.
pub type SerialClock = Box<dyn Fn() -> u32 + Send + Sync>;

/// One answer record and the additional records that go with it (the A of
/// an SRV target, node-meta TXT, NS glue): trimming keeps them together.
#[derive(Clone)]
struct Entry {
    record: Record,
    extras: Vec<Record>,
}

/// A response before encoding.
struct Built {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Entry>,
    authorities: Vec<Record>,
}

/// The DNS resolver over a [`Catalog`].
pub struct Resolver<C: Catalog> {
    catalog: C,
    config: DnsConfig,
    /// Primary domain first, normalised (`consul.`).
    domains: Vec<String>,
    rng: ShuffleRng,
    clock: SerialClock,
    cache: AnswerCache<Cached>,
}

impl<C: Catalog> std::fmt::Debug for Resolver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn system_serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl<C: Catalog> Resolver<C> {
    /// A resolver with the system clock and a clock-seeded shuffle.
    pub fn new(catalog: C, config: DnsConfig) -> Self {
        Self::with_parts(
            catalog,
            config,
            ShuffleRng::from_entropy(),
            Box::new(system_serial),
        )
    }

    /// A resolver with an injected shuffle RNG and SOA-serial clock.
    pub fn with_parts(catalog: C, config: DnsConfig, rng: ShuffleRng, clock: SerialClock) -> Self {
        let mut domains = vec![name::normalise_domain(&config.domain)];
        if let Some(alt) = &config.alt_domain {
            let alt = name::normalise_domain(alt);
            if !domains.contains(&alt) {
                domains.push(alt);
            }
        }
        Self {
            catalog,
            config,
            domains,
            rng,
            clock,
            cache: AnswerCache::new(),
        }
    }

    /// The catalog this resolver reads.
    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    /// The configuration.
    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    /// Answers one query packet.
    pub fn answer(&self, packet: &[u8], transport: Transport) -> Answer {
        let mut out = Vec::new();
        match self.answer_into(packet, transport, &mut out) {
            Answer::Reply(_) => Answer::Reply(out),
            other => other,
        }
    }

    /// Answers one query packet into a reused buffer: on
    /// `Answer::Reply` (whose vector is then empty) the reply is in `out`;
    /// otherwise `out` is empty.
    pub fn answer_into(&self, packet: &[u8], transport: Transport, out: &mut Vec<u8>) -> Answer {
        out.clear();
        let generation = self.catalog.generation();
        if generation != 0 {
            if let Some(query) = wire::parse_query(packet) {
                let mut buf = [0u8; 260];
                let key = wire::key_of(query.qname, query.qtype, &mut buf);
                if let Some(cached) = self.cache.get(key, generation) {
                    self.reply_cached(packet, &query, &cached, transport, out);
                    return Answer::Reply(Vec::new());
                }
            }
        }
        match self.answer_slow(packet, transport, generation) {
            Answer::Reply(bytes) => {
                *out = bytes;
                Answer::Reply(Vec::new())
            }
            other => other,
        }
    }

    /// The hickory path: parse, classify, look up, encode.
    fn answer_slow(&self, packet: &[u8], transport: Transport, generation: u64) -> Answer {
        if packet.len() < 12 {
            return Answer::Drop;
        }
        if packet[2] & 0x80 != 0 {
            // A response: answering it could start a loop between servers.
            return Answer::Drop;
        }
        let id = u16::from_be_bytes([packet[0], packet[1]]);
        let op_code = OpCode::from_u8((packet[2] >> 3) & 0x0f);
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => {
                let rcode = if op_code == OpCode::Query {
                    ResponseCode::FormErr
                } else {
                    ResponseCode::NotImp
                };
                return Answer::Reply(self.bare_error(id, op_code, rcode));
            }
        };
        if request.metadata.op_code != OpCode::Query {
            return Answer::Reply(self.error_reply(&request, ResponseCode::NotImp));
        }
        if request.queries.len() != 1 {
            return Answer::Reply(self.error_reply(&request, ResponseCode::FormErr));
        }
        if let Some(edns) = &request.edns {
            if edns.version() > 0 {
                return Answer::Reply(self.error_reply(&request, ResponseCode::BADVERS));
            }
        }
        let query = &request.queries[0];
        let qclass = query.query_class();
        if qclass != DNSClass::IN && qclass != DNSClass::ANY {
            return Answer::Reply(self.error_reply(&request, ResponseCode::Refused));
        }
        let qtype = query.query_type();
        let built = match name::classify(query.name(), &self.domains) {
            Target::Outside => return self.outside(&request),
            Target::Reverse(ip) => {
                if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
                    return self.outside(&request);
                }
                let answers = ip.map(|ip| self.reverse(query, ip)).unwrap_or_default();
                if answers.is_empty() {
                    if !self.config.recursors.is_empty() {
                        return Answer::Forward;
                    }
                    self.nxdomain(&self.domains[0].clone())
                } else {
                    Built {
                        rcode: ResponseCode::NoError,
                        authoritative: true,
                        answers,
                        authorities: Vec::new(),
                    }
                }
            }
            Target::Ours { form, domain } => self.lookup(query, form, &domain, generation),
        };
        Answer::Reply(self.encode(&request, built, transport))
    }

    fn outside(&self, request: &Message) -> Answer {
        if self.config.recursors.is_empty() {
            Answer::Reply(self.error_reply(request, ResponseCode::Refused))
        } else {
            Answer::Forward
        }
    }

    fn local_dc(&self, dc: &Option<String>) -> bool {
        match dc {
            None => true,
            Some(dc) => dc.eq_ignore_ascii_case(&self.catalog.datacenter()),
        }
    }

    fn lookup(&self, query: &Query, form: Form, domain: &str, generation: u64) -> Built {
        let qname = query.name().clone();
        let qtype = query.query_type();
        match form {
            Form::Invalid => self.nxdomain(domain),
            Form::Apex => {
                let mut answers = Vec::new();
                if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                    if let Some(soa) = self.soa(domain) {
                        answers.push(Entry {
                            record: soa,
                            extras: Vec::new(),
                        });
                    }
                }
                if matches!(qtype, RecordType::NS | RecordType::ANY) {
                    answers.extend(self.ns_entry(domain));
                }
                self.found(answers, domain)
            }
            Form::NameServer => {
                let answers = self
                    .config
                    .agent_address
                    .filter(|ip| wants_addr(qtype, *ip))
                    .map(|ip| Entry {
                        record: addr_record(qname, secs(self.config.node_ttl), ip),
                        extras: Vec::new(),
                    })
                    .into_iter()
                    .collect();
                self.found(answers, domain)
            }
            Form::Addr { ip, dc } => {
                if !self.local_dc(&dc) {
                    return self.nxdomain(domain);
                }
                let mut answers = Vec::new();
                if wants_addr(qtype, ip) {
                    answers.push(Entry {
                        record: addr_record(qname, secs(self.config.node_ttl), ip),
                        extras: Vec::new(),
                    });
                }
                self.found(answers, domain)
            }
            Form::Node { node, dc } => {
                if !self.local_dc(&dc) {
                    return self.nxdomain(domain);
                }
                match self.catalog.node(&node) {
                    None => self.nxdomain(domain),
                    Some(info) => {
                        let answers =
                            self.node_records(qname.clone(), qtype, &info.address, &info.meta);
                        self.remember(&qname, qtype, generation, &answers, false, false);
                        self.found(answers, domain)
                    }
                }
            }
            Form::Service { service, tag, dc } => {
                if !self.local_dc(&dc) {
                    return self.nxdomain(domain);
                }
                let instances = self.healthy(&service, tag.as_deref());
                if instances.is_empty() {
                    return self.nxdomain(domain);
                }
                let ttl = secs(self.config.service_ttl_for(&service));
                let srv = qtype == RecordType::SRV;
                // Built in catalog order (what the cache keeps), then
                // shuffled per answer.
                let answers = if srv {
                    self.srv_records(&qname, ttl, &instances, domain)
                } else {
                    self.service_addr_records(&qname, qtype, ttl, &instances)
                };
                self.remember(&qname, qtype, generation, &answers, true, !srv);
                let order = self.arrange(answers.len(), true, !srv);
                let mut slots: Vec<Option<Entry>> = answers.into_iter().map(Some).collect();
                let answers = order.iter().filter_map(|&i| slots[i].take()).collect();
                self.found(answers, domain)
            }
        }
    }

    /// Instances of `service` that pass the health filter and carry `tag`.
    fn healthy(&self, service: &str, tag: Option<&str>) -> Vec<Instance> {
        self.catalog
            .service_instances(service)
            .into_iter()
            .filter(|i| match i.health {
                Health::Critical => false,
                Health::Warning => !self.config.only_passing,
                Health::Passing => true,
            })
            .filter(|i| match tag {
                None => true,
                Some(tag) => i.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)),
            })
            .collect()
    }

    /// The order in which `n` entries are answered: shuffled for service
    /// lookups, cut to `a_record_limit` for service addresses.
    fn arrange(&self, n: usize, shuffle: bool, limit_addresses: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if shuffle {
            self.rng.shuffle(&mut order);
        }
        if limit_addresses && self.config.a_record_limit > 0 {
            order.truncate(self.config.a_record_limit);
        }
        order
    }
}

#[cfg(test)]
mod tests;
