//! A Jepsen-style linearizability test in the in-process cluster (see `harness`):
//! concurrent clients read (default and `?consistent`; `?stale` promises nothing and is
//! not tested), write, check-and-set and take session locks on a few keys through random
//! servers and client agents, while a seeded nemesis cuts the leader off with a minority,
//! splits the RPC network, loses and delays messages, and kills and restarts servers with
//! their storage. The history, timed by a logical clock, must be linearizable
//! (`cairn_lincheck`); a violation prints a minimal window of it. Schedules with an odd
//! seed run with ACLs on (default deny, the management token as every agent's default
//! token), so their reads take the path where the token's catch-up with the leader also
//! serves the read.
//!
//! Each schedule prints its seed; `CAIRN_SEED=<n>` replays that one schedule (the fault
//! plan, the clients' choices and the network's fault draws; thread timing still varies).
//! The long run (`CAIRN_LIN_SCHEDULES`, default 200):
//!
//! ```sh
//! CAIRN_LIN_SCHEDULES=200 cargo test -p cairn-agent --release --test linearizable -- --ignored --nocapture
//! ```
//!
//! On a machine busy with other work, `CAIRN_TEST_WAIT_SECS=120` gives the harness's named
//! waits (cluster formation, a leader agreed) longer than their 15 s.
//!
//! `the_checker_catches_a_deposed_leader_serving_reads` plants the bug the checker must
//! find: with `debug_unsafe_local_reads = true` a leader cut off from the majority keeps
//! answering default reads from its own state while the majority moves on.

mod harness;
#[path = "linearizable/nemesis.rs"]
mod nemesis;
#[path = "linearizable/workload.rs"]
mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_lincheck::{History, Op, Outcome, Report};
use harness::*;
use tokio::sync::RwLock;

use nemesis::{Fault, Roles, Step};
use workload::{Client, Tally, LOCK, REGISTERS};

/// Concurrent clients per schedule.
const CLIENTS: usize = 6;
/// Faults per schedule.
const STEPS: usize = 4;

/// One schedule: the seed decides the cluster size, the faults and the clients' choices.
struct Schedule {
    seed: u64,
    servers: usize,
    steps: Vec<Step>,
    /// Sets `debug_unsafe_local_reads = true` on every agent (the planted bug).
    unsafe_local_reads: bool,
    /// Sends half the default reads to a leader while it is cut off.
    reads_on_isolated: bool,
    /// ACLs on every agent (default deny), every request under the management token as
    /// the agents' default token: a read then catches up once, while its token resolves.
    acls: bool,
}

/// The management token of schedules with ACLs.
const ROOT: &str = "5b0f1c7e-3a52-4d8e-9c1f-6e2d7a4b8c90";

impl Schedule {
    fn from_seed(seed: u64) -> Schedule {
        let servers = if seed % 3 == 2 { 5 } else { 3 };
        Schedule {
            seed,
            servers,
            steps: nemesis::plan(seed, servers, STEPS),
            unsafe_local_reads: false,
            reads_on_isolated: false,
            acls: seed % 2 == 1,
        }
    }

    /// The agents' configuration.
    fn hcl(&self) -> String {
        let mut hcl = String::new();
        if self.unsafe_local_reads {
            hcl.push_str("debug_unsafe_local_reads = true\n");
        }
        if self.acls {
            hcl.push_str(&acl_managed_by(ROOT));
        }
        hcl
    }
}

/// The management token works on every one of `nodes` (as their default token).
struct TokenEverywhere(Vec<String>);

impl Condition for TokenEverywhere {
    async fn holds(&self, c: &Cluster) -> bool {
        for node in &self.0 {
            if c.http(node, "GET", "/v1/acl/token/self", "").await.0 != 200 {
                return false;
            }
        }
        true
    }
}

/// What one schedule produced.
struct Run {
    report: Report,
    /// Whether the lock key was checked (not if a session vanished during the run).
    locks_checked: bool,
}

