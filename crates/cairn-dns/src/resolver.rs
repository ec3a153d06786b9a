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
//! answer go through hickory's trimming below. Transport and size limit are
//! therefore not part of the key: they only change the encoding, done per
//! answer.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::AnswerCache;
use crate::catalog::{Catalog, DnsConfig, Health, Instance};
use crate::name::{self, Form, Target};
use crate::rng::ShuffleRng;
use crate::wire::{self, FastQuery, Head, WireRr};

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

/// An [`Entry`], pre-encoded; `extras` carry their deduplication id.
struct WireEntry {
    record: WireRr,
    extras: Vec<(WireRr, usize)>,
}

/// A cached lookup result: the entries in catalog order, in both forms.
struct Cached {
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

/// A fully-qualified name from text; `None` when it is not a valid name.
fn fqdn(text: &str) -> Option<Name> {
    let mut name = Name::from_utf8(text).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// Node meta as TXT data: `k=v`, or just `v` for keys prefixed `rfc1035-`;
/// split into 255-byte character strings.
fn meta_txt(key: &str, value: &str) -> TXT {
    let text = match key.strip_prefix("rfc1035-") {
        Some(_) => value.to_string(),
        None => format!("{key}={value}"),
    };
    let mut chunks = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > 255 {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    TXT::new(chunks)
}

fn addr_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(name, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name, ttl, RData::AAAA(AAAA(v6))),
    }
}

/// Whether an address record of `ip` answers `qtype`.
fn wants_addr(qtype: RecordType, ip: IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
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

    fn outside(&self, request: &Message) -> Answer {
        if self.config.recursors.is_empty() {
            Answer::Reply(self.error_reply(request, ResponseCode::Refused))
        } else {
            Answer::Forward
        }
    }

    /// A header-only error (the packet did not parse).
    fn bare_error(&self, id: u16, op_code: OpCode, rcode: ResponseCode) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Response, op_code);
        msg.metadata.response_code = rcode;
        msg.metadata.recursion_available = !self.config.recursors.is_empty();
        msg.to_vec().unwrap_or_else(|_| header_only(id, rcode))
    }

    /// An error echoing the request's question (and OPT).
    fn error_reply(&self, request: &Message, rcode: ResponseCode) -> Vec<u8> {
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

    fn soa(&self, domain: &str) -> Option<Record> {
        let apex = fqdn(domain)?;
        let mname = fqdn(&format!("ns.{domain}"))?;
        let rname = fqdn(&format!("hostmaster.{domain}"))?;
        let soa = SOA::new(mname, rname, (self.clock)(), 3600, 600, 86400, 0);
        Some(Record::from_rdata(apex, 0, RData::SOA(soa)))
    }

    fn nxdomain(&self, domain: &str) -> Built {
        Built {
            rcode: ResponseCode::NXDomain,
            authoritative: true,
            answers: Vec::new(),
            authorities: self.soa(domain).into_iter().collect(),
        }
    }

    /// NOERROR with `answers`, or NODATA (SOA in authority) when empty.
    fn found(&self, answers: Vec<Entry>, domain: &str) -> Built {
        let authorities = if answers.is_empty() {
            self.soa(domain).into_iter().collect()
        } else {
            Vec::new()
        };
        Built {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities,
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

    fn ns_entry(&self, domain: &str) -> Option<Entry> {
        let apex = fqdn(domain)?;
        let ns_name = fqdn(&format!("ns.{domain}"))?;
        let extras = self
            .config
            .agent_address
            .map(|ip| addr_record(ns_name.clone(), secs(self.config.node_ttl), ip))
            .into_iter()
            .collect();
        Some(Entry {
            record: Record::from_rdata(apex, 0, RData::NS(NS(ns_name))),
            extras,
        })
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

    fn meta_records(
        &self,
        owner: &Name,
        ttl: u32,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Record> {
        meta.iter()
            .map(|(k, v)| Record::from_rdata(owner.clone(), ttl, RData::TXT(meta_txt(k, v))))
            .collect()
    }

    fn node_records(
        &self,
        qname: Name,
        qtype: RecordType,
        address: &str,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Entry> {
        let ttl = secs(self.config.node_ttl);
        let mut answers = Vec::new();
        if let Ok(ip) = address.parse::<IpAddr>() {
            if wants_addr(qtype, ip) {
                let extras =
                    if qtype != RecordType::ANY && self.config.enable_additional_node_meta_txt {
                        self.meta_records(&qname, ttl, meta)
                    } else {
                        Vec::new()
                    };
                answers.push(Entry {
                    record: addr_record(qname.clone(), ttl, ip),
                    extras,
                });
            }
        }
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            answers.extend(
                self.meta_records(&qname, ttl, meta)
                    .into_iter()
                    .map(|record| Entry {
                        record,
                        extras: Vec::new(),
                    }),
            );
        }
        answers
    }

    fn service_addr_records(
        &self,
        qname: &Name,
        qtype: RecordType,
        ttl: u32,
        instances: &[Instance],
    ) -> Vec<Entry> {
        let mut seen = HashSet::new();
        let mut answers = Vec::new();
        for inst in instances {
            let address = if inst.service_address.is_empty() {
                &inst.node_address
            } else {
                &inst.service_address
            };
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            if !wants_addr(qtype, ip) || !seen.insert(ip) {
                continue;
            }
            answers.push(Entry {
                record: addr_record(qname.clone(), ttl, ip),
                extras: Vec::new(),
            });
        }
        answers
    }

    fn srv_records(
        &self,
        qname: &Name,
        ttl: u32,
        instances: &[Instance],
        domain: &str,
    ) -> Vec<Entry> {
        let local_dc = self.catalog.datacenter();
        let mut answers = Vec::new();
        for inst in instances {
            let dc = if inst.datacenter.is_empty() {
                local_dc.as_str()
            } else {
                inst.datacenter.as_str()
            };
            let weight = match inst.health {
                Health::Warning => inst.weight_warning,
                _ => inst.weight_passing,
            };
            let node_target = fqdn(&format!("{}.node.{dc}.{domain}", inst.node));
            let explicit =
                !inst.service_address.is_empty() && inst.service_address != inst.node_address;
            let (target, extras) = if explicit {
                match inst.service_address.parse::<IpAddr>() {
                    Ok(ip) => {
                        let Some(target) =
                            fqdn(&format!("{}.addr.{dc}.{domain}", name::hex_ip(ip)))
                        else {
                            continue;
                        };
                        (target.clone(), vec![addr_record(target, ttl, ip)])
                    }
                    // A hostname: the SRV points at it, no glue.
                    Err(_) => match fqdn(&inst.service_address) {
                        Some(target) => (target, Vec::new()),
                        None => continue,
                    },
                }
            } else {
                let Some(target) = node_target.clone() else {
                    continue;
                };
                let extras = match inst.node_address.parse::<IpAddr>() {
                    Ok(ip) => vec![addr_record(target.clone(), ttl, ip)],
                    Err(_) => Vec::new(),
                };
                (target, extras)
            };
            let mut extras = extras;
            if self.config.enable_additional_node_meta_txt {
                if let Some(node_name) = &node_target {
                    extras.extend(self.meta_records(node_name, ttl, &inst.node_meta));
                }
            }
            let srv = SRV::new(1, weight, inst.port, target);
            answers.push(Entry {
                record: Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)),
                extras,
            });
        }
        answers
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

    /// Caches a positive lookup result for `generation` (never 0), when
    /// every record has a pre-encoded form and the name is plain.
    fn remember(
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
    fn reply_cached(
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

    fn reverse(&self, query: &Query, ip: IpAddr) -> Vec<Entry> {
        let domain = &self.domains[0];
        let qname = query.name().clone();
        let local_dc = self.catalog.datacenter();
        let mut targets: Vec<Name> = Vec::new();
        for node in self.catalog.nodes_by_address(ip) {
            let dc = if node.datacenter.is_empty() {
                &local_dc
            } else {
                &node.datacenter
            };
            if let Some(t) = fqdn(&format!("{}.node.{dc}.{domain}", node.name)) {
                targets.push(t);
            }
        }
        if targets.is_empty() {
            for inst in self.catalog.services_by_address(ip) {
                if let Some(t) = fqdn(&format!("{}.service.{domain}", inst.service)) {
                    targets.push(t);
                }
            }
        }
        let mut seen = HashSet::new();
        targets
            .into_iter()
            .filter(|t| seen.insert(t.to_lowercase()))
            .map(|t| Entry {
                record: Record::from_rdata(qname.clone(), 0, RData::PTR(PTR(t))),
                extras: Vec::new(),
            })
            .collect()
    }

    /// Encodes `built`, trimmed for `transport`.
    fn encode(&self, request: &Message, built: Built, transport: Transport) -> Vec<u8> {
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

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
