//! The hand-written encoder and decoder checked against hickory-proto (a
//! general DNS library, used here only as the reference): queries it parses
//! as intended, answers it writes (with its name compression) read back the
//! same, and malformed input is an error, never a panic.

use super::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::{Rng, SeedableRng};

fn reply(id: u16, name: &str, qtype: RecordType, rcode: ResponseCode, tc: bool) -> Message {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.metadata.truncation = tc;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

fn decode(bytes: &[u8], id: u16, name: &str, qtype: u16) -> Result<Answer, DnsError> {
    decode_answer(
        bytes,
        id,
        &fqdn(name).unwrap(),
        qtype,
        &mut Scratch::default(),
    )
}

fn srv_answer() -> Vec<u8> {
    let name = Name::from_ascii("Stock-Price.service.consul.").unwrap();
    let mut m = reply(
        7,
        "Stock-Price.service.consul.",
        RecordType::SRV,
        ResponseCode::NoError,
        false,
    );
    for (node, port, ip) in [("N1", 4567, [10, 0, 0, 1]), ("n2", 4568, [10, 0, 0, 2])] {
        let target = Name::from_ascii(format!("{node}.node.dc1.consul.")).unwrap();
        m.add_answer(Record::from_rdata(
            name.clone(),
            0,
            RData::SRV(SRV::new(1, 5, port, target.clone())),
        ));
        m.add_additional(Record::from_rdata(target, 0, RData::A(A(ip.into()))));
    }
    // An address for a name no SRV points at is not attached to anything.
    m.add_additional(Record::from_rdata(
        Name::from_ascii("n3.node.dc1.consul.").unwrap(),
        0,
        RData::AAAA(AAAA("::1".parse().unwrap())),
    ));
    m.to_vec().unwrap()
}

#[test]
fn query_is_what_a_general_library_reads() {
    let name = fqdn("Stock-Price.service.consul").unwrap();
    let mut buf = [0u8; MAX_QUERY];
    let n = encode_query(0xbeef, &name, TYPE_SRV, &mut buf);
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0xbeef);
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert_eq!(m.metadata.op_code, OpCode::Query);
    assert!(m.metadata.recursion_desired);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(
        m.queries[0].name().to_ascii(),
        "Stock-Price.service.consul."
    );
    assert_eq!(m.queries[0].query_type(), RecordType::SRV);
    let edns = m.edns.as_ref().expect("an OPT record");
    assert_eq!(edns.max_payload(), EDNS_PAYLOAD);
    assert_eq!(edns.version(), 0);
    // The longest name fits the buffer.
    let long = vec!["a".repeat(63); 3].join(".") + "." + &"b".repeat(61);
    let name = fqdn(&long).unwrap();
    assert_eq!(name.wire().len(), MAX_NAME);
    let n = encode_query(1, &name, TYPE_A, &mut buf);
    assert_eq!(n, MAX_QUERY);
    assert_eq!(
        Message::from_vec(&buf[..n]).unwrap().queries[0].query_type(),
        RecordType::A
    );
}

#[test]
fn srv_with_additional_addresses() {
    let a = decode(&srv_answer(), 7, "stock-price.SERVICE.consul.", TYPE_SRV).unwrap();
    assert_eq!(
        a.srv,
        vec![
            SrvRecord {
                priority: 1,
                weight: 5,
                port: 4567,
                target: "n1.node.dc1.consul.".into(),
                address: Some(IpAddr::from([10, 0, 0, 1])),
            },
            SrvRecord {
                priority: 1,
                weight: 5,
                port: 4568,
                target: "n2.node.dc1.consul.".into(),
                address: Some(IpAddr::from([10, 0, 0, 2])),
            },
        ]
    );
    assert!(a.addresses.is_empty());
    assert!(!a.truncated);
}

#[test]
fn srv_without_glue_and_a_answers() {
    let name = Name::from_ascii("web.service.consul.").unwrap();
    let mut m = reply(
        3,
        "web.service.consul.",
        RecordType::SRV,
        ResponseCode::NoError,
        false,
    );
    m.add_answer(Record::from_rdata(
        name,
        0,
        RData::SRV(SRV::new(
            2,
            0,
            80,
            Name::from_ascii("host.example.").unwrap(),
        )),
    ));
    let a = decode(&m.to_vec().unwrap(), 3, "web.service.consul", TYPE_SRV).unwrap();
    assert_eq!(a.srv.len(), 1);
    assert_eq!(a.srv[0].address, None);
    assert_eq!(a.srv[0].target, "host.example.");

    let host = Name::from_ascii("Host.Example.").unwrap();
    let mut m = reply(
        4,
        "Host.Example.",
        RecordType::A,
        ResponseCode::NoError,
        false,
    );
    m.add_answer(Record::from_rdata(
        host.clone(),
        0,
        RData::A(A([192, 0, 2, 1].into())),
    ));
    m.add_answer(Record::from_rdata(
        Name::from_ascii("other.example.").unwrap(),
        0,
        RData::A(A([192, 0, 2, 9].into())),
    ));
    let a = decode(&m.to_vec().unwrap(), 4, "host.example.", TYPE_A).unwrap();
    assert_eq!(a.addresses, vec![IpAddr::from([192, 0, 2, 1])]);
    assert!(a.srv.is_empty());
}

