//! Proves durability of a real server on a data dir: every acknowledged KV write (200
//! keys, and a check-and-set chain) survives SIGKILL and restart, indexes do not go
//! backwards across the restart, and writes keep working afterwards; while `-dev` is
//! in-memory and restarts empty.

mod common;

use std::collections::BTreeMap;

use common::{seed, tempdir, unb64, Agent, Rng};
use serde_json::json;

const N: usize = 200;

/// All pairs under `prefix` as key → value.
async fn dump(a: &Agent, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let r = a.get(&format!("/v1/kv/{prefix}?recurse")).await;
    if r.status == 404 {
        return BTreeMap::new();
    }
    r.expect(200)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["Key"].as_str().unwrap().to_string(), unb64(&e["Value"])))
        .collect()
}

/// Runs a CAS chain on `key` for `steps` steps; returns the final ModifyIndex.
async fn cas_chain(a: &Agent, key: &str, from: u64, steps: u64) -> u64 {
    for i in from..from + steps {
        let idx = a
            .kv_entry(key)
            .await
            .map(|e| e["ModifyIndex"].as_u64().unwrap())
            .unwrap_or(0);
        let r = a
            .put(&format!("/v1/kv/{key}?cas={idx}"), i.to_string())
            .await
            .expect(200);
        assert_eq!(r.json(), json!(true), "cas step {i} at index {idx}");
    }
    a.kv_entry(key).await.unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let seed = seed("acknowledged_writes_survive_sigkill");
    let mut rng = Rng::new(seed);
    let (_guard, dir) = tempdir();

    let mut want = BTreeMap::new();
    let (cas_index, kv_index) = {
        let mut a = Agent::durable(&dir).await;
        assert_eq!(a.node_name().await, "test-node");
        for i in 0..N {
            let key = format!("dur/{i:03}");
            let len = 1 + rng.below(64) as usize;
            let value: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            a.kv_put(&key, value.clone()).await; // asserts 200 + true
            want.insert(key, value);
        }
        // Overwrite and delete a few, so the log is not append-only.
        for i in (0..N).step_by(17) {
            let key = format!("dur/{i:03}");
            if i % 2 == 0 {
                a.delete(&format!("/v1/kv/{key}")).await.expect(200);
                want.remove(&key);
            } else {
                a.kv_put(&key, format!("rewritten-{i}")).await;
                want.insert(key, format!("rewritten-{i}").into_bytes());
            }
        }
        let cas_index = cas_chain(&a, "cas/counter", 0, 20).await;
        let kv_index = a.get("/v1/kv/?recurse").await.expect(200).index();
        a.kill9();
        (cas_index, kv_index)
    };

    let mut a = Agent::durable(&dir).await;
    let got = dump(&a, "dur/").await;
    assert_eq!(
        got.len(),
        want.len(),
        "seed {seed}: number of keys after restart"
    );
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "seed {seed}: key {k} after restart");
    }
    let e = a.kv_entry("cas/counter").await.expect("cas key survived");
    assert_eq!(common::unb64(&e["Value"]), b"19");
    assert_eq!(
        e["ModifyIndex"].as_u64().unwrap(),
        cas_index,
        "ModifyIndex preserved"
    );
    let idx = a.get("/v1/kv/?recurse").await.expect(200).index();
    assert!(
        idx >= kv_index,
        "X-Consul-Index went backwards across restart: {kv_index} -> {idx}"
    );

    // The CAS chain continues from where it was, and a stale index still fails.
    let r = a
        .put(
            &format!("/v1/kv/cas/counter?cas={}", cas_index - 1),
            "stale",
        )
        .await
        .expect(200);
    assert_eq!(r.json(), json!(false));
    let new_index = cas_chain(&a, "cas/counter", 20, 5).await;
    assert!(
        new_index > cas_index,
        "new writes get higher indexes: {cas_index} -> {new_index}"
    );

    // And what was written after the first restart survives a second crash.
    a.kv_put("after/restart", "yes").await;
    a.kill9();
    let a = Agent::durable(&dir).await;
    assert_eq!(
        a.get("/v1/kv/after/restart?raw").await.expect(200).body,
        b"yes"
    );
    assert_eq!(
        common::unb64(&a.kv_entry("cas/counter").await.unwrap()["Value"]),
        b"24"
    );
    assert_eq!(dump(&a, "dur/").await.len(), want.len());
}

