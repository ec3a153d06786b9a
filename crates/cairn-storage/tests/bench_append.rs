//! Append throughput and CPU cost of the durable log stores (ignored by default: it is a
//! measurement, not a check).
//!
//! Each round appends `ENTRIES` entries of a realistic size (a KV PUT command is a few
//! hundred bytes encoded) with up to `CONC` appends in flight, as openraft does while
//! earlier appends are being synced, and prints entries/s, syncs per entry and CPU time
//! (user + system, `getrusage`) per entry, for several rounds (on a busy machine, compare
//! builds by alternating them; docs/PERFORMANCE.md has the figures measured against the
//! redb store this one replaced). Run:
//!
//! `cargo test --release -p cairn-storage --test bench_append -- --ignored --nocapture`
//!
//! `BENCH_ENTRIES`, `BENCH_CONC` and `BENCH_ROUNDS` override the defaults.

use std::time::Instant;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;

openraft::declare_raft_types!(pub TC: D = String, R = String);

type Entry = <TC as openraft::RaftTypeConfig>::Entry;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system) of this process so far, in microseconds.
fn cpu_us() -> u64 {
    // SAFETY: `getrusage` fills the zeroed struct it is given and touches nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the duration of the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// Appends `n` entries after `from` with up to `conc` in flight; (entries/s, syncs/entry,
/// CPU us/entry).
async fn run<S: RaftLogStorage<TC>>(s: &mut S, from: u64, n: u64, conc: usize) -> (f64, f64, f64) {
    // About what a PUT of a 100-byte value costs as a JSON-encoded command.
    let value = "v".repeat(300);
    let (syncs0, cpu0, t0) = (cairn_storage::syncs(), cpu_us(), Instant::now());
    let mut waits = std::collections::VecDeque::new();
    for i in from..from + n {
        let (tx, rx) = TC::oneshot();
        let e = Entry::new_normal(log_id::<TC>(1, 0, i), value.clone());
        s.append([e], IOFlushed::signal(tx)).await.unwrap();
        waits.push_back(rx);
        if waits.len() >= conc {
            waits.pop_front().unwrap().await.unwrap().unwrap();
        }
    }
    for rx in waits {
        rx.await.unwrap().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let syncs = (cairn_storage::syncs() - syncs0) as f64;
    let cpu = (cpu_us() - cpu0) as f64;
    (n as f64 / secs, syncs / n as f64, cpu / n as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn append_throughput_and_cpu_per_entry() {
    let n = env("BENCH_ENTRIES", 20_000);
    let conc = env("BENCH_CONC", 16) as usize;
    let rounds = env("BENCH_ROUNDS", 3);
    println!("entries={n} in-flight={conc} rounds={rounds}");
    for round in 0..rounds {
        {
            let dir = tempfile::tempdir().unwrap();
            let mut s = cairn_storage::WalLogStore::<TC>::open(dir.path().join("log")).unwrap();
            let (rate, spe, cpu) = run(&mut s, 1, n, conc).await;
            println!("round {round} wal : {rate:>9.0} entries/s  {spe:.3} syncs/entry  {cpu:>6.1} us CPU/entry");
        }
    }
}
