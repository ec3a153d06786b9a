//! Servers that fell behind catch up: from their own log after a restart, by snapshot when
//! the log they need is gone, and in pieces when what they miss exceeds a message.

use crate::support::{set, Cluster, Setup};

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
    for i in 0..64u8 {
        last = c.write(set(&format!("big{i}"), &big_value(100, i))).await;
    }
    // 64 x 100 KB of entries wait for it: half again the Raft message limit (4 MiB).
    c.net.heal_all();
    c.wait_until("the lagging server caught up", || {
        *c.server(behind).applied.borrow() >= last
    })
    .await;
    assert_eq!(c.kv(behind, "big63"), Some(big_value(100, 63)));
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
