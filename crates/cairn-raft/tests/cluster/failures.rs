//! Losing the leader and random faults: a new leader takes over, and no acknowledged write
//! is ever lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::ServerState;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{addr_of, seed, set, wait_until, Cluster, Setup, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_is_replaced_and_steps_down() {
    let c = Cluster::formed(3, 3, Setup::default()).await;
    c.write(set("before", "1")).await;
    let old = c.leader().unwrap();
    let rest: BTreeSet<u64> = c.ids().into_iter().filter(|id| *id != old).collect();

    c.isolate(old);
    let took = c
        .wait_until("the majority elects a new leader", || {
            c.leader_among(&rest).is_some()
        })
        .await;
    // Election timeouts are 200-400 ms at multiplier 1; allow generous slack for a busy host.
    assert!(took < Duration::from_secs(5), "new leader after {took:?}");
    eprintln!("new leader elected {took:?} after the partition");
    let new = c.leader_among(&rest).unwrap();
    assert_ne!(new, old);
    // The old leader, cut off, knows it lost its quorum (openraft keeps it in the Leader
    // state until it hears of the new term; it stops acknowledging anything).
    c.wait_until("the old leader sees it lost its quorum", || {
        !c.server(old).node.leads_with_quorum()
    })
    .await;
    c.wait_until("the new leader's quorum acknowledged it", || {
        c.server(new).node.leads_with_quorum()
    })
    .await;

    // The cut-off leader cannot commit: its write is not acknowledged while cut off...
    let stranded = tokio::spawn({
        let node = c.server(old).node.clone();
        async move { node.write(set("stranded", "x")).await }
    });
    let index = c.write(set("after", "2")).await;

    c.net.heal_all();
    c.wait_until("the old leader steps down and follows the new one", || {
        c.server_state(old) != ServerState::Leader
            && c.server(old).node.current_leader() == Some(new)
    })
    .await;
    c.wait_until("the old leader applied the new leader's write", || {
        *c.server(old).applied.borrow() >= index
    })
    .await;
    // ...and is discarded when it rejoins: acknowledged writes survive, the stranded one is gone.
    let stranded = tokio::time::timeout(WAIT, stranded)
        .await
        .expect("the stranded write ends once the old leader steps down")
        .unwrap();
    eprintln!("the cut-off leader's write ended with {stranded:?}");
    assert!(
        stranded.is_err(),
        "stranded write acknowledged: {stranded:?}"
    );
    for id in c.ids() {
        assert_eq!(c.kv(id, "before").as_deref(), Some("1"), "server {id}");
        assert_eq!(c.kv(id, "after").as_deref(), Some("2"), "server {id}");
        assert_eq!(c.kv(id, "stranded"), None, "server {id}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_random_partitions_and_loss() {
    let seed = seed("acknowledged_writes_survive_random_partitions_and_loss");
    let mut rng = StdRng::seed_from_u64(seed);
    let c = Cluster::formed(seed, 3, Setup::default()).await;
    let ids: Vec<u64> = c.ids().into_iter().collect();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut attempts = 0;
    let mut refused: BTreeMap<&str, usize> = BTreeMap::new();

    for round in 0..25usize {
        // The first round always cuts the leader off, so every run sees a leader change.
        let action = if round == 0 {
            12
        } else {
            rng.random_range(0..20)
        };
        match action {
            0..7 => c.net.heal_all(),
            7..12 => {
                let a = ids[rng.random_range(0..ids.len())];
                let b = ids[rng.random_range(0..ids.len())];
                if a != b {
                    c.net.partition(addr_of(a), addr_of(b));
                }
            }
            12..15 => {
                if let Some(l) = c.leader() {
                    c.isolate(l);
                    // Writes go on meanwhile only on the cut-off leader, which must not
                    // acknowledge them; wait (bounded, other faults may prevent it) for
                    // the others to elect a leader.
                    let t0 = std::time::Instant::now();
                    while c.leader().is_none_or(|n| n == l) && t0.elapsed() < Duration::from_secs(3)
                    {
                        let key = format!("r{round}stranded{}", t0.elapsed().as_millis());
                        attempts += 1;
                        if c.write_on(l, set(&key, "x"), Duration::from_millis(100))
                            .await
                            .is_ok()
                        {
                            acked.insert(key, "x".to_string());
                        } else {
                            *refused.entry("on the cut-off leader").or_insert(0) += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            _ => c.net.set_drop_probability(rng.random_range(0.0..0.2)),
        }
        // Each round writes for 400 ms (long enough for elections to happen within it).
        let round_end = std::time::Instant::now() + Duration::from_millis(400);
        let mut w = 0;
        while std::time::Instant::now() < round_end {
            let key = format!("r{round}w{w}");
            w += 1;
            let value = format!("{}", rng.random::<u32>());
            // Mostly the leader the majority follows, sometimes any server (a follower
            // refuses; a cut-off old leader must never acknowledge).
            let target = match c.leader() {
                Some(l) if rng.random_bool(0.8) => l,
                _ => ids[rng.random_range(0..ids.len())],
            };
            attempts += 1;
            match c
                .write_on(target, set(&key, &value), Duration::from_millis(300))
                .await
            {
                Ok(_) => {
                    acked.insert(key, value);
                }
                Err(e) => {
                    *refused.entry(kind(&e)).or_insert(0) += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    c.net.heal_all();
    c.net.set_drop_probability(0.0);
    eprintln!(
        "{} of {attempts} writes acknowledged; refused: {refused:?}",
        acked.len()
    );
    assert!(
        acked.len() >= 10,
        "too few writes acknowledged to prove anything (seed {seed})"
    );
    c.wait_until("a leader is elected after healing", || c.leader().is_some())
        .await;
    // One more write commits everything the leader holds and gives a target index.
    let last = c.write(set("final", "done")).await;
    eprintln!("after healing: {}", c.describe());
    let term = c.metrics(c.leader().unwrap()).current_term;
    assert!(
        term >= 2,
        "the leader changed at least once (term {term}, seed {seed})"
    );
    wait_until("every server applied the final write", || {
        ids.iter().all(|id| *c.server(*id).applied.borrow() >= last)
    })
    .await;
    for id in &ids {
        for (key, value) in &acked {
            assert_eq!(
                c.kv(*id, key).as_deref(),
                Some(value.as_str()),
                "server {id} lost acknowledged write {key} (seed {seed})"
            );
        }
    }
    let leader = c.leader().unwrap();
    for id in &ids {
        c.wait_until("replicas converge", || {
            c.state_json(*id) == c.state_json(leader)
        })
        .await;
    }
    c.shutdown().await;
}

/// A refused write's kind, for the summary.
fn kind(e: &cairn_raft::WriteError) -> &'static str {
    use cairn_raft::WriteError::*;
    match e {
        NoLeader => "no leader",
        NotLeader { .. } => "not leader",
        LeadershipLost => "leadership lost",
        Shutdown(_) => "shut down",
        Other(_) => "timeout or other",
    }
}
