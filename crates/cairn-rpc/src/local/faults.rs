//! Fault injection for the in-process network as a pure, seeded state machine: which links are
//! cut, and for each message whether it is dropped and how late it arrives.
//!
//! Determinism: every link (ordered address pair) draws from its own sequence, derived from the
//! seed, the link and a per-link message counter. So a test that makes the same calls on each
//! link in the same order sees the same faults, however the runtime interleaves different links.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::Direction;

/// The fate of one call on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The link is cut: nothing gets through.
    Partitioned,
    /// Delivered after `delay` each way, unless `drop` says which message is lost.
    Deliver {
        delay: Duration,
        drop: Option<Direction>,
    },
}

/// The fault settings and the random state.
#[derive(Debug, Clone)]
pub struct Faults {
    seed: u64,
    cut: HashSet<(SocketAddr, SocketAddr)>,
    drop_probability: f64,
    delay: Duration,
    jitter: Duration,
    /// Streamed items' delay, when not the base delay.
    stream_delay: Option<Duration>,
    counters: HashMap<(SocketAddr, SocketAddr), u64>,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            seed,
            cut: HashSet::new(),
            drop_probability: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            stream_delay: None,
            counters: HashMap::new(),
        }
    }

    /// How late a streamed item arrives: the stream delay if set, else the base delay
    /// (whatever the jitter).
    pub fn item_delay(&self) -> Duration {
        self.stream_delay.unwrap_or(self.delay)
    }

    /// Delays streamed items by `delay` instead of the base delay (`None`: the base
    /// delay again), e.g. to make a stream's follower lag by more than a call's round
    /// trip.
    pub fn set_stream_delay(&mut self, delay: Option<Duration>) {
        self.stream_delay = delay;
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Cuts the link between `a` and `b`, both directions.
    pub fn partition(&mut self, a: SocketAddr, b: SocketAddr) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&mut self, a: SocketAddr, b: SocketAddr) {
        self.cut.remove(&(a, b));
        self.cut.remove(&(b, a));
    }

    /// Restores every link.
    pub fn heal_all(&mut self) {
        self.cut.clear();
    }

    pub fn is_partitioned(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Each call is lost with probability `p` (half of the losses hit the request, so the
    /// handler never runs; half the response, after it ran).
    pub fn set_drop_probability(&mut self, p: f64) {
        self.drop_probability = p.clamp(0.0, 1.0);
    }

    /// Each message is delayed by `base` plus a uniform `0..=jitter`. The items of a
    /// server stream are delayed by `base` alone, counted from when each was sent, so
    /// they arrive in order and a stream's follower lags by `base`.
    pub fn set_delay(&mut self, base: Duration, jitter: Duration) {
        self.delay = base;
        self.jitter = jitter;
    }

    /// How many calls `from` made that were not refused by a partition, to any server.
    pub fn calls_from(&self, from: std::net::IpAddr) -> u64 {
        self.counters
            .iter()
            .filter(|((f, _), _)| f.ip() == from)
            .map(|(_, n)| n)
            .sum()
    }

    /// Draws the fate of the next call from `from` to `to`.
    pub fn decide(&mut self, from: SocketAddr, to: SocketAddr) -> Verdict {
        if self.is_partitioned(from, to) {
            return Verdict::Partitioned;
        }
        let counter = self.counters.entry((from, to)).or_insert(0);
        *counter += 1;
        let mut rng =
            splitmix(self.seed ^ link_key(from, to) ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let roll = unit(rng.next());
        let drop = if roll < self.drop_probability {
            Some(if rng.next() & 1 == 0 {
                Direction::Request
            } else {
                Direction::Response
            })
        } else {
            None
        };
        let jitter_ns = self.jitter.as_nanos() as u64;
        let extra = if jitter_ns == 0 {
            0
        } else {
            rng.next() % (jitter_ns + 1)
        };
        Verdict::Deliver {
            delay: self.delay + Duration::from_nanos(extra),
            drop,
        }
    }
}

/// A stable (not randomly keyed) mix of a link's two addresses.
fn link_key(from: SocketAddr, to: SocketAddr) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for addr in [from, to] {
        let bytes: Vec<u8> = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
            std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        for b in bytes.into_iter().chain(addr.port().to_be_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h = h.rotate_left(17);
    }
    h
}

struct SplitMix(u64);

fn splitmix(seed: u64) -> SplitMix {
    SplitMix(seed)
}

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 8300))
    }

    #[test]
    fn partitions_are_symmetric_and_heal() {
        let mut f = Faults::new(1);
        f.partition(addr(1), addr(2));
        assert_eq!(f.decide(addr(2), addr(1)), Verdict::Partitioned);
        assert!(matches!(
            f.decide(addr(1), addr(3)),
            Verdict::Deliver { .. }
        ));
        f.heal(addr(2), addr(1));
        assert!(matches!(
            f.decide(addr(1), addr(2)),
            Verdict::Deliver { drop: None, .. }
        ));
    }

    #[test]
    fn same_seed_same_fates_per_link_regardless_of_interleaving() {
        let seed = 0x5eed;
        println!("seed {seed}");
        let mut a = Faults::new(seed);
        let mut b = Faults::new(seed);
        for f in [&mut a, &mut b] {
            f.set_drop_probability(0.3);
            f.set_delay(Duration::from_millis(1), Duration::from_millis(5));
        }
        let mut fates_a = Vec::new();
        for _ in 0..200 {
            fates_a.push(a.decide(addr(1), addr(2)));
            a.decide(addr(3), addr(2));
        }
        let mut fates_b = Vec::new();
        for _ in 0..200 {
            b.decide(addr(3), addr(2));
            b.decide(addr(3), addr(2));
        }
        for _ in 0..200 {
            fates_b.push(b.decide(addr(1), addr(2)));
        }
        assert_eq!(fates_a, fates_b);
        let dropped = fates_a
            .iter()
            .filter(|v| matches!(v, Verdict::Deliver { drop: Some(_), .. }))
            .count();
        assert!(
            (30..90).contains(&dropped),
            "dropped {dropped} of 200 at p=0.3"
        );
        assert!(fates_a
            .iter()
            .all(|v| matches!(v, Verdict::Deliver { delay, .. }
            if *delay >= Duration::from_millis(1) && *delay <= Duration::from_millis(6))));
        let other_seed: Vec<_> = {
            let mut c = Faults::new(seed + 1);
            c.set_drop_probability(0.3);
            c.set_delay(Duration::from_millis(1), Duration::from_millis(5));
            (0..200).map(|_| c.decide(addr(1), addr(2))).collect()
        };
        assert_ne!(fates_a, other_seed);
    }
}
