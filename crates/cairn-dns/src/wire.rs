//! The fast path's wire format: a minimal query parser, pre-encoded
//! resource records, and a response writer that produces exactly the bytes
//! hickory-proto's encoder would (the same section order, header bits and
//! name compression, including its limits), so trimming decisions measured on
//! the message size are identical on both paths.
//!
//! Only the plain case is handled: one question with an uncompressed name of
//! letters, digits, `-` and `_`, class IN or ANY, no answer/authority
//! records, at most an option-less version-0 OPT, nothing after it. Anything
//! else goes to the hickory path ([`parse_query`] returns `None`).
//!
//! Name compression emulates `hickory_proto::serialize::binary::BinEncoder`
//! with `Name::emit`: every suffix of a name written in full is remembered
//! (at most [`CANDIDATES`], only while the name ends before offset 0x3FFF); a
//! compressible name (owners; not SRV targets, which RFC 2782 says must not be
//! compressed but are still remembered) is replaced from its first suffix
//! equal byte-for-byte (case-sensitive) to a remembered one, at most
//! [`COMPRESSED_NAMES`] names per message.

use hickory_proto::rr::{Name, RData, Record, RecordType};

/// hickory's `COMPRESSION_CANDIDATE_LIMIT`.
const CANDIDATES: usize = 64;
/// hickory's `COMPRESSED_NAME_LIMIT`.
const COMPRESSED_NAMES: usize = 120;

const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

/// A query the fast path can answer, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastQuery<'a> {
    /// The question name as sent: labels and the final zero byte.
    pub qname: &'a [u8],
    /// Question type and class, as sent (4 bytes).
    pub qtail: [u8; 4],
    /// The question type.
    pub qtype: u16,
    /// The OPT record's UDP payload size, when there is one.
    pub edns: Option<u16>,
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Parses the plain form of a query (see the module docs); `None` for
/// anything else, which the hickory path then handles.
pub(crate) fn parse_query(packet: &[u8]) -> Option<FastQuery<'_>> {
    if packet.len() < 12 + 1 + 4 {
        return None;
    }
    // QR = 0, OPCODE = QUERY.
    if packet[2] & 0xf8 != 0 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut pos = 12;
    loop {
        let len = usize::from(*packet.get(pos)?);
        if len == 0 {
            pos += 1;
            break;
        }
        if len > 63 {
            return None; // a pointer or an extended label type
        }
        let label = packet.get(pos + 1..pos + 1 + len)?;
        if !label.iter().all(|&b| is_plain(b)) {
            return None;
        }
        pos += 1 + len;
        if pos - 12 > 254 {
            return None;
        }
    }
    let qname = &packet[12..pos];
    let tail = packet.get(pos..pos + 4)?;
    let qtail = [tail[0], tail[1], tail[2], tail[3]];
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    if qclass != CLASS_IN && qclass != CLASS_ANY {
        return None;
    }
    pos += 4;
    let edns = if ar == 0 {
        None
    } else {
        // Root name, type OPT, class = payload, TTL = ext-rcode 0,
        // version 0, flags; RDLENGTH 0.
        let opt = packet.get(pos..pos + 11)?;
        if opt[0] != 0
            || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT
            || opt[5] != 0
            || opt[6] != 0
            || opt[9] != 0
            || opt[10] != 0
        {
            return None;
        }
        pos += 11;
        Some(u16::from_be_bytes([opt[3], opt[4]]))
    };
    (pos == packet.len()).then_some(FastQuery {
        qname,
        qtail,
        qtype,
        edns,
    })
}

/// The cache key of a question: the lowercased wire name and the type,
/// written into `buf` (at least 259 bytes); returns the used part.
pub(crate) fn key_of<'b>(qname: &[u8], qtype: u16, buf: &'b mut [u8; 260]) -> &'b [u8] {
    let n = qname.len();
    for (dst, src) in buf.iter_mut().zip(qname) {
        *dst = src.to_ascii_lowercase();
    }
    buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
    &buf[..n + 2]
}

