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

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::catalog::{Catalog, DnsConfig, Health, Instance};
use crate::name::{self, Form, Target};
use crate::rng::ShuffleRng;

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
            Target::Ours { form, domain } => self.lookup(query, form, &domain),
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

    fn lookup(&self, query: &Query, form: Form, domain: &str) -> Built {
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
                        let answers = self.node_records(qname, qtype, &info.address, &info.meta);
                        self.found(answers, domain)
                    }
                }
            }
            Form::Service { service, tag, dc } => {
                if !self.local_dc(&dc) {
                    return self.nxdomain(domain);
                }
                let mut instances = self.healthy(&service, tag.as_deref());
                if instances.is_empty() {
                    return self.nxdomain(domain);
                }
                self.rng.shuffle(&mut instances);
                let ttl = secs(self.config.service_ttl_for(&service));
                let answers = if qtype == RecordType::SRV {
                    self.srv_records(&qname, ttl, &instances, domain)
                } else {
                    self.service_addr_records(&qname, qtype, ttl, &instances)
                };
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
            if self.config.a_record_limit > 0 && answers.len() >= self.config.a_record_limit {
                break;
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