#[test]
fn nxdomain_is_empty_and_servfail_an_error() {
    let nx = reply(
        1,
        "x.service.consul.",
        RecordType::SRV,
        ResponseCode::NXDomain,
        false,
    );
    let nx = nx.to_vec().unwrap();
    assert_eq!(
        decode(&nx, 1, "x.service.consul", TYPE_SRV).unwrap(),
        Answer::default()
    );
    let sf = reply(
        1,
        "x.service.consul.",
        RecordType::SRV,
        ResponseCode::ServFail,
        false,
    );
    assert_eq!(
        decode(&sf.to_vec().unwrap(), 1, "x.service.consul", TYPE_SRV),
        Err(DnsError::Rcode("SERVFAIL".into()))
    );
}

#[test]
fn mismatches_and_garbage_are_rejected() {
    let ok = reply(
        1,
        "x.service.consul.",
        RecordType::SRV,
        ResponseCode::NoError,
        true,
    );
    let ok = ok.to_vec().unwrap();
    assert!(
        decode(&ok, 1, "x.service.consul", TYPE_SRV)
            .unwrap()
            .truncated
    );
    assert!(decode(&ok, 2, "x.service.consul", TYPE_SRV).is_err(), "id");
    assert!(
        decode(&ok, 1, "y.service.consul", TYPE_SRV).is_err(),
        "name"
    );
    assert!(
        decode(&ok, 1, "x.service.consul.more", TYPE_SRV).is_err(),
        "longer name"
    );
    assert!(
        decode(&ok, 1, "service.consul", TYPE_SRV).is_err(),
        "shorter name"
    );
    assert!(decode(&ok, 1, "x.service.consul", TYPE_A).is_err(), "type");
    assert!(decode(b"\x00\x01\x02", 1, "x.service.consul", TYPE_SRV).is_err());
    let mut q = [0u8; MAX_QUERY];
    let n = encode_query(1, &fqdn("x.service.consul").unwrap(), TYPE_SRV, &mut q);
    assert!(
        decode(&q[..n], 1, "x.service.consul", TYPE_SRV).is_err(),
        "a query is not an answer"
    );
}

#[test]
fn compression_loops_and_overruns_are_errors() {
    let mut m = srv_answer();
    // Point the question name at itself.
    m[12] = 0xc0;
    m[13] = 12;
    assert!(decode(&m, 7, "stock-price.service.consul", TYPE_SRV).is_err());
    let mut m = srv_answer();
    m[12] = 0x80; // a reserved label type
    assert!(decode(&m, 7, "stock-price.service.consul", TYPE_SRV).is_err());
}

#[test]
fn truncated_and_corrupted_answers_never_panic() {
    let seed: u64 = std::env::var("WIRE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("WIRE_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let good = srv_answer();
    let name = fqdn("stock-price.service.consul").unwrap();
    let mut scratch = Scratch::default();
    for cut in 0..good.len() {
        assert!(
            decode_answer(&good[..cut], 7, &name, TYPE_SRV, &mut scratch).is_err(),
            "a prefix of {cut} bytes"
        );
    }
    for _ in 0..20_000 {
        let mut m = good.clone();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..m.len());
            m[i] = rng.random();
        }
        let _ = decode_answer(&m, 7, &name, TYPE_SRV, &mut scratch);
        let len = rng.random_range(0..64);
        let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let _ = decode_answer(&junk, 7, &name, TYPE_SRV, &mut scratch);
    }
}

#[test]
fn names_and_display() {
    assert!(fqdn("bad..name").is_err());
    assert!(fqdn("").is_err());
    assert!(fqdn(".").is_err());
    assert!(fqdn("sp ace.consul").is_err());
    assert!(fqdn(&"a".repeat(64)).is_err());
    let too_long = vec!["a".repeat(63); 4].join(".");
    assert!(fqdn(&too_long).is_err());
    assert_eq!(fqdn("A.b").unwrap().to_text(), "a.b.");
    assert_eq!(fqdn("a.b.").unwrap().wire(), b"\x01a\x01b\x00");
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
