//! One contract, both Discovery implementations: what a fixed list of
//! instances says must be what DNS SRV (against a fake server holding the
//! same instances) says.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use portal::{Discovery, DnsDiscovery, StaticDiscovery};
use support::{Behaviour, Entry, FakeDns};

const SERVICE: &str = "stock-price.service.consul";

fn instances() -> Vec<SocketAddr> {
    vec![
        "127.0.0.1:4001".parse().unwrap(),
        "127.0.0.2:4002".parse().unwrap(),
    ]
}

async fn dns_with(instances: &[SocketAddr], in_additional: bool) -> (FakeDns, DnsDiscovery) {
    let entries = instances
        .iter()
        .enumerate()
        .map(|(i, a)| Entry {
            target: format!("node{i}.node.dc1.consul."),
            port: a.port(),
            ip: match a.ip() {
                std::net::IpAddr::V4(v4) => v4,
                _ => Ipv4Addr::LOCALHOST,
            },
            in_additional,
        })
        .collect();
    let fake = FakeDns::start(Behaviour {
        services: vec![(format!("{SERVICE}."), entries)],
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(500));
    (fake, d)
}

/// The contract: the instances found, resolved to addresses, are exactly
/// the registered ones.
async fn contract_finds_exactly_the_instances(d: &impl Discovery, expected: &[SocketAddr]) {
    let cands = d.candidates(SERVICE).await.unwrap();
    let mut found = BTreeSet::new();
    for c in &cands {
        let ip = d.address(c).await.unwrap();
        found.insert(SocketAddr::new(ip, c.port));
        assert!(!c.node(Some(ip)).is_empty());
    }
    assert_eq!(found, expected.iter().copied().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn static_discovery_meets_the_contract() {
    contract_finds_exactly_the_instances(&StaticDiscovery::new(instances()), &instances()).await;
    contract_finds_exactly_the_instances(&StaticDiscovery::new(vec![]), &[]).await;
}

#[tokio::test]
async fn dns_discovery_meets_the_contract_with_additional_records() {
    let (fake, d) = dns_with(&instances(), true).await;
    contract_finds_exactly_the_instances(&d, &instances()).await;
    assert_eq!(fake.a_queries.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dns_discovery_meets_the_contract_with_follow_up_a_queries() {
    let (fake, d) = dns_with(&instances(), false).await;
    contract_finds_exactly_the_instances(&d, &instances()).await;
    assert_eq!(fake.a_queries.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dns_discovery_meets_the_contract_when_empty() {
    let (_fake, d) = dns_with(&[], true).await;
    contract_finds_exactly_the_instances(&d, &[]).await;
    // An unknown name is NXDOMAIN: also no instances, not an error.
    assert!(d
        .candidates("nope.service.consul")
        .await
        .unwrap()
        .is_empty());
}
