//! Five replicated servers as real processes on 127.0.0.1-5 with Consul's default ports:
//! they survive two failures. Under a steady write load, `kill -9` of the leader and of
//! one more server leaves three of five, a quorum: a new leader is elected and writes go
//! on. Both come back from their logs and hold every acknowledged write.
//!
//! The default ports are fixed, so this file holds one test (cargo runs test files one
//! after the other).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;

fn server_args(i: u8, dir: &std::path::Path) -> Vec<String> {
    common::servers::server_args(5, i, dir)
}

const WAIT: Duration = Duration::from_secs(40);

/// The index of the server whose RPC address is `leader`.
fn index_of(servers: &[Agent], leader: &str) -> usize {
    servers
        .iter()
        .position(|s| leader.starts_with(&format!("{}:", s.addr.split(':').next().unwrap())))
        .expect("the leader is one of the servers")
}

#[tokio::test(flavor = "multi_thread")]
async fn five_servers_survive_two_failures() {
    let Some(ServerSet {
        _tmp,
        dirs,
        mut servers,
    }) = start_servers(5, 5, 5).await
    else {
        return;
    };
    let leader = eventually(WAIT, "the five servers agree on a leader", || async {
        agreed_leader(&servers.iter().collect::<Vec<_>>()).await
    })
    .await;
    let h = eventually(WAIT, "autopilot reports five healthy voters", || async {
        let r = servers[0]
            .try_get("/v1/operator/autopilot/health")
            .await
            .ok()?;
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(h["FailureTolerance"], 2, "{h}");

    // Kill the leader and one more, never the server the writer talks to.
    let leader_idx = index_of(&servers, &leader);
    let others: Vec<usize> = (0..5).filter(|i| *i != leader_idx).collect();
    let (writer_idx, second_victim) = (others[0], others[1]);
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
        let url = servers[writer_idx].url("/v1/kv/w/");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
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
                        failed.fetch_add(1, Ordering::Relaxed);
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
    servers[second_victim].kill9();
    let survivors: Vec<&Agent> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader_idx && *i != second_victim)
        .map(|(_, s)| s)
        .collect();
    let new_leader = eventually(
        WAIT,
        "the three survivors agree on a new leader",
        || async {
            let l = agreed_leader(&survivors).await?;
            (l != leader).then_some(l)
        },
    )
    .await;
    let failover = killed_at.elapsed();
    let before = acked.lock().unwrap().len();
    eventually(WAIT, "writes are acknowledged again", || async {
        (acked.lock().unwrap().len() > before + 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let acked: Vec<u64> = acked.lock().unwrap().clone();
    println!(
        "kill -9 of the leader and one more of five: new leader {new_leader} after {:.2} s; \
         {} writes acknowledged, {} failed",
        failover.as_secs_f64(),
        acked.len(),
        failed.load(Ordering::Relaxed)
    );
    for s in &survivors {
        let keys = consistent_keys(s).await.expect("consistent read");
        let lost: Vec<_> = acked.iter().filter(|k| !keys.contains(k)).collect();
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    }

    // Both come back from their logs and catch up.
    for i in [leader_idx, second_victim] {
        servers[i] = Agent::start_unready(&strs(&server_args(i as u8 + 1, &dirs[i]))).await;
    }
    for i in [leader_idx, second_victim] {
        let back = &servers[i];
        eventually(
            WAIT,
            "a restarted server holds every acknowledged write",
            || async {
                let keys = consistent_keys(back).await?;
                acked.iter().all(|k| keys.contains(k)).then_some(())
            },
        )
        .await;
    }
    eventually(WAIT, "five voters again", || async {
        let peers = servers[writer_idx]
            .try_get("/v1/status/peers")
            .await
            .ok()?
            .json();
        (peers.as_array()?.len() == 5).then_some(())
    })
    .await;
}
