//! Raft operations on replicated servers in one process (see `harness`): transferring
//! leadership and removing a peer over the HTTP API, autopilot's settings and health, the
//! cleanup of a dead server, and the graceful leave of the leader.

mod harness;

use harness::*;
use serde_json::Value;

async fn three_servers(test: &str) -> Cluster {
    let mut c = Cluster::new(test);
    for name in ["s1", "s2", "s3"] {
        c.cluster_server(name, 3).await;
    }
    c.wait_until("three alive", members_alive(3)).await;
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    c
}

/// `on` lists exactly `names` as Raft servers.
struct PeersAre(&'static str, Vec<&'static str>);

impl Condition for PeersAre {
    async fn holds(&self, c: &Cluster) -> bool {
        let Some(v) = c.get(self.0, "/v1/operator/raft/configuration").await else {
            return false;
        };
        let mut got: Vec<String> = servers(&v)
            .iter()
            .map(|s| s["Node"].as_str().unwrap_or("").to_string())
            .collect();
        got.sort();
        got == self.1
    }
}

/// The leader `on` reports is `name`.
struct LeaderIs(&'static str, String);

impl Condition for LeaderIs {
    async fn holds(&self, c: &Cluster) -> bool {
        c.leader_name(self.0).await.as_deref() == Some(self.1.as_str())
    }
}

/// Autopilot health on `on` answers `status`.
struct HealthIs(&'static str, u16);

impl Condition for HealthIs {
    async fn holds(&self, c: &Cluster) -> bool {
        c.http(self.0, "GET", "/v1/operator/autopilot/health", "")
            .await
            .0
            == self.1
    }
}

/// Polls `on`'s autopilot health until it answers 200; that body. (A follower's last
/// contact can briefly pass the threshold on a loaded machine, so one 200 does not make
/// the next answer 200.)
async fn healthy_body(c: &Cluster, on: &str) -> Value {
    let deadline = std::time::Instant::now() + *WAIT;
    loop {
        let (s, body) = c.http(on, "GET", "/v1/operator/autopilot/health", "").await;
        if s == 200 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "autopilot health on {on} never answered 200: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn servers(cfg: &Value) -> Vec<Value> {
    cfg["Servers"].as_array().cloned().unwrap_or_default()
}

async fn id_of(c: &Cluster, name: &str) -> String {
    let cfg = c
        .get("s1", "/v1/operator/raft/configuration")
        .await
        .unwrap();
    servers(&cfg)
        .into_iter()
        .find(|s| s["Node"] == name)
        .and_then(|s| s["ID"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("{name} not in {cfg}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_leader_and_remove_peer_over_the_api() {
    let mut c = three_servers("transfer_leader_and_remove_peer_over_the_api").await;
    let leader = c.leader_name("s1").await.unwrap();
    let target = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader)
        .unwrap();
    let id = id_of(&c, target).await;
    // Asked on a follower: forwarded to the leader.
    let follower = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader && *s != target)
        .unwrap();
    let (s, body) = c
        .http(
            follower,
            "POST",
            &format!("/v1/operator/raft/transfer-leader?id={id}"),
            "",
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["Success"], true);
    let took = c
        .wait_until("the target leads", LeaderIs(follower, target.to_string()))
        .await;
    println!("leadership moved from {leader} to {target}; seen on {follower} {took:?} later");
    let (s, _) = c.http(follower, "PUT", "/v1/kv/after-transfer", "x").await;
    assert_eq!(s, 200);

    // Refusals, as Consul words them.
    let (s, body) = c
        .http(
            "s1",
            "DELETE",
            "/v1/operator/raft/peer?id=no-such-server",
            "",
        )
        .await;
    assert_eq!(s, 500);
    assert_eq!(
        body,
        "id \"no-such-server\" was not found in the Raft configuration\n"
    );
    let (s, body) = c
        .http(
            "s1",
            "DELETE",
            "/v1/operator/raft/peer?address=127.9.9.9:8300",
            "",
        )
        .await;
    assert_eq!(s, 500);
    assert!(body.as_str().unwrap().contains("was not found"), "{body}");
    let (s, _) = c.http("s1", "DELETE", "/v1/operator/raft/peer", "").await;
    assert_eq!(s, 400);
    let (s, _) = c
        .http(
            "s1",
            "DELETE",
            "/v1/operator/raft/peer?address=nonsense",
            "",
        )
        .await;
    assert_eq!(s, 400);

    // Remove a dead server by address (autopilot is off so that the test does it).
    let (s, body) = c
        .http(
            "s1",
            "PUT",
            "/v1/operator/autopilot/configuration",
            r#"{"CleanupDeadServers": false}"#,
        )
        .await;
    assert_eq!((s, &body), (200, &Value::Bool(true)));
    let victim = follower;
    let cfg = c
        .get("s1", "/v1/operator/raft/configuration")
        .await
        .unwrap();
    let addr = servers(&cfg)
        .into_iter()
        .find(|s| s["Node"] == victim)
        .and_then(|s| s["Address"].as_str().map(str::to_string))
        .unwrap();
    c.kill(victim).await;
    let on = target;
    c.wait_until("health reports the dead server", HealthIs(on, 429))
        .await;
    let (s, body) = c
        .http(
            on,
            "DELETE",
            &format!("/v1/operator/raft/peer?address={addr}"),
            "",
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let mut left: Vec<&'static str> = ["s1", "s2", "s3"]
        .into_iter()
        .filter(|s| *s != victim)
        .collect();
    left.sort();
    c.wait_until("two servers remain", PeersAre(on, left.clone()))
        .await;
    let h = healthy_body(&c, on).await;
    assert_eq!(h["Healthy"], true, "{h}");
    assert_eq!(h["FailureTolerance"], 0, "{h}");
    assert_eq!(h["Servers"].as_array().map(Vec::len), Some(2), "{h}");
    let (s, _) = c.http(on, "PUT", "/v1/kv/after-remove", "x").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_settings_and_health() {
    let c = three_servers("autopilot_settings_and_health").await;
    let cfg = c
        .get("s2", "/v1/operator/autopilot/configuration")
        .await
        .unwrap();
    assert_eq!(cfg["CleanupDeadServers"], true);
    assert_eq!(cfg["LastContactThreshold"], "200ms");
    assert_eq!(cfg["MaxTrailingLogs"], 250);
    assert_eq!(cfg["MinQuorum"], 0);
    assert_eq!(cfg["ServerStabilizationTime"], "10s");
    let (s, ok) = c
        .http(
            "s2",
            "PUT",
            "/v1/operator/autopilot/configuration?cas=0",
            r#"{"MinQuorum": 3, "ServerStabilizationTime": "5s"}"#,
        )
        .await;
    assert_eq!((s, ok), (200, Value::Bool(true)));
    let cfg = c
        .get("s3", "/v1/operator/autopilot/configuration?consistent")
        .await
        .unwrap();
    assert_eq!(cfg["MinQuorum"], 3);
    assert_eq!(cfg["ServerStabilizationTime"], "5s");
    let index = cfg["ModifyIndex"].as_u64().unwrap();
    assert!(index > 0 && cfg["CreateIndex"] == index);
    // A stale cas index is refused.
    let (s, ok) = c
        .http(
            "s1",
            "PUT",
            "/v1/operator/autopilot/configuration?cas=1",
            r#"{"MinQuorum": 1}"#,
        )
        .await;
    assert_eq!((s, ok), (200, Value::Bool(false)));
    let (s, _) = c
        .http(
            "s1",
            "PUT",
            "/v1/operator/autopilot/configuration",
            r#"{"MinQuorum": "x"}"#,
        )
        .await;
    assert_eq!(s, 400);

    let h = healthy_body(&c, "s3").await;
    assert_eq!(h["Healthy"], true, "{h}");
    assert_eq!(h["FailureTolerance"], 1, "{h}");
    let servers = h["Servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers.iter().filter(|s| s["Leader"] == true).count(), 1);
    for s in servers {
        assert_eq!(s["SerfStatus"], "alive", "{s}");
        assert_eq!(s["Voter"], true, "{s}");
        assert!(s["ID"].as_str().is_some_and(|i| i.len() == 36), "{s}");
        assert!(
            s["StableSince"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{s}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_removes_a_dead_server_after_the_stabilisation_time() {
    let mut c = three_servers("autopilot_removes_a_dead_server_after_the_stabilisation_time").await;
    let (s, _) = c
        .http(
            "s1",
            "PUT",
            "/v1/operator/autopilot/configuration",
            r#"{"ServerStabilizationTime": "1s"}"#,
        )
        .await;
    assert_eq!(s, 200);
    let leader = c.leader_name("s1").await.unwrap();
    let victim = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != leader)
        .unwrap();
    let on: &'static str = ["s1", "s2", "s3"]
        .into_iter()
        .find(|s| *s != victim)
        .unwrap();
    c.kill(victim).await;
    let started = std::time::Instant::now();
    let mut left: Vec<&'static str> = ["s1", "s2", "s3"]
        .into_iter()
        .filter(|s| *s != victim)
        .collect();
    left.sort();
    c.wait_until("autopilot removed the dead server", PeersAre(on, left))
        .await;
    let took = started.elapsed();
    println!("dead server {victim} removed {took:?} after it stopped");
    assert!(
        took >= std::time::Duration::from_secs(1),
        "removed before the stabilisation time: {took:?}"
    );
    let (s, _) = c.http(on, "PUT", "/v1/kv/after-cleanup", "x").await;
    assert_eq!(s, 200);
    // It comes back: the leader adds it again.
    c.restart(victim).await;
    c.wait_until(
        "the restarted server is a voter again",
        PeersAre(on, vec!["s1", "s2", "s3"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_leaves_hands_over_and_is_removed() {
    let mut c = three_servers("a_leader_that_leaves_hands_over_and_is_removed").await;
    let leader = c.leader_name("s1").await.unwrap();
    let others: Vec<&'static str> = ["s1", "s2", "s3"]
        .into_iter()
        .filter(|s| *s != leader)
        .collect();
    let started = std::time::Instant::now();
    c.leave(&leader).await;
    let left_in = started.elapsed();
    c.wait_until(
        "the leaver is out of the configuration",
        PeersAre(others[0], others.clone()),
    )
    .await;
    let new = c
        .wait_until(
            "a new leader among the others",
            LeaderAgreed(Some(leader.clone())),
        )
        .await;
    println!("leader {leader} left in {left_in:?}; new leader agreed {new:?} later");
    let (s, _) = c.http(others[1], "PUT", "/v1/kv/after-leave", "x").await;
    assert_eq!(s, 200);
}
