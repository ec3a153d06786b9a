//! Property tests of the receive path: random bytes and mutated real
//! packets, with and without a key, never panic; whatever does not decode
//! is dropped and counted.

use std::net::SocketAddr;
use std::time::Instant;

use cairn_gossip::{decode_packet, Keyring, Membership, MembershipConfig};
use proptest::prelude::*;

const KEY: &str = "Gnn1oSu8rvHU66mNQpuaEfUZ7TSSmkrl3ZPFdNZSRIw=";

fn core(name: &str, port: u16, keyed: bool) -> Membership {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cfg = MembershipConfig::new(name, addr);
    if keyed {
        cfg.keys = vec![KEY.to_owned()];
    }
    cfg.seed = u64::from(port);
    let mut n = 0u64;
    let nonce = Box::new(move || {
        n += 1;
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    });
    Membership::new(Instant::now(), cfg, nonce).unwrap().0
}

/// Real packets of a join exchange (request, accept, state, announce,
/// feed...), as sent on the wire.
fn corpus(keyed: bool) -> Vec<Vec<u8>> {
    let now = Instant::now();
    let mut a = core("a", 1, keyed);
    let mut b = core("b", 2, keyed);
    let (aa, ba): (SocketAddr, SocketAddr) = (
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    let join = b.next_join_id();
    let mut to_a = b.join(now, join, &[aa]).sends;
    let mut out = Vec::new();
    for _ in 0..4 {
        let mut to_b = Vec::new();
        for (_, p) in to_a.drain(..) {
            out.push(p.clone());
            to_b.extend(a.handle_packet(now, ba, &p).sends);
        }
        for (_, p) in to_b {
            out.push(p.clone());
            to_a.extend(b.handle_packet(now, aa, &p).sends);
        }
    }
    // A keyring exchange (request, answer) when encryption is on.
    if keyed {
        if let Ok((_, plan)) = a.key_query(
            now,
            &cairn_gossip::KeyOp::Install(KEY.to_owned()),
            1,
            std::time::Duration::from_secs(1),
        ) {
            assert!(!plan.sends.is_empty(), "a knows b: a request is sent");
            for (_, p) in plan.sends {
                out.push(p.clone());
                for (_, answer) in b.handle_packet(now, aa, &p).sends {
                    out.push(answer);
                }
            }
        }
    }
    assert!(out.len() >= 4, "corpus too small: {}", out.len());
    out
}

fn feed(keyed: bool, packet: &[u8]) {
    let mut c = core("target", 9, keyed);
    let before = c.stats().clone();
    let _ = c.handle_packet(Instant::now(), "127.0.0.1:7".parse().unwrap(), packet);
    let after = c.stats();
    assert_eq!(after.packets_received, before.packets_received + 1);
    let ring = if keyed {
        Keyring::with_key(KEY).unwrap()
    } else {
        Keyring::none()
    };
    let _ = decode_packet(&ring, packet);
}

#[test]
fn corpus_packets_decode() {
    for keyed in [false, true] {
        let ring = if keyed {
            Keyring::with_key(KEY).unwrap()
        } else {
            Keyring::none()
        };
        for p in corpus(keyed) {
            decode_packet(&ring, &p).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(keyed in any::<bool>(), bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        feed(keyed, &bytes);
    }

    #[test]
    fn random_payloads_behind_valid_framing_never_panic(
        keyed in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let ring = if keyed { Keyring::with_key(KEY).unwrap() } else { Keyring::none() };
        let packet = ring.seal(&payload, [7; 12]);
        feed(keyed, &packet);
    }

    #[test]
    fn mutated_real_packets_never_panic(
        keyed in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let ring = if keyed { Keyring::with_key(KEY).unwrap() } else { Keyring::none() };
        let packets = corpus(keyed);
        let original = pick.get(&packets);
        // Mutate the plaintext payload, then re-seal: the decoder itself
        // (not just the AEAD check) sees the damage.
        let mut payload = ring.open(original).unwrap();
        for (at, byte) in &flips {
            let i = at.index(payload.len());
            payload[i] ^= byte;
        }
        let keep = cut.index(payload.len() + 1);
        payload.truncate(keep.max(payload.len() / 2));
        feed(keyed, &ring.seal(&payload, [3; 12]));
    }
}