/// Runs schedule `s`; `None` if its cluster did not form (every node alive everywhere, one
/// leader agreed) within the harness's wait: nothing was run, nothing is checked.
async fn run(s: &Schedule) -> Option<Run> {
    let start = Instant::now();
    println!(
        "schedule seed {} ({} servers; replay with CAIRN_SEED={}){}{}",
        s.seed,
        s.servers,
        s.seed,
        if s.unsafe_local_reads {
            " with debug_unsafe_local_reads"
        } else {
            ""
        },
        if s.acls { " with ACLs" } else { "" }
    );
    let hcl = s.hcl();
    let hcl = hcl.as_str();
    let mut c = Cluster::with_seed(s.seed);
    let servers: Vec<String> = (1..=s.servers).map(|i| format!("s{i}")).collect();
    for name in &servers {
        c.durable_server(name, s.servers as u32, hcl).await;
    }
    let spare = format!("c{}", s.servers + 1);
    let sessions_node = format!("c{}", s.servers + 2);
    c.client(&spare, hcl).await;
    c.client(&sessions_node, hcl).await;
    let formed = c
        .try_wait_until(members_alive(s.servers + 2))
        .await
        .is_some()
        && c.try_wait_until(LeaderAgreed(None)).await.is_some()
        && (!s.acls || {
            let nodes: Vec<String> = servers
                .iter()
                .cloned()
                .chain([spare.clone(), sessions_node.clone()])
                .collect();
            c.try_wait_until(TokenEverywhere(nodes)).await.is_some()
        });
    if !formed {
        println!(
            "  seed {}: the cluster did not form within {:?} (every node alive everywhere, one leader, the token everywhere with ACLs)",
            s.seed, *WAIT
        );
        c.stop_all().await;
        return None;
    }
    let cluster = Arc::new(RwLock::new(c));

    // Sessions live on the client agent the nemesis never touches and have no checks,
    // so nothing but a release frees their locks.
    let mut sessions = Vec::new();
    for id in 0..CLIENTS {
        sessions.push(workload::create_session(&cluster, &sessions_node, id).await);
    }
    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let isolated = Arc::new(parking_lot::Mutex::new(None::<String>));
    let tasks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(id, session)| {
            let mut client = Client::new(
                id,
                s.seed,
                session.clone(),
                history.clone(),
                cluster.clone(),
            );
            if s.reads_on_isolated {
                client.reads_on = Some(isolated.clone());
            }
            tokio::spawn(client.run(stop.clone()))
        })
        .collect();

    let roles = Roles {
        servers: servers.clone(),
        spare_client: spare,
    };
    for step in &s.steps {
        nemesis::run_step(&cluster, &roles, step, |l| *isolated.lock() = l).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut tally = Tally::default();
    for t in tasks {
        let t = t.await.expect("client task");
        tally.ops += t.ops;
        tally.failed_reads += t.failed_reads;
        tally.indeterminate += t.indeterminate;
        tally.busy += t.busy;
    }

    // Every key read once more, consistently, on a healed cluster: the last word.
    let c = cluster.read().await;
    c.heal_all();
    c.wait_until("one leader agreed at the end", LeaderAgreed(None))
        .await;
    for key in REGISTERS.iter().chain([&LOCK]) {
        final_read(&c, &history, &servers, key).await;
    }
    let sessions_intact = sessions_intact(&c, &servers[0], &sessions).await;
    if !sessions_intact {
        let node = c
            .get(
                &servers[0],
                &format!("/v1/catalog/node/{sessions_node}?consistent"),
            )
            .await;
        println!(
            "  a session vanished (its node {sessions_node} is {} the catalog): the lock key is not checked this time",
            if node.is_some_and(|v| !v.is_null()) {
                "in"
            } else {
                "not in"
            }
        );
    }
    drop(c);
    // Nothing of this schedule may run on into the next one.
    cluster.write().await.stop_all().await;

    let mut entries = history.entries();
    if !sessions_intact {
        entries.retain(|e| e.key != LOCK);
    }
    let report = cairn_lincheck::check(&entries, cairn_lincheck::DEFAULT_BUDGET);
    let took = start.elapsed();
    println!(
        "  seed {} in {took:?}: {} ops issued (mean {:?} each; {} reads failed, {} writes indeterminate); checked {report}",
        s.seed,
        tally.ops,
        tally.busy / tally.ops.max(1) as u32,
        tally.failed_reads,
        tally.indeterminate
    );
    Some(Run {
        report,
        locks_checked: sessions_intact,
    })
}

