//! The DNS messages the portal exchanges, without I/O and without a general
//! DNS library: the portal asks one kind of question (SRV, or A for a target
//! the answer gave no address for) on every proxied request, so it writes
//! that query straight into a caller's buffer and reads the answer in place,
//! keeping only the SRV records and the addresses of their targets (from the
//! answer and additional sections). Names are compared in wire form,
//! case-insensitively, following compression pointers; every offset is
//! bounds-checked, so a malformed datagram is an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The EDNS payload size the portal advertises for UDP answers.
pub const EDNS_PAYLOAD: u16 = 4096;
/// The longest name in wire form (RFC 1035).
pub const MAX_NAME: usize = 255;
/// The longest query [`encode_query`] writes: header, name, type and class,
/// and the EDNS OPT record.
pub const MAX_QUERY: usize = 12 + MAX_NAME + 4 + 11;
/// The most SRV records kept from one answer.
pub const MAX_SRV: usize = 64;

/// Record types the portal asks for or reads.
pub const TYPE_A: u16 = 1;
/// IPv6 address.
pub const TYPE_AAAA: u16 = 28;
/// Service locator.
pub const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// Compression pointers followed within one name before it is refused.
const MAX_POINTERS: usize = 32;

/// Why a DNS exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name is not a valid DNS name.
    #[error("invalid DNS name {0:?}")]
    BadName(String),
    /// No answer within the timeout.
    #[error("DNS server {0} did not answer in time")]
    Timeout(String),
    /// A socket error.
    #[error("DNS transport error: {0}")]
    Io(String),
    /// The answer could not be decoded or does not match the query.
    #[error("bad DNS answer: {0}")]
    BadAnswer(String),
    /// The server answered with an error code other than NXDOMAIN.
    #[error("DNS server answered {0}")]
    Rcode(String),
}

fn bad(why: &str) -> DnsError {
    DnsError::BadAnswer(why.to_string())
}

/// A checked, fully qualified name in wire form (length-prefixed labels and
/// the root label), held inline: building one does not allocate.
#[derive(Clone, PartialEq, Eq)]
pub struct QName {
    wire: [u8; MAX_NAME],
    len: u8,
}

impl std::fmt::Debug for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QName({})", self.to_text())
    }
}

impl QName {
    /// The name in wire form.
    pub fn wire(&self) -> &[u8] {
        &self.wire[..usize::from(self.len)]
    }

    /// The name as text, lower-case, with the trailing dot.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(usize::from(self.len));
        push_text(self.wire(), &mut s);
        s
    }
}

/// Appends wire-form labels (ending at the root label) as text.
fn push_text(wire: &[u8], s: &mut String) {
    let mut i = 0;
    while let Some(&n) = wire.get(i) {
        if n == 0 {
            break;
        }
        for &b in wire.get(i + 1..i + 1 + usize::from(n)).unwrap_or(&[]) {
            push_byte(b, s);
        }
        s.push('.');
        i += 1 + usize::from(n);
    }
    if s.is_empty() {
        s.push('.');
    }
}

fn push_byte(b: u8, s: &mut String) {
    match b {
        b'.' | b'\\' => {
            s.push('\\');
            s.push(char::from(b));
        }
        _ if b.is_ascii_graphic() => s.push(char::from(b.to_ascii_lowercase())),
        _ => s.push_str(&format!("\\{b:03}")),
    }
}

/// Makes `name` fully qualified, checks it (labels of 1-63 printable ASCII
/// characters without `\`, at most 255 bytes in wire form) and encodes it.
pub fn fqdn(name: &str) -> Result<QName, DnsError> {
    let err = || DnsError::BadName(name.to_string());
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err(err());
    }
    let mut q = QName {
        wire: [0; MAX_NAME],
        len: 0,
    };
    let mut at = 0usize;
    for label in body.split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty()
            || bytes.len() > 63
            || !bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
        {
            return Err(err());
        }
        if at + 1 + bytes.len() + 1 > MAX_NAME {
            return Err(err());
        }
        q.wire[at] = bytes.len() as u8; // <= 63, checked above
        q.wire[at + 1..at + 1 + bytes.len()].copy_from_slice(bytes);
        at += 1 + bytes.len();
    }
    q.wire[at] = 0;
    q.len = (at + 1) as u8; // <= 255, checked above
    Ok(q)
}

