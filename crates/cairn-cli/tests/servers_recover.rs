//! Manual outage recovery with real processes on 127.0.0.1-3 and Consul's default ports:
//! two of three servers are destroyed (`kill -9`, data gone), so the survivor has no
//! quorum and refuses writes. It is stopped, given `data_dir/raft/peers.json` naming only
//! itself, and started again: it leads alone, with every write acknowledged before.
//!
//! The default ports are fixed, so this file holds one test (cargo runs test files one
//! after the other).

mod common;

use std::time::Duration;

use common::servers::*;
use common::*;

fn server_args(i: u8, dir: &std::path::Path) -> Vec<String> {
    common::servers::server_args(3, i, dir)
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_survivor_of_lost_quorum_recovers_with_peers_json() {
    let Some(ServerSet {
        _tmp,
        dirs,
        mut servers,
    }) = start_servers(3, 3, 3).await
    else {
        return;
    };
    eventually(WAIT, "three voters and a leader", || async {
        let peers = servers[0].try_get("/v1/status/peers").await.ok()?.json();
        let leader = leader_seen(&servers[0]).await?;
        (peers.as_array()?.len() == 3 && !leader.is_empty()).then_some(())
    })
    .await;
    for k in 0..20 {
        let r = servers[0].put(&format!("/v1/kv/r/{k}"), "before").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // s2 and s3 are destroyed; s1 alone has no quorum.
    servers[1].kill9();
    servers[2].kill9();
    std::fs::remove_dir_all(&dirs[1]).unwrap();
    std::fs::remove_dir_all(&dirs[2]).unwrap();
    // A write is refused or never acknowledged (the client gives up waiting).
    eventually(
        WAIT,
        "the survivor no longer acknowledges writes",
        || async {
            let r = reqwest::Client::new()
                .put(servers[0].url("/v1/kv/r/stuck"))
                .body("x")
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            (!matches!(r, Ok(r) if r.status() == 200)).then_some(())
        },
    )
    .await;
    servers[0].kill9();

    let node_id = std::fs::read_to_string(dirs[0].join("node-id")).unwrap();
    std::fs::write(
        dirs[0].join("raft").join("peers.json"),
        format!(
            r#"[{{"id": "{}", "address": "127.0.0.1:8300", "non_voter": false}}]"#,
            node_id.trim()
        ),
    )
    .unwrap();
    servers[0] = Agent::start_unready(&strs(&server_args(1, &dirs[0]))).await;
    let s1 = &servers[0];
    eventually(WAIT, "the survivor leads alone", || async {
        (leader_seen(s1).await? == "127.0.0.1:8300").then_some(())
    })
    .await;
    let peers = s1.get("/v1/status/peers").await.json();
    assert_eq!(peers, serde_json::json!(["127.0.0.1:8300"]));
    assert!(dirs[0].join("raft").join("peers.json.applied").exists());
    assert!(!dirs[0].join("raft").join("peers.json").exists());
    let r = s1.put("/v1/kv/r/after", "recovered").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let keys = s1.get("/v1/kv/r/?keys&consistent").await.json();
    for k in 0..20 {
        let key = format!("r/{k}");
        assert!(
            keys.as_array().unwrap().iter().any(|v| v == key.as_str()),
            "{key} missing: {keys}"
        );
    }
}
