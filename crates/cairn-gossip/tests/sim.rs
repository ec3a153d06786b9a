//! Failure detection at scale, in the deterministic simulator (virtual
//! time, in-memory network model with seeded loss and delay).
//!
//! `sim_failure_detection` (CI): 150 nodes, loss 0/1/5 %. The full run:
//! `CAIRN_SIM_SEED=<seed> CAIRN_SIM_NODES=1000 cargo test -p cairn-gossip --release --test sim -- --ignored --nocapture`
//! Every run prints its seed; the same seed replays the same run.
//! `CAIRN_SIM_LOSS=0,5` picks the loss rates (percent) and
//! `CAIRN_SIM_SUSPICION_MS` and `CAIRN_SIM_PROBE_MS` override the suspicion
//! timeout and the probe interval (timeout = half of it), for tuning;
//! `CAIRN_SIM_FAILURES` sets the number of crashes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cairn_gossip::sim::{sim_name, Sim};
use cairn_gossip::{LinkRules, MemberEvent, Timing};

struct Outcome {
    loss: f64,
    detect: Vec<Duration>,
    spread: Vec<Duration>,
    undetected: usize,
    unspread: usize,
    false_positives: usize,
    packets_per_node_s: f64,
    bytes_per_node_s: f64,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seed() -> u64 {
    env_u64("CAIRN_SIM_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    })
}

fn link(loss: f64) -> LinkRules {
    LinkRules {
        drop: loss,
        delay: Duration::from_micros(200),
        jitter: Duration::from_micros(800),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Builds a converged cluster, then crashes `failures` random nodes a few
/// seconds apart under `loss`, and measures.
fn run(n: usize, seed: u64, loss: f64, failures: usize) -> Outcome {
    let mut timing = Timing::lan();
    if let Some(ms) = env_u64("CAIRN_SIM_SUSPICION_MS") {
        timing.suspicion_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = env_u64("CAIRN_SIM_PROBE_MS") {
        timing.probe_interval = Duration::from_millis(ms);
        timing.probe_timeout = Duration::from_millis(ms / 2);
    }
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(n, seed, timing, link(0.0));
    if n <= 200 {
        // Small clusters start through the join protocol (random seeds).
        for i in 1..n {
            let seeds = [sim.rng().below(i as u64) as usize];
            sim.join(i, &seeds);
            let t = sim.now() + Duration::from_millis(5);
            sim.run_until(t, &mut |_, _, _| {});
        }
    } else {
        // Large ones start with full member lists (joining is O(n^2)
        // state transfer and is not what is measured here).
        sim.bootstrap_full();
    }
    let converged = sim.run_until_true(Duration::from_secs(300), Duration::from_secs(1), |s| {
        s.nodes.iter().all(|node| node.core.num_alive() == n)
    });
    assert!(converged, "seed {seed}: {n} nodes did not converge");
    println!(
        "converged at {:.1} s virtual ({:.1} s real)",
        sim.now().as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );
    sim.net.set_default(link(loss));
    sim.run_for(Duration::from_secs(10));

    // Victims and crash times.
    let mut victims = Vec::new();
    let mut chosen = HashSet::new();
    while victims.len() < failures {
        let v = sim.rng().below(n as u64) as usize;
        if chosen.insert(v) {
            victims.push(v);
        }
    }
    let start = sim.now();
    let bytes0 = sim.bytes;
    let packets0 = sim.packets;
    let mut crash_at: HashMap<String, Duration> = HashMap::new();
    let mut first: HashMap<String, Duration> = HashMap::new();
    let mut knowers: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut spread: HashMap<String, Duration> = HashMap::new();
    let mut false_positives = HashSet::new();
    let mut crashed = HashSet::new();
    let need = ((n - failures) as f64 * 0.99).ceil() as usize;
    for &v in &victims {
        let gap = Duration::from_millis(1500 + sim.rng().below(1500));
        let t = sim.now() + gap;
        sim.run_until(t, &mut |now, node, e| {
            observe(
                now,
                node,
                e,
                &crash_at,
                &mut first,
                &mut knowers,
                &mut spread,
                &mut false_positives,
                need,
            )
        });
        sim.crash(v);
        crashed.insert(v);
        crash_at.insert(sim_name(v), sim.now());
    }
    let end = sim.now() + Duration::from_secs(30);
    sim.run_until(end, &mut |now, node, e| {
        observe(
            now,
            node,
            e,
            &crash_at,
            &mut first,
            &mut knowers,
            &mut spread,
            &mut false_positives,
            need,
        )
    });
    let elapsed = (sim.now() - start).as_secs_f64();
    println!(
        "loss {loss}: {:.1} s virtual in {:.1} s real",
        sim.now().as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );

    let mut detect: Vec<Duration> = first.values().copied().collect();
    detect.sort();
    let mut spread_v: Vec<Duration> = spread.values().copied().collect();
    spread_v.sort();
    Outcome {
        loss,
        undetected: failures - detect.len(),
        unspread: failures - spread_v.len(),
        detect,
        spread: spread_v,
        false_positives: false_positives.len(),
        packets_per_node_s: (sim.packets - packets0) as f64 / n as f64 / elapsed,
        bytes_per_node_s: (sim.bytes - bytes0) as f64 / n as f64 / elapsed,
    }
}

#[allow(clippy::too_many_arguments)]
fn observe(
    now: Duration,
    node: usize,
    e: &MemberEvent,
    crash_at: &HashMap<String, Duration>,
    first: &mut HashMap<String, Duration>,
    knowers: &mut HashMap<String, HashSet<usize>>,
    spread: &mut HashMap<String, Duration>,
    false_positives: &mut HashSet<String>,
    need: usize,
) {
    let MemberEvent::Failed(m) = e else { return };
    let Some(&crashed) = crash_at.get(&m.name) else {
        false_positives.insert(m.name.clone());
        return;
    };
    let detected = *first.entry(m.name.clone()).or_insert(now - crashed);
    let set = knowers.entry(m.name.clone()).or_default();
    set.insert(node);
    if set.len() >= need && !spread.contains_key(&m.name) {
        spread.insert(m.name.clone(), now - crashed - detected);
    }
}

fn report(n: usize, seed: u64, outcomes: &[Outcome]) {
    println!("gossip simulation: {n} nodes, seed {seed} (replay with CAIRN_SIM_SEED={seed} CAIRN_SIM_NODES={n})");
    println!("| loss | failures | detect p50 ms | p99 ms | max ms | spread to 99% p50 ms | p99 ms | max ms | undetected | not spread | false positives | packets/node/s | bytes/node/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {:.0}% | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} |",
            o.loss * 100.0,
            o.detect.len() + o.undetected,
            ms(percentile(&o.detect, 0.5)),
            ms(percentile(&o.detect, 0.99)),
            ms(percentile(&o.detect, 1.0)),
            ms(percentile(&o.spread, 0.5)),
            ms(percentile(&o.spread, 0.99)),
            ms(percentile(&o.spread, 1.0)),
            o.undetected,
            o.unspread,
            o.false_positives,
            o.packets_per_node_s,
            o.bytes_per_node_s,
        );
    }
}

fn losses() -> Vec<f64> {
    match std::env::var("CAIRN_SIM_LOSS") {
        Ok(v) => v
            .split(',')
            .filter_map(|x| x.trim().parse::<f64>().ok())
            .map(|p| p / 100.0)
            .collect(),
        Err(_) => vec![0.0, 0.01, 0.05],
    }
}

fn simulate(default_nodes: usize, failures_per_100: usize) -> Vec<Outcome> {
    let n = env_u64("CAIRN_SIM_NODES")
        .map(|v| v as usize)
        .unwrap_or(default_nodes)
        .max(10);
    let seed = seed();
    println!("gossip simulation seed {seed}");
    let failures = env_u64("CAIRN_SIM_FAILURES")
        .map(|f| f as usize)
        .unwrap_or((n * failures_per_100 / 100).clamp(3, 40))
        .clamp(1, n / 4);
    let outcomes: Vec<Outcome> = losses()
        .into_iter()
        .map(|loss| run(n, seed, loss, failures))
        .collect();
    report(n, seed, &outcomes);
    for o in &outcomes {
        assert_eq!(
            o.undetected,
            0,
            "seed {seed}: crashes not detected at {}% loss",
            o.loss * 100.0
        );
        assert_eq!(
            o.unspread,
            0,
            "seed {seed}: failures not known by 99% at {}% loss",
            o.loss * 100.0
        );
        assert_eq!(
            o.false_positives,
            0,
            "seed {seed}: false positives at {}% loss",
            o.loss * 100.0
        );
    }
    outcomes
}

#[test]
fn sim_failure_detection() {
    let outcomes = simulate(150, 5);
    let seed_note = "see the seed printed above";
    for o in &outcomes {
        // The goals (median detection <= 3 s, known by 99 % within 2 s),
        // with a loose bound on the slowest crash: the time until some
        // member probes a crashed node has an exponential tail. Full-size
        // figures: docs/PERFORMANCE.md.
        assert!(
            percentile(&o.detect, 0.5) <= Duration::from_secs(3),
            "{seed_note}"
        );
        assert!(
            percentile(&o.detect, 1.0) <= Duration::from_secs(8),
            "{seed_note}"
        );
        assert!(
            percentile(&o.spread, 1.0) <= Duration::from_secs(2),
            "{seed_note}"
        );
    }
}

#[test]
#[ignore = "large: run in release with CAIRN_SIM_NODES=1000"]
fn sim_failure_detection_full() {
    simulate(1000, 2);
}
