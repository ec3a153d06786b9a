//! Proves the KV API of a real `cairn agent -dev` over HTTP behaves like Consul's:
//! get/put/raw/flags/recurse/keys+separator/delete (incl. recurse), 404 with an index,
//! base64 values, check-and-set (create-only and racing writers), session locks with
//! LockIndex, the 512 KiB value limit, that `X-Consul-Index` of a `?recurse` read
//! never goes backwards, and that the leader reaps tombstones of deleted keys after
//! `kv_tombstone_ttl` without moving any index backwards.

mod common;

use std::time::Duration;

use common::{b64, seed, unb64, Agent, Rng};
use serde_json::{json, Value};

#[tokio::test]
async fn put_get_raw_flags_and_update() {
    let a = Agent::dev().await;
    let r = a.put("/v1/kv/foo?flags=42", "bar").await.expect(200);
    assert_eq!(r.json(), json!(true));

    let r = a.get("/v1/kv/foo").await.expect(200);
    assert!(r.index() >= 1);
    let body = r.json();
    let arr = body.as_array().expect("array");
    assert_eq!(arr.len(), 1);
    let e = &arr[0];
    assert_eq!(e["Key"], "foo");
    assert_eq!(e["Value"], "YmFy", "Value is base64 of 'bar'");
    assert_eq!(e["Flags"], 42);
    assert_eq!(e["LockIndex"], 0);
    assert!(
        e.get("Session").is_none_or(|s| s.is_null() || s == ""),
        "no session: {e}"
    );
    let create = e["CreateIndex"].as_u64().unwrap();
    let modify = e["ModifyIndex"].as_u64().unwrap();
    assert_eq!(create, modify);
    assert_eq!(
        r.index(),
        modify,
        "X-Consul-Index of a single key is its ModifyIndex"
    );

    let r = a.get("/v1/kv/foo?raw").await.expect(200);
    assert_eq!(r.body, b"bar");

    // Update: ModifyIndex moves, CreateIndex stays, flags reset to the new value.
    a.put("/v1/kv/foo", "baz").await.expect(200);
    let e = a.kv_entry("foo").await.unwrap();
    assert_eq!(e["CreateIndex"].as_u64().unwrap(), create);
    assert!(e["ModifyIndex"].as_u64().unwrap() > modify);
    assert_eq!(unb64(&e["Value"]), b"baz");
    assert_eq!(e["Flags"], 0);
}

#[tokio::test]
async fn binary_and_empty_values_roundtrip_as_base64() {
    let a = Agent::dev().await;
    let bytes: Vec<u8> = (0..=255u8).collect();
    a.kv_put("bin", bytes.clone()).await;
    let e = a.kv_entry("bin").await.unwrap();
    assert_eq!(e["Value"], Value::String(b64(&bytes)));
    assert_eq!(a.get("/v1/kv/bin?raw").await.expect(200).body, bytes);

    a.kv_put("empty", Vec::new()).await;
    let e = a.kv_entry("empty").await.unwrap();
    assert!(e["Value"].is_null() || e["Value"] == "", "empty value: {e}");
}

#[tokio::test]
async fn missing_key_is_404_with_index() {
    let a = Agent::dev().await;
    let r = a.get("/v1/kv/nope").await.expect(404);
    assert!(r.index() >= 1, "X-Consul-Index >= 1 on a fresh agent");
    a.kv_put("other", "x").await;
    let r = a.get("/v1/kv/nope").await.expect(404);
    assert!(r.index() >= 1);
    a.get("/v1/kv/nope?recurse").await.expect(404);
    a.get("/v1/kv/nope?keys").await.expect(404);
}

#[tokio::test]
async fn recurse_keys_and_separator() {
    let a = Agent::dev().await;
    for k in [
        "web/a",
        "web/b",
        "web/sub/c",
        "web/sub/d",
        "webby",
        "other/x",
    ] {
        a.kv_put(k, k.as_bytes().to_vec()).await;
    }
    let r = a.get("/v1/kv/web/?recurse").await.expect(200);
    let keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["web/a", "web/b", "web/sub/c", "web/sub/d"]);
    for e in r.json().as_array().unwrap() {
        assert_eq!(unb64(&e["Value"]), e["Key"].as_str().unwrap().as_bytes());
    }
    let max_modify = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ModifyIndex"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        r.index(),
        max_modify,
        "recurse index is the max ModifyIndex under the prefix"
    );

    // Prefix without a trailing slash matches by string prefix, like Consul.
    let r = a.get("/v1/kv/web?recurse").await.expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 5);

    let r = a.get("/v1/kv/web/?keys").await.expect(200);
    assert_eq!(
        r.json(),
        json!(["web/a", "web/b", "web/sub/c", "web/sub/d"])
    );
    let r = a.get("/v1/kv/web/?keys&separator=/").await.expect(200);
    assert_eq!(r.json(), json!(["web/a", "web/b", "web/sub/"]));
    let r = a.get("/v1/kv/?keys&separator=/").await.expect(200);
    assert_eq!(r.json(), json!(["other/", "web/", "webby"]));
}

