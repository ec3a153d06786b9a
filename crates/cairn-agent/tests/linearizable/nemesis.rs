//! The nemesis: a fault plan drawn from the seed (pure: [`plan`]), and the runner that
//! carries it out on the cluster between heals. Faults: a partition that isolates the
//! leader with a minority of the servers (the leader alone of three, or with one other
//! of five), random partitions of the server RPC network, message drops and delays,
//! and `kill -9` of a server or client agent followed by a restart with its storage.
//! After each fault everything is healed and the runner waits until the cluster agrees
//! on a leader again (polling with a deadline), so each fault meets a working cluster.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::RwLock;

use crate::harness::{Cluster, LeaderAgreed};

/// Whom a fault hits, resolved when it starts (the leader then, a server by number).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Leader,
    Server(usize),
    /// The client agent that does not hold the sessions.
    Client,
}

/// One fault, held for `hold` and then healed.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The leader and `with` other servers cut off (RPC and gossip) from the rest.
    LeaderMinority { with: usize },
    /// The servers (by number) cut into two RPC groups; gossip stays whole.
    Split { side: Vec<usize> },
    /// Every RPC call lost with probability `drop` and delayed by `delay` + up to `jitter`.
    Lossy {
        drop: f64,
        delay: Duration,
        jitter: Duration,
    },
    /// Stopped at once, started again after the hold with its data directory.
    KillRestart(Target),
}

/// A fault and how long it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub fault: Fault,
    pub hold: Duration,
}

/// `steps` faults for a cluster of `servers` servers, drawn from `seed`.
pub fn plan(seed: u64, servers: usize, steps: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let minority = (servers - 1) / 2;
    (0..steps)
        .map(|i| {
            // The first fault is always the leader cut off with a minority.
            let kind = if i == 0 { 0 } else { rng.random_range(0..5) };
            let fault = match kind {
                0 => Fault::LeaderMinority {
                    with: minority.saturating_sub(1),
                },
                1 => {
                    let mut side: Vec<usize> =
                        (0..servers).filter(|_| rng.random_bool(0.5)).collect();
                    if side.is_empty() || side.len() == servers {
                        side = vec![rng.random_range(0..servers)];
                    }
                    Fault::Split { side }
                }
                2 => Fault::Lossy {
                    drop: rng.random_range(0.02..0.15),
                    delay: Duration::from_millis(rng.random_range(0..5)),
                    jitter: Duration::from_millis(rng.random_range(1..20)),
                },
                3 => Fault::KillRestart(if rng.random_bool(0.5) {
                    Target::Leader
                } else {
                    Target::Server(rng.random_range(0..servers))
                }),
                _ => Fault::KillRestart(if rng.random_bool(0.3) {
                    Target::Client
                } else {
                    Target::Server(rng.random_range(0..servers))
                }),
            };
            Step {
                fault,
                hold: Duration::from_millis(rng.random_range(500..1500)),
            }
        })
        .collect()
}

/// The leader most running servers report.
pub async fn leader(c: &Cluster) -> Option<String> {
    let mut votes: Vec<(String, usize)> = Vec::new();
    for s in c.servers() {
        if !c.running().contains(&s) {
            continue;
        }
        if let Some(l) = c.leader_name(&s).await {
            match votes.iter_mut().find(|(n, _)| *n == l) {
                Some((_, k)) => *k += 1,
                None => votes.push((l, 1)),
            }
        }
    }
    votes.into_iter().max_by_key(|(_, k)| *k).map(|(n, _)| n)
}

/// Names the servers by number, and the client agent faults may stop.
pub struct Roles {
    pub servers: Vec<String>,
    pub spare_client: String,
}

/// Carries out one step: applies the fault, holds it, heals, and waits for a leader.
/// `on_isolated` hears the name of a leader as it is cut off, and `None` at the heal.
/// (The minority's other members are drawn from an RNG seeded by the step.)
pub async fn run_step(
    cluster: &RwLock<Cluster>,
    roles: &Roles,
    step: &Step,
    on_isolated: impl Fn(Option<String>),
) {
    let mut rng = StdRng::seed_from_u64(step.hold.as_nanos() as u64);
    match &step.fault {
        Fault::LeaderMinority { with } => {
            let c = cluster.read().await;
            let Some(l) = leader(&c).await else {
                return;
            };
            let mut minority = vec![l.clone()];
            let others: Vec<&String> = roles.servers.iter().filter(|s| **s != l).collect();
            for _ in 0..*with {
                let pick = others[rng.random_range(0..others.len())].clone();
                if !minority.contains(&pick) {
                    minority.push(pick);
                }
            }
            let rest: Vec<String> = c
                .running()
                .into_iter()
                .filter(|n| !minority.contains(n))
                .collect();
            println!(
                "  nemesis: leader {l} cut off with {minority:?} for {:?}",
                step.hold
            );
            c.partition(&[rest, minority]);
            on_isolated(Some(l));
            drop(c);
            tokio::time::sleep(step.hold).await;
            on_isolated(None);
            cluster.read().await.heal_all();
        }
        Fault::Split { side } => {
            let c = cluster.read().await;
            let a: Vec<String> = side.iter().map(|i| roles.servers[*i].clone()).collect();
            let b: Vec<String> = roles
                .servers
                .iter()
                .filter(|s| !a.contains(s))
                .cloned()
                .collect();
            println!("  nemesis: RPC split {a:?} | {b:?} for {:?}", step.hold);
            c.partition_rpc(&[a, b]);
            drop(c);
            tokio::time::sleep(step.hold).await;
            cluster.read().await.heal_all();
        }
        Fault::Lossy {
            drop: p,
            delay,
            jitter,
        } => {
            println!(
                "  nemesis: RPC loses {:.0}% and delays {delay:?}+{jitter:?} for {:?}",
                p * 100.0,
                step.hold
            );
            cluster.read().await.rpc_faults(*p, *delay, *jitter);
            tokio::time::sleep(step.hold).await;
            cluster
                .read()
                .await
                .rpc_faults(0.0, Duration::ZERO, Duration::ZERO);
        }
        Fault::KillRestart(t) => {
            let name = match t {
                Target::Leader => {
                    let c = cluster.read().await;
                    match leader(&c).await {
                        Some(l) => l,
                        None => return,
                    }
                }
                Target::Server(i) => roles.servers[*i].clone(),
                Target::Client => roles.spare_client.clone(),
            };
            println!("  nemesis: kill -9 {name}, restart after {:?}", step.hold);
            cluster.write().await.kill(&name).await;
            tokio::time::sleep(step.hold).await;
            cluster.write().await.restart(&name).await;
        }
    }
    let c = cluster.read().await;
    c.wait_until("one leader agreed after a heal", LeaderAgreed(None))
        .await;
}
