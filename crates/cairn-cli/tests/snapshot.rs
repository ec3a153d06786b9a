//! Snapshots end to end with real agents: `cairn snapshot save` from one `-dev` server
//! holding services, checks, KV and a session; `inspect` offline; `restore` into a fresh
//! server gives the same catalog, KV and sessions; a damaged archive is a 400 (and a
//! failed `restore` command) that changes nothing.

mod common;

use common::{run_cli, tempdir, Agent};
use serde_json::{json, Value};

/// What a restore must carry over, read through the API.
async fn listing(a: &Agent) -> Value {
    let kv = a.get("/v1/kv/app/?recurse").await.expect(200).json();
    let kv: Vec<Value> = kv
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!([
                e["Key"],
                e["Value"],
                e["Flags"],
                e["Session"],
                e["ModifyIndex"]
            ])
        })
        .collect();
    let web = a.get("/v1/health/service/web").await.expect(200).json();
    let web: Vec<Value> = web
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!([
                e["Node"]["Node"],
                e["Node"]["Address"],
                e["Service"]["ID"],
                e["Service"]["Port"],
                e["Service"]["Tags"],
                e["Checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!([c["CheckID"], c["Status"]]))
                    .collect::<Vec<_>>()
            ])
        })
        .collect();
    let sessions = a.get("/v1/session/list").await.expect(200).json();
    let sessions: Vec<Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["ID"], s["Name"], s["TTL"], s["Behavior"], s["Node"]]))
        .collect();
    json!({"kv": kv, "web": web, "sessions": sessions})
}

async fn populate(a: &Agent) -> String {
    for (node, addr, id, port, status) in [
        ("ext-1", "10.0.0.1", "web1", 80, "passing"),
        ("ext-2", "10.0.0.2", "web2", 8080, "critical"),
    ] {
        let reg = json!({
            "Node": node, "Address": addr,
            "Service": {"ID": id, "Service": "web", "Tags": ["v1"], "Port": port},
            "Check": {"CheckID": format!("{id}-alive"), "Name": "alive", "ServiceID": id, "Status": status}
        });
        a.put_json("/v1/catalog/register", &reg).await.expect(200);
    }
    for i in 0..20 {
        a.kv_put(&format!("app/config/{i:02}"), format!("value {i}"))
            .await;
    }
    let node = a.node_name().await;
    let session = a
        .session(json!({"Name": "locker", "Node": node, "TTL": "60s", "Checks": []}))
        .await;
    let r = a
        .put(&format!("/v1/kv/app/lock?acquire={session}"), "held")
        .await
        .expect(200);
    assert_eq!(r.json(), json!(true));
    session
}

