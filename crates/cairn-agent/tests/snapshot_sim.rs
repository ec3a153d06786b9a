//! Raft snapshots in a replicated cluster, in one process (see `harness`): with a low
//! `raft_snapshot_threshold` and few `raft_trailing_logs`, a server cut off while the
//! others write past several snapshots can no longer be sent the entries it missed (the
//! leader has purged them); once back it catches up by installing a snapshot, and holds
//! every key. A snapshot saved through a follower or a client agent and restored through
//! another reaches every server. The seed is printed.

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

/// Whether every server's copy holds exactly `keys` under `snap/` (consistent reads).
struct ServersHold(Vec<String>);

impl Condition for ServersHold {
    async fn holds(&self, c: &Cluster) -> bool {
        for s in ["s1", "s2", "s3"] {
            let got: Vec<String> = match c.get(s, "/v1/kv/snap/?keys&stale").await {
                Some(v) => v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect(),
                None => Vec::new(),
            };
            if got != self.0 {
                return false;
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_saved_and_restored_anywhere_reaches_every_server() {
    let mut c = Cluster::new("a_snapshot_saved_and_restored_anywhere_reaches_every_server");
    for name in ["s1", "s2", "s3"] {
        c.cluster_server(name, 3).await;
    }
    c.client("c4", "").await;
    c.wait_until("all four alive everywhere", members_alive(4))
        .await;
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    let leader = c.leader_name("s1").await.expect("a leader");
    let follower = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader)
        .unwrap();
    for k in ["a", "b", "c"] {
        let (s, body) = c.http("c4", "PUT", &format!("/v1/kv/snap/{k}"), "v").await;
        assert_eq!(s, 200, "{body}");
    }
    // Saved through a follower (default mode: a read index through the leader) and
    // through the client agent.
    let (s, from_follower) = c.http_bytes(follower, "GET", "/v1/snapshot", vec![]).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&from_follower));
    let (s, from_client) = c.http_bytes("c4", "GET", "/v1/snapshot", vec![]).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&from_client));
    let limits = cairn_http::snapshot_archive::ArchiveLimits::default();
    for a in [&from_follower, &from_client] {
        let v = cairn_http::snapshot_archive::read_archive(a, limits).expect("a valid archive");
        let st = cairn_http::snapshot_archive::decode_state(&v.state_bin).unwrap();
        assert_eq!(
            st.kv_list("snap/").0.len(),
            3,
            "the snapshot holds the writes"
        );
    }
    // Later writes ...
    for k in ["d", "e"] {
        let (s, _) = c
            .http(follower, "PUT", &format!("/v1/kv/snap/{k}"), "v")
            .await;
        assert_eq!(s, 200);
    }
    c.wait_until(
        "five keys on every server",
        ServersHold(keys(&["a", "b", "c", "d", "e"])),
    )
    .await;
    // ... are undone on every server by a restore sent to the client agent.
    let (s, body) = c
        .http_bytes("c4", "PUT", "/v1/snapshot", from_follower)
        .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    c.wait_until(
        "the restored three keys on every server",
        ServersHold(keys(&["a", "b", "c"])),
    )
    .await;
    // A damaged archive sent to a follower changes nothing anywhere.
    let (s, body) = c
        .http_bytes(follower, "PUT", "/v1/snapshot", b"\x1f\x8b broken".to_vec())
        .await;
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
    c.wait_until("still the three keys", ServersHold(keys(&["a", "b", "c"])))
        .await;
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| format!("snap/{k}")).collect()
}
