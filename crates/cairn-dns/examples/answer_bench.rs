//! Quick, criterion-free throughput harness for [`Resolver::answer`]: a
//! [`MemoryCatalog`] of 100 services x 3 instances (the shape of
//! `bench/dns_vs_nsd.sh`), SRV and A queries over random service names,
//! answered in a loop; prints ns/query per case.
//!
//! Run: `cargo run --release -p cairn-dns --example answer_bench [iterations]`.
//!
//! The "cache off" cases wrap the catalog so that [`Catalog::generation`]
//! returns 0 (never cache): that is the full path (parse, catalog read,
//! build, encode) on every query.

use std::hint::black_box;
use std::time::Instant;

use cairn_dns::{
    Answer, Catalog, DnsConfig, FixedGeneration, MemoryCatalog, Resolver, ShuffleRng, Transport,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

fn catalog() -> MemoryCatalog {
    MemoryCatalog::synthetic(100, 3)
}

fn packets(qtype: RecordType, edns: bool) -> Vec<Vec<u8>> {
    let rng = ShuffleRng::from_seed(42);
    (0..1000u16)
        .map(|i| {
            let s = rng.below(100);
            let mut m = Message::new(i, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            let name = Name::from_ascii(format!("svc{s:03}.service.consul.")).unwrap();
            m.add_query(Query::query(name, qtype));
            if edns {
                let mut e = Edns::new();
                e.set_max_payload(1232);
                m.set_edns(e);
            }
            m.to_vec().unwrap()
        })
        .collect()
}

fn run<C: Catalog>(label: &str, r: &Resolver<C>, qs: &[Vec<u8>], iters: usize) {
    // Warm up (fills the cache when it is on).
    for q in qs {
        black_box(r.answer(q, Transport::Udp));
    }
    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..iters {
        let q = &qs[i % qs.len()];
        if let Answer::Reply(b) = r.answer(black_box(q), Transport::Udp) {
            bytes += b.len();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!(
        "{label:<28} {ns:>8.0} ns/query  ({:.0} B/answer)",
        bytes as f64 / iters as f64
    );
}

fn main() {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let cached = Resolver::new(catalog(), DnsConfig::default());
    let uncached = Resolver::new(FixedGeneration(catalog(), 0), DnsConfig::default());
    for (qtype, edns) in [
        (RecordType::SRV, false),
        (RecordType::A, false),
        (RecordType::SRV, true),
    ] {
        let qs = packets(qtype, edns);
        let tag = format!("{qtype}{}", if edns { "+edns" } else { "" });
        run(&format!("{tag} cache on"), &cached, &qs, iters);
        run(&format!("{tag} cache off"), &uncached, &qs, iters);
    }
}
