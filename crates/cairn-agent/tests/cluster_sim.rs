//! The client-agent scenarios of `crates/cairn-cli/tests/cluster.rs`, in one process over
//! the in-memory gossip and RPC networks (see `harness`): the same agents, no sockets, a
//! printed seed, and faults the real network cannot stage on demand (isolation).

mod harness;

use harness::*;
use serde_json::{json, Value};
use std::time::Duration;

/// One server, four clients each with a service.
async fn five(test: &str) -> Cluster {
    let mut c = Cluster::new(test);
    c.server("s1").await;
    for i in 2..=5u16 {
        c.client(&format!("c{i}"), &service(&format!("svc{i}"), 9000 + i))
            .await;
    }
    c.wait_until("all five alive everywhere", members_alive(5))
        .await;
    for i in 2..=5 {
        let svc = format!("svc{i}");
        c.wait_until(
            &format!("{svc} passing everywhere"),
            passing_everywhere(&svc, 1),
        )
        .await;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_client_fails_everywhere_and_its_service_goes() {
    let mut c = five("a_crashed_client_fails_everywhere_and_its_service_goes").await;
    c.kill("c5").await;
    let took = c
        .wait_until(
            "svc5 no longer passing anywhere",
            passing_everywhere("svc5", 0),
        )
        .await;
    println!("crash to svc5 gone everywhere: {took:?}");
    c.wait_until("c5 failed everywhere", status_everywhere("c5", 4))
        .await;
    // The catalog keeps the failed node with a critical serfHealth.
    let checks = c.get("c2", "/v1/health/node/c5").await.unwrap();
    let serf = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["CheckID"] == "serfHealth")
        .cloned()
        .unwrap();
    assert_eq!(serf["Status"], "critical");
    // Restarted, it rejoins and its service comes back.
    c.restart("c5").await;
    c.wait_until("c5 alive everywhere", status_everywhere("c5", 1))
        .await;
    c.wait_until("svc5 passing again", passing_everywhere("svc5", 1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_is_left_and_deregistered() {
    let mut c = five("a_client_that_leaves_is_left_and_deregistered").await;
    c.leave("c4").await;
    c.wait_until("c4 left everywhere", status_everywhere("c4", 3))
        .await;
    c.wait_until("svc4 gone", passing_everywhere("svc4", 0))
        .await;
    let node = c.get("s1", "/v1/catalog/node/c4").await.unwrap();
    assert!(node.is_null(), "{node}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_client_is_failed_then_recovers_when_healed() {
    let c = five("an_isolated_client_is_failed_then_recovers_when_healed").await;
    c.isolate("c3", true);
    c.wait_until("c3 failed on the others", status_everywhere("c3", 4))
        .await;
    // The leader writes its critical serfHealth right after it sees the failure.
    c.wait_until("svc3 no longer passing on s1", PassingOn("s1", "svc3", 0))
        .await;
    // Its own API says it has no server while cut off.
    c.wait_until("c3 reports no known servers", NoServers("c3"))
        .await;
    c.isolate("c3", false);
    c.wait_until("c3 alive everywhere again", status_everywhere("c3", 1))
        .await;
    c.wait_until("svc3 passing again", passing_everywhere("svc3", 1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_survive_their_server_restarting() {
    let mut c = five("clients_survive_their_server_restarting").await;
    c.kill("s1").await;
    c.wait_until("the clients see s1 failed", status_everywhere("s1", 4))
        .await;
    // A registration while the server is down is accepted locally ...
    let (status, body) = c
        .http(
            "c2",
            "PUT",
            "/v1/agent/service/register",
            r#"{"Name":"late","Port":7000}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // ... and reaches the (fresh, in-memory) server once it is back.
    c.restart("s1").await;
    c.wait_until("s1 alive everywhere", status_everywhere("s1", 1))
        .await;
    c.wait_until("late passing everywhere", passing_everywhere("late", 1))
        .await;
    for i in 2..=5 {
        let svc = format!("svc{i}");
        c.wait_until(&format!("{svc} re-registered"), passing_everywhere(&svc, 1))
            .await;
    }
    // Writes through a client work again.
    let (status, body) = c.http("c4", "PUT", "/v1/kv/after", "yes").await;
    assert_eq!(status, 200, "{body}");
    assert!(c.get("s1", "/v1/kv/after").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_no_server_answers_agent_endpoints_and_500_for_the_catalog() {
    let mut c = Cluster::new("a_client_with_no_server_answers_agent_endpoints");
    c.client("lonely", &service("web", 80)).await;
    let (status, body) = c.http("lonely", "GET", "/v1/catalog/services", "").await;
    assert_eq!(status, 500);
    assert!(
        body.to_string().contains("No known Consul servers"),
        "{body}"
    );
    let (status, _) = c.http("lonely", "GET", "/v1/agent/services", "").await;
    assert_eq!(status, 200);
    let (status, _) = c.http("lonely", "GET", "/v1/agent/members", "").await;
    assert_eq!(status, 200);
}

/// The node's catalog reads fail with "No known Consul servers".
struct NoServers(&'static str);

impl Condition for NoServers {
    async fn holds(&self, c: &Cluster) -> bool {
        let (s, body) = c.http(self.0, "GET", "/v1/catalog/services", "").await;
        s == 500 && body.to_string().contains("No known Consul servers")
    }
}

/// `node` answers `?passing` health for `service` with `n` instances.
struct PassingOn(&'static str, &'static str, usize);

impl Condition for PassingOn {
    async fn holds(&self, c: &Cluster) -> bool {
        let path = format!("/v1/health/service/{}?passing", self.1);
        c.get(self.0, &path)
            .await
            .and_then(|v| v.as_array().map(Vec::len))
            == Some(self.2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_wrong_key_cannot_join() {
    let mut c = Cluster::new("a_client_with_the_wrong_key_cannot_join");
    let key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    let other = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
    c.server_with("s1", &format!("encrypt = \"{key}\"")).await;
    c.client("bad", &format!("encrypt = \"{other}\"")).await;
    c.client("good", &format!("encrypt = \"{key}\"")).await;
    // The good client, started after the bad one, is in; by then the bad one has tried.
    c.wait_until("s1 sees the good client", MemberOn("s1", "good", Some(1)))
        .await;
    c.wait_until("the good client follows s1", Following("good"))
        .await;
    assert_eq!(status_seen(&c, "s1", "bad").await, None);
    assert_eq!(status_seen(&c, "good", "bad").await, None);
    c.wait_until("the bad client has no server", NoServers("bad"))
        .await;
}

/// `on` lists `name` with `status` (`None`: not listed).
struct MemberOn(&'static str, &'static str, Option<i64>);

impl Condition for MemberOn {
    async fn holds(&self, c: &Cluster) -> bool {
        status_seen(c, self.0, self.1).await == self.2
    }
}

/// `node` answers catalog reads (it follows a server).
struct Following(&'static str);

impl Condition for Following {
    async fn holds(&self, c: &Cluster) -> bool {
        c.get(self.0, "/v1/catalog/services").await.is_some()
    }
}

/// `node`'s own copy of `k` (a `?stale` read) is `value`.
struct ReplicaHas(&'static str, Value);

impl Condition for ReplicaHas {
    async fn holds(&self, c: &Cluster) -> bool {
        c.http(self.0, "GET", "/v1/kv/k?raw&stale", "").await == (200, self.1.clone())
    }
}

/// Writes `1`, `2`, ... on the server while the stream c2's replica follows is slowed by
/// `LAG` (calls by only `CALL`, so that asking the leader takes less than the lag), until
/// a `?stale` read on c2 shows its replica one write behind. Then a default-mode read on
/// c2 answers; `fresh` says what it must answer: the write (`true`), or, with the planted
/// bug, the old value. An attempt where the replica caught up before the check could be
/// made (a stalled machine) is repeated.
async fn default_read_on_a_lagging_client(test: &str, client_hcl: &str, fresh: bool) {
    const LAG: Duration = Duration::from_secs(2);
    const CALL: Duration = Duration::from_millis(50);
    let mut c = Cluster::new(test);
    c.server("s1").await;
    c.client("c2", client_hcl).await;
    c.wait_until("both alive everywhere", members_alive(2))
        .await;
    let (s, body) = c.http("s1", "PUT", "/v1/kv/k", "0").await;
    assert_eq!(s, 200, "{body}");
    c.wait_until("c2's replica has k", ReplicaHas("c2", json!(0)))
        .await;

    c.rpc_faults(0.0, CALL, Duration::ZERO);
    c.rpc_stream_delay(Some(LAG));
    for n in 1..=5 {
        let (s, body) = c.http("s1", "PUT", "/v1/kv/k", &n.to_string()).await;
        assert_eq!(s, 200, "{body}");
        let stale = c.http("c2", "GET", "/v1/kv/k?raw&stale", "").await;
        if stale == (200, json!(n)) {
            println!("attempt {n}: c2's replica was not behind; again");
            continue;
        }
        assert_eq!(stale, (200, json!(n - 1)), "c2's own copy");
        let (s, read) = c.http("c2", "GET", "/v1/kv/k?raw", "").await;
        assert_eq!(s, 200, "{read}");
        if fresh {
            assert_eq!(
                read,
                json!(n),
                "a default read on c2 answered its lagging copy"
            );
            c.wait_until("c2's replica has the write", ReplicaHas("c2", json!(n)))
                .await;
            return;
        }
        // The control: the old value, if the replica was still behind after the read.
        if c.http("c2", "GET", "/v1/kv/k?raw&stale", "").await == (200, json!(n - 1)) {
            assert_eq!(read, json!(n - 1), "the planted bug went unseen");
            return;
        }
        println!("attempt {n}: c2's replica caught up during the read; again");
        c.wait_until("c2's replica has the write", ReplicaHas("c2", json!(n)))
            .await;
    }
    panic!("a {LAG:?} stream delay never put c2's replica behind the server");
}

/// A client answers reads from its replica of the catalog, which follows the servers'
/// stream. With the stream slowed past a call's round trip, the replica lags; a
/// default-mode read on the client must still answer what the leader has: it learns the
/// leader's index and waits for its replica to reach it. `?stale` shows the old value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_read_on_a_lagging_client_sees_the_latest_write() {
    default_read_on_a_lagging_client(
        "a_default_read_on_a_lagging_client_sees_the_latest_write",
        "",
        true,
    )
    .await;
}

/// The control: with the planted bug (`debug_unsafe_local_reads`: default reads skip the
/// catch-up), the same client answers the old value, so the scenario above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_the_catch_up_a_lagging_client_answers_old_data() {
    default_read_on_a_lagging_client(
        "control_without_the_catch_up_a_lagging_client_answers_old_data",
        "debug_unsafe_local_reads = true",
        false,
    )
    .await;
}
