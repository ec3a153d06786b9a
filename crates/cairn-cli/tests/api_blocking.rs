//! Proves blocking queries (`?index=N&wait=D`) on a real agent: a KV read and a
//! `/v1/health/service/:name` read wake promptly when *their* result changes, do not wake
//! for unrelated writes (they run out the wait and return the same index), and the wait
//! is honoured with at most wait/16 of jitter and capped by `-max-query-time`.

mod common;

use std::time::{Duration, Instant};

use common::{unb64, Agent};
use serde_json::json;

/// Slack for scheduling and HTTP overhead on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(400);

/// Starts a blocking GET in the background; returns (elapsed, response).
fn spawn_get(a: &Agent, path: String) -> tokio::task::JoinHandle<(Duration, u16, u64, Vec<u8>)> {
    let url = a.url(&path);
    tokio::spawn(async move {
        let start = Instant::now();
        let r = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status().as_u16();
        let idx = r
            .headers()
            .get("x-consul-index")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
            .expect("X-Consul-Index");
        let body = r.bytes().await.unwrap().to_vec();
        (start.elapsed(), status, idx, body)
    })
}

/// Lets a spawned request reach the server before we change anything. Correctness does
/// not depend on it: if the change lands first, the query returns at once anyway.
async fn let_it_block() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_wakes_when_the_key_changes() {
    let a = Agent::dev().await;
    a.kv_put("a", "one").await;
    let idx = a.get("/v1/kv/a").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/kv/a?index={idx}&wait=5s"));
    let_it_block().await;
    assert!(
        !h.is_finished(),
        "the blocking query returned before any change"
    );
    let written = Instant::now();
    a.kv_put("a", "two").await;
    let (_, status, new_idx, body) = h.await.unwrap();
    let woke_after = written.elapsed();
    assert_eq!(status, 200);
    assert!(
        woke_after < Duration::from_secs(1),
        "woke {woke_after:?} after the write"
    );
    assert!(new_idx > idx, "index moved: {idx} -> {new_idx}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(unb64(&v[0]["Value"]), b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_wakes_when_the_key_is_deleted() {
    let a = Agent::dev().await;
    a.kv_put("a", "one").await;
    let idx = a.get("/v1/kv/a").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/kv/a?index={idx}&wait=5s"));
    let_it_block().await;
    let written = Instant::now();
    a.delete("/v1/kv/a").await.expect(200);
    let (_, status, new_idx, _) = h.await.unwrap();
    assert!(written.elapsed() < Duration::from_secs(1));
    assert_eq!(status, 404);
    assert!(new_idx > idx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_does_not_wake_for_another_key() {
    let a = Agent::dev().await;
    a.kv_put("a", "one").await;
    let idx = a.get("/v1/kv/a").await.expect(200).index();
    let wait = Duration::from_secs(5);
    let h = spawn_get(&a, format!("/v1/kv/a?index={idx}&wait=5s"));
    let_it_block().await;
    for i in 0..10 {
        a.kv_put("b", format!("b{i}")).await;
        a.kv_put("a/child", format!("c{i}")).await;
    }
    a.delete("/v1/kv/b").await.expect(200);
    let (elapsed, status, new_idx, body) = h.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        elapsed >= wait,
        "returned early after {elapsed:?} on unrelated writes"
    );
    assert!(
        elapsed <= wait + wait / 16 + SLACK,
        "overslept: {elapsed:?}"
    );
    assert_eq!(new_idx, idx, "same index after a timeout");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(unb64(&v[0]["Value"]), b"one");
}

/// Registers `web` on the agent with a passing TTL check `web-ttl`.
async fn register_web(a: &Agent) {
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "web", "Port": 80, "Check": {"CheckID": "web-ttl", "TTL": "10m"}}),
    )
    .await
    .expect(200);
    a.put_empty("/v1/agent/check/pass/web-ttl")
        .await
        .expect(200);
    common::eventually(Duration::from_secs(5), "web is passing", || async {
        let r = a.get("/v1/health/service/web?passing").await;
        (r.status == 200 && r.json().as_array().is_some_and(|v| v.len() == 1)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_wakes_when_its_check_changes() {
    let a = Agent::dev().await;
    register_web(&a).await;
    let idx = a.get("/v1/health/service/web").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/health/service/web?index={idx}&wait=5s"));
    let_it_block().await;
    assert!(
        !h.is_finished(),
        "the blocking query returned before any change"
    );
    let written = Instant::now();
    a.put_empty("/v1/agent/check/fail/web-ttl?note=down")
        .await
        .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    let woke_after = written.elapsed();
    assert_eq!(status, 200);
    assert!(
        woke_after < Duration::from_secs(1),
        "woke {woke_after:?} after the check failed"
    );
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let checks = v[0]["Checks"].as_array().unwrap();
    let c = checks
        .iter()
        .find(|c| c["CheckID"] == "web-ttl")
        .expect("web-ttl in Checks");
    assert_eq!(c["Status"], "critical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_does_not_wake_for_another_service() {
    let a = Agent::dev().await;
    register_web(&a).await;
    let idx = a.get("/v1/health/service/web").await.expect(200).index();
    let wait = Duration::from_secs(5);
    let h = spawn_get(&a, format!("/v1/health/service/web?index={idx}&wait=5s"));
    let_it_block().await;
    // Another service on the same agent, with its own check going up and down.
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "db", "Port": 5432, "Check": {"CheckID": "db-ttl", "TTL": "10m"}}),
    )
    .await
    .expect(200);
    a.put_empty("/v1/agent/check/pass/db-ttl").await.expect(200);
    a.put_empty("/v1/agent/check/fail/db-ttl").await.expect(200);
    // And one on another node through the catalog, plus unrelated KV traffic.
    a.put_json(
        "/v1/catalog/register",
        &json!({"Node": "other", "Address": "10.0.0.9", "Service": {"Service": "cache", "Port": 6379}}),
    )
    .await
    .expect(200);
    a.kv_put("noise", "x").await;
    let (elapsed, status, new_idx, _) = h.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        elapsed >= wait,
        "returned early after {elapsed:?} though web did not change"
    );
    assert_eq!(new_idx, idx, "same index after a timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_has_bounded_jitter() {
    let a = Agent::dev().await;
    a.kv_put("j", "x").await;
    let idx = a.get("/v1/kv/j").await.expect(200).index();
    let wait = Duration::from_secs(1);
    // Several samples at once, to see the jitter spread.
    let hs: Vec<_> = (0..4)
        .map(|_| spawn_get(&a, format!("/v1/kv/j?index={idx}&wait=1s")))
        .collect();
    for h in hs {
        let (elapsed, status, new_idx, _) = h.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(new_idx, idx);
        assert!(elapsed >= wait, "returned before the wait: {elapsed:?}");
        assert!(
            elapsed <= wait + wait / 16 + SLACK,
            "jitter beyond wait/16: {elapsed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_is_capped_by_max_query_time() {
    let a = Agent::dev_with(&["-max-query-time", "1s", "-default-query-time", "1s"]).await;
    a.kv_put("cap", "x").await;
    let idx = a.get("/v1/kv/cap").await.expect(200).index();
    let cap = Duration::from_secs(1);
    // Asks for 10 minutes; the agent caps it at 1 s (+ at most 1/16 jitter).
    let h1 = spawn_get(&a, format!("/v1/kv/cap?index={idx}&wait=10m"));
    // No wait at all: the default query time applies.
    let h2 = spawn_get(&a, format!("/v1/kv/cap?index={idx}"));
    for (what, h) in [("wait=10m", h1), ("no wait", h2)] {
        let (elapsed, status, new_idx, _) = h.await.unwrap();
        assert_eq!(status, 200, "{what}");
        assert_eq!(new_idx, idx, "{what}");
        assert!(
            elapsed >= cap,
            "{what}: returned before the cap: {elapsed:?}"
        );
        assert!(
            elapsed <= cap + cap / 16 + SLACK,
            "{what}: wait not capped: {elapsed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurse_wakes_on_a_child_not_on_a_sibling_prefix() {
    let a = Agent::dev().await;
    a.kv_put("svc/web/a", "1").await;
    a.kv_put("svc/db/a", "1").await;
    let idx = a.get("/v1/kv/svc/web/?recurse").await.expect(200).index();
    let wait = Duration::from_secs(2);
    let quiet = spawn_get(&a, format!("/v1/kv/svc/web/?recurse&index={idx}&wait=2s"));
    let_it_block().await;
    a.kv_put("svc/db/a", "2").await;
    a.kv_put("svc/db/b", "2").await;
    a.kv_put("svc/webby", "2").await;
    let (elapsed, _, new_idx, _) = quiet.await.unwrap();
    assert!(
        elapsed >= wait,
        "woke after {elapsed:?} for a sibling prefix"
    );
    assert_eq!(new_idx, idx);

    let loud = spawn_get(&a, format!("/v1/kv/svc/web/?recurse&index={idx}&wait=5s"));
    let_it_block().await;
    let written = Instant::now();
    a.kv_put("svc/web/new", "3").await;
    let (_, status, new_idx, body) = loud.await.unwrap();
    assert!(written.elapsed() < Duration::from_secs(1));
    assert_eq!(status, 200);
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_wakes_on_node_maintenance() {
    let a = Agent::dev().await;
    register_web(&a).await;
    let idx = a
        .get("/v1/health/service/web?passing")
        .await
        .expect(200)
        .index();
    let h = spawn_get(
        &a,
        format!("/v1/health/service/web?passing&index={idx}&wait=5s"),
    );
    let_it_block().await;
    let written = Instant::now();
    a.put_empty("/v1/agent/maintenance?enable=true")
        .await
        .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    assert!(
        written.elapsed() < Duration::from_secs(1),
        "node-level check change must wake the query"
    );
    assert_eq!(status, 200);
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, json!([]), "web is no longer passing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_services_wakes_on_a_new_service() {
    let a = Agent::dev().await;
    let idx = a.get("/v1/catalog/services").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/catalog/services?index={idx}&wait=5s"));
    let_it_block().await;
    let written = Instant::now();
    a.put_json(
        "/v1/catalog/register",
        &json!({"Node": "nx", "Address": "10.1.1.1", "Service": {"Service": "fresh"}}),
    )
    .await
    .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    assert!(written.elapsed() < Duration::from_secs(1));
    assert_eq!(status, 200);
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v.get("fresh").is_some(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_watchers_wake_when_the_holder_session_is_destroyed() {
    let a = Agent::dev().await;
    let s = a.session(json!({"LockDelay": "0s"})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/leader?acquire={s}"), "me")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let idx = a.get("/v1/kv/leader").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/kv/leader?index={idx}&wait=5s"));
    let_it_block().await;
    let destroyed = Instant::now();
    a.put_empty(&format!("/v1/session/destroy/{s}"))
        .await
        .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    assert!(
        destroyed.elapsed() < Duration::from_secs(1),
        "lock watcher must wake on release"
    );
    assert_eq!(status, 200);
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v[0].get("Session").is_none_or(|s| s.is_null() || s == ""),
        "released: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_wakes_when_its_node_changes() {
    let a = Agent::dev().await;
    let reg = |addr: &str| json!({"Node": "edge", "Address": addr, "Service": {"Service": "edge-svc", "Port": 1}});
    a.put_json("/v1/catalog/register", &reg("10.0.0.1"))
        .await
        .expect(200);
    let idx = a
        .get("/v1/health/service/edge-svc")
        .await
        .expect(200)
        .index();
    let h = spawn_get(
        &a,
        format!("/v1/health/service/edge-svc?index={idx}&wait=5s"),
    );
    let_it_block().await;
    let written = Instant::now();
    a.put_json("/v1/catalog/register", &reg("10.0.0.2"))
        .await
        .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    assert!(
        written.elapsed() < Duration::from_secs(1),
        "a node address change must wake its services' watchers"
    );
    assert_eq!(status, 200);
    assert!(new_idx > idx);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["Node"]["Address"], "10.0.0.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_wakes_when_the_last_instance_goes() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/catalog/register",
        &json!({"Node": "gone", "Address": "10.0.0.1", "Service": {"Service": "g"}}),
    )
    .await
    .expect(200);
    let idx = a.get("/v1/health/service/g").await.expect(200).index();
    let h = spawn_get(&a, format!("/v1/health/service/g?index={idx}&wait=5s"));
    let_it_block().await;
    let written = Instant::now();
    a.put_json("/v1/catalog/deregister", &json!({"Node": "gone"}))
        .await
        .expect(200);
    let (_, status, new_idx, body) = h.await.unwrap();
    assert!(written.elapsed() < Duration::from_secs(1));
    assert_eq!(status, 200);
    assert!(
        new_idx > idx,
        "index must move forward when the last instance leaves: {idx} -> {new_idx}"
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        json!([])
    );
    // And it stays there: a later read does not go backwards.
    assert!(a.get("/v1/health/service/g").await.expect(200).index() >= new_idx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watchers_each_wake_for_their_own_key() {
    const W: usize = 100;
    let a = Agent::dev().await;
    let mut idx = Vec::new();
    for i in 0..W {
        a.kv_put(&format!("w/{i}"), "0").await;
        idx.push(a.get(&format!("/v1/kv/w/{i}")).await.expect(200).index());
    }
    let hs: Vec<_> = (0..W)
        .map(|i| spawn_get(&a, format!("/v1/kv/w/{i}?index={}&wait=20s", idx[i])))
        .collect();
    let_it_block().await;
    // Only the even keys change.
    let start = Instant::now();
    for i in (0..W).step_by(2) {
        a.kv_put(&format!("w/{i}"), "1").await;
    }
    let writes_done = start.elapsed();
    let (even, odd): (Vec<_>, Vec<_>) = hs.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    for (i, h) in even {
        let (_, status, new_idx, body) = h.await.unwrap();
        assert_eq!(status, 200, "watcher {i}");
        assert!(new_idx > idx[i], "watcher {i}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            unb64(&v[0]["Value"]),
            b"1",
            "watcher {i} sees its new value"
        );
    }
    let woke = start.elapsed();
    assert!(
        woke < writes_done + Duration::from_secs(2),
        "all changed watchers woke within 2 s of the last write ({woke:?})"
    );
    // The watchers of unchanged keys are still blocked (they would return at 20 s).
    for (i, h) in odd {
        assert!(
            !h.is_finished(),
            "watcher {i} of an unchanged key returned early"
        );
        h.abort();
    }
}
