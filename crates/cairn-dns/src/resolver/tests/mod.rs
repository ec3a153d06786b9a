//! Unit tests of the sans-IO resolver over a [`MemoryCatalog`]: the shared
//! catalogs, packet builders and assertions here, the tests by topic in the
//! submodules.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::catalog::{DnsConfig, Health, Instance, NodeInfo};
use crate::memory::MemoryCatalog;
use crate::rng::ShuffleRng;

mod errors;
mod fast;
mod limits;
mod nodes;
mod services;

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
