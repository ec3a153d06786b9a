//! Three-server Raft scenarios on the in-process network: election, replication, leader
//! loss, restart from the durable log, catch-up by snapshot, and a seeded randomised run
//! of writes under partitions and message loss in which no acknowledged write may be lost.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::ServerState;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{addr_of, seed, set, wait_until, Cluster, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_one_leader() {
    let c = Cluster::formed(1, 3, Setup::default()).await;
    let leader = c.leader().expect("leader");
    c.wait_until("every server follows the leader", || {
        c.ids()
            .iter()
            .all(|id| c.server(*id).node.current_leader() == Some(leader))
    })
    .await;
    let leaders: Vec<u64> = c
        .ids()
        .into_iter()
        .filter(|id| c.server_state(*id) == ServerState::Leader)
        .collect();
    assert_eq!(leaders, vec![leader], "exactly one leader");
    c.wait_until("the leader's quorum acknowledged it", || {
        c.server(leader).node.leads_with_quorum()
    })
    .await;
    for id in c.ids().into_iter().filter(|id| *id != leader) {
        assert!(!c.server(id).node.leads_with_quorum(), "follower {id}");
    }
    for id in c.ids() {
        assert_eq!(
            c.server(id).node.voter_ids(),
            c.ids(),
            "server {id} sees 3 voters"
        );
        assert_eq!(
            c.server(id).node.leader_addr(),
            Some(addr_of(leader).to_string())
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_leader_is_applied_on_all_three() {
    let c = Cluster::formed(2, 3, Setup::default()).await;
    let index = c.write(set("greeting", "hello")).await;
    c.wait_until("every server applied the write", || {
        c.ids()
            .iter()
            .all(|id| *c.server(*id).applied.borrow() >= index)
    })
    .await;
    for id in c.ids() {
        assert_eq!(
            c.kv(id, "greeting").as_deref(),
            Some("hello"),
            "server {id}"
        );
    }

    // A follower refuses writes and names the leader.
    let leader = c.leader().unwrap();
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
    let err = c
        .write_on(follower, set("x", "y"), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        cairn_raft::WriteError::NotLeader {
            leader_id: leader,
            leader_addr: Some(addr_of(leader).to_string())
        }
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_is_replaced_and_steps_down() {
    let c = Cluster::formed(3, 3, Setup::default()).await;
    c.write(set("before", "1")).await;
    let old = c.leader().unwrap();
    let rest: std::collections::BTreeSet<u64> =
        c.ids().into_iter().filter(|id| *id != old).collect();

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
    let stranded = tokio::time::timeout(support::WAIT, stranded)
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
async fn restarted_server_catches_up_from_its_durable_log() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        data_dir: Some(dir.path().to_path_buf()),
        ..Setup::default()
    };
    let mut c = Cluster::formed(4, 3, setup).await;
    for i in 0..10 {
        c.write(set(&format!("k{i}"), "early")).await;
    }
    let leader = c.leader().unwrap();
    let down = c.ids().into_iter().find(|id| *id != leader).unwrap();
    c.wait_until("the follower applied the early writes", || {
        c.kv(down, "k9").is_some()
    })
    .await;
    let before_stop = *c.server(down).applied.borrow();
    c.stop_server(down).await;

    let mut last = 0;
    for i in 0..10 {
        last = c.write(set(&format!("late{i}"), "x")).await;
    }

    // Restart it cut off from the others: whatever it knows now comes from its own disk.
    c.isolate(down);
    c.start_server(down).await;
    c.wait_until("the restarted server reopened its log", || {
        c.metrics(down).last_log_index >= Some(before_stop)
    })
    .await;
    c.net.heal_all();
    c.wait_until("the restarted server caught up", || {
        *c.server(down).applied.borrow() >= last
    })
    .await;
    assert_eq!(c.state_json(down), c.state_json(leader));
    assert_eq!(c.kv(down, "late9").as_deref(), Some("x"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_behind_server_catches_up_by_snapshot() {
    let setup = Setup {
        snapshot_every: 10,
        logs_kept_after_snapshot: 0,
        ..Setup::default()
    };
    let c = Cluster::formed(5, 3, setup).await;
    c.write(set("first", "1")).await;
    let leader = c.leader().unwrap();
    let behind = c.ids().into_iter().find(|id| *id != leader).unwrap();
    c.wait_until("the lagging server applied the first write", || {
        c.kv(behind, "first").is_some()
    })
    .await;
    c.isolate(behind);
    let stale_last = c.metrics(behind).last_log_index.unwrap_or(0);

    let mut last = 0;
    for i in 0..60 {
        last = c.write(set(&format!("k{i}"), &i.to_string())).await;
    }
    c.wait_until("the leader purged its log past the lagging server", || {
        c.metrics(leader)
            .purged
            .is_some_and(|p| p.index() > stale_last)
    })
    .await;

    c.net.heal_all();
    c.wait_until("the lagging server caught up", || {
        *c.server(behind).applied.borrow() >= last
    })
    .await;
    let m = c.metrics(behind);
    assert!(
        m.snapshot.is_some_and(|s| s.index() > stale_last),
        "caught up by installing a snapshot: {:?}",
        m.snapshot
    );
    assert_eq!(c.kv(behind, "k59").as_deref(), Some("59"));
    c.wait_until("the lagging server's state equals the leader's", || {
        c.state_json(behind) == c.state_json(leader)
    })
    .await;
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

/// A value of `kb` KiB (its JSON, an array of numbers, is about four times bigger).
fn big_value(kb: usize, seed: u8) -> String {
    std::iter::repeat_n((b'a' + seed % 26) as char, kb << 10).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_server_gets_oversized_batches_in_pieces() {
    // No snapshots: the follower must catch up from a log batch far over the message limit.
    let c = Cluster::formed(6, 3, Setup::default()).await;
    let leader = c.leader().unwrap();
    let behind = c.ids().into_iter().find(|id| *id != leader).unwrap();
    c.isolate(behind);
    let mut last = 0;
    for i in 0..24u8 {
        last = c.write(set(&format!("big{i}"), &big_value(100, i))).await;
    }
    // About 24 x 400 KB of JSON waits for it: several times cairn.raft.v1's message limit.
    c.net.heal_all();
    c.wait_until("the lagging server caught up", || {
        *c.server(behind).applied.borrow() >= last
    })
    .await;
    assert_eq!(c.kv(behind, "big23"), Some(big_value(100, 23)));
    assert_eq!(c.state_json(behind), c.state_json(leader));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_bigger_than_a_message_travels_in_chunks() {
    let setup = Setup {
        snapshot_every: 5,
        logs_kept_after_snapshot: 0,
        ..Setup::default()
    };
    let c = Cluster::formed(7, 3, setup).await;
    let leader = c.leader().unwrap();
    let behind = c.ids().into_iter().find(|id| *id != leader).unwrap();
    c.isolate(behind);
    let stale_last = c.metrics(behind).last_log_index.unwrap_or(0);
    let mut last = 0;
    for i in 0..20u8 {
        last = c.write(set(&format!("big{i}"), &big_value(100, i))).await;
    }
    c.wait_until(
        "the leader's snapshot covers the writes and its log is purged",
        || {
            let m = c.metrics(leader);
            m.snapshot.is_some_and(|s| s.index() >= last - 5)
                && m.purged.is_some_and(|p| p.index() > stale_last)
        },
    )
    .await;
    c.net.heal_all();
    c.wait_until("the lagging server caught up", || {
        *c.server(behind).applied.borrow() >= last
    })
    .await;
    assert!(c
        .metrics(behind)
        .snapshot
        .is_some_and(|s| s.index() > stale_last));
    assert_eq!(c.kv(behind, "big19"), Some(big_value(100, 19)));
    c.wait_until("the lagging server's state equals the leader's", || {
        c.state_json(behind) == c.state_json(leader)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_grows_to_three_through_learners() {
    let c = Cluster::start(8, 3, Setup::default()).await;
    let one = &c.server(1).node;
    one.initialize(BTreeMap::from([(1, addr_of(1).to_string())]))
        .await
        .expect("initialize a one-server cluster");
    c.wait_until("server 1 leads alone", || one.is_leader())
        .await;
    assert!(one.leads_with_quorum(), "a sole voter is its own quorum");
    let before = c.write(set("early", "1")).await;

    // Initializing twice is refused, on the same server or another one that has joined.
    let again = one
        .initialize(BTreeMap::from([(1, addr_of(1).to_string())]))
        .await
        .unwrap_err();
    assert!(
        matches!(again, cairn_raft::InitError::AlreadyInitialized(_)),
        "{again}"
    );

    for id in [2, 3] {
        one.add_learner(id, addr_of(id).to_string())
            .await
            .expect("add learner");
    }
    // Learners have the log but no vote.
    c.wait_until("the learners applied the early write", || {
        [2, 3]
            .iter()
            .all(|id| *c.server(*id).applied.borrow() >= before)
    })
    .await;
    assert_eq!(one.voter_ids(), [1].into());

    one.change_membership([1, 2, 3].into())
        .await
        .expect("promote the learners");
    c.wait_until("all three see three voters", || {
        c.ids()
            .iter()
            .all(|id| c.server(*id).node.voter_ids() == c.ids())
    })
    .await;
    assert_eq!(one.peers().len(), 3);

    // A follower cannot change the membership.
    let err = c
        .server(2)
        .node
        .change_membership([1, 2].into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, cairn_raft::WriteError::NotLeader { leader_id: 1, .. }),
        "{err}"
    );

    // With three voters the cluster survives losing its first server.
    c.isolate(1);
    let rest = [2, 3].into();
    c.wait_until("servers 2 and 3 elect a leader", || {
        c.leader_among(&rest).is_some()
    })
    .await;
    let after = c.write(set("late", "2")).await;
    c.net.heal_all();
    c.wait_until("server 1 catches up", || {
        *c.server(1).applied.borrow() >= after
    })
    .await;
    assert_eq!(c.kv(1, "late").as_deref(), Some("2"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_chunks_are_refused() {
    use cairn_raft::protocol::{RaftRequest, SnapshotChunk};
    use cairn_rpc::{Client, ClientConfig, Code};

    let c = Cluster::formed(9, 3, Setup::default()).await;
    let leader = c.leader().unwrap();
    let vote = c.metrics(leader).vote;
    let meta = openraft::alias::SnapshotMetaOf::<cairn_raft::TypeConfig>::default();
    let outsider: std::net::SocketAddr = "127.0.0.9:8300".parse().unwrap();
    let client: Client<cairn_raft::RaftRpc> = Client::new(
        c.net
            .client::<cairn_raft::RaftRpc>(outsider, ClientConfig::default()),
    );
    let chunk = |offset: u64, data: &str, done: bool| {
        RaftRequest::SnapshotChunk(Box::new(SnapshotChunk {
            vote,
            meta: meta.clone(),
            offset,
            data: data.to_string(),
            done,
        }))
    };
    let target = addr_of(leader);

    // A chunk in the middle of a transfer nobody started.
    let err = client
        .call(target, chunk(5, "xx", false))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );

    // A gap in a transfer ends it.
    client
        .call(target, chunk(0, "{\"a\":", false))
        .await
        .expect("first chunk");
    let err = client
        .call(target, chunk(99, "1}", true))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );
    let err = client.call(target, chunk(5, "1}", true)).await.unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "the transfer was dropped: {err}"
    );

    // A chunk from a deposed leader (an older vote) is answered with the newer vote at once.
    let stale = RaftRequest::SnapshotChunk(Box::new(SnapshotChunk {
        vote: openraft::alias::VoteOf::<cairn_raft::TypeConfig>::new(0, 0),
        meta: meta.clone(),
        offset: 0,
        data: "{}".to_string(),
        done: true,
    }));
    match client
        .call(target, stale)
        .await
        .expect("stale chunk answered")
    {
        cairn_raft::protocol::RaftResponse::Snapshot(r) => assert_eq!(r.vote, vote),
        other => panic!("expected the newer vote, got {}", other.kind()),
    }

    // The servers carry on.
    c.write(set("still", "fine")).await;
    c.shutdown().await;
}