/// The uncompressed wire form of a name (labels and the final zero byte).
pub(crate) fn name_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// One resource record, pre-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireRr {
    /// The owner name in wire form; `None`: the question name as sent.
    owner: Option<Box<[u8]>>,
    rtype: u16,
    ttl: u32,
    /// RDATA; for SRV the target name follows the first 6 bytes.
    rdata: Box<[u8]>,
    srv: bool,
}

impl WireRr {
    /// Pre-encodes `record` (A, AAAA, TXT, SRV of class IN); `qname` is the
    /// question name: an owner byte-for-byte equal to it becomes the
    /// question name of each later query. `None` for other record types.
    pub(crate) fn from_record(record: &Record, qname: &[u8]) -> Option<Self> {
        if record.dns_class != hickory_proto::rr::DNSClass::IN {
            return None;
        }
        let owner = name_wire(&record.name);
        let owner = (owner != qname).then(|| owner.into_boxed_slice());
        let (rdata, srv) = match &record.data {
            RData::A(a) => (a.0.octets().to_vec(), false),
            RData::AAAA(a) => (a.0.octets().to_vec(), false),
            RData::TXT(txt) => {
                let mut rdata = Vec::new();
                for s in txt.txt_data.iter() {
                    rdata.push(u8::try_from(s.len()).ok()?);
                    rdata.extend_from_slice(s);
                }
                (rdata, false)
            }
            RData::SRV(srv) => {
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&srv.priority.to_be_bytes());
                rdata.extend_from_slice(&srv.weight.to_be_bytes());
                rdata.extend_from_slice(&srv.port.to_be_bytes());
                rdata.extend_from_slice(&name_wire(&srv.target));
                (rdata, true)
            }
            _ => return None,
        };
        Some(Self {
            owner,
            rtype: u16::from(record.record_type()),
            ttl: record.ttl,
            rdata: rdata.into_boxed_slice(),
            srv,
        })
    }

    /// Whether the owner is the question name (of whichever query).
    pub(crate) fn owner_is_qname(&self) -> bool {
        self.owner.is_none()
    }

    /// Whether this record counts against `udp_answer_limit`.
    pub(crate) fn is_address_or_srv(&self) -> bool {
        matches!(
            RecordType::from(self.rtype),
            RecordType::A | RecordType::AAAA | RecordType::SRV
        )
    }

    /// The key under which hickory's path deduplicates additional records:
    /// the lowercased owner (the question's when `owner` is `None`), the
    /// type and the data.
    pub(crate) fn dedup_key(&self, lower_qname: &[u8]) -> Vec<u8> {
        let mut key = match &self.owner {
            Some(o) => o.to_ascii_lowercase(),
            None => lower_qname.to_vec(),
        };
        key.extend_from_slice(&self.rtype.to_be_bytes());
        key.extend_from_slice(&self.rdata);
        key
    }
}

/// A message being written, with hickory's compression state.
struct Writer<'a, 'o> {
    out: &'o mut Vec<u8>,
    table: [(u16, &'a [u8]); CANDIDATES],
    stored: usize,
    compressed: usize,
}

impl<'a> Writer<'a, '_> {
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.table[..self.stored]
            .iter()
            .find(|(_, s)| *s == suffix)
            .map(|(at, _)| *at)
    }

    /// Writes a name (`wire`: labels and the final zero byte), compressed
    /// or not, as `Name::emit` does.
    fn name(&mut self, wire: &'a [u8], compress: bool) {
        let start = self.out.len();
        let body = &wire[..wire.len() - 1];
        self.out.extend_from_slice(body);
        let end = self.out.len();
        let compress = compress && self.compressed < COMPRESSED_NAMES;
        if compress {
            self.compressed += 1;
        }
        let mut i = 0;
        while i < body.len() {
            let suffix = &body[i..];
            if compress {
                if let Some(at) = self.find(suffix).filter(|at| at & 0xC000 == 0) {
                    self.out.truncate(start + i);
                    self.out.extend_from_slice(&(0xC000 | at).to_be_bytes());
                    return;
                }
            }
            if end < 0x3FFF && self.stored < CANDIDATES {
                self.table[self.stored] = ((start + i) as u16, suffix);
                self.stored += 1;
            }
            i += 1 + usize::from(body[i]);
        }
        self.out.push(0);
    }

