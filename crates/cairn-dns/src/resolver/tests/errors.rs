//! Names outside our domains, malformed or unsupported queries, and the
//! SERVFAIL / UDP-limit helpers the server uses.

use hickory_proto::op::ResponseCode;

use super::*;

#[test]
fn outside_domain_refused_or_forwarded() {
    let m = ask(&resolver(), "example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(m.queries.len(), 1);
    let r = resolver_with(
        catalog(),
        DnsConfig {
            recursors: vec!["127.0.0.1:5353".parse().unwrap()],
            ..DnsConfig::default()
        },
    );
    let q = packet("example.com.", RecordType::A, None);
    assert_eq!(r.answer(&q, Transport::Udp), Answer::Forward);
    assert_eq!(r.answer(&q, Transport::Tcp), Answer::Forward);
}

#[test]
fn malformed_packets() {
    let r = resolver();
    assert_eq!(r.answer(&[], Transport::Udp), Answer::Drop);
    assert_eq!(r.answer(&[1, 2, 3], Transport::Udp), Answer::Drop);
    // A header claiming one question, then garbage: FORMERR echoing the ID.
    let garbage = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    let Answer::Reply(bytes) = r.answer(&garbage, Transport::Udp) else {
        panic!()
    };
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // No question at all: FORMERR.
    let empty = Message::new(7, MessageType::Query, OpCode::Query)
        .to_vec()
        .unwrap();
    let Answer::Reply(bytes) = r.answer(&empty, Transport::Udp) else {
        panic!()
    };
    assert_eq!(
        Message::from_vec(&bytes).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    // A response is dropped, never answered.
    let mut resp = packet("web.service.consul.", RecordType::A, None);
    resp[2] |= 0x80;
    assert_eq!(r.answer(&resp, Transport::Udp), Answer::Drop);
}

#[test]
fn non_query_opcode_is_notimp() {
    let r = resolver();
    let mut m = Message::new(9, MessageType::Query, OpCode::Notify);
    m.add_query(Query::query(
        Name::from_ascii("web.service.consul.").unwrap(),
        RecordType::SOA,
    ));
    let Answer::Reply(bytes) = r.answer(&m.to_vec().unwrap(), Transport::Udp) else {
        panic!()
    };
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(reply.metadata.id, 9);
    // Status opcode with a garbage body: NOTIMP too.
    let garbage = [0, 9, 0x10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
    let Answer::Reply(bytes) = r.answer(&garbage, Transport::Udp) else {
        panic!()
    };
    assert_eq!(
        Message::from_vec(&bytes).unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let mut m = Message::new(3, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("web.service.consul.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_version(1);
    m.set_edns(e);
    let Answer::Reply(bytes) = resolver().answer(&m.to_vec().unwrap(), Transport::Udp) else {
        panic!()
    };
    let reply = Message::from_vec(&bytes).unwrap();
    // 16 = BADVERS (hickory decodes the shared value 16 as BADSIG).
    assert_eq!(u16::from(reply.metadata.response_code), 16, "{reply:?}");
    assert!(reply.edns.is_some());
}

#[test]
fn servfail_and_udp_limit_helpers() {
    let r = resolver();
    let q = packet("example.com.", RecordType::A, Some(1400));
    let m = Message::from_vec(&r.servfail(&q).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.metadata.id, 0xbeef);
    assert_eq!(m.queries.len(), 1);
    assert!(r.servfail(&[1, 2]).is_none());
    assert_eq!(Resolver::<MemoryCatalog>::udp_limit(&q), 1400);
    assert_eq!(
        Resolver::<MemoryCatalog>::udp_limit(&packet("a.", RecordType::A, None)),
        512
    );
}

#[test]
fn non_internet_class_is_refused() {
    let mut m = Message::new(5, MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(hickory_proto::rr::DNSClass::CH);
    m.add_query(q);
    let Answer::Reply(bytes) = resolver().answer(&m.to_vec().unwrap(), Transport::Udp) else {
        panic!()
    };
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}
