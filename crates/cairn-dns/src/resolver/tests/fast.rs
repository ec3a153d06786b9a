//! The answer cache and fast path: byte-identical to the uncached path,
//! still shuffled, invalidated by a new catalog generation, and never used
//! for negative or uncacheable answers.

use super::*;
use crate::catalog::Catalog;
use crate::wire;

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
                        // packet() sets RD; CD is set here: both must be echoed.
                        q[3] |= 0x10;
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
