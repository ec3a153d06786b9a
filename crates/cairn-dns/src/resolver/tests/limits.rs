//! Sizes: the UDP answer-count limit, trimming to 512 bytes or the EDNS
//! buffer, TC, TCP's 64 KiB and `a_record_limit`.

use super::*;

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