/// Writes a recursive query for `name` and `qtype` with message id `id`
/// (and an EDNS OPT record advertising [`EDNS_PAYLOAD`]) into `out`;
/// returns its length.
pub fn encode_query(id: u16, name: &QName, qtype: u16, out: &mut [u8; MAX_QUERY]) -> usize {
    let n = name.wire();
    // Header: id, RD, one question, one additional (OPT).
    out[..12].copy_from_slice(&[0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    out[..2].copy_from_slice(&id.to_be_bytes());
    let mut at = 12;
    out[at..at + n.len()].copy_from_slice(n);
    at += n.len();
    out[at..at + 2].copy_from_slice(&qtype.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&CLASS_IN.to_be_bytes());
    at += 4;
    // OPT: root owner, type 41, class = payload size, TTL 0 (version 0, no
    // flags), no options.
    out[at] = 0;
    out[at + 1..at + 3].copy_from_slice(&TYPE_OPT.to_be_bytes());
    out[at + 3..at + 5].copy_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out[at + 5..at + 11].fill(0);
    at + 11
}

/// One SRV record, with the address the same answer gave for its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is preferred.
    pub priority: u16,
    /// Relative weight within a priority.
    pub weight: u16,
    /// The service's port.
    pub port: u16,
    /// The target host name, lower-case, fully qualified.
    pub target: String,
    /// The first A/AAAA record for the target in the answer or additional
    /// section, when there was one.
    pub address: Option<IpAddr>,
}

/// What an answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The SRV records of the answer section (empty for NXDOMAIN or no
    /// data; at most [`MAX_SRV`]).
    pub srv: Vec<SrvRecord>,
    /// The A/AAAA records of the answer section owned by the question name.
    pub addresses: Vec<IpAddr>,
    /// The server set the TC bit: retry over TCP.
    pub truncated: bool,
}

fn u16_at(m: &[u8], at: usize) -> Result<u16, DnsError> {
    m.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| bad("message too short"))
}

/// Walks the name at `at`, calling `label` for each label (without the
/// root); returns the offset just past the name where it starts.
fn walk_name<'m>(
    m: &'m [u8],
    at: usize,
    mut label: impl FnMut(&'m [u8]) -> bool,
) -> Result<usize, DnsError> {
    let mut pos = at;
    let mut end = None;
    let mut pointers = 0;
    // The root label's byte counts too.
    let mut total = 1usize;
    loop {
        let n = *m.get(pos).ok_or_else(|| bad("name runs past the end"))?;
        match n & 0xc0 {
            0x00 if n == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let l = m
                    .get(pos + 1..pos + 1 + usize::from(n))
                    .ok_or_else(|| bad("label runs past the end"))?;
                total += 1 + l.len();
                if total > MAX_NAME {
                    return Err(bad("name longer than 255 bytes"));
                }
                if !label(l) {
                    return Err(bad("name mismatch"));
                }
                pos += 1 + usize::from(n);
            }
            0xc0 => {
                let target = usize::from(u16_at(m, pos)? & 0x3fff);
                end.get_or_insert(pos + 2);
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(bad("compression loop"));
                }
                pos = target;
            }
            _ => return Err(bad("unknown label type")),
        }
    }
}

/// Skips the name at `at`: the offset just past it.
fn skip_name(m: &[u8], at: usize) -> Result<usize, DnsError> {
    walk_name(m, at, |_| true)
}

/// Whether the name at `at` in `m` equals `wire` (uncompressed),
/// ignoring ASCII case. A malformed name is an error.
fn name_is(m: &[u8], at: usize, wire: &[u8]) -> Result<bool, DnsError> {
    let mut i = 0;
    let mut same = true;
    walk_name(m, at, |l| {
        if same {
            let n = usize::from(*wire.get(i).unwrap_or(&0));
            same = n == l.len()
                && wire
                    .get(i + 1..i + 1 + n)
                    .is_some_and(|w| w.eq_ignore_ascii_case(l));
            i += 1 + n;
        }
        true
    })?;
    Ok(same && wire.get(i) == Some(&0))
}

/// Whether the names at `a` and `b` of `m` are equal, ignoring ASCII case.
fn names_equal(m: &[u8], a: usize, b: usize) -> Result<bool, DnsError> {
    if a == b {
        return Ok(true);
    }
    let mut wire = [0u8; MAX_NAME];
    let mut len = 0;
    walk_name(m, a, |l| {
        wire[len] = l.len() as u8; // a label is at most 63 bytes
        wire[len + 1..len + 1 + l.len()].copy_from_slice(l);
        len += 1 + l.len();
        true
    })?;
    // walk_name caps the total at 255 bytes including the root label.
    wire[len] = 0;
    name_is(m, b, &wire[..=len])
}

/// The name at `at` as lower-case text with the trailing dot.
fn name_text(m: &[u8], at: usize) -> Result<String, DnsError> {
    let mut s = String::new();
    walk_name(m, at, |l| {
        for &b in l {
            push_byte(b, &mut s);
        }
        s.push('.');
        true
    })?;
    if s.is_empty() {
        s.push('.');
    }
    Ok(s)
}

/// The record index [`decode_answer`] builds; reusing one across calls
/// saves an allocation per answer.
#[derive(Debug, Default)]
pub struct Scratch {
    rrs: Vec<Rr>,
}

