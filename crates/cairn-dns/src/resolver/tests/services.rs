//! Service lookups: SRV targets and their additional records, A/AAAA/ANY,
//! tags, health filtering, TTLs, domains and the shuffle.

use std::time::Duration;

use hickory_proto::op::ResponseCode;

use super::*;

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
