//! Manual recovery after a permanent loss of quorum: `raft/peers.json` rewrites the
//! membership of the survivors when they start.

use cairn_raft::recovery::{apply_peers_file, peers_file};

use crate::support::{addr_of, set, Cluster, Setup};

fn id(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_survivor_recovers_with_a_peers_file() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        data_dir: Some(dir.path().to_path_buf()),
        ..Setup::default()
    };
    let mut c = Cluster::formed(21, 3, setup).await;
    let mut last = 0;
    for i in 0..10 {
        last = c.write(set(&format!("k{i}"), "before")).await;
    }
    c.wait_until("server 1 applied everything", || {
        *c.server(1).applied.borrow() >= last
    })
    .await;
    for id in [1, 2, 3] {
        c.stop_server(id).await;
    }
    // Servers 2 and 3 are gone for good. Without recovery, server 1 alone cannot lead.
    let data1 = dir.path().join("1");
    assert_eq!(
        apply_peers_file(&data1, 1, id).await.unwrap(),
        None,
        "no file: nothing done"
    );
    std::fs::write(
        peers_file(&data1),
        format!(
            r#"[{{"id": "1", "address": "{}", "non_voter": false}}]"#,
            addr_of(1)
        ),
    )
    .unwrap();
    let applied = apply_peers_file(&data1, 1, id)
        .await
        .unwrap()
        .expect("applied");
    assert_eq!(applied.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(
        !peers_file(&data1).exists(),
        "the file is renamed once applied"
    );
    assert!(data1.join("raft").join("peers.json.applied").exists());

    c.start_server(1).await;
    c.wait_until("the survivor leads alone", || c.leader() == Some(1))
        .await;
    assert_eq!(c.server(1).node.voter_ids(), [1].into());
    c.write(set("after", "recovery")).await;
    for i in 0..10 {
        assert_eq!(c.kv(1, &format!("k{i}")).as_deref(), Some("before"));
    }
    assert_eq!(c.kv(1, "after").as_deref(), Some("recovery"));

    // A bad file stops the start with a clear error.
    std::fs::write(
        peers_file(&data1),
        "[{\"id\": \"1\", \"address\": \"nowhere\"}]",
    )
    .unwrap();
    let e = apply_peers_file(&data1, 1, id)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not IP:port"), "{e}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_survivors_of_five_recover_together() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        data_dir: Some(dir.path().to_path_buf()),
        ..Setup::default()
    };
    let mut c = Cluster::formed(22, 5, setup).await;
    let mut last = 0;
    for i in 0..10 {
        last = c.write(set(&format!("k{i}"), "before")).await;
    }
    c.wait_until("servers 1 and 2 applied everything", || {
        *c.server(1).applied.borrow() >= last && *c.server(2).applied.borrow() >= last
    })
    .await;
    for id in 1..=5 {
        c.stop_server(id).await;
    }
    let file = format!(
        r#"[{{"id": "1", "address": "{}"}}, {{"id": "2", "address": "{}"}}]"#,
        addr_of(1),
        addr_of(2)
    );
    for id in [1, 2] {
        let data = dir.path().join(id.to_string());
        std::fs::write(peers_file(&data), &file).unwrap();
        apply_peers_file(&data, id, self::id)
            .await
            .unwrap()
            .expect("applied");
        c.start_server(id).await;
    }
    c.wait_until("one of the two leads", || c.leader().is_some())
        .await;
    let index = c.write(set("after", "recovery")).await;
    for id in [1, 2] {
        c.wait_until("both applied the new write", || {
            *c.server(id).applied.borrow() >= index
        })
        .await;
        assert_eq!(c.server(id).node.voter_ids(), [1, 2].into());
        assert_eq!(c.kv(id, "k9").as_deref(), Some("before"));
        assert_eq!(c.kv(id, "after").as_deref(), Some("recovery"));
    }
    c.shutdown().await;
}
