//! A deterministic simulator: many [`Membership`] cores on one virtual
//! clock, exchanging datagrams through the in-memory transport's
//! [`NetworkModel`] (seeded loss, delay, partitions). Used by the unit
//! tests and by the large-scale failure-detection simulation; the same seed
//! always replays the same run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::{MembershipConfig, Timing};
use crate::keyquery::KeyringReport;
use crate::member::{Member, MemberEvent};
use crate::membership::{Membership, Plan, Timer};
use crate::rng::SeededRng;
use crate::transport::{LinkRules, NetworkModel};

/// One simulated node.
pub struct SimNode {
    pub core: Membership,
    pub name: String,
    pub addr: SocketAddr,
    /// The keys a restart starts with: the configured ones, then the
    /// keyring as last changed (as the runtime's keyring file does).
    pub keys: Vec<String>,
    /// Set: saving a keyring change fails with this error (the disk is full, the
    /// data directory read-only).
    pub save_error: Option<String>,
    /// False once crashed (no more packets in or out, timers ignored).
    pub running: bool,
    epoch: u64,
}

enum Pending {
    Deliver {
        to: usize,
        from: SocketAddr,
        packet: Vec<u8>,
    },
    Timer {
        node: usize,
        epoch: u64,
        timer: Timer,
    },
}

struct Slot(Pending);
impl PartialEq for Slot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Slot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Observer of member events: (virtual time, observing node, event).
pub type Observer<'a> = &'a mut dyn FnMut(Duration, usize, &MemberEvent);

/// The simulated cluster.
pub struct Sim {
    base: Instant,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, Slot)>>,
    pub nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    pub net: NetworkModel,
    timing: Timing,
    seed: u64,
    rng: SeededRng,
    /// Datagrams handed to the network.
    pub packets: u64,
    pub bytes: u64,
    /// Finished keyring queries: (node that asked, query id, report).
    pub key_reports: Vec<(usize, u64, KeyringReport)>,
}

/// The address of simulated node `i`.
pub fn sim_addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
        8301,
    )
}

/// The name of simulated node `i`.
pub fn sim_name(i: usize) -> String {
    format!("node-{i}")
}

impl Sim {
    /// `n` nodes, not yet joined.
    pub fn new(n: usize, seed: u64, timing: Timing, link: LinkRules) -> Self {
        let mut sim = Self {
            base: Instant::now(),
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::with_capacity(n),
            by_addr: HashMap::new(),
            net: NetworkModel::new(seed ^ 0x5eed, link),
            timing,
            seed,
            rng: SeededRng::new(seed),
            packets: 0,
            bytes: 0,
            key_reports: Vec::new(),
        };
        for i in 0..n {
            sim.add_node(&sim_name(i), sim_addr(i), Vec::new());
        }
        sim
    }

    /// Adds a node with its own name, address and keys; returns its index.
    pub fn add_node(&mut self, name: &str, addr: SocketAddr, keys: Vec<String>) -> usize {
        let i = self.nodes.len();
        let core = self.make_core(i, name, addr, &keys, 1);
        self.by_addr.insert(addr, i);
        self.nodes.push(SimNode {
            core,
            name: name.to_owned(),
            addr,
            keys,
            save_error: None,
            running: true,
            epoch: 0,
        });
        i
    }

    fn make_core(
        &mut self,
        i: usize,
        name: &str,
        addr: SocketAddr,
        keys: &[String],
        generation: u64,
    ) -> Membership {
        let mut cfg = MembershipConfig::new(name, addr);
        cfg.keys = keys.to_vec();
        cfg.timing = self.timing.clone();
        cfg.generation = generation;
        cfg.seed = self
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(i as u64 * 7919 + generation);
        let mut nonce_rng = SeededRng::new(cfg.seed ^ 0xabcdef);
        let nonce = Box::new(move || {
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(&nonce_rng.next_u64().to_le_bytes());
            n
        });
        let (core, plan) = match Membership::new(self.instant(), cfg, nonce) {
            Ok(x) => x,
            Err(e) => panic!("simulated node config: {e}"),
        };
        let epoch = self.nodes.get(i).map(|n| n.epoch).unwrap_or(0);
        self.schedule_plan(i, epoch, plan, &mut |_, _, _| {});
        core
    }

    /// The current virtual time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The current virtual time as an `Instant` (what the cores are given).
    pub fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// The simulation's own seeded RNG (for choosing victims).
    pub fn rng(&mut self) -> &mut SeededRng {
        &mut self.rng
    }

