//! The tokio runtime over the in-memory transport with packet loss and
//! delay: the same behaviour as over UDP, on a lossy network.

use std::time::Duration;

use cairn_gossip::{Gossip, GossipConfig, LinkRules, MemberStatus, MemoryNetwork, Timing};

async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_network_join_fail_and_leave() {
    let seed = 0x6055_1900;
    println!("memory network seed {seed}");
    let net = MemoryNetwork::new(
        seed,
        LinkRules {
            drop: 0.05,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
        },
    );
    let timing = Timing {
        probe_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(100),
        gossip_interval: Duration::from_millis(50),
        suspicion_timeout: Duration::from_millis(600),
        push_pull_interval: Duration::from_secs(2),
        ..Timing::lan()
    };
    let mut nodes = Vec::new();
    for i in 0..6 {
        let mut c = GossipConfig::new(format!("m{i}"), "127.0.0.1:0".parse().unwrap());
        c.timing = timing.clone();
        c.seed = Some(seed + i);
        c.join_timeout = Duration::from_secs(3);
        nodes.push(Gossip::start(c, net.bind_any().unwrap()).unwrap());
    }
    let first = nodes[0].local_addr();
    for g in &nodes[1..] {
        assert!(g.join(&[first]).await.unwrap() >= 1);
    }
    let all_alive = |nodes: &[Gossip], n: usize| {
        nodes.iter().all(|g| {
            g.members()
                .iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .count()
                == n
        })
    };
    assert!(eventually(15, || all_alive(&nodes, 6)).await);

    let crashed = nodes.pop().unwrap();
    crashed.shutdown().await;
    drop(crashed);
    assert!(
        eventually(15, || nodes
            .iter()
            .all(
                |g| g.member("m5").map(|m| m.status) == Some(MemberStatus::Failed)
            ))
        .await
    );

    let leaver = nodes.pop().unwrap();
    leaver.leave().await.unwrap();
    assert!(
        eventually(15, || nodes
            .iter()
            .all(
                |g| g.member("m4").map(|m| m.status) == Some(MemberStatus::Left)
            ))
        .await
    );
    leaver.shutdown().await;
    // The survivors all see each other alive on the lossy network.
    assert!(eventually(10, || all_alive(&nodes, 4)).await);
    for g in nodes {
        g.shutdown().await;
    }
}
