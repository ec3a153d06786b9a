//! Unit tests of the sans-IO resolver over a [`MemoryCatalog`].

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::catalog::{DnsConfig, Health, Instance, NodeInfo};
use crate::memory::MemoryCatalog;

fn node(name: &str, address: &str) -> NodeInfo {
    let mut meta = BTreeMap::new();
    meta.insert("env".to_string(), "prod".to_string());
    meta.insert("rfc1035-note".to_string(), "plain".to_string());
    NodeInfo {
        name: name.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        tagged_addresses: BTreeMap::new(),
        meta,
        health: Health::Passing,
    }
}

fn inst(node: &str, node_address: &str, service: &str, port: u16, health: Health) -> Instance {
    let mut node_meta = BTreeMap::new();
    node_meta.insert("env".to_string(), "prod".to_string());
    Instance {
        node: node.into(),
        node_address: node_address.into(),
        datacenter: "dc1".into(),
        service_id: format!("{service}-{node}-{port}"),
        service: service.into(),
        service_address: String::new(),
        port,
        tags: vec!["v1".into()],
        health,
        weight_passing: 10,
        weight_warning: 1,
        node_meta,
    }
}

/// web: a (passing), b (warning), c (critical); db on a with an explicit
/// address; v6svc on an IPv6 node; lonely: only critical.
fn catalog() -> MemoryCatalog {
    let mut db = inst("a", "10.0.0.1", "db", 5432, Health::Passing);
    db.service_address = "192.0.2.10".into();
    db.tags = vec!["primary".into()];
    let mut web_b = inst("b", "10.0.0.2", "web", 8080, Health::Warning);
    web_b.tags = vec!["v2".into()];
    let mut ext = inst("a", "10.0.0.1", "ext", 443, Health::Passing);
    ext.service_address = "api.example.com".into();
    MemoryCatalog {
        datacenter: "dc1".into(),
        nodes: vec![
            node("a", "10.0.0.1"),
            node("b", "10.0.0.2"),
            node("c", "10.0.0.3"),
            node("six", "2001:db8::6"),
        ],
        instances: vec![
            inst("a", "10.0.0.1", "web", 8080, Health::Passing),
            web_b,
            inst("c", "10.0.0.3", "web", 8080, Health::Critical),
            db,
            inst("six", "2001:db8::6", "v6svc", 80, Health::Passing),
            inst("c", "10.0.0.3", "lonely", 1, Health::Critical),
            ext,
        ],
    }
}

fn big_catalog(n: usize) -> MemoryCatalog {
    let mut c = MemoryCatalog {
        datacenter: "dc1".into(),
        ..Default::default()
    };
    for i in 0..n {
        let name = format!("node-{i}");
        let addr = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        c.nodes.push(node(&name, &addr));
        c.instances
            .push(inst(&name, &addr, "big", 9000 + i as u16, Health::Passing));
    }
    c
}

fn resolver_with(catalog: MemoryCatalog, config: DnsConfig) -> Resolver<MemoryCatalog> {
    Resolver::with_parts(
        catalog,
        config,
        ShuffleRng::from_seed(99),
        Box::new(|| 1_700_000_000),
    )
}

fn resolver() -> Resolver<MemoryCatalog> {
    resolver_with(
        catalog(),
        DnsConfig {
            alt_domain: Some("cairn.example".into()),
            agent_address: Some("10.0.0.1".parse().unwrap()),
            ..DnsConfig::default()
        },
    )
}

fn packet(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn reply_bytes(
    r: &Resolver<MemoryCatalog>,
    name: &str,
    qtype: RecordType,
    t: Transport,
    edns: Option<u16>,
) -> Vec<u8> {
    match r.answer(&packet(name, qtype, edns), t) {
        Answer::Reply(b) => b,
        other => panic!("{name} {qtype}: {other:?}"),
    }
}

fn ask_with(
    r: &Resolver<MemoryCatalog>,
    name: &str,
    qtype: RecordType,
    t: Transport,
    edns: Option<u16>,
) -> Message {
    let bytes = reply_bytes(r, name, qtype, t, edns);
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, 0xbeef);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    m
}