    fn push(&mut self, at: Duration, p: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, Slot(p))));
    }

    fn schedule_plan(&mut self, node: usize, epoch: u64, plan: Plan, obs: Observer<'_>) {
        let from = self
            .nodes
            .get(node)
            .map(|n| n.addr)
            .unwrap_or_else(|| sim_addr(node));
        for (to, packet) in plan.sends {
            self.packets += 1;
            self.bytes += packet.len() as u64;
            let Some(&dst) = self.by_addr.get(&to) else {
                continue;
            };
            if let Some(delay) = self.net.route(from, to) {
                self.push(
                    self.now + delay,
                    Pending::Deliver {
                        to: dst,
                        from,
                        packet,
                    },
                );
            }
        }
        for (after, timer) in plan.timers {
            self.push(self.now + after, Pending::Timer { node, epoch, timer });
        }
        for e in &plan.events {
            obs(self.now, node, e);
        }
        for (id, report) in plan.key_reports {
            self.key_reports.push((node, id, report));
        }
        if let (Some(save), Some(n)) = (plan.keyring, self.nodes.get_mut(node)) {
            let result = match &n.save_error {
                Some(e) => Err(e.clone()),
                None => {
                    n.keys = save.keys;
                    Ok(())
                }
            };
            let next = n.core.keyring_saved(save.ticket, result);
            self.schedule_plan(node, epoch, next, obs);
        }
    }

    /// Node `i` asks `seeds` to let it join.
    pub fn join(&mut self, i: usize, seeds: &[usize]) {
        let addrs: Vec<SocketAddr> = seeds.iter().map(|&s| self.nodes[s].addr).collect();
        let now = self.instant();
        let core = &mut self.nodes[i].core;
        let id = core.next_join_id();
        let plan = core.join(now, id, &addrs);
        let epoch = self.nodes[i].epoch;
        self.schedule_plan(i, epoch, plan, &mut |_, _, _| {});
    }

    /// Makes every node know every other one (no join traffic): a fast
    /// start for large simulations. Nodes start one after the other over
    /// one probe interval, so their timers are not in lockstep.
    pub fn bootstrap_full(&mut self) {
        let ids: Vec<_> = self
            .nodes
            .iter()
            .map(|n| n.core.identity().clone())
            .collect();
        let step = self.timing.probe_interval / self.nodes.len().max(1) as u32;
        for i in 0..self.nodes.len() {
            let now = self.instant();
            let plan = self.nodes[i].core.restore(now, ids.iter().cloned());
            let epoch = self.nodes[i].epoch;
            self.schedule_plan(i, epoch, plan, &mut |_, _, _| {});
            let next = self.now + step;
            self.run_until(next, &mut |_, _, _| {});
        }
    }

    /// Runs a command on node `i` and schedules its plan.
    pub fn apply(
        &mut self,
        i: usize,
        obs: Observer<'_>,
        f: impl FnOnce(&mut Membership, Instant) -> Plan,
    ) {
        let now = self.instant();
        let plan = f(&mut self.nodes[i].core, now);
        let epoch = self.nodes[i].epoch;
        self.schedule_plan(i, epoch, plan, obs);
    }

    /// Stops node `i` abruptly (no leave).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].running = false;
        self.nodes[i].epoch += 1;
        let addr = self.nodes[i].addr;
        self.net.isolate(addr, true);
    }

    /// Restarts a crashed node with a new generation (same name and
    /// address); it must then join again.
    pub fn restart(&mut self, i: usize, generation: u64) {
        self.nodes[i].epoch += 1;
        let core = self.make_core_for_restart(i, generation);
        self.nodes[i].core = core;
        self.nodes[i].running = true;
        let addr = self.nodes[i].addr;
        self.net.isolate(addr, false);
    }

    fn make_core_for_restart(&mut self, i: usize, generation: u64) -> Membership {
        let (name, addr, keys) = {
            let n = &self.nodes[i];
            (n.name.clone(), n.addr, n.keys.clone())
        };
        self.make_core(i, &name, addr, &keys, generation)
    }

    /// Processes everything due up to `until` (virtual time).
    pub fn run_until(&mut self, until: Duration, obs: Observer<'_>) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, Slot(p)))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            let now = self.instant();
            match p {
                Pending::Deliver { to, from, packet } => {
                    if !self.nodes[to].running {
                        continue;
                    }
                    let plan = self.nodes[to].core.handle_packet(now, from, &packet);
                    let epoch = self.nodes[to].epoch;
                    self.schedule_plan(to, epoch, plan, obs);
                }
                Pending::Timer { node, epoch, timer } => {
                    if !self.nodes[node].running || self.nodes[node].epoch != epoch {
                        continue;
                    }
                    let plan = self.nodes[node].core.handle_timer(now, timer);
                    self.schedule_plan(node, epoch, plan, obs);
                }
            }
        }
        self.now = until;
    }

    /// Runs for `d` more virtual time, ignoring events.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, &mut |_, _, _| {});
    }

    /// Runs until `pred` holds (checked every `step`) or `limit` passes;
    /// returns whether it held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        step: Duration,
        mut pred: impl FnMut(&Sim) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            let next = (self.now + step).min(end);
            self.run_until(next, &mut |_, _, _| {});
        }
        pred(self)
    }

    /// Node `viewer`'s view of node `subject`.
    pub fn view(&self, viewer: usize, subject: usize) -> Option<Member> {
        self.nodes[viewer].core.member(&self.nodes[subject].name)
    }
}