#[tokio::test]
async fn save_inspect_and_restore_into_a_fresh_server() {
    let (_guard, dir) = tempdir();
    let file = dir.join("backup.snap");
    let file = file.to_str().unwrap();

    let a = Agent::dev().await;
    let session = populate(&a).await;
    let want = listing(&a).await;

    // The API answers a gzip archive with the index.
    let r = a.get("/v1/snapshot").await.expect(200);
    assert!(r.index() > 20, "X-Consul-Index {}", r.index());
    assert_eq!(&r.body[..2], &[0x1f, 0x8b], "gzip magic");
    a.get("/v1/snapshot?stale").await.expect(200);

    // save, honouring -http-addr.
    let (code, out, err) = run_cli(&["snapshot", "save", "-http-addr", &a.addr, file], &[]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert!(
        out.starts_with("Saved and verified snapshot to index "),
        "{out}"
    );

    // inspect, offline (no agent address given, none needed).
    let (code, out, err) = run_cli(&["snapshot", "inspect", file], &[]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    for line in ["ID ", "Size ", "Index ", "Version  1", "Type  "] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    let term = out
        .lines()
        .find_map(|l| l.strip_prefix("Term "))
        .map(|t| t.trim().parse::<u64>().unwrap());
    assert!(term.is_some_and(|t| t >= 1), "Term in:\n{out}");
    let row = |kind: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("no {kind} row in:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("KVS")[1], "21", "{out}");
    assert_eq!(row("Session")[1], "1", "{out}");
    assert!(row("Service")[1].parse::<u32>().unwrap() >= 2, "{out}");
    assert!(out.contains("Total "), "{out}");

    // restore into a fresh server, through CONSUL_HTTP_ADDR.
    let b = Agent::dev().await;
    assert_eq!(b.get("/v1/kv/app/?recurse").await.status, 404);
    let (code, out, err) = run_cli(
        &["snapshot", "restore", file],
        &[("CONSUL_HTTP_ADDR", &b.addr)],
    );
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert_eq!(out.trim(), "Restored snapshot");
    assert_eq!(listing(&b).await, want);
    let lock = b.kv_entry("app/lock").await.expect("the lock key");
    assert_eq!(lock["Session"], json!(session));
    // The restored session is live: its lock can be released with it.
    let r = b
        .put(&format!("/v1/kv/app/lock?release={session}"), "free")
        .await
        .expect(200);
    assert_eq!(r.json(), json!(true));
    // Writes go on, above every index the restore brought in (B's own log is shorter
    // than A's, yet its indexes do not go backwards).
    let restored_max = lock["ModifyIndex"].as_u64().unwrap();
    b.kv_put("app/after", "x").await;
    let after = b.kv_entry("app/after").await.unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap();
    assert!(after > restored_max, "{after} after {restored_max}");
    let r = b.get("/v1/kv/app/?recurse").await.expect(200);
    assert!(r.index() >= after);
}

#[tokio::test]
async fn a_damaged_archive_is_refused_and_changes_nothing() {
    let (_guard, dir) = tempdir();
    let a = Agent::dev().await;
    populate(&a).await;
    let good = a.get("/v1/snapshot").await.expect(200).body;

    let b = Agent::dev().await;
    b.kv_put("app/mine", "keep me").await;
    let before = listing(&b).await;

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let truncated = good[..good.len() / 2].to_vec();
    for (what, body) in [
        ("flipped byte", flipped.clone()),
        ("truncated", truncated),
        ("not an archive", b"hello".to_vec()),
        ("empty", Vec::new()),
    ] {
        let r = b.put("/v1/snapshot", body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.text().contains("snapshot"), "{what}: {}", r.text());
    }
    assert_eq!(listing(&b).await, before);

    // The CLI reports the server's refusal and exits 1.
    let file = dir.join("bad.snap");
    std::fs::write(&file, &flipped).unwrap();
    let (code, out, err) = run_cli(
        &[
            "snapshot",
            "restore",
            "-http-addr",
            &b.addr,
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "stdout {out} stderr {err}");
    assert!(err.contains("Error restoring snapshot"), "{err}");
    assert!(err.contains("400"), "{err}");
    assert_eq!(listing(&b).await, before);

    // inspect refuses it offline too, naming the problem.
    let (code, _, err) = run_cli(&["snapshot", "inspect", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Error inspecting snapshot: snapshot"), "{err}");
    let (code, _, err) = run_cli(&["snapshot", "inspect", "/nonexistent/x.snap"], &[]);
    assert_eq!(code, 1, "{err}");
    let (code, _, _) = run_cli(&["snapshot", "save"], &[]);
    assert_eq!(code, 2, "a missing FILE is a usage error");
}

/// Restored sessions have live TTL timers on the leader: one that nobody renews expires
/// (and releases its lock) on the server it was restored into.
#[tokio::test]
async fn restored_sessions_expire_on_the_new_leader() {
    let short = ["-hcl", "session_ttl_min = \"1s\""];
    let a = Agent::dev_with(&short).await;
    let node = a.node_name().await;
    let id = a
        .session(json!({"Name": "short", "Node": node, "TTL": "1s", "Checks": []}))
        .await;
    let archive = a.get("/v1/snapshot").await.expect(200).body;
    drop(a);

    let b = Agent::dev_with(&short).await;
    b.put("/v1/snapshot", archive).await.expect(200);
    let started = std::time::Instant::now();
    let info = b.get(&format!("/v1/session/info/{id}")).await.expect(200);
    assert_eq!(info.json()[0]["ID"], json!(id), "restored");
    common::eventually(
        std::time::Duration::from_secs(10),
        "the TTL runs out",
        || {
            let b = &b;
            let id = id.clone();
            async move {
                let r = b.get(&format!("/v1/session/info/{id}")).await.expect(200);
                r.json()
                    .as_array()
                    .is_none_or(|a| a.is_empty())
                    .then_some(())
            }
        },
    )
    .await;
    // 2 x TTL, counted from when the leader saw the restored session.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
}