/// A `?consistent` read of `key` on a server, retried until one answers, recorded.
async fn final_read(c: &Cluster, history: &History, servers: &[String], key: &str) {
    let deadline = Instant::now() + *WAIT;
    for round in 0.. {
        let s = &servers[round % servers.len()];
        if let Some(api) = c.api(s) {
            let p = history.invoke(usize::MAX, &format!("{s} consistent"), key, Op::Read);
            let answer = api
                .call("GET", &format!("/v1/kv/{key}?consistent"), "")
                .await;
            let seen = match &answer {
                Some((200, body)) => workload::parse_entry(body),
                Some((404, _)) => Some(None),
                _ => None,
            };
            if let Some(seen) = seen {
                history.complete(p, Outcome::Read(seen.map(|(o, _)| o)));
                return;
            }
            history.complete(p, Outcome::Unknown);
        }
        assert!(
            Instant::now() < deadline,
            "no consistent read of {key} (seed {})",
            c.seed
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether every session still exists, as a `?consistent` read on `server` says
/// (retried until it answers).
async fn sessions_intact(c: &Cluster, server: &str, sessions: &[String]) -> bool {
    for id in sessions {
        let path = format!("/v1/session/info/{id}?consistent");
        let deadline = Instant::now() + *WAIT;
        let found = loop {
            if let Some(v) = c.get(server, &path).await {
                break v.as_array().map(Vec::len) == Some(1);
            }
            assert!(Instant::now() < deadline, "no answer to {path} on {server}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if !found {
            println!("  session {id} is gone");
            return false;
        }
    }
    true
}

/// `CAIRN_SEED` if set.
fn replay_seed() -> Option<u64> {
    std::env::var("CAIRN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// Fewer operations than this and a schedule says little (the faults kept the clients
/// waiting, typically on a machine too busy to elect leaders quickly).
const MIN_OPS: usize = 20;

fn assert_linearizable(r: &Run, seed: u64) {
    assert!(
        r.report.violations.is_empty(),
        "seed {seed} (replay with CAIRN_SEED={seed}): not linearizable:\n{}",
        r.report
    );
    assert!(
        r.report.undecided.is_empty(),
        "seed {seed}: the checker ran out of budget:\n{}",
        r.report
    );
}

/// Runs `n` schedules from `base` (or the replayed one) and sums them up. A violation, or a
/// history the checker could not decide, fails at once. A schedule with fewer than
/// [`MIN_OPS`] operations, or whose cluster did not form, fails too, unless `thin_allowed`
/// (the long run, which may share the machine): then it is counted and reported, and the
/// run fails only if more than a tenth of its schedules were thin or did not form.
async fn schedules(n: u64, thin_allowed: bool) {
    let base = replay_seed().unwrap_or_else(|| seed("linearizable schedules"));
    let seeds: Vec<u64> = if replay_seed().is_some() {
        vec![base]
    } else {
        (0..n).map(|i| base.wrapping_add(i)).collect()
    };
    let start = Instant::now();
    let (mut ops, mut indeterminate, mut locks_skipped) = (0, 0, 0);
    let (mut thin, mut unformed) = (Vec::new(), Vec::new());
    for seed in &seeds {
        let Some(r) = run(&Schedule::from_seed(*seed)).await else {
            assert!(thin_allowed, "seed {seed}: the cluster did not form");
            unformed.push(*seed);
            continue;
        };
        assert_linearizable(&r, *seed);
        if r.report.ops < MIN_OPS {
            assert!(
                thin_allowed,
                "seed {seed}: too few operations to mean anything ({})",
                r.report.ops
            );
            println!("  seed {seed} is thin: {} operations", r.report.ops);
            thin.push(*seed);
        }
        ops += r.report.ops;
        indeterminate += r.report.indeterminate;
        locks_skipped += usize::from(!r.locks_checked);
    }
    println!(
        "{} schedule(s), {ops} operations checked ({indeterminate} indeterminate), 0 violations, in {:?}; the lock key was skipped in {locks_skipped} (a session vanished); {} thin schedule(s) {thin:?}; {} did not form {unformed:?}",
        seeds.len(),
        start.elapsed(),
        thin.len(),
        unformed.len()
    );
    assert!(
        (thin.len() + unformed.len()) * 10 <= seeds.len(),
        "{} of {} schedules had fewer than {MIN_OPS} operations or no cluster: the machine is too busy for this run to mean much",
        thin.len() + unformed.len(),
        seeds.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_schedules_under_faults_are_linearizable() {
    schedules(3, false).await;
}

/// The long run: `CAIRN_LIN_SCHEDULES` schedules (default 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: CAIRN_LIN_SCHEDULES=200 cargo test -p cairn-agent --release --test linearizable -- --ignored"]
async fn many_schedules_are_linearizable() {
    let n = std::env::var("CAIRN_LIN_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    schedules(n, true).await;
}

/// The leader cut off alone (of three) for a few seconds, twice, while the clients keep
/// reading through it and the majority elects another leader and takes writes.
fn deposed_leader_schedule(seed: u64, unsafe_local_reads: bool) -> Schedule {
    Schedule {
        seed,
        servers: 3,
        steps: vec![
            Step {
                fault: Fault::LeaderMinority { with: 0 },
                hold: Duration::from_secs(3),
            };
            2
        ],
        unsafe_local_reads,
        reads_on_isolated: true,
        acls: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_deposed_leader_serving_reads() {
    let base = replay_seed().unwrap_or_else(|| seed("planted bug"));
    for attempt in 0..3u64 {
        let r = run(&deposed_leader_schedule(base.wrapping_add(attempt), true))
            .await
            .expect("the cluster formed");
        if let Some(v) = r.report.violations.first() {
            println!("found, as it must be:\n{v}");
            assert!(
                v.window
                    .iter()
                    .any(|e| e.op == Op::Read && e.outcome != Outcome::Unknown),
                "the window shows the stale read:\n{v}"
            );
            return;
        }
        println!("attempt {attempt}: no violation seen; again");
    }
    panic!("the checker found no violation although a deposed leader served reads (seed {base})");
}

/// The control: the same schedule without the planted fault is linearizable (so what the
/// checker finds above is the fault, not the schedule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_schedule_without_the_fault_is_linearizable() {
    let seed = replay_seed().unwrap_or_else(|| seed("control"));
    run_control(&deposed_leader_schedule(seed, false)).await;
}

/// Runs a schedule that must be linearizable, with enough operations to mean something.
async fn run_control(schedule: &Schedule) {
    let seed = schedule.seed;
    let r = run(schedule).await.expect("the cluster formed");
    assert_linearizable(&r, seed);
    assert!(
        r.report.ops >= MIN_OPS,
        "seed {seed}: too few operations to mean anything ({})",
        r.report.ops
    );
}

/// The same schedule with ACLs: reads sent to the cut-off leader resolve their token
/// first, and the catch-up that resolution makes must refuse them just as a read's own
/// barrier does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_a_deposed_leader_with_acls_are_linearizable() {
    let seed = replay_seed().unwrap_or_else(|| seed("control with ACLs"));
    run_control(&Schedule {
        acls: true,
        ..deposed_leader_schedule(seed, false)
    })
    .await;
}
