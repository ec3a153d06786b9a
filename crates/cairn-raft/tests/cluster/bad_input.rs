//! Malformed or stale Raft messages are refused without harm.

use crate::support::{addr_of, set, Cluster, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_chunks_are_refused() {
    use cairn_raft::protocol::{RaftRequest, SnapshotChunk};
    use cairn_rpc::{Client, ClientConfig, Code};

    let c = Cluster::formed(9, 3, Setup::default()).await;
    let leader = c.leader().unwrap();
    let vote = c.metrics(leader).vote;
    let meta = openraft::alias::SnapshotMetaOf::<cairn_raft::TypeConfig>::default();
    let outsider: std::net::SocketAddr = "127.0.0.9:8300".parse().unwrap();
    let client: Client<cairn_raft::RaftRpc> = Client::new(
        c.net
            .client::<cairn_raft::RaftRpc>(outsider, ClientConfig::default()),
    );
    let chunk = |offset: u64, data: &str, done: bool| {
        RaftRequest::SnapshotChunk(Box::new(SnapshotChunk {
            vote,
            meta: meta.clone(),
            offset,
            data: data.to_string(),
            done,
        }))
    };
    let target = addr_of(leader);

    // A chunk in the middle of a transfer nobody started.
    let err = client
        .call(target, chunk(5, "xx", false))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );

    // A gap in a transfer ends it.
    client
        .call(target, chunk(0, "{\"a\":", false))
        .await
        .expect("first chunk");
    let err = client
        .call(target, chunk(99, "1}", true))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );
    let err = client.call(target, chunk(5, "1}", true)).await.unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "the transfer was dropped: {err}"
    );

    // A chunk from a deposed leader (an older vote) is answered with the newer vote at once.
    let stale = RaftRequest::SnapshotChunk(Box::new(SnapshotChunk {
        vote: openraft::alias::VoteOf::<cairn_raft::TypeConfig>::new(0, 0),
        meta: meta.clone(),
        offset: 0,
        data: "{}".to_string(),
        done: true,
    }));
    match client
        .call(target, stale)
        .await
        .expect("stale chunk answered")
    {
        cairn_raft::protocol::RaftResponse::Snapshot(r) => assert_eq!(r.vote, vote),
        other => panic!("expected the newer vote, got {}", other.kind()),
    }

    // The servers carry on.
    c.write(set("still", "fine")).await;
    c.shutdown().await;
}