    fn record(&mut self, rr: &'a WireRr, qname: &'a [u8]) {
        self.name(rr.owner.as_deref().unwrap_or(qname), true);
        self.out.extend_from_slice(&rr.rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&rr.ttl.to_be_bytes());
        let len_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        if rr.srv {
            self.out.extend_from_slice(&rr.rdata[..6]);
            self.name(&rr.rdata[6..], false);
        } else {
            self.out.extend_from_slice(&rr.rdata);
        }
        let len = (self.out.len() - len_at - 2) as u16;
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// The response header bits the writer needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// The query ID.
    pub id: [u8; 2],
    /// The query's RD bit.
    pub rd: bool,
    /// The query's CD bit.
    pub cd: bool,
    /// RA: recursors are configured.
    pub ra: bool,
}

/// Writes an authoritative NOERROR response into `out` (cleared first):
/// header, the question as sent, `answers`, `extras`, and our OPT when
/// `opt`. The same bytes as hickory's `Message::to_vec`.
pub(crate) fn write_response<'a>(
    out: &mut Vec<u8>,
    head: Head,
    query: &FastQuery<'a>,
    answers: &[&'a WireRr],
    extras: &[&'a WireRr],
    opt: bool,
) {
    out.clear();
    out.extend_from_slice(&head.id);
    // QR, OPCODE 0, AA, TC 0, RD as asked.
    out.push(0x80 | 0x04 | u8::from(head.rd));
    // RA, Z 0, AD 0, CD as asked, RCODE 0.
    out.push(if head.ra { 0x80 } else { 0 } | if head.cd { 0x10 } else { 0 });
    let additional = extras.len() + usize::from(opt);
    for n in [1, answers.len(), 0, additional] {
        out.extend_from_slice(&(n.min(0xffff) as u16).to_be_bytes());
    }
    let mut w = Writer {
        out,
        table: [(0, &[][..]); CANDIDATES],
        stored: 0,
        compressed: 0,
    };
    w.name(query.qname, true);
    w.out.extend_from_slice(&query.qtail);
    for rr in answers {
        w.record(rr, query.qname);
    }
    for rr in extras {
        w.record(rr, query.qname);
    }
    if opt {
        // Root name, OPT, our 4096-byte payload, version 0, no flags, no
        // options.
        let payload = crate::resolver::MAX_UDP_EDNS.to_be_bytes();
        w.out
            .extend_from_slice(&[0, 0, 41, payload[0], payload[1], 0, 0, 0, 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_query_accepts_only_the_plain_form() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03web\x07service\x06consul\x00");
        q.extend_from_slice(&[0, 33, 0, 1]);
        let p = parse_query(&q).unwrap();
        assert_eq!(p.qname, b"\x03web\x07service\x06consul\x00");
        assert_eq!(p.qtype, 33);
        assert_eq!(p.edns, None);

        let mut with_opt = q.clone();
        with_opt[11] = 1;
        with_opt.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(parse_query(&with_opt).unwrap().edns, Some(1232));

        let mut bad_version = with_opt.clone();
        bad_version[q.len() + 6] = 1;
        assert!(parse_query(&bad_version).is_none());
        let mut trailing = q.clone();
        trailing.push(0);
        assert!(parse_query(&trailing).is_none());
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(parse_query(&response).is_none());
        let mut chaos = q.clone();
        let n = chaos.len();
        chaos[n - 1] = 3;
        assert!(parse_query(&chaos).is_none());
        let mut odd = q.clone();
        odd[13] = b'.';
        assert!(parse_query(&odd).is_none());
        assert!(parse_query(&q[..q.len() - 1]).is_none());
    }

    #[test]
    fn key_is_case_insensitive() {
        let (mut a, mut b) = ([0u8; 260], [0u8; 260]);
        assert_eq!(
            key_of(b"\x03WeB\x06consul\x00", 1, &mut a),
            key_of(b"\x03web\x06CONSUL\x00", 1, &mut b)
        );
    }
}
