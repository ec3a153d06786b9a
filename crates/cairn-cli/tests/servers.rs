//! Replicated servers as real processes: three servers (`-bootstrap-expect=3`) on
//! 127.0.0.1-3 and two client agents on 127.0.0.4-5, with Consul's default ports.
//!
//! The scenario: the servers find each other through the pool and form one cluster;
//! writes through a client are readable `?consistent` on every server; under a steady
//! write load through a client, `kill -9` of the leader gives a new leader (the time is
//! printed) and no acknowledged write is lost; the old leader restarts from its log,
//! rejoins and catches up.
//!
//! The default ports are fixed, so this file holds one test (cargo runs test files one
//! after the other).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;

fn server_args(i: u8, dir: &std::path::Path) -> Vec<String> {
    common::servers::server_args(3, i, dir)
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_fail_over_without_losing_acknowledged_writes() {
    let Some(ServerSet {
        _tmp,
        dirs,
        mut servers,
    }) = start_servers(5, 3, 3).await
    else {
        return;
    };
    let formed = Instant::now();
    let leader = eventually(WAIT, "the three servers agree on a leader", || async {
        agreed_leader(&servers.iter().collect::<Vec<_>>()).await
    })
    .await;
    println!(
        "cluster formed with leader {leader} {:.2} s after the third server started",
        formed.elapsed().as_secs_f64()
    );
    let peers = servers[0].get("/v1/status/peers").await.json();
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "{peers}");
    let clients = [
        Agent::start_unready(&strs(&client_args(4))).await,
        Agent::start_unready(&strs(&client_args(5))).await,
    ];
    for (i, c) in clients.iter().enumerate() {
        eventually(
            WAIT,
            &format!("client {} sees 5 members alive", i + 4),
            || members_alive(c, 5),
        )
        .await;
        eventually(WAIT, "the client reports the leader", || async {
            (leader_seen(c).await? == leader).then_some(())
        })
        .await;
    }

    // The operator view, from a client: three voters, one leader.
    let (code, out, err) = run_cli(
        &[
            "operator",
            "raft",
            "list-peers",
            "-http-addr",
            "127.0.0.4:8500",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    for name in ["s1", "s2", "s3"] {
        assert!(out.contains(name), "{out}");
    }
    assert_eq!(out.matches("leader").count(), 1, "{out}");

    // Writes through a client are readable ?consistent on every server.
    for k in 0..20u64 {
        let r = clients[0].put(&format!("/v1/kv/w/{k}"), "v").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for s in &servers {
        let keys = consistent_keys(s).await.expect("consistent read");
        assert_eq!(keys.len(), 20, "{keys:?}");
    }
    // Default-mode reads are linearizable on every node: a write acknowledged through
    // one client is read at once through the other client and every server.
    for k in 0..5u64 {
        let r = clients[0]
            .put(&format!("/v1/kv/rw/{k}"), format!("v{k}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        for reader in servers.iter().chain(std::iter::once(&clients[1])) {
            let got = reader.get(&format!("/v1/kv/rw/{k}?raw")).await;
            assert_eq!(got.status, 200, "{} {}", reader.addr, got.text());
            assert_eq!(got.text(), format!("v{k}"), "{}", reader.addr);
        }
    }

    // A steady write load through the other client; kill -9 of the leader in the middle.
    let leader_idx = servers
        .iter()
        .position(|s| leader.starts_with(&format!("{}:", s.addr.split(':').next().unwrap())))
        .expect("the leader is one of the servers");
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
        let url = clients[1].url("/v1/kv/w/");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut k = 1000u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                k += 1;
                let r = http
                    .put(format!("{url}{k}"))
                    .body("v")
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(k),
                    _ => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        })
    };
    eventually(WAIT, "the writer is under way", || async {
        (acked.lock().unwrap().len() > 50).then_some(())
    })
    .await;
    let killed_at = Instant::now();
    servers[leader_idx].kill9();
    let survivors: Vec<&Agent> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader_idx)
        .map(|(_, s)| s)
        .collect();
    let new_leader = eventually(WAIT, "the survivors agree on a new leader", || async {
        let l = agreed_leader(&survivors).await?;
        (l != leader).then_some(l)
    })
    .await;
    let failover = killed_at.elapsed();
    let before = acked.lock().unwrap().len();
    eventually(WAIT, "writes are acknowledged again", || async {
        (acked.lock().unwrap().len() > before + 50).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let acked: Vec<u64> = acked.lock().unwrap().clone();
    println!(
        "kill -9 of the leader: new leader {new_leader} agreed after {:.2} s; {} writes acknowledged, {} failed",
        failover.as_secs_f64(),
        acked.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    for s in &survivors {
        let keys = consistent_keys(s).await.expect("consistent read");
        let lost: Vec<_> = acked.iter().filter(|k| !keys.contains(k)).collect();
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    }

    // The old leader restarts from its log, rejoins and catches up.
    let dir = dirs[leader_idx].clone();
    servers[leader_idx] =
        Agent::start_unready(&strs(&server_args(leader_idx as u8 + 1, &dir))).await;
    let back = &servers[leader_idx];
    eventually(
        WAIT,
        "the restarted server follows the new leader",
        || async { (leader_seen(back).await? == new_leader).then_some(()) },
    )
    .await;
    eventually(
        WAIT,
        "the restarted server holds every acknowledged write",
        || async {
            let keys = consistent_keys(back).await?;
            acked.iter().all(|k| keys.contains(k)).then_some(())
        },
    )
    .await;
    eventually(
        WAIT,
        "the restarted server's serfHealth passes again",
        || async {
            let name = format!("s{}", leader_idx + 1);
            let checks = servers[0]
                .try_get(&format!("/v1/health/node/{name}"))
                .await
                .ok()?
                .json();
            let serf = checks
                .as_array()?
                .iter()
                .find(|c| c["CheckID"] == "serfHealth")?
                .clone();
            (serf["Status"] == "passing").then_some(())
        },
    )
    .await;
}