/// One resource record, located in the message.
#[derive(Debug, Clone, Copy)]
struct Rr {
    owner: usize,
    rtype: u16,
    class: u16,
    rdata: usize,
    rdlen: usize,
}

/// Reads the records of a section starting at `at`; the offset after them.
fn read_rrs(m: &[u8], mut at: usize, count: u16, out: &mut Vec<Rr>) -> Result<usize, DnsError> {
    for _ in 0..count {
        let owner = at;
        at = skip_name(m, at)?;
        let rtype = u16_at(m, at)?;
        let class = u16_at(m, at + 2)?;
        let rdlen = usize::from(u16_at(m, at + 8)?);
        let rdata = at + 10;
        if rdata + rdlen > m.len() {
            return Err(bad("record data runs past the end"));
        }
        out.push(Rr {
            owner,
            rtype,
            class,
            rdata,
            rdlen,
        });
        at = rdata + rdlen;
    }
    Ok(at)
}

fn address_of(m: &[u8], r: &Rr) -> Option<IpAddr> {
    let d = m.get(r.rdata..r.rdata + r.rdlen)?;
    match (r.rtype, r.class, d.len()) {
        (TYPE_A, CLASS_IN, 4) => Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        (TYPE_AAAA, CLASS_IN, 16) => {
            let b: [u8; 16] = d.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE {n}"),
    }
}

/// Decodes an answer to the query `id` for `name` and `qtype`; NXDOMAIN is
/// an empty answer, other error codes are errors.
pub fn decode_answer(
    m: &[u8],
    id: u16,
    name: &QName,
    qtype: u16,
    scratch: &mut Scratch,
) -> Result<Answer, DnsError> {
    let scratch = &mut scratch.rrs;
    if m.len() < 12 {
        return Err(bad("shorter than a header"));
    }
    if u16_at(m, 0)? != id {
        return Err(bad("id mismatch"));
    }
    let (flags, rcode) = (m[2], m[3] & 0x0f);
    if flags & 0x80 == 0 || (flags >> 3) & 0x0f != 0 {
        return Err(bad("not a response to a standard query"));
    }
    let (qd, an, ns, ar) = (u16_at(m, 4)?, u16_at(m, 6)?, u16_at(m, 8)?, u16_at(m, 10)?);
    if qd != 1 || !name_is(m, 12, name.wire())? {
        return Err(bad("question mismatch"));
    }
    let at = skip_name(m, 12)?;
    if u16_at(m, at)? != qtype || u16_at(m, at + 2)? != CLASS_IN {
        return Err(bad("question mismatch"));
    }
    let mut answer = Answer {
        truncated: flags & 0x02 != 0,
        ..Answer::default()
    };
    match rcode {
        0 => {}
        3 => return Ok(answer),
        other => return Err(DnsError::Rcode(rcode_name(other))),
    }
    scratch.clear();
    let at = read_rrs(m, at + 4, an, scratch)?;
    let answers = scratch.len();
    let at = read_rrs(m, at, ns, scratch)?;
    let authority = scratch.len();
    read_rrs(m, at, ar, scratch)?;
    let with_address = |owner: usize| -> Result<Option<IpAddr>, DnsError> {
        for r in scratch[..answers].iter().chain(&scratch[authority..]) {
            if let Some(ip) = address_of(m, r) {
                if names_equal(m, r.owner, owner)? {
                    return Ok(Some(ip));
                }
            }
        }
        Ok(None)
    };
    for r in &scratch[..answers] {
        if r.rtype == TYPE_SRV && r.class == CLASS_IN && answer.srv.len() < MAX_SRV {
            if r.rdlen < 7 {
                return Err(bad("short SRV record"));
            }
            let target = r.rdata + 6;
            if skip_name(m, target)? > r.rdata + r.rdlen {
                return Err(bad("SRV target runs past its record"));
            }
            answer.srv.push(SrvRecord {
                priority: u16_at(m, r.rdata)?,
                weight: u16_at(m, r.rdata + 2)?,
                port: u16_at(m, r.rdata + 4)?,
                target: name_text(m, target)?,
                address: with_address(target)?,
            });
        } else if let Some(ip) = address_of(m, r) {
            if name_is(m, r.owner, name.wire())? {
                answer.addresses.push(ip);
            }
        }
    }
    Ok(answer)
}

/// The name shown for an SRV target: the node of `<node>.node.<dc>.<domain>`,
/// the address of a Consul `<hex>.addr.` target, else the name itself.
pub fn display_node(target: &str, addr: Option<IpAddr>) -> String {
    let t = target.trim_end_matches('.');
    let mut labels = t.split('.');
    let first = labels.next().unwrap_or("");
    match labels.next() {
        Some("node") => first.to_string(),
        Some("addr") => addr.map(|a| a.to_string()).unwrap_or_else(|| t.into()),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests;
