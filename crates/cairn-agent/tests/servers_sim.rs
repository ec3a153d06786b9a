//! Replicated servers in one process over the in-memory networks (see `harness`): three
//! servers form their cluster through the pool (`-bootstrap-expect=3`), clients write
//! through whichever server they follow, the leader is cut off or stopped, and every
//! acknowledged write is on the servers that remain. The seed is printed.

mod harness;

use harness::*;

async fn three_servers_two_clients(test: &str) -> Cluster {
    let mut c = Cluster::new(test);
    for name in ["s1", "s2", "s3"] {
        c.cluster_server(name, 3).await;
    }
    c.client("c4", &service("web", 80)).await;
    c.client("c5", "").await;
    let a = c
        .wait_until("all five alive everywhere", members_alive(5))
        .await;
    let b = c
        .wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    let w = c
        .wait_until("web passing everywhere", passing_everywhere("web", 1))
        .await;
    println!("alive after {a:?}, leader agreed {b:?} later, web passing {w:?} later");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_forms_once_and_writes_reach_every_server() {
    let c = three_servers_two_clients("the_cluster_forms_once_and_writes_reach_every_server").await;
    let (status, peers) = c.http("s2", "GET", "/v1/status/peers", "").await;
    assert_eq!(status, 200);
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "{peers}");
    for k in 0..10 {
        let (s, body) = c.http("c5", "PUT", &format!("/v1/kv/k{k}"), "v").await;
        assert_eq!(s, 200, "{body}");
    }
    for s in ["s1", "s2", "s3"] {
        let v = c.get(s, "/v1/kv/?keys&consistent").await.unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(10), "{s}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_replaced_and_nothing_acknowledged_is_lost() {
    let mut c =
        three_servers_two_clients("a_stopped_leader_is_replaced_and_nothing_acknowledged_is_lost")
            .await;
    let mut acked = Vec::new();
    for k in 0..20 {
        let (s, _) = c.http("c4", "PUT", &format!("/v1/kv/a{k}"), "v").await;
        if s == 200 {
            acked.push(format!("a{k}"));
        }
    }
    let leader = c.leader_name("s1").await.expect("a leader");
    c.kill(&leader).await;
    let took = c
        .wait_until(
            "a new leader among the others",
            LeaderAgreed(Some(leader.clone())),
        )
        .await;
    println!("leader {leader} stopped: new leader agreed after {took:?}");
    for k in 20..40 {
        let (s, _) = c.http("c5", "PUT", &format!("/v1/kv/a{k}"), "v").await;
        if s == 200 {
            acked.push(format!("a{k}"));
        }
    }
    assert!(
        acked.len() >= 38,
        "too few writes acknowledged: {}",
        acked.len()
    );
    for s in ["s1", "s2", "s3"].iter().filter(|s| **s != leader) {
        let v = c.get(s, "/v1/kv/?keys&consistent").await.unwrap();
        let keys: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        for k in &acked {
            assert!(keys.contains(&k.as_str()), "{s} lost {k}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_and_rejoins_when_healed() {
    let c =
        three_servers_two_clients("an_isolated_leader_is_replaced_and_rejoins_when_healed").await;
    let leader = c.leader_name("s1").await.expect("a leader");
    c.isolate(&leader, true);
    c.wait_until(
        "a new leader among the others",
        LeaderAgreed(Some(leader.clone())),
    )
    .await;
    let (s, body) = c.http("c4", "PUT", "/v1/kv/during", "v").await;
    assert_eq!(s, 200, "{body}");
    c.isolate(&leader, false);
    c.wait_until("everyone agrees on one leader again", LeaderAgreed(None))
        .await;
    let v = c.get(&leader, "/v1/kv/during?consistent").await;
    assert!(
        v.is_some(),
        "the healed server serves the write made without it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_later_joins_the_cluster_as_a_voter() {
    let mut c =
        three_servers_two_clients("a_server_started_later_joins_the_cluster_as_a_voter").await;
    let (s, body) = c.http("c4", "PUT", "/v1/kv/before", "v").await;
    assert_eq!(s, 200, "{body}");
    // Same -bootstrap-expect, fresh log: it must join, not form a second cluster.
    c.cluster_server("s4", 3).await;
    c.wait_until("s4 is a voter", PeersAre("s1", 4)).await;
    c.wait_until("s4 follows the same leader", LeaderAgreed(None))
        .await;
    assert!(c.get("s4", "/v1/kv/before?consistent").await.is_some());
}

/// The header `name` of a response, as text.
fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_server_answers_stale_reads_only_when_asked_to() {
    let c =
        three_servers_two_clients("a_cut_off_server_answers_stale_reads_only_when_asked_to").await;
    let leader = c.leader_name("s1").await.expect("a leader");
    let follower = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| **s != leader)
        .unwrap();
    let (s, body) = c.http("c4", "PUT", "/v1/kv/k", "old").await;
    assert_eq!(s, 200, "{body}");
    // Served in the default mode on a follower and on a client: as the leader has it.
    for node in [follower, "c5"] {
        let (s, h, v) = c.request(node, "GET", "/v1/kv/k", "").await;
        assert_eq!(s, 200, "{node}: {v}");
        assert_eq!(v[0]["Value"], "b2xk", "{node}: {v}");
        assert_eq!(header(&h, "x-consul-effective-consistency"), "leader");
        assert_eq!(header(&h, "x-consul-knownleader"), "true");
        assert_eq!(header(&h, "x-consul-lastcontact"), "0");
    }

    c.isolate(follower, true);
    let (s, body) = c.http("c4", "PUT", "/v1/kv/k", "new").await;
    assert_eq!(s, 200, "{body}");
    // The cut-off follower still holds the old value: `?stale` may have it, and says so.
    let (s, h, v) = c.request(follower, "GET", "/v1/kv/k?stale", "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["Value"], "b2xk", "{v}");
    assert_eq!(header(&h, "x-consul-effective-consistency"), "stale");
    // The default mode must not serve it: no leader confirms it, so no answer.
    let (s, _, v) = c.request(follower, "GET", "/v1/kv/k", "").await;
    assert_ne!(s, 200, "a cut-off follower served a default read: {v}");
    // Nor a stale read bounded by max_stale, once its contact is older than that.
    let (s, h, v) = c
        .request(follower, "GET", "/v1/kv/k?max_stale=50ms", "")
        .await;
    assert_ne!(s, 200, "max_stale was not honoured: {v} {h:?}");
    // The majority side serves the new value in every mode.
    for q in ["", "?consistent", "?stale"] {
        let node = if q == "?stale" { leader.as_str() } else { "c5" };
        let (s, _, v) = c.request(node, "GET", &format!("/v1/kv/k{q}"), "").await;
        assert_eq!(s, 200, "{node}{q}: {v}");
        assert_eq!(v[0]["Value"], "bmV3", "{node}{q}: {v}");
    }
}

/// `on` reports `n` Raft peers.
struct PeersAre(&'static str, usize);

impl Condition for PeersAre {
    async fn holds(&self, c: &Cluster) -> bool {
        c.get(self.0, "/v1/status/peers")
            .await
            .and_then(|v| v.as_array().map(Vec::len))
            == Some(self.1)
    }
}
