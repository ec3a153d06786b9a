//! Changing the member set: a single server grows to three through learners.

use std::collections::BTreeMap;

use crate::support::{addr_of, set, Cluster, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_grows_to_three_through_learners() {
    let c = Cluster::start(8, 3, Setup::default()).await;
    let one = &c.server(1).node;
    one.initialize(BTreeMap::from([(1, addr_of(1).to_string())]))
        .await
        .expect("initialize a one-server cluster");
    c.wait_until("server 1 leads alone", || one.is_leader())
        .await;
    assert!(one.leads_with_quorum(), "a sole voter is its own quorum");
    let before = c.write(set("early", "1")).await;

    // Initializing twice is refused, on the same server or another one that has joined.
    let again = one
        .initialize(BTreeMap::from([(1, addr_of(1).to_string())]))
        .await
        .unwrap_err();
    assert!(
        matches!(again, cairn_raft::InitError::AlreadyInitialized(_)),
        "{again}"
    );

    for id in [2, 3] {
        one.add_learner(id, addr_of(id).to_string())
            .await
            .expect("add learner");
    }
    // Learners have the log but no vote.
    c.wait_until("the learners applied the early write", || {
        [2, 3]
            .iter()
            .all(|id| *c.server(*id).applied.borrow() >= before)
    })
    .await;
    assert_eq!(one.voter_ids(), [1].into());

    one.change_membership([1, 2, 3].into())
        .await
        .expect("promote the learners");
    c.wait_until("all three see three voters", || {
        c.ids()
            .iter()
            .all(|id| c.server(*id).node.voter_ids() == c.ids())
    })
    .await;
    assert_eq!(one.peers().len(), 3);

    // A follower cannot change the membership.
    let err = c
        .server(2)
        .node
        .change_membership([1, 2].into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, cairn_raft::WriteError::NotLeader { leader_id: 1, .. }),
        "{err}"
    );

    // With three voters the cluster survives losing its first server.
    c.isolate(1);
    let rest = [2, 3].into();
    c.wait_until("servers 2 and 3 elect a leader", || {
        c.leader_among(&rest).is_some()
    })
    .await;
    let after = c.write(set("late", "2")).await;
    c.net.heal_all();
    c.wait_until("server 1 catches up", || {
        *c.server(1).applied.borrow() >= after
    })
    .await;
    assert_eq!(c.kv(1, "late").as_deref(), Some("2"));
    c.shutdown().await;
}
