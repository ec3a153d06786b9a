//! Fuzz target: any datagram into the gossip receive path (framing,
//! AES-256-GCM decryption, envelope and foca decoding, then the membership
//! core itself) must never panic; whatever does not decode is dropped and
//! counted.
//!
//! The first input byte picks the mode: bit 0 = the receiver has a key;
//! bit 1 = the rest is a plaintext payload that the harness seals with the
//! receiver's framing (and key), so the fuzzer reaches the decoders behind
//! decryption. The receiving core persists across inputs (per thread), so
//! sequences of packets can build up state.

#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Instant;

use cairn_gossip::{decode_packet, Keyring, Membership, MembershipConfig};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "Gnn1oSu8rvHU66mNQpuaEfUZ7TSSmkrl3ZPFdNZSRIw=";

fn core(keyed: bool) -> Membership {
    let addr: SocketAddr = "127.0.0.1:8301".parse().unwrap();
    let mut cfg = MembershipConfig::new("fuzz", addr);
    if keyed {
        cfg.keys = vec![KEY.to_owned()];
    }
    cfg.seed = 1;
    let mut n = 0u64;
    let nonce = Box::new(move || {
        n += 1;
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    });
    Membership::new(Instant::now(), cfg, nonce).expect("valid config").0
}

thread_local! {
    static CORES: RefCell<(Membership, Membership)> = RefCell::new((core(false), core(true)));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keyed = mode & 1 == 1;
    let ring = if keyed {
        Keyring::with_key(KEY).expect("valid key")
    } else {
        Keyring::none()
    };
    let packet = if mode & 2 == 2 {
        ring.seal(rest, [9; 12])
    } else {
        rest.to_vec()
    };
    let decoded = decode_packet(&ring, &packet);
    CORES.with(|cores| {
        let mut cores = cores.borrow_mut();
        let core = if keyed { &mut cores.1 } else { &mut cores.0 };
        let before = core.stats().clone();
        let from: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let plan = core.handle_packet(Instant::now(), from, &packet);
        let after = core.stats();
        assert_eq!(after.packets_received, before.packets_received + 1);
        if decoded.is_err() {
            assert_eq!(after.packets_dropped, before.packets_dropped + 1, "{decoded:?}");
        }
        for (_, out) in plan.sends {
            assert!(out.len() <= 1400, "sent {} bytes", out.len());
        }
    });
});
