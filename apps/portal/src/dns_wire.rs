//! The DNS messages the portal exchanges, without I/O: building an SRV or A
//! query and reading an answer into SRV records plus the addresses the
//! additional section gave for their targets.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// The EDNS payload size the portal advertises for UDP answers.
pub const EDNS_PAYLOAD: u16 = 4096;

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

/// One SRV record.
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
}

/// What an answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The SRV records (empty for NXDOMAIN or no data).
    pub srv: Vec<SrvRecord>,
    /// Addresses by owner name (lower-case, fully qualified), from the
    /// answer and additional sections.
    pub addresses: HashMap<String, Vec<IpAddr>>,
    /// The server set the TC bit: retry over TCP.
    pub truncated: bool,
}

/// Makes `name` fully qualified and checks it.
pub fn fqdn(name: &str) -> Result<Name, DnsError> {
    let n = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&n).map_err(|_| DnsError::BadName(name.to_string()))
}

/// Encodes a recursive query for `name` and `qtype` with message id `id`.
pub fn encode_query(id: u16, name: &Name, qtype: RecordType) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    m.set_edns(edns);
    m.to_vec().map_err(|e| DnsError::BadAnswer(e.to_string()))
}

/// Decodes an answer to the query `id` for `name`; NXDOMAIN is an empty
/// answer, other error codes are errors.
pub fn decode_answer(bytes: &[u8], id: u16, name: &Name) -> Result<Answer, DnsError> {
    let m = Message::from_vec(bytes).map_err(|e| DnsError::BadAnswer(e.to_string()))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err(DnsError::BadAnswer("id or type mismatch".into()));
    }
    if m.queries.len() != 1 || m.queries[0].name().to_lowercase() != name.to_lowercase() {
        return Err(DnsError::BadAnswer("question mismatch".into()));
    }
    let mut answer = Answer {
        truncated: m.metadata.truncation,
        ..Answer::default()
    };
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(answer),
        other => return Err(DnsError::Rcode(other.to_string())),
    }
    for r in m.answers.iter().chain(m.additionals.iter()) {
        let owner = r.name.to_lowercase().to_ascii();
        match &r.data {
            RData::SRV(s) => answer.srv.push(SrvRecord {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: s.target.to_lowercase().to_ascii(),
            }),
            RData::A(a) => answer
                .addresses
                .entry(owner)
                .or_default()
                .push(IpAddr::V4(a.0)),
            RData::AAAA(a) => answer
                .addresses
                .entry(owner)
                .or_default()
                .push(IpAddr::V6(a.0)),
            _ => {}
        }
    }
    Ok(answer)
}

/// The name shown for an SRV target: the node of `<node>.node.<dc>.<domain>`,
/// the address of a Consul `<hex>.addr.` target, else the name itself.
pub fn display_node(target: &str, addr: Option<IpAddr>) -> String {
    let t = target.trim_end_matches('.');
    let labels: Vec<&str> = t.split('.').collect();
    match labels.get(1) {
        Some(&"node") => labels[0].to_string(),
        Some(&"addr") => addr.map(|a| a.to_string()).unwrap_or_else(|| t.into()),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::Record;
    use std::net::Ipv4Addr;

    fn reply(id: u16, name: &Name, rcode: ResponseCode, tc: bool) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.truncation = tc;
        m.add_query(Query::query(name.clone(), RecordType::SRV));
        m
    }

    #[test]
    fn srv_with_additional_addresses() {
        let name = fqdn("Stock-Price.service.consul").unwrap();
        let mut m = reply(7, &name, ResponseCode::NoError, false);
        let target = Name::from_ascii("n1.node.dc1.consul.").unwrap();
        m.add_answer(Record::from_rdata(
            name.clone(),
            0,
            RData::SRV(SRV::new(1, 1, 4567, target.clone())),
        ));
        m.add_additional(Record::from_rdata(
            target,
            0,
            RData::A(A(Ipv4Addr::new(10, 0, 0, 1))),
        ));
        let a = decode_answer(&m.to_vec().unwrap(), 7, &name).unwrap();
        assert_eq!(
            a.srv,
            vec![SrvRecord {
                priority: 1,
                weight: 1,
                port: 4567,
                target: "n1.node.dc1.consul.".into()
            }]
        );
        assert_eq!(
            a.addresses["n1.node.dc1.consul."],
            vec![IpAddr::from([10, 0, 0, 1])]
        );
        assert!(!a.truncated);
    }

    #[test]
    fn nxdomain_is_empty_and_servfail_an_error() {
        let name = fqdn("x.service.consul").unwrap();
        let nx = reply(1, &name, ResponseCode::NXDomain, false)
            .to_vec()
            .unwrap();
        assert_eq!(decode_answer(&nx, 1, &name).unwrap(), Answer::default());
        let sf = reply(1, &name, ResponseCode::ServFail, false)
            .to_vec()
            .unwrap();
        assert!(matches!(
            decode_answer(&sf, 1, &name),
            Err(DnsError::Rcode(_))
        ));
    }

    #[test]
    fn mismatches_and_garbage_are_rejected() {
        let name = fqdn("x.service.consul").unwrap();
        let other = fqdn("y.service.consul").unwrap();
        let ok = reply(1, &name, ResponseCode::NoError, true)
            .to_vec()
            .unwrap();
        assert!(decode_answer(&ok, 1, &name).unwrap().truncated);
        assert!(decode_answer(&ok, 2, &name).is_err());
        assert!(decode_answer(&ok, 1, &other).is_err());
        assert!(decode_answer(b"\x00\x01\x02", 1, &name).is_err());
        let q = encode_query(1, &name, RecordType::SRV).unwrap();
        assert!(
            decode_answer(&q, 1, &name).is_err(),
            "a query is not an answer"
        );
    }

    #[test]
    fn names_and_display() {
        assert!(fqdn("bad..name").is_err());
        assert_eq!(fqdn("a.b").unwrap().to_ascii(), "a.b.");
        assert_eq!(display_node("n1.node.dc1.consul.", None), "n1");
        assert_eq!(
            display_node(
                "7f000001.addr.dc1.consul.",
                Some(IpAddr::from([127, 0, 0, 1]))
            ),
            "127.0.0.1"
        );
        assert_eq!(display_node("web.example.com.", None), "web.example.com");
    }
}
