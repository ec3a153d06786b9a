//! Raft snapshots in a replicated cluster, in one process (see `harness`): with a low
//! `raft_snapshot_threshold` and few `raft_trailing_logs`, a server cut off while the
//! others write past several snapshots can no longer be sent the entries it missed (the
//! leader has purged them); once back it catches up by installing a snapshot, and holds
//! every key. The seed is printed.

mod harness;

use harness::*;

const SNAPSHOTS: &str = r#"
raft_snapshot_threshold = 20
raft_snapshot_interval = "100ms"
raft_trailing_logs = 5
"#;

/// Whether `on` holds every key `k0..k{n}` under `far/` (a stale read of its own copy).
struct HasKeys(&'static str, usize);

impl Condition for HasKeys {
    async fn holds(&self, c: &Cluster) -> bool {
        match c.get(self.0, "/v1/kv/far/?keys&stale").await {
            Some(v) => v.as_array().map(Vec::len) == Some(self.1),
            None => false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_catches_up_by_snapshot() {
    let mut c = Cluster::new("a_follower_far_behind_catches_up_by_snapshot");
    for name in ["s1", "s2", "s3"] {
        c.cluster_server_with(name, 3, SNAPSHOTS).await;
    }
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    let leader = c.leader_name("s1").await.expect("a leader");
    let behind = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader)
        .unwrap();
    let writer = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader && *s != behind)
        .unwrap();
    c.isolate(behind, true);
    // 120 writes: six times the threshold, so several snapshots are taken and the log
    // behind them is purged down to 5 entries.
    const N: usize = 120;
    for k in 0..N {
        let (s, body) = c
            .http(writer, "PUT", &format!("/v1/kv/far/k{k}"), "v")
            .await;
        assert_eq!(s, 200, "write {k}: {body}");
    }
    let v = c.get(behind, "/v1/kv/far/?keys&stale").await;
    assert!(
        v.as_ref().and_then(|v| v.as_array()).map(Vec::len) != Some(N),
        "{behind} saw the writes while cut off: {v:?}"
    );
    c.isolate(behind, false);
    let took = c
        .wait_until(
            "the server that was cut off holds every key",
            HasKeys(behind, N),
        )
        .await;
    println!("{behind} caught up {took:?} after healing");
    // It goes on following: a write after the catch-up reaches it too.
    let (s, _) = c.http(writer, "PUT", "/v1/kv/far/k-last", "v").await;
    assert_eq!(s, 200);
    c.wait_until("the next write reaches it", HasKeys(behind, N + 1))
        .await;
}
