//! Pool-wide keyring operations through the tokio runtime on the in-memory
//! transport: a rotation persists every member's keyring file, and a member
//! restarted from its file rejoins while one with only the old key cannot.

use std::time::Duration;

use cairn_gossip::{
    keyfile, keygen, Gossip, GossipConfig, KeyOp, LinkRules, MemberStatus, MemoryNetwork, Timing,
};

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

fn alive(g: &Gossip) -> usize {
    g.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_persists_keyring_files_and_restart_uses_them() {
    let seed = 0x6b65_7973;
    println!("memory network seed {seed}");
    let net = MemoryNetwork::new(
        seed,
        LinkRules {
            drop: 0.02,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
        },
    );
    let dir = std::env::temp_dir().join(format!("cairn-keyring-rt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (old, new) = (keygen(), keygen());
    let config = |i: u64, keys: Vec<String>| {
        let mut c = GossipConfig::new(format!("k{i}"), "127.0.0.1:0".parse().unwrap());
        c.timing = Timing::fast();
        c.seed = Some(seed + i);
        c.keys = keys;
        c.keyring_file = Some(keyfile::keyring_path(&dir.join(format!("k{i}"))));
        c.key_query_timeout = Duration::from_secs(3);
        c.join_timeout = Duration::from_secs(2);
        c
    };
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(Gossip::start(config(i, vec![old.clone()]), net.bind_any().unwrap()).unwrap());
    }
    let first = nodes[0].local_addr();
    for g in &nodes[1..] {
        g.join(&[first]).await.unwrap();
    }
    assert!(eventually(10, || nodes.iter().all(|g| alive(g) == 3)).await);

    let r = nodes[1]
        .keyring(KeyOp::Install(new.clone()), 0)
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    let r = nodes[2].keyring(KeyOp::Use(new.clone()), 1).await.unwrap();
    assert!(r.ok(), "{r:?}");
    let r = nodes[0]
        .keyring(KeyOp::Remove(old.clone()), 0)
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.keys.get(&new), Some(&3));
    let r = nodes[0]
        .keyring(KeyOp::Remove(new.clone()), 0)
        .await
        .unwrap();
    assert_eq!(r.failed.len(), 3, "removing the primary is refused: {r:?}");
    for i in 0..3 {
        let path = keyfile::keyring_path(&dir.join(format!("k{i}")));
        assert_eq!(keyfile::load(&path).unwrap(), Some(vec![new.clone()]));
    }
    assert!(nodes.iter().all(|g| alive(g) == 3));

    // k2 restarts from its file; a stranger with only the old key cannot join.
    let addr2 = nodes[2].local_addr();
    nodes[2].shutdown().await;
    let saved = keyfile::load(&keyfile::keyring_path(&dir.join("k2")))
        .unwrap()
        .unwrap();
    let back = Gossip::start(config(2, saved), net.bind(addr2).unwrap()).unwrap();
    back.join(&[first]).await.unwrap();
    let stale = Gossip::start(config(9, vec![old.clone()]), net.bind_any().unwrap()).unwrap();
    assert!(stale.join(&[first]).await.is_err());
    assert!(eventually(10, || alive(&back) == 3 && alive(&nodes[0]) == 3).await);
    for g in nodes.iter().take(2).chain([&back, &stale]) {
        g.shutdown().await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
