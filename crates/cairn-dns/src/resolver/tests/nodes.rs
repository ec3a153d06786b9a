//! Node, address and apex lookups, and reverse (PTR) lookups.

use hickory_proto::op::ResponseCode;

use super::*;

#[test]
fn node_lookups() {
    let r = resolver();
    let m = ask(&r, "a.node.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(txts(&m.additionals), vec!["env=prod", "plain"]);
    let m = ask(&r, "a.node.dc1.consul.", RecordType::TXT);
    assert_eq!(txts(&m.answers), vec!["env=prod", "plain"]);
    assert!(m.additionals.is_empty());
    let m = ask(&r, "a.node.consul.", RecordType::ANY);
    assert_eq!(ips(&m.answers).len(), 1);
    assert_eq!(txts(&m.answers).len(), 2);
    let m = ask(&r, "six.node.consul.", RecordType::AAAA);
    assert_eq!(
        ips(&m.answers),
        vec!["2001:db8::6".parse::<IpAddr>().unwrap()]
    );
    // Exists, no such type: NODATA.
    for (name, t) in [
        ("a.node.consul.", RecordType::AAAA),
        ("a.node.consul.", RecordType::SRV),
        ("six.node.consul.", RecordType::A),
    ] {
        let m = ask(&r, name, t);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_soa_authority(&m, "consul.");
    }
    let m = ask(&r, "zz.node.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_soa_authority(&m, "consul.");
}

#[test]
fn long_meta_values_are_split_into_character_strings() {
    let mut c = catalog();
    c.nodes[0].meta.insert("big".to_string(), "x".repeat(600));
    let r = resolver_with(c, DnsConfig::default());
    let m = ask_with(&r, "a.node.consul.", RecordType::TXT, Transport::Tcp, None);
    let big = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::TXT(t) if t.txt_data.len() > 1 => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(big.txt_data.len(), 3);
    assert!(big.txt_data.iter().all(|d| d.len() <= 255));
}

#[test]
fn addr_lookups() {
    let r = resolver();
    let m = ask(&r, "c000020a.addr.dc1.consul.", RecordType::A);
    assert_eq!(
        ips(&m.answers),
        vec!["192.0.2.10".parse::<IpAddr>().unwrap()]
    );
    let m = ask(
        &r,
        "20010db8000000000000000000000001.addr.dc1.consul.",
        RecordType::AAAA,
    );
    assert_eq!(
        ips(&m.answers),
        vec!["2001:db8::1".parse::<IpAddr>().unwrap()]
    );
    let m = ask(&r, "c000020a.addr.dc1.consul.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    let m = ask(&r, "c00002.addr.dc1.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn apex_soa_ns_and_glue() {
    let r = resolver();
    let m = ask(&r, "consul.", RecordType::SOA);
    assert_eq!(m.answers.len(), 1);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(soa.mname.to_ascii(), "ns.consul.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.consul.");
    assert_eq!(soa.serial, 1_700_000_000);
    let m = ask(&r, "consul.", RecordType::NS);
    let RData::NS(ns) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ns.0.to_ascii(), "ns.consul.");
    assert_eq!(m.additionals[0].name.to_ascii(), "ns.consul.");
    assert_eq!(
        ips(&m.additionals),
        vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
    );
    let m = ask(&r, "consul.", RecordType::ANY);
    assert_eq!(m.answers.len(), 2);
    let m = ask(&r, "ns.consul.", RecordType::A);
    assert_eq!(ips(&m.answers), vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
    let m = ask(&r, "consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa_authority(&m, "consul.");
    let m = ask(&r, "cairn.example.", RecordType::SOA);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(soa.mname.to_ascii(), "ns.cairn.example.");
}

// ---- reverse ----

#[test]
fn ptr_for_node_and_service_addresses() {
    let r = resolver();
    let m = ask(&r, "2.0.0.10.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ptr.0.to_ascii(), "b.node.dc1.consul.");
    assert!(m.metadata.authoritative);
    let m = ask(&r, "10.2.0.192.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ptr.0.to_ascii(), "db.service.consul.");
    let v6 = "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let m = ask(&r, v6, RecordType::PTR);
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ptr.0.to_ascii(), "six.node.dc1.consul.");
    let m = ask(&r, "9.9.9.9.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_soa_authority(&m, "consul.");
}

#[test]
fn unknown_ptr_is_forwarded_when_recursors_exist() {
    let r = resolver_with(
        catalog(),
        DnsConfig {
            recursors: vec!["127.0.0.1:5353".parse().unwrap()],
            ..DnsConfig::default()
        },
    );
    let q = packet("9.9.9.9.in-addr.arpa.", RecordType::PTR, None);
    assert_eq!(r.answer(&q, Transport::Udp), Answer::Forward);
    let q = packet("1.0.0.10.in-addr.arpa.", RecordType::PTR, None);
    assert!(matches!(r.answer(&q, Transport::Udp), Answer::Reply(_)));
    // RA is set when recursors exist.
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert!(m.metadata.recursion_available);
}
