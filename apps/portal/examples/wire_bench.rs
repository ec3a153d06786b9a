//! Time per SRV exchange spent in encoding the query and decoding the answer:
//! the portal's own codec against hickory-proto doing the same work (the
//! codec the portal used before). The answer is one SRV record with its
//! target's A record in the additional section, as a Cairn agent sends for a
//! one-instance service.
//!
//! Run: `cargo run --release -p portal --example wire_bench`

use std::hint::black_box;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use portal::dns_wire::{decode_answer, encode_query, fqdn, Scratch, MAX_QUERY, TYPE_SRV};

const SERVICE: &str = "stock-price.service.consul.";
const ROUNDS: u32 = 200_000;

fn answer(id: u16) -> Vec<u8> {
    let name = Name::from_ascii(SERVICE).unwrap();
    let target = Name::from_ascii("node1.node.dc1.consul.").unwrap();
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(name.clone(), RecordType::SRV));
    m.add_answer(Record::from_rdata(
        name,
        0,
        RData::SRV(SRV::new(1, 1, 4567, target.clone())),
    ));
    m.add_additional(Record::from_rdata(
        target,
        0,
        RData::A(A([127, 0, 0, 1].into())),
    ));
    m.to_vec().unwrap()
}

fn per_round(label: &str, mut f: impl FnMut()) {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("{label:40} {ns:8.0} ns per lookup");
}

fn main() {
    let reply = answer(7);
    per_round("portal codec: name + query + answer", || {
        let name = fqdn(black_box("stock-price.service.consul")).unwrap();
        let mut q = [0u8; MAX_QUERY];
        black_box(encode_query(7, &name, TYPE_SRV, &mut q));
        let mut scratch = Scratch::default();
        let a = decode_answer(black_box(&reply), 7, &name, TYPE_SRV, &mut scratch).unwrap();
        assert_eq!(a.srv.len(), 1);
    });
    per_round("hickory-proto: name + query + answer", || {
        let name = Name::from_ascii(black_box(SERVICE)).unwrap();
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name.clone(), RecordType::SRV));
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        m.set_edns(edns);
        black_box(m.to_vec().unwrap());
        let a = Message::from_vec(black_box(&reply)).unwrap();
        assert_eq!(a.answers.len(), 1);
        assert!(a.queries[0].name().to_lowercase() == name.to_lowercase());
        black_box(a.additionals[0].name.to_lowercase().to_ascii());
    });
}
