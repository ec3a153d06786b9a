//! Fuzz target: any packet into `Resolver::answer` must not panic, and any
//! reply must parse back with hickory and fit the transport's size limit.
//! Differential: every answer of the caching resolver (the catalog's
//! generation is 1: repeated questions take the cached fast path) must be
//! byte-identical to that of the same resolver over a catalog with
//! generation 0 (never cached, hickory only). Both share seeds and are
//! called in lockstep, so their shuffles agree.
//!
//! The first input byte picks the transport and the configuration (with or
//! without recursors, truncation on or off); the rest is the packet.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cairn_dns::{
    Answer, DnsConfig, FixedGeneration, Health, Instance, MemoryCatalog, NodeInfo, Resolver,
    ShuffleRng, Transport,
};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn catalog() -> MemoryCatalog {
    let mut meta = BTreeMap::new();
    meta.insert("env".to_string(), "prod".to_string());
    meta.insert("rfc1035-x".to_string(), "y".repeat(300));
    let mut nodes = Vec::new();
    let mut instances = Vec::new();
    for i in 0..40u16 {
        let node = format!("node-{i}");
        let address = if i % 7 == 3 {
            format!("2001:db8::{i:x}")
        } else {
            format!("10.0.{}.{}", i / 250, i % 250 + 1)
        };
        nodes.push(NodeInfo {
            name: node.clone(),
            address: address.clone(),
            datacenter: "dc1".into(),
            tagged_addresses: BTreeMap::new(),
            meta: meta.clone(),
            health: Health::Passing,
        });
        let service_address = match i % 5 {
            0 => format!("192.0.2.{}", i + 1),
            1 => "db.example.com".to_string(),
            _ => String::new(),
        };
        instances.push(Instance {
            node,
            node_address: address,
            datacenter: "dc1".into(),
            service_id: format!("web-{i}"),
            service: if i < 30 { "web".into() } else { "db".into() },
            service_address,
            port: 8000 + i,
            tags: vec![format!("v{}", i % 3), "primary".into()],
            health: match i % 6 {
                4 => Health::Warning,
                5 => Health::Critical,
                _ => Health::Passing,
            },
            weight_passing: 10,
            weight_warning: 1,
            node_meta: meta.clone(),
        });
    }
    MemoryCatalog {
        datacenter: "dc1".into(),
        nodes,
        instances,
    }
}

fn configs() -> [DnsConfig; 4] {
    let make = |recursors: bool, truncate: bool, alt: bool| DnsConfig {
        alt_domain: alt.then(|| "cairn.example".to_string()),
        enable_truncate: truncate,
        recursors: if recursors {
            vec!["127.0.0.1:53".parse().unwrap()]
        } else {
            Vec::new()
        },
        agent_address: Some("10.0.0.1".parse().unwrap()),
        a_record_limit: if truncate { 5 } else { 0 },
        ..DnsConfig::default()
    };
    [
        make(false, false, false),
        make(true, false, true),
        make(false, true, true),
        make(true, true, false),
    ]
}

fn uncached() -> &'static [Resolver<FixedGeneration<MemoryCatalog>>; 4] {
    static R: OnceLock<[Resolver<FixedGeneration<MemoryCatalog>>; 4]> = OnceLock::new();
    R.get_or_init(|| {
        configs().map(|config| {
            Resolver::with_parts(
                FixedGeneration(catalog(), 0),
                config,
                ShuffleRng::from_seed(1),
                Box::new(|| 42),
            )
        })
    })
}

fn resolvers() -> &'static [Resolver<MemoryCatalog>; 4] {
    static R: OnceLock<[Resolver<MemoryCatalog>; 4]> = OnceLock::new();
    R.get_or_init(|| {
        configs().map(|config| {
            Resolver::with_parts(catalog(), config, ShuffleRng::from_seed(1), Box::new(|| 42))
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let resolver = &resolvers()[usize::from(selector & 3)];
    let transport = if selector & 4 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let answer = resolver.answer(packet, transport);
    let plain = uncached()[usize::from(selector & 3)].answer(packet, transport);
    assert_eq!(answer, plain, "cached and uncached answers differ");
    match answer {
        Answer::Reply(reply) => {
            let parsed = Message::from_vec(&reply).expect("reply must parse");
            assert_eq!(&reply[..2], &packet[..2], "reply must echo the ID");
            assert!(parsed.metadata.message_type == hickory_proto::op::MessageType::Response);
            let limit = match transport {
                Transport::Udp => Resolver::<MemoryCatalog>::udp_limit(packet),
                Transport::Tcp => 65535,
            };
            assert!(reply.len() <= limit, "reply of {} > {limit}", reply.len());
        }
        Answer::Forward => assert!(!resolver.config().recursors.is_empty()),
        Answer::Drop => {}
    }
});
