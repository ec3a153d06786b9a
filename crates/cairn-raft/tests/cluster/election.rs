//! A cluster forms: one leader, followed by all; writes reach every server.

use std::time::Duration;

use openraft::ServerState;

use crate::support::{addr_of, set, Cluster, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_one_leader() {
    let c = Cluster::formed(1, 3, Setup::default()).await;
    let leader = c.leader().expect("leader");
    c.wait_until("every server follows the leader", || {
        c.ids()
            .iter()
            .all(|id| c.server(*id).node.current_leader() == Some(leader))
    })
    .await;
    let leaders: Vec<u64> = c
        .ids()
        .into_iter()
        .filter(|id| c.server_state(*id) == ServerState::Leader)
        .collect();
    assert_eq!(leaders, vec![leader], "exactly one leader");
    c.wait_until("the leader's quorum acknowledged it", || {
        c.server(leader).node.leads_with_quorum()
    })
    .await;
    for id in c.ids().into_iter().filter(|id| *id != leader) {
        assert!(!c.server(id).node.leads_with_quorum(), "follower {id}");
    }
    for id in c.ids() {
        assert_eq!(
            c.server(id).node.voter_ids(),
            c.ids(),
            "server {id} sees 3 voters"
        );
        assert_eq!(
            c.server(id).node.leader_addr(),
            Some(addr_of(leader).to_string())
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_leader_is_applied_on_all_three() {
    let c = Cluster::formed(2, 3, Setup::default()).await;
    let index = c.write(set("greeting", "hello")).await;
    c.wait_until("every server applied the write", || {
        c.ids()
            .iter()
            .all(|id| *c.server(*id).applied.borrow() >= index)
    })
    .await;
    for id in c.ids() {
        assert_eq!(
            c.kv(id, "greeting").as_deref(),
            Some("hello"),
            "server {id}"
        );
    }

    // A follower refuses writes and names the leader.
    let leader = c.leader().unwrap();
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
    let err = c
        .write_on(follower, set("x", "y"), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        cairn_raft::WriteError::NotLeader {
            leader_id: leader,
            leader_addr: Some(addr_of(leader).to_string())
        }
    );
    c.shutdown().await;
}
