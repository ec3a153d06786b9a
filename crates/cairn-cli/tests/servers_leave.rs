//! Three replicated servers as real processes on 127.0.0.1-3 with Consul's default ports,
//! driven through the CLI: `operator raft transfer-leader`, `operator autopilot
//! get-config|set-config`, then `cairn leave` of the leader under a steady write load.
//! The leader hands over first, so a new leader is known at once; the leaver is gone
//! from `operator raft list-peers`, and no write waits long. Removing it again is refused
//! with Consul's message.
//!
//! The default ports are fixed, so this file holds one test (cargo runs test files one
//! after the other).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn ip_of(a: &Agent) -> String {
    a.addr.split(':').next().unwrap().to_string()
}

fn cli(args: &[&str]) -> (i32, String, String) {
    run_cli(args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_leaves_gracefully_and_the_cluster_keeps_serving() {
    let Some(ServerSet {
        _tmp, mut servers, ..
    }) = start_servers(3, 3, 3).await
    else {
        return;
    };
    let leader = eventually(WAIT, "the servers agree on a leader", || async {
        agreed_leader(&servers.iter().collect::<Vec<_>>()).await
    })
    .await;
    let cfg: Value = servers[0]
        .get("/v1/operator/raft/configuration")
        .await
        .json();
    let rows = cfg["Servers"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{cfg}");

    // transfer-leader through the CLI, asked on a follower, to the third server.
    let leader_ip = leader.split(':').next().unwrap().to_string();
    let follower = servers.iter().position(|s| ip_of(s) != leader_ip).unwrap();
    let target_row = rows
        .iter()
        .find(|r| {
            let a = r["Address"].as_str().unwrap_or("");
            !a.starts_with(&format!("{leader_ip}:"))
                && !a.starts_with(&format!("{}:", ip_of(&servers[follower])))
        })
        .expect("a third server");
    let target_id = target_row["ID"].as_str().unwrap().to_string();
    let target_addr = target_row["Address"].as_str().unwrap().to_string();
    let http = servers[follower].addr.clone();
    let (code, out, err) = cli(&[
        "operator",
        "raft",
        "transfer-leader",
        &format!("-id={target_id}"),
        "-http-addr",
        &http,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "Success: true");
    eventually(WAIT, "the named server leads", || async {
        (agreed_leader(&servers.iter().collect::<Vec<_>>()).await? == target_addr).then_some(())
    })
    .await;

    // Autopilot settings through the CLI.
    let (code, out, err) = cli(&["operator", "autopilot", "get-config", "-http-addr", &http]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CleanupDeadServers = true"), "{out}");
    assert!(out.contains("ServerStabilizationTime = 10s"), "{out}");
    let (code, out, err) = cli(&[
        "operator",
        "autopilot",
        "set-config",
        "-min-quorum=2",
        "-http-addr",
        &http,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Configuration updated!");
    let (_, out, _) = cli(&["operator", "autopilot", "get-config", "-http-addr", &http]);
    assert!(out.contains("MinQuorum = 2"), "{out}");

    // A steady write load through the follower, then the leader leaves.
    let leader_idx = servers
        .iter()
        .position(|s| target_addr.starts_with(&format!("{}:", ip_of(s))))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let url = servers[follower].url("/v1/kv/w/");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut k, mut acked, mut failed) = (0u64, 0u64, 0u64);
            let mut last_ok = Instant::now();
            let mut longest_gap = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let r = http
                    .put(format!("{url}{k}"))
                    .body("v")
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                if matches!(&r, Ok(r) if r.status() == 200) {
                    acked += 1;
                    longest_gap = longest_gap.max(last_ok.elapsed());
                    last_ok = Instant::now();
                } else {
                    failed += 1;
                }
            }
            (acked, failed, longest_gap.max(last_ok.elapsed()))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (code, _, err) = cli(&["leave", "-http-addr", &servers[leader_idx].addr]);
    assert_eq!(code, 0, "{err}");
    let exited = servers[leader_idx].wait_exit(WAIT).await;
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    let gone_in = started.elapsed();
    let survivors: Vec<&Agent> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader_idx)
        .map(|(_, s)| s)
        .collect();
    let new_leader = eventually(WAIT, "the others agree on a new leader", || async {
        let l = agreed_leader(&survivors).await?;
        (l != target_addr).then_some(l)
    })
    .await;
    let leaver = format!("s{}", leader_idx + 1);
    let (code, out, err) = cli(&["operator", "raft", "list-peers", "-http-addr", &http]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&leaver), "{leaver} still listed:\n{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, failed, longest_gap) = writer.await.unwrap();
    println!(
        "leader {leaver} left and exited in {:.2} s; new leader {new_leader}; {acked} writes \
         acknowledged, {failed} failed, longest wait for an acknowledgement {:.0} ms",
        gone_in.as_secs_f64(),
        longest_gap.as_secs_f64() * 1000.0
    );
    assert!(
        longest_gap < Duration::from_secs(3),
        "writes stalled for {longest_gap:?}"
    );
    assert!(acked > 0);

    // Removing the leaver again: refused, in Consul's words.
    let (code, _, err) = cli(&[
        "operator",
        "raft",
        "remove-peer",
        &format!("-id={target_id}"),
        "-http-addr",
        &http,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("was not found in the Raft configuration"),
        "{err}"
    );
}