#[tokio::test]
async fn delete_and_delete_recurse() {
    let a = Agent::dev().await;
    for k in ["d/a", "d/b", "d/c/e", "dx", "keep"] {
        a.kv_put(k, "v").await;
    }
    let r = a.delete("/v1/kv/d/a").await.expect(200);
    assert_eq!(r.json(), json!(true));
    assert!(a.kv_entry("d/a").await.is_none());
    assert!(a.kv_entry("d/b").await.is_some());
    // Deleting a missing key is still true.
    assert_eq!(a.delete("/v1/kv/d/a").await.expect(200).json(), json!(true));

    assert_eq!(
        a.delete("/v1/kv/d/?recurse").await.expect(200).json(),
        json!(true)
    );
    a.get("/v1/kv/d/?recurse").await.expect(404);
    assert!(
        a.kv_entry("dx").await.is_some(),
        "recurse delete of d/ must not touch dx"
    );
    assert!(a.kv_entry("keep").await.is_some());

    // delete ?cas
    a.kv_put("c", "v").await;
    let idx = a.kv_entry("c").await.unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap();
    assert_eq!(
        a.delete(&format!("/v1/kv/c?cas={}", idx + 100))
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    assert!(a.kv_entry("c").await.is_some());
    assert_eq!(
        a.delete(&format!("/v1/kv/c?cas={idx}"))
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    assert!(a.kv_entry("c").await.is_none());
}

#[tokio::test]
async fn cas_zero_is_create_only_and_cas_index_checks() {
    let a = Agent::dev().await;
    assert_eq!(
        a.put("/v1/kv/c?cas=0", "first").await.expect(200).json(),
        json!(true)
    );
    assert_eq!(
        a.put("/v1/kv/c?cas=0", "second").await.expect(200).json(),
        json!(false)
    );
    let e = a.kv_entry("c").await.unwrap();
    assert_eq!(unb64(&e["Value"]), b"first");
    let idx = e["ModifyIndex"].as_u64().unwrap();
    assert_eq!(
        a.put(&format!("/v1/kv/c?cas={}", idx + 7), "stale")
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    assert_eq!(
        a.put(&format!("/v1/kv/c?cas={idx}"), "third")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    assert_eq!(
        a.put(&format!("/v1/kv/c?cas={idx}"), "fourth")
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    assert_eq!(unb64(&a.kv_entry("c").await.unwrap()["Value"]), b"third");
}

#[tokio::test]
async fn concurrent_cas_writers_exactly_one_wins() {
    const N: usize = 16;
    let a = Agent::dev().await;
    a.kv_put("race", "start").await;
    let idx = a.kv_entry("race").await.unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap();
    let futs = (0..N).map(|i| {
        let a = &a;
        async move {
            let r = a
                .put(&format!("/v1/kv/race?cas={idx}"), format!("writer-{i}"))
                .await
                .expect(200);
            (i, r.json())
        }
    });
    let results = futures::future::join_all(futs).await;
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, v)| *v == json!(true))
        .map(|(i, _)| *i)
        .collect();
    for (_, v) in &results {
        assert!(v.is_boolean(), "cas answers a literal bool, got {v}");
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {N} cas writers must win: {results:?}"
    );
    let e = a.kv_entry("race").await.unwrap();
    assert_eq!(
        unb64(&e["Value"]),
        format!("writer-{}", winners[0]).as_bytes()
    );
    assert!(e["ModifyIndex"].as_u64().unwrap() > idx);
}

#[tokio::test]
async fn acquire_release_and_lock_index() {
    let a = Agent::dev().await;
    let s1 = a.session(json!({"Name": "one", "LockDelay": "0s"})).await;
    let s2 = a.session(json!({"Name": "two", "LockDelay": "0s"})).await;

    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={s1}"), "held-1")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let e = a.kv_entry("lock").await.unwrap();
    assert_eq!(e["Session"], Value::String(s1.clone()));
    assert_eq!(e["LockIndex"], 1);

    // Re-acquire by the holder: success, not a fresh acquire.
    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={s1}"), "held-1b")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let e = a.kv_entry("lock").await.unwrap();
    assert_eq!(e["LockIndex"], 1, "LockIndex only moves on a fresh acquire");
    assert_eq!(unb64(&e["Value"]), b"held-1b");

    // Another session cannot take it or release it.
    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={s2}"), "steal")
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    assert_eq!(
        a.put(&format!("/v1/kv/lock?release={s2}"), "x")
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    let e = a.kv_entry("lock").await.unwrap();
    assert_eq!(e["Session"], Value::String(s1.clone()));
    assert_eq!(unb64(&e["Value"]), b"held-1b");

    // A plain write on a locked key succeeds and keeps the lock.
    a.kv_put("lock", "plain").await;
    let e = a.kv_entry("lock").await.unwrap();
    assert_eq!(e["Session"], Value::String(s1.clone()));
    assert_eq!(e["LockIndex"], 1);

    // Release by the holder.
    assert_eq!(
        a.put(&format!("/v1/kv/lock?release={s1}"), "released")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let e = a.kv_entry("lock").await.unwrap();
    assert!(
        e.get("Session").is_none_or(|s| s.is_null() || s == ""),
        "released: {e}"
    );
    assert_eq!(e["LockIndex"], 1);

    // A fresh acquire by the other session increments LockIndex.
    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={s2}"), "held-2")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let e = a.kv_entry("lock").await.unwrap();
    assert_eq!(e["Session"], Value::String(s2.clone()));
    assert_eq!(e["LockIndex"], 2);
}

#[tokio::test]
async fn value_size_limit_is_512_kib() {
    let a = Agent::dev().await;
    let ok = vec![b'x'; 512 * 1024];
    let r = a.put("/v1/kv/big", ok.clone()).await.expect(200);
    assert_eq!(r.json(), json!(true));
    let raw = a.get("/v1/kv/big?raw").await.expect(200);
    assert_eq!(raw.body.len(), ok.len());
    assert!(raw.body == ok);

    let too_big = vec![b'y'; 512 * 1024 + 1];
    let r = a.put("/v1/kv/big", too_big).await;
    assert_eq!(r.status, 413, "body: {}", r.text());
    // The stored value is untouched.
    assert_eq!(
        a.get("/v1/kv/big?raw").await.expect(200).body.len(),
        ok.len()
    );
}

#[tokio::test]
async fn recurse_index_never_goes_backwards() {
    let seed = seed("recurse_index_never_goes_backwards");
    let mut rng = Rng::new(seed);
    let a = Agent::dev().await;
    let mut last = 0u64;
    let mut live: Vec<String> = Vec::new();
    for step in 0..60 {
        let op = rng.below(5);
        let desc;
        let under_prefix;
        match op {
            0 | 1 => {
                let k = format!("p/{}", rng.below(6));
                a.kv_put(&k, format!("v{step}")).await;
                if !live.contains(&k) {
                    live.push(k.clone());
                }
                desc = format!("put {k}");
                under_prefix = true;
            }
            2 if !live.is_empty() => {
                let k = live.remove(rng.below(live.len() as u64) as usize);
                a.delete(&format!("/v1/kv/{k}")).await.expect(200);
                desc = format!("delete {k}");
                under_prefix = true;
            }
            3 => {
                a.delete("/v1/kv/p/?recurse").await.expect(200);
                under_prefix = !live.is_empty();
                live.clear();
                desc = "delete p/ recurse".to_string();
            }
            _ => {
                a.kv_put(&format!("q/{}", rng.below(3)), "other").await;
                desc = "put outside prefix".to_string();
                under_prefix = false;
            }
        }
        let r = a.get("/v1/kv/p/?recurse").await;
        assert!(
            r.status == 200 || r.status == 404,
            "step {step}: status {}",
            r.status
        );
        assert_eq!(
            r.status == 200,
            !live.is_empty(),
            "step {step} ({desc}): presence"
        );
        let idx = r.index();
        assert!(idx >= 1);
        assert!(
            idx >= last,
            "seed {seed} step {step} ({desc}): index went backwards {last} -> {idx}"
        );
        if under_prefix && last > 0 {
            assert!(idx > last, "seed {seed} step {step} ({desc}): a change under the prefix must raise the index ({last} -> {idx})");
        }
        last = idx;
    }
}

#[tokio::test]
async fn concurrent_acquires_exactly_one_holder() {
    const N: usize = 12;
    let a = Agent::dev().await;
    let mut sessions = Vec::new();
    for i in 0..N {
        sessions.push(
            a.session(json!({"Name": format!("s{i}"), "LockDelay": "0s"}))
                .await,
        );
    }
    let futs = sessions.iter().map(|s| {
        let a = &a;
        async move {
            let r = a
                .put(&format!("/v1/kv/mutex?acquire={s}"), s.clone())
                .await
                .expect(200);
            (s.clone(), r.json())
        }
    });
    let results = futures::future::join_all(futs).await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, v)| *v == json!(true))
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {N} sessions holds the lock: {results:?}"
    );
    let e = a.kv_entry("mutex").await.unwrap();
    assert_eq!(e["Session"], Value::String(winners[0].clone()));
    assert_eq!(
        unb64(&e["Value"]),
        winners[0].as_bytes(),
        "the holder's value is stored"
    );
    assert_eq!(e["LockIndex"], 1);
}

#[tokio::test]
async fn recurse_and_keys_index_headers() {
    let a = Agent::dev().await;
    a.kv_put("ix/a", "1").await;
    a.kv_put("ix/b", "2").await;
    let e = a.kv_entry("ix/b").await.unwrap();
    let r = a.get("/v1/kv/ix/?keys").await.expect(200);
    assert_eq!(r.index(), e["ModifyIndex"].as_u64().unwrap());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let raw = a.get("/v1/kv/ix/a?raw").await.expect(200);
    assert!(raw.index() >= 1);
    // Writes elsewhere do not move the prefix's index.
    let before = a.get("/v1/kv/ix/?recurse").await.expect(200).index();
    a.kv_put("elsewhere", "x").await;
    assert_eq!(
        a.get("/v1/kv/ix/?recurse").await.expect(200).index(),
        before
    );
}

/// The `cairn.kv.tombstones` gauge of `/v1/agent/metrics`.
async fn tombstones(a: &Agent) -> u64 {
    let m = a.get("/v1/agent/metrics").await.expect(200).json();
    m["Gauges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Name"] == "cairn.kv.tombstones")
        .and_then(|g| g["Value"].as_f64())
        .expect("cairn.kv.tombstones gauge") as u64
}

#[tokio::test]
async fn tombstones_are_reaped_after_their_ttl_and_indexes_hold() {
    let (_dir, path) = common::tempdir();
    let cfg = path.join("tombstones.json");
    std::fs::write(
        &cfg,
        r#"{"kv_tombstone_ttl": "1s", "kv_tombstone_granularity": "100ms"}"#,
    )
    .unwrap();
    let a = Agent::dev_with(&[&format!("-config-file={}", cfg.display())]).await;
    a.kv_put("web/a", "1").await;
    a.kv_put("web/b", "2").await;
    a.kv_put("db/x", "3").await;
    let before = a.get("/v1/kv/web/?recurse").await.expect(200).index();
    a.delete("/v1/kv/web/b").await.expect(200);
    let deleted = a.get("/v1/kv/web/?recurse").await.expect(200).index();
    assert!(deleted > before, "a delete moves the prefix index forward");
    assert_eq!(tombstones(&a).await, 1);

    common::eventually(Duration::from_secs(10), "tombstone reaped", || async {
        (tombstones(&a).await == 0).then_some(())
    })
    .await;
    // The tombstone that set web/'s index is gone, and the index stays where it was.
    let r = a.get("/v1/kv/web/?recurse").await.expect(200);
    assert_eq!(r.index(), deleted, "index after the reap");
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // So a blocking query at that index waits for a real change instead of returning.
    let t = std::time::Instant::now();
    let blocked = a
        .get(&format!("/v1/kv/web/?recurse&index={deleted}&wait=1s"))
        .await
        .expect(200);
    assert_eq!(blocked.index(), deleted);
    assert!(t.elapsed() >= Duration::from_millis(900), "returned early");
    // And a change still wakes it.
    let waiter = {
        let url = a.url(&format!("/v1/kv/web/?recurse&index={deleted}&wait=30s"));
        tokio::spawn(async move {
            reqwest::get(url).await.unwrap().headers()["x-consul-index"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.kv_put("web/c", "4").await;
    assert!(waiter.await.unwrap() > deleted);
    // Other prefixes never saw web/'s tombstone.
    assert!(a.get("/v1/kv/db/?recurse").await.expect(200).index() < deleted);
}
