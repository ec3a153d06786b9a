//! Proves the session API of a real agent: Consul's create defaults and wire types
//! (LockDelay as integer nanoseconds, TTL as a string, NodeChecks ["serfHealth"]),
//! info/list/node/renew/destroy, TTL invalidation within 2 x TTL releasing the session's
//! locks, `delete` behaviour, lock-delay after invalidation, and TTL validation.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, Agent};
use serde_json::{json, Value};

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn session_held(e: &Value) -> Option<String> {
    e.get("Session")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[tokio::test]
async fn create_defaults_and_reads() {
    let a = Agent::dev().await;
    let node = a.node_name().await;

    // Empty body: every default.
    let r = a.put_empty("/v1/session/create").await.expect(200);
    let id = r.json()["ID"].as_str().expect("ID").to_string();
    assert!(is_uuid(&id), "ID is a UUID: {id}");

    let r = a.get(&format!("/v1/session/info/{id}")).await.expect(200);
    assert!(r.index() >= 1);
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let s = &v[0];
    assert_eq!(s["ID"], Value::String(id.clone()));
    assert_eq!(s["Node"], Value::String(node.clone()));
    assert!(s["LockDelay"].is_u64(), "LockDelay is an integer: {s}");
    assert_eq!(s["LockDelay"], json!(15_000_000_000u64));
    assert_eq!(s["Behavior"], "release");
    assert!(s["TTL"].is_string(), "TTL is a string: {s}");
    assert_eq!(s["TTL"], "");
    assert_eq!(s["NodeChecks"], json!(["serfHealth"]));
    assert!(s["CreateIndex"].as_u64().unwrap() >= 1);

    // With a TTL, a name and a custom lock delay.
    let id2 = a
        .session(json!({"Name": "svc-lock", "TTL": "30s", "LockDelay": "5s", "Behavior": "delete"}))
        .await;
    let s2 = a
        .get(&format!("/v1/session/info/{id2}"))
        .await
        .expect(200)
        .json()[0]
        .clone();
    assert_eq!(s2["Name"], "svc-lock");
    assert_eq!(s2["TTL"], "30s");
    assert_eq!(s2["LockDelay"], json!(5_000_000_000u64));
    assert_eq!(s2["Behavior"], "delete");

    // list and node
    let list = a.get("/v1/session/list").await.expect(200).json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ID"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&id2.as_str()),
        "{ids:?}"
    );
    let by_node = a
        .get(&format!("/v1/session/node/{node}"))
        .await
        .expect(200)
        .json();
    assert_eq!(by_node.as_array().unwrap().len(), 2);
    let none = a
        .get("/v1/session/node/no-such-node")
        .await
        .expect(200)
        .json();
    assert_eq!(none, json!([]));

    // renew
    let r = a
        .put_empty(&format!("/v1/session/renew/{id2}"))
        .await
        .expect(200)
        .json();
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(r[0]["ID"], Value::String(id2.clone()));
    assert!(r[0]["TTL"].is_string());

    // destroy (idempotent) → info is []
    assert_eq!(
        a.put_empty(&format!("/v1/session/destroy/{id}"))
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    assert_eq!(
        a.put_empty(&format!("/v1/session/destroy/{id}"))
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    assert_eq!(
        a.get(&format!("/v1/session/info/{id}"))
            .await
            .expect(200)
            .json(),
        json!([])
    );
    let list = a.get("/v1/session/list").await.expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn renew_of_unknown_session_is_404() {
    let a = Agent::dev().await;
    let r = a
        .put_empty("/v1/session/renew/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(r.status, 404, "body: {}", r.text());
    let r = a
        .get("/v1/session/info/00000000-0000-0000-0000-000000000000")
        .await
        .expect(200);
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn ttl_validation() {
    let a = Agent::dev().await;
    for ttl in ["9s", "1s", "500ms", "86401s", "banana"] {
        let r = a.put_json("/v1/session/create", &json!({"TTL": ttl})).await;
        assert_eq!(
            r.status,
            400,
            "TTL {ttl:?} must be refused, body: {}",
            r.text()
        );
        assert!(!r.text().trim().is_empty(), "a 400 carries a message");
    }
    for ttl in ["10s", "86400s", "1h"] {
        a.put_json("/v1/session/create", &json!({"TTL": ttl}))
            .await
            .expect(200);
    }
    let r = a
        .put_json("/v1/session/create", &json!({"Behavior": "explode"}))
        .await;
    assert_eq!(r.status, 400, "bad Behavior, body: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_session_expires_and_releases_its_lock() {
    let a = Agent::dev().await;
    let ttl = Duration::from_secs(10);
    let created = Instant::now();
    let dying = a
        .session(json!({"Name": "dying", "TTL": "10s", "LockDelay": "0s"}))
        .await;
    let kept = a
        .session(json!({"Name": "kept", "TTL": "10s", "LockDelay": "0s"}))
        .await;
    assert_eq!(
        a.put(&format!("/v1/kv/leader?acquire={dying}"), "me")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    assert_eq!(
        a.put(&format!("/v1/kv/other?acquire={kept}"), "me")
            .await
            .expect(200)
            .json(),
        json!(true)
    );

    // Renew `kept` every 2 s while we wait for `dying` to be reaped.
    let info = |id: String| {
        let a = &a;
        async move {
            a.get(&format!("/v1/session/info/{id}"))
                .await
                .expect(200)
                .json()
        }
    };
    let gone_after = loop {
        a.put_empty(&format!("/v1/session/renew/{kept}"))
            .await
            .expect(200);
        if info(dying.clone()).await == json!([]) {
            break created.elapsed();
        }
        assert!(
            created.elapsed() < 2 * ttl + Duration::from_secs(5),
            "TTL session still alive after {:?} (limit 2 x TTL + 5 s)",
            created.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        gone_after >= ttl,
        "session reaped before its TTL: {gone_after:?}"
    );

    // Its lock is released (release behaviour: the key stays, without Session).
    let e = eventually(Duration::from_secs(2), "leader key released", || async {
        a.kv_entry("leader")
            .await
            .filter(|e| session_held(e).is_none())
    })
    .await;
    assert_eq!(common::unb64(&e["Value"]), b"me");

    // The renewed session is alive and still holds its key.
    assert_eq!(info(kept.clone()).await.as_array().unwrap().len(), 1);
    assert_eq!(
        session_held(&a.kv_entry("other").await.unwrap()),
        Some(kept)
    );
}

#[tokio::test]
async fn delete_behaviour_deletes_keys_on_destroy() {
    let a = Agent::dev().await;
    let s = a
        .session(json!({"Behavior": "delete", "LockDelay": "0s"}))
        .await;
    for k in ["eph/a", "eph/b"] {
        assert_eq!(
            a.put(&format!("/v1/kv/{k}?acquire={s}"), "x")
                .await
                .expect(200)
                .json(),
            json!(true)
        );
    }
    a.kv_put("eph/unlocked", "y").await;
    a.put_empty(&format!("/v1/session/destroy/{s}"))
        .await
        .expect(200);
    assert!(a.kv_entry("eph/a").await.is_none());
    assert!(a.kv_entry("eph/b").await.is_none());
    assert!(
        a.kv_entry("eph/unlocked").await.is_some(),
        "keys the session did not hold stay"
    );

    // Release behaviour (contrast): the key stays, unlocked.
    let r = a.session(json!({"LockDelay": "0s"})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/rel?acquire={r}"), "z")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    a.put_empty(&format!("/v1/session/destroy/{r}"))
        .await
        .expect(200);
    let e = a.kv_entry("rel").await.expect("release keeps the key");
    assert!(session_held(&e).is_none());
}

#[tokio::test]
async fn lock_delay_blocks_reacquire_until_it_passes() {
    let a = Agent::dev().await;
    let s1 = a.session(json!({"LockDelay": "1s"})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/ld?acquire={s1}"), "1")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    let s2 = a.session(json!({"LockDelay": "1s"})).await;
    let destroyed = Instant::now();
    a.put_empty(&format!("/v1/session/destroy/{s1}"))
        .await
        .expect(200);
    assert_eq!(
        a.put(&format!("/v1/kv/ld?acquire={s2}"), "2")
            .await
            .expect(200)
            .json(),
        json!(false),
        "acquire inside the lock-delay must fail"
    );
    eventually(
        Duration::from_secs(5),
        "acquire succeeds after the lock-delay",
        || async {
            let r = a
                .put(&format!("/v1/kv/ld?acquire={s2}"), "2")
                .await
                .expect(200);
            (r.json() == json!(true)).then_some(())
        },
    )
    .await;
    let after = destroyed.elapsed();
    assert!(
        after >= Duration::from_millis(950),
        "lock-delay of 1s ended after only {after:?}"
    );
    let e = a.kv_entry("ld").await.unwrap();
    assert_eq!(session_held(&e), Some(s2));
    assert_eq!(e["LockIndex"], 2);
}

#[tokio::test]
async fn default_lock_delay_applies() {
    let a = Agent::dev().await;
    let s1 = a.session(json!({})).await; // 15 s default
    assert_eq!(
        a.put(&format!("/v1/kv/dl?acquire={s1}"), "1")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    a.put_empty(&format!("/v1/session/destroy/{s1}"))
        .await
        .expect(200);
    let s2 = a.session(json!({})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/dl?acquire={s2}"), "2")
            .await
            .expect(200)
            .json(),
        json!(false)
    );
    // A plain write is not blocked by the lock-delay.
    a.kv_put("dl", "plain").await;
    // A zero lock-delay session lets a new holder in immediately.
    let s3 = a.session(json!({"LockDelay": "0s"})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/zl?acquire={s3}"), "3")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
    a.put_empty(&format!("/v1/session/destroy/{s3}"))
        .await
        .expect(200);
    let s4 = a.session(json!({"LockDelay": "0s"})).await;
    assert_eq!(
        a.put(&format!("/v1/kv/zl?acquire={s4}"), "4")
            .await
            .expect(200)
            .json(),
        json!(true)
    );
}

#[tokio::test]
async fn session_is_invalidated_when_its_check_goes_critical() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/check/register",
        &json!({"Name": "guard", "CheckID": "guard", "TTL": "10m"}),
    )
    .await
    .expect(200);
    // Critical checks cannot back a new session.
    let r = a
        .put_json(
            "/v1/session/create",
            &json!({"NodeChecks": ["serfHealth", "guard"]}),
        )
        .await;
    assert!(
        r.status >= 400,
        "session on a critical check: {} {}",
        r.status,
        r.text()
    );

    a.put_empty("/v1/agent/check/pass/guard").await.expect(200);
    let node = a.node_name().await;
    eventually(
        Duration::from_secs(5),
        "guard passing in the catalog",
        || async {
            let v = a.get(&format!("/v1/health/node/{node}")).await.json();
            v.as_array()?
                .iter()
                .any(|c| c["CheckID"] == "guard" && c["Status"] == "passing")
                .then_some(())
        },
    )
    .await;
    let s = a
        .session(json!({"NodeChecks": ["serfHealth", "guard"], "LockDelay": "0s"}))
        .await;
    assert_eq!(
        a.put(&format!("/v1/kv/guarded?acquire={s}"), "v")
            .await
            .expect(200)
            .json(),
        json!(true)
    );

    a.put_empty("/v1/agent/check/fail/guard").await.expect(200);
    eventually(
        Duration::from_secs(5),
        "session invalidated by its critical check",
        || async {
            (a.get(&format!("/v1/session/info/{s}"))
                .await
                .expect(200)
                .json()
                == json!([]))
            .then_some(())
        },
    )
    .await;
    let e = a
        .kv_entry("guarded")
        .await
        .expect("release behaviour keeps the key");
    assert!(session_held(&e).is_none(), "lock released: {e}");
}