fn ask(r: &Resolver<MemoryCatalog>, name: &str, qtype: RecordType) -> Message {
    ask_with(r, name, qtype, Transport::Udp, None)
}

fn ips(records: &[Record]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn srvs(m: &Message) -> Vec<(u16, u16, u16, String)> {
    let mut v: Vec<_> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn txts(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn assert_soa_authority(m: &Message, domain: &str) {
    assert_eq!(m.authorities.len(), 1, "{m}");
    let RData::SOA(soa) = &m.authorities[0].data else {
        panic!("not an SOA: {m}");
    };
    assert_eq!(m.authorities[0].name.to_ascii(), domain);
    assert_eq!(soa.mname.to_ascii(), format!("ns.{domain}"));
    assert_eq!(soa.rname.to_ascii(), format!("hostmaster.{domain}"));
    assert_eq!(soa.serial, 1_700_000_000);
    assert_eq!(soa.minimum, 0);
    assert_eq!((soa.refresh, soa.retry, soa.expire), (3600, 600, 86400));
}

/// Every additional record (but OPT) belongs to a target of an SRV answer,
/// and every SRV target with an IP gets its address record.
fn assert_additional_consistent(m: &Message) {
    let targets: HashSet<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(s.target.to_ascii().to_lowercase()),
            _ => None,
        })
        .collect();
    let extra_names: HashSet<String> = m
        .additionals
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .map(|r| r.name.to_ascii().to_lowercase())
        .collect();
    for r in &m.additionals {
        assert!(
            targets.contains(&r.name.to_ascii().to_lowercase()),
            "stray additional {r}"
        );
    }
    for t in &targets {
        assert!(extra_names.contains(t), "no address for {t}");
    }
}

// ---- services ----

#[test]
fn srv_service_with_node_targets_and_additional() {
    let m = ask(&resolver(), "web.service.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired);
    assert!(!m.metadata.recursion_available);
    // c is critical: left out; b is warning: kept with the warning weight.
    assert_eq!(
        srvs(&m),
        vec![
            (1, 1, 8080, "b.node.dc1.consul.".to_string()),
            (1, 10, 8080, "a.node.dc1.consul.".to_string()),
        ]
    );
    let mut extra = ips(&m.additionals);
    extra.sort();
    assert_eq!(
        extra,
        vec![
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "10.0.0.2".parse().unwrap()
        ]
    );
    assert_eq!(txts(&m.additionals), vec!["env=prod", "env=prod"]);
    assert_additional_consistent(&m);
    for r in &m.answers {
        assert_eq!(r.name.to_ascii(), "web.service.consul.");
        assert_eq!(r.ttl, 0);
    }
}

#[test]
fn srv_explicit_address_uses_addr_target() {
    let m = ask(&resolver(), "db.service.dc1.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m),
        vec![(1, 10, 5432, "c000020a.addr.dc1.consul.".to_string())]
    );
    let a: Vec<_> = m
        .additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .collect();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].name.to_ascii(), "c000020a.addr.dc1.consul.");
    assert_eq!(
        ips(&m.additionals),
        vec!["192.0.2.10".parse::<IpAddr>().unwrap()]
    );
    // The node meta TXT is named after the node.
    let txt: Vec<_> = m
        .additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::TXT)
        .collect();
    assert_eq!(txt[0].name.to_ascii(), "a.node.dc1.consul.");
}