#[tokio::test]
async fn sessions_and_catalog_survive_sigkill() {
    let (_guard, dir) = tempdir();
    let sid;
    {
        let mut a = Agent::durable(&dir).await;
        sid = a
            .session(json!({"Name": "durable", "LockDelay": "0s"}))
            .await;
        assert_eq!(
            a.put(&format!("/v1/kv/locked?acquire={sid}"), "v")
                .await
                .expect(200)
                .json(),
            json!(true)
        );
        a.put_json(
            "/v1/catalog/register",
            &json!({"Node": "ext", "Address": "10.9.9.9", "Service": {"Service": "ext-svc", "Port": 1234}}),
        )
        .await
        .expect(200);
        a.kill9();
    }
    let a = Agent::durable(&dir).await;
    let s = a
        .get(&format!("/v1/session/info/{sid}"))
        .await
        .expect(200)
        .json();
    assert_eq!(s.as_array().unwrap().len(), 1, "session survived: {s}");
    let e = a.kv_entry("locked").await.unwrap();
    assert_eq!(e["Session"], json!(sid));
    let svc = a
        .get("/v1/catalog/service/ext-svc")
        .await
        .expect(200)
        .json();
    assert_eq!(svc.as_array().unwrap().len(), 1);
    assert_eq!(svc[0]["ServicePort"], 1234);
}

#[tokio::test]
async fn dev_mode_restarts_empty() {
    let mut a = Agent::dev().await;
    a.kv_put("ephemeral", "gone soon").await;
    a.put_json(
        "/v1/catalog/register",
        &json!({"Node": "ext", "Address": "10.9.9.9", "Service": {"Service": "ext-svc"}}),
    )
    .await
    .expect(200);
    a.kill9();
    let b = Agent::dev().await;
    assert!(
        b.kv_entry("ephemeral").await.is_none(),
        "-dev must be in-memory"
    );
    b.get("/v1/kv/?recurse").await.expect(404);
    assert_eq!(
        b.get("/v1/catalog/service/ext-svc")
            .await
            .expect(200)
            .json(),
        json!([])
    );
}

#[tokio::test]
async fn agent_local_services_and_maintenance_survive_restart() {
    let (_guard, dir) = tempdir();
    {
        let mut a = Agent::durable(&dir).await;
        a.put_json(
            "/v1/agent/service/register",
            &json!({"Name": "keepme", "Port": 5, "Check": {"CheckID": "keepme-ttl", "TTL": "10m"}}),
        )
        .await
        .expect(200);
        a.put_empty("/v1/agent/maintenance?enable=true&reason=upgrade")
            .await
            .expect(200);
        common::eventually(
            std::time::Duration::from_secs(5),
            "keepme in the catalog",
            || async {
                (a.get("/v1/catalog/service/keepme")
                    .await
                    .json()
                    .as_array()?
                    .len()
                    == 1)
                    .then_some(())
            },
        )
        .await;
        a.kill9();
    }
    let a = Agent::durable(&dir).await;
    let svcs = a.get("/v1/agent/services").await.expect(200).json();
    assert_eq!(svcs["keepme"]["Port"], 5, "agent service persisted: {svcs}");
    let checks = a.get("/v1/agent/checks").await.expect(200).json();
    assert!(
        checks.get("keepme-ttl").is_some(),
        "agent check persisted: {checks}"
    );
    assert!(
        checks.get("_node_maintenance").is_some(),
        "node maintenance is persistent: {checks}"
    );
    // Give anti-entropy time to act, then the catalog must still have the service.
    common::eventually(
        std::time::Duration::from_secs(3),
        "catalog keeps keepme",
        || async {
            (a.get("/v1/catalog/service/keepme")
                .await
                .json()
                .as_array()?
                .len()
                == 1)
                .then_some(())
        },
    )
    .await;
}