#[test]
fn srv_hostname_address_points_at_hostname() {
    let m = ask(&resolver(), "ext.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m), vec![(1, 10, 443, "api.example.com.".to_string())]);
    assert!(ips(&m.additionals).is_empty());
}

#[test]
fn node_meta_txt_in_additional_can_be_disabled() {
    let r = resolver_with(
        catalog(),
        DnsConfig {
            enable_additional_node_meta_txt: false,
            ..DnsConfig::default()
        },
    );
    let m = ask(&r, "web.service.consul.", RecordType::SRV);
    assert!(txts(&m.additionals).is_empty());
    assert_eq!(ips(&m.additionals).len(), 2);
    let m = ask(&r, "a.node.consul.", RecordType::A);
    assert!(m.additionals.is_empty());
}

#[test]
fn a_service_returns_service_or_node_address() {
    let r = resolver();
    let m = ask(&r, "web.service.consul.", RecordType::A);
    let mut got = ips(&m.answers);
    got.sort();
    assert_eq!(
        got,
        vec![
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "10.0.0.2".parse().unwrap()
        ]
    );
    assert!(srvs(&m).is_empty(), "SRV only when asked");
    let m = ask(&r, "db.service.consul.", RecordType::A);
    assert_eq!(
        ips(&m.answers),
        vec!["192.0.2.10".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn a_answers_are_deduplicated() {
    let mut c = catalog();
    c.instances
        .push(inst("a", "10.0.0.1", "web", 9090, Health::Passing));
    let r = resolver_with(c, DnsConfig::default());
    let m = ask(&r, "web.service.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 2);
    let m = ask(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 3);
    // One A for node a in the additional section, not two.
    assert_eq!(ips(&m.additionals).len(), 2);
}

#[test]
fn aaaa_service_only_ipv6_and_nodata_otherwise() {
    let r = resolver();
    let m = ask(&r, "v6svc.service.consul.", RecordType::AAAA);
    assert_eq!(
        ips(&m.answers),
        vec!["2001:db8::6".parse::<IpAddr>().unwrap()]
    );
    let m = ask(&r, "v6svc.service.consul.", RecordType::SRV);
    assert_eq!(
        ips(&m.additionals),
        vec!["2001:db8::6".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(m.additionals[0].record_type(), RecordType::AAAA);
    // An existing service without IPv6: NODATA with the SOA.
    let m = ask(&r, "web.service.consul.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_soa_authority(&m, "consul.");
    // And v6svc has no A.
    let m = ask(&r, "v6svc.service.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // TXT on a service: NODATA.
    let m = ask(&r, "web.service.consul.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa_authority(&m, "consul.");
}

#[test]
fn any_on_service_gives_addresses() {
    let m = ask(&resolver(), "web.service.consul.", RecordType::ANY);
    assert_eq!(ips(&m.answers).len(), 2);
}

#[test]
fn tag_filters_standard_and_rfc2782() {
    let r = resolver();
    let m = ask(&r, "v1.web.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m).len(), 1);
    assert_eq!(srvs(&m)[0].3, "a.node.dc1.consul.");
    let m = ask(&r, "V2.web.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m)[0].3, "b.node.dc1.consul.");
    let m = ask(&r, "_web._v1.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m)[0].3, "a.node.dc1.consul.");
    let m = ask(&r, "_web._tcp.service.consul.", RecordType::SRV);
    assert_eq!(srvs(&m).len(), 2);
    let m = ask(&r, "_web._udp.service.dc1.consul.", RecordType::SRV);
    assert_eq!(srvs(&m).len(), 2);
    let m = ask(&r, "_web._tcp.consul.", RecordType::SRV);
    assert_eq!(srvs(&m).len(), 2);
    let m = ask(&r, "nope.web.service.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn health_filtering() {
    let r = resolver();
    // Only critical instances: NXDOMAIN (Consul #1142).
    let m = ask(&r, "lonely.service.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_soa_authority(&m, "consul.");
    let r = resolver_with(
        catalog(),
        DnsConfig {
            only_passing: true,
            ..DnsConfig::default()
        },
    );
    let m = ask(&r, "web.service.consul.", RecordType::SRV);
    assert_eq!(
        srvs(&m),
        vec![(1, 10, 8080, "a.node.dc1.consul.".to_string())]
    );
    let m = ask(&r, "v2.web.service.consul.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn unknown_service_and_other_datacenter_are_nxdomain() {
    let r = resolver();
    for name in [
        "nope.service.consul.",
        "web.service.dc2.consul.",
        "web.service.dc2.dc.consul.",
        "a.node.dc2.consul.",
        "c000020a.addr.dc2.consul.",
        "whatever.consul.",
        "x.y.z.service.consul.",
    ] {
        let m = ask(&r, name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(m.answers.is_empty());
        assert_soa_authority(&m, "consul.");
    }
    let m = ask(&r, "web.service.DC1.dc.consul.", RecordType::A);
    assert_eq!(m.answers.len(), 2);
}

#[test]
fn case_insensitive_and_query_name_echoed() {
    let m = ask(&resolver(), "WEB.Service.CONSUL.", RecordType::A);
    assert_eq!(m.answers.len(), 2);
    assert_eq!(m.answers[0].name.to_ascii(), "WEB.Service.CONSUL.");
    assert_eq!(m.queries[0].name().to_ascii(), "WEB.Service.CONSUL.");
}

#[test]
fn alt_domain_answers_in_the_query_domain() {
    let r = resolver();
    let m = ask(&r, "web.service.cairn.example.", RecordType::SRV);
    let targets: Vec<_> = srvs(&m).into_iter().map(|s| s.3).collect();
    assert_eq!(
        targets,
        vec!["b.node.dc1.cairn.example.", "a.node.dc1.cairn.example."]
    );
    let m = ask(&r, "nope.service.cairn.example.", RecordType::SRV);
    assert_soa_authority(&m, "cairn.example.");
    // PTR always uses the primary domain.
    let m = ask(&r, "1.0.0.10.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ptr.0.to_ascii(), "a.node.dc1.consul.");
}

#[test]
fn ttls_from_config() {
    let mut service_ttl = BTreeMap::new();
    service_ttl.insert("*".to_string(), Duration::from_secs(5));
    service_ttl.insert("web".to_string(), Duration::from_secs(30));
    let r = resolver_with(
        catalog(),
        DnsConfig {
            node_ttl: Duration::from_secs(7),
            service_ttl,
            ..DnsConfig::default()
        },
    );
    let m = ask(&r, "web.service.consul.", RecordType::SRV);
    assert!(m.answers.iter().all(|r| r.ttl == 30));
    assert!(m.additionals.iter().all(|r| r.ttl == 30));
    let m = ask(&r, "db.service.consul.", RecordType::A);
    assert!(m.answers.iter().all(|r| r.ttl == 5));
    let m = ask(&r, "a.node.consul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 7);
    let m = ask(&r, "1.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.answers[0].ttl, 0);
}

#[test]
fn shuffle_puts_every_instance_first() {
    let r = resolver_with(big_catalog(5), DnsConfig::default());
    let mut first_ports = HashSet::new();
    let mut first_ips = HashSet::new();
    for _ in 0..200 {
        let m = ask(&r, "big.service.consul.", RecordType::SRV);
        let RData::SRV(s) = &m.answers[0].data else {
            panic!()
        };
        first_ports.insert(s.port);
        let m = ask(&r, "big.service.consul.", RecordType::A);
        first_ips.insert(ips(&m.answers)[0]);
    }
    for port in 9000..9005 {
        assert!(first_ports.contains(&port), "{port} never first");
    }
    assert_eq!(first_ips.len(), 5);
}

#[test]
fn seeded_shuffle_is_deterministic() {
    let a = resolver_with(big_catalog(8), DnsConfig::default());
    let b = resolver_with(big_catalog(8), DnsConfig::default());
    for _ in 0..10 {
        assert_eq!(
            reply_bytes(
                &a,
                "big.service.consul.",
                RecordType::SRV,
                Transport::Tcp,
                None
            ),
            reply_bytes(
                &b,
                "big.service.consul.",
                RecordType::SRV,
                Transport::Tcp,
                None
            )
        );
    }
}

// ---- nodes, addr, apex ----

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

// ---- outside, errors ----

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

// ---- sizes, trimming, EDNS ----

#[test]
fn udp_without_edns_is_limited_to_three_and_no_tc_by_default() {
    let r = resolver_with(big_catalog(20), DnsConfig::default());
    for t in [RecordType::SRV, RecordType::A] {
        let bytes = reply_bytes(&r, "big.service.consul.", t, Transport::Udp, None);
        assert!(bytes.len() <= 512);
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.answers.len(), 3, "{t}");
        assert!(!m.metadata.truncation);
        assert!(m.edns.is_none());
        assert_additional_consistent(&m);
    }
}

#[test]
fn enable_truncate_sets_tc_on_trimmed_udp() {
    let r = resolver_with(
        big_catalog(20),
        DnsConfig {
            enable_truncate: true,
            ..DnsConfig::default()
        },
    );
    let m = ask(&r, "big.service.consul.", RecordType::SRV);
    assert_eq!(m.answers.len(), 3);
    assert!(m.metadata.truncation);
    // Not trimmed: no TC.
    let m = ask(&r, "node-1.node.consul.", RecordType::A);
    assert!(!m.metadata.truncation);
    // TCP never sets TC.
    let m = ask_with(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Tcp,
        None,
    );
    assert_eq!(m.answers.len(), 20);
    assert!(!m.metadata.truncation);
}

#[test]
fn udp_answer_limit_is_configurable() {
    let r = resolver_with(
        big_catalog(20),
        DnsConfig {
            udp_answer_limit: 1,
            ..DnsConfig::default()
        },
    );
    assert_eq!(
        ask(&r, "big.service.consul.", RecordType::A).answers.len(),
        1
    );
}

#[test]
fn edns_buffer_is_used_and_opt_echoed() {
    let r = resolver_with(big_catalog(50), DnsConfig::default());
    // Plenty of room: every A record, no count limit with EDNS.
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::A,
        Transport::Udp,
        Some(4096),
    );
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.answers.len(), 50);
    let opt = m.edns.as_ref().expect("OPT echoed");
    assert_eq!(opt.max_payload(), 4096);
    // SRV with node A and TXT: trimmed to the 1232-byte buffer.
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Udp,
        Some(1232),
    );
    assert!(bytes.len() <= 1232, "{}", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(
        m.answers.len() > 3 && m.answers.len() < 50,
        "{}",
        m.answers.len()
    );
    assert!(!m.metadata.truncation);
    assert!(m.edns.is_some());
    assert_additional_consistent(&m);
    // A buffer above 4096 is capped at 4096.
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Udp,
        Some(65000),
    );
    assert!(bytes.len() <= 4096 && bytes.len() > 3000, "{}", bytes.len());
    // A buffer below 512 counts as 512.
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Udp,
        Some(100),
    );
    assert!(bytes.len() <= 512);
    assert!(Message::from_vec(&bytes).unwrap().answers.len() <= 3);
}

#[test]
fn udp_trimming_without_edns_fits_512_even_when_three_do_not() {
    let mut c = big_catalog(10);
    for i in &mut c.instances {
        for k in 0..10 {
            i.node_meta.insert(format!("key{k}"), "v".repeat(20));
        }
    }
    let r = resolver_with(c, DnsConfig::default());
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Udp,
        None,
    );
    assert!(bytes.len() <= 512, "{}", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.answers.is_empty() && m.answers.len() < 3);
    assert_additional_consistent(&m);
}

#[test]
fn tcp_returns_everything_up_to_64k() {
    let r = resolver_with(big_catalog(50), DnsConfig::default());
    let m = ask_with(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Tcp,
        None,
    );
    assert_eq!(m.answers.len(), 50);
    assert_additional_consistent(&m);
    let r = resolver_with(big_catalog(2000), DnsConfig::default());
    let bytes = reply_bytes(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Tcp,
        None,
    );
    assert!(bytes.len() <= 65535);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(
        m.answers.len() > 300 && m.answers.len() < 2000,
        "{}",
        m.answers.len()
    );
    assert!(!m.metadata.truncation);
    assert_additional_consistent(&m);
}

#[test]
fn a_record_limit_applies_to_both_transports_not_srv() {
    let r = resolver_with(
        big_catalog(20),
        DnsConfig {
            a_record_limit: 5,
            ..DnsConfig::default()
        },
    );
    let m = ask_with(
        &r,
        "big.service.consul.",
        RecordType::A,
        Transport::Tcp,
        None,
    );
    assert_eq!(m.answers.len(), 5);
    let m = ask_with(
        &r,
        "big.service.consul.",
        RecordType::A,
        Transport::Udp,
        Some(4096),
    );
    assert_eq!(m.answers.len(), 5);
    let m = ask_with(
        &r,
        "big.service.consul.",
        RecordType::SRV,
        Transport::Tcp,
        None,
    );
    assert_eq!(m.answers.len(), 20);
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

// ---- answer cache and fast path ----

/// A catalog whose generation is set by the test (0 = never cache) and
/// whose contents can change.
struct Versioned {
    inner: std::sync::RwLock<MemoryCatalog>,
    generation: std::sync::atomic::AtomicU64,
}

impl Versioned {
    fn new(c: MemoryCatalog, generation: u64) -> Self {
        Self {
            inner: std::sync::RwLock::new(c),
            generation: generation.into(),
        }
    }
}

impl Catalog for Versioned {
    fn datacenter(&self) -> String {
        self.inner.read().unwrap().datacenter()
    }
    fn service_instances(&self, service: &str) -> Vec<Instance> {
        self.inner.read().unwrap().service_instances(service)
    }
    fn node(&self, name: &str) -> Option<NodeInfo> {
        self.inner.read().unwrap().node(name)
    }
    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo> {
        self.inner.read().unwrap().nodes_by_address(ip)
    }
    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance> {
        self.inner.read().unwrap().services_by_address(ip)
    }
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn versioned(c: MemoryCatalog, generation: u64, config: DnsConfig) -> Resolver<Versioned> {
    Resolver::with_parts(
        Versioned::new(c, generation),
        config,
        ShuffleRng::from_seed(99),
        Box::new(|| 1_700_000_000),
    )
}

/// `catalog()` plus 40 `big` instances (answers that need trimming).
fn mixed_catalog() -> MemoryCatalog {
    let mut c = catalog();
    let big = big_catalog(40);
    c.nodes.extend(big.nodes);
    c.instances.extend(big.instances);
    c
}

fn raw_answer<C: Catalog>(r: &Resolver<C>, packet: &[u8], t: Transport) -> Option<Vec<u8>> {
    match r.answer(packet, t) {
        Answer::Reply(b) => Some(b),
        _ => None,
    }
}

/// Whether `packet` is answered from the cache.
fn hits<C: Catalog>(r: &Resolver<C>, packet: &[u8]) -> bool {
    let Some(q) = wire::parse_query(packet) else {
        return false;
    };
    let mut buf = [0u8; 260];
    let key = wire::key_of(q.qname, q.qtype, &mut buf);
    r.cache.get(key, r.catalog.generation()).is_some()
}

const DIFF_NAMES: &[&str] = &[
    "web.service.consul.",
    "WEB.Service.CONSUL.",
    "v1.web.service.consul.",
    "_web._tcp.service.consul.",
    "_db._primary.service.consul.",
    "db.service.consul.",
    "db.service.dc1.consul.",
    "db.service.dc2.consul.",
    "ext.service.consul.",
    "v6svc.service.consul.",
    "lonely.service.consul.",
    "nope.service.consul.",
    "big.service.consul.",
    "BIG.service.consul.",
    "Big.service.cairn.example.",
    "a.node.consul.",
    "A.NODE.dc1.consul.",
    "six.node.consul.",
    "node-7.node.consul.",
    "consul.",
    "ns.consul.",
    "0a000001.addr.dc1.consul.",
    "1.0.0.10.in-addr.arpa.",
    "example.com.",
];

const DIFF_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::ANY,
    RecordType::MX,
];

fn diff_configs() -> Vec<DnsConfig> {
    let base = DnsConfig {
        alt_domain: Some("cairn.example".into()),
        agent_address: Some("10.0.0.1".parse().unwrap()),
        ..DnsConfig::default()
    };
    vec![
        base.clone(),
        DnsConfig {
            enable_truncate: true,
            a_record_limit: 7,
            ..base.clone()
        },
        DnsConfig {
            udp_answer_limit: 1,
            only_passing: true,
            enable_additional_node_meta_txt: false,
            recursors: vec!["127.0.0.1:53".parse().unwrap()],
            ..base.clone()
        },
        DnsConfig {
            udp_answer_limit: 0,
            enable_truncate: true,
            ..base
        },
    ]
}

/// The cached fast path writes exactly the bytes of the uncached hickory
/// path: same seed, same shuffle draws, so byte equality covers the header
/// bits, the question echo, compression, OPT and every trimming rule.
#[test]
fn cached_answers_are_byte_identical_to_uncached() {
    let mut fast_answers = 0;
    for config in diff_configs() {
        let cached = versioned(mixed_catalog(), 3, config.clone());
        let plain = versioned(mixed_catalog(), 0, config);
        for name in DIFF_NAMES {
            for &qtype in DIFF_TYPES {
                for edns in [None, Some(100), Some(512), Some(1232), Some(4096)] {
                    for t in [Transport::Udp, Transport::Tcp] {
                        let mut q = packet(name, qtype, edns);
                        q[2] |= 0x00; // RD set by packet()
                        q[3] |= 0x10; // CD: echoed
                        for round in 0..3 {
                            let hit = hits(&cached, &q);
                            if round > 0 && hit {
                                fast_answers += 1;
                            }
                            assert_eq!(
                                raw_answer(&cached, &q, t),
                                raw_answer(&plain, &q, t),
                                "{name} {qtype} {edns:?} {t:?} round {round} (hit: {hit})"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(plain.cache.len(), 0, "generation 0 never caches");
        assert!(cached.cache.len() > 10);
    }
    assert!(fast_answers > 1000, "{fast_answers}");
}

/// Decoded, the fast path's answers carry the slow path's records (as
/// sets: the shuffle differs), the question as asked, and OPT when asked.
#[test]
fn fast_path_bytes_parse_and_match_slow_records() {
    let sorted = |records: &[Record]| {
        let mut v: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    for (name, qtype, edns) in [
        ("web.service.consul.", RecordType::SRV, None),
        ("WEB.service.consul.", RecordType::A, Some(1232)),
        ("db.service.consul.", RecordType::SRV, Some(4096)),
        ("a.node.consul.", RecordType::A, None),
        ("a.node.consul.", RecordType::ANY, Some(4096)),
        ("six.node.consul.", RecordType::AAAA, None),
    ] {
        let fast = resolver();
        let slow = versioned(catalog(), 0, fast.config().clone());
        let q = packet(name, qtype, edns);
        let _ = raw_answer(&fast, &q, Transport::Udp);
        assert!(hits(&fast, &q), "{name} {qtype}");
        let a = Message::from_vec(&raw_answer(&fast, &q, Transport::Udp).unwrap()).unwrap();
        let b = Message::from_vec(&raw_answer(&slow, &q, Transport::Udp).unwrap()).unwrap();
        assert_eq!(a.queries, b.queries);
        assert_eq!(a.queries[0].name().to_ascii(), name);
        assert_eq!(a.metadata, b.metadata);
        assert_eq!(a.edns.is_some(), edns.is_some());
        assert_eq!(
            a.edns.as_ref().map(|e| e.max_payload()),
            Some(4096).filter(|_| edns.is_some())
        );
        assert_eq!(sorted(&a.answers), sorted(&b.answers), "{name} {qtype}");
        assert_eq!(
            sorted(&a.additionals),
            sorted(&b.additionals),
            "{name} {qtype}"
        );
        assert!(a.authorities.is_empty());
    }
}

#[test]
fn shuffle_still_happens_with_the_cache_on() {
    let r = resolver_with(big_catalog(5), DnsConfig::default());
    for t in [Transport::Udp, Transport::Tcp] {
        let mut first_ports = HashSet::new();
        let mut first_ips = HashSet::new();
        let srv = packet("big.service.consul.", RecordType::SRV, None);
        let a = packet("big.service.consul.", RecordType::A, Some(1232));
        for i in 0..200 {
            let m = Message::from_vec(&raw_answer(&r, &srv, t).unwrap()).unwrap();
            assert_eq!(m.answers.len(), if t == Transport::Udp { 3 } else { 5 });
            let RData::SRV(s) = &m.answers[0].data else {
                panic!()
            };
            first_ports.insert(s.port);
            let m = Message::from_vec(&raw_answer(&r, &a, t).unwrap()).unwrap();
            assert_eq!(m.answers.len(), 5);
            first_ips.insert(ips(&m.answers)[0]);
            if i == 0 {
                assert!(hits(&r, &srv) && hits(&r, &a));
            }
        }
        assert_eq!(first_ports, (9000..9005).collect::<HashSet<u16>>());
        assert_eq!(first_ips.len(), 5);
    }
}

#[test]
fn a_new_generation_invalidates_cached_answers() {
    let r = versioned(catalog(), 1, DnsConfig::default());
    let q = packet("web.service.consul.", RecordType::A, None);
    let ask = |r: &Resolver<Versioned>| {
        let mut v = ips(
            &Message::from_vec(&raw_answer(r, &q, Transport::Udp).unwrap())
                .unwrap()
                .answers,
        );
        v.sort();
        v
    };
    let before: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
    assert_eq!(ask(&r), before);
    assert!(hits(&r, &q));
    r.catalog().inner.write().unwrap().instances[1].health = Health::Critical;
    // Same generation: the cached answer stands (the contract says the
    // generation grows on every change).
    assert_eq!(ask(&r), before);
    r.catalog()
        .generation
        .store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(!hits(&r, &q));
    assert_eq!(ask(&r), vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
    assert!(hits(&r, &q));
    // Generation 0: no caching at all.
    r.catalog()
        .generation
        .store(0, std::sync::atomic::Ordering::SeqCst);
    r.catalog().inner.write().unwrap().instances[1].health = Health::Passing;
    assert_eq!(ask(&r), before);
    assert!(!hits(&r, &q));
}

#[test]
fn negative_and_uncacheable_answers_are_not_cached() {
    let r = resolver();
    for (name, qtype) in [
        ("nope.service.consul.", RecordType::A),
        ("web.service.consul.", RecordType::TXT),
        ("consul.", RecordType::SOA),
        ("1.0.0.10.in-addr.arpa.", RecordType::PTR),
        ("0a000001.addr.dc1.consul.", RecordType::A),
    ] {
        let q = packet(name, qtype, None);
        let _ = raw_answer(&r, &q, Transport::Udp);
        assert!(!hits(&r, &q), "{name} {qtype}");
    }
    assert_eq!(r.cache.len(), 0);
}
