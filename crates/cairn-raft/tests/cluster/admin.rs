//! Operator actions: leadership hand-over and member removal on the leader.

use std::time::{Duration, Instant};

use cairn_raft::AdminError;

use crate::support::{addr_of, set, Cluster, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_named_voter_quickly() {
    let c = Cluster::formed(11, 3, Setup::default()).await;
    let leader = c.leader().expect("leader");
    c.wait_until("the leader's quorum acknowledged it", || {
        c.server(leader).node.leads_with_quorum()
    })
    .await;
    let to = c.ids().into_iter().find(|id| *id != leader).unwrap();
    let started = Instant::now();
    let got = c
        .server(leader)
        .node
        .transfer_leadership(Some(to), Duration::from_secs(5))
        .await
        .expect("transfer");
    let took = started.elapsed();
    assert_eq!(got, to);
    println!("leadership moved from {leader} to {to} in {took:?}");
    c.wait_until("the named voter leads", || c.leader() == Some(to))
        .await;
    // Writes work on the new leader.
    c.write(set("after", "transfer")).await;

    // Refusals: itself, a stranger, a follower asking.
    let me = c.server(to).node.clone();
    assert!(matches!(
        me.transfer_leadership(Some(to), Duration::from_secs(1))
            .await,
        Err(AdminError::NoTarget(_))
    ));
    assert!(matches!(
        me.transfer_leadership(Some(99), Duration::from_secs(1))
            .await,
        Err(AdminError::NotFound(_))
    ));
    let follower = c.server(leader).node.clone();
    assert!(matches!(
        follower
            .transfer_leadership(None, Duration::from_secs(1))
            .await,
        Err(AdminError::Write(_))
    ));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_removed_but_never_the_last_voter() {
    let c = Cluster::formed(12, 3, Setup::default()).await;
    let leader = c.leader().expect("leader");
    let node = c.server(leader).node.clone();
    let other = c.ids().into_iter().find(|id| *id != leader).unwrap();
    assert_eq!(
        node.member_by_addr(&addr_of(other).to_string()),
        Some(other)
    );
    assert!(matches!(
        node.remove_member(77).await,
        Err(AdminError::NotFound(_))
    ));
    node.remove_member(other).await.expect("remove");
    assert!(!node.voter_ids().contains(&other));
    assert!(!node.members().contains_key(&other));
    let facts = node.cluster_facts().expect("facts on the leader");
    assert_eq!(facts.members.len(), 2);
    assert!(facts.members.iter().any(|m| m.leader && m.id == leader));
    let third = c
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != other)
        .unwrap();
    node.remove_member(third).await.expect("remove the third");
    assert_eq!(
        node.remove_member(leader).await,
        Err(AdminError::LastVoter(leader))
    );
    c.write(set("alone", "still writes")).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_target_leadership_goes_to_a_live_voter() {
    let mut c = Cluster::formed(13, 3, Setup::default()).await;
    let leader = c.leader().expect("leader");
    c.write(set("k", "v")).await;
    let followers: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    let (dead, live) = (followers[0], followers[1]);
    c.stop_server(dead).await;
    let node = c.server(leader).node.clone();
    c.wait_until(
        "the leader has not heard from the stopped server lately",
        || {
            node.cluster_facts().is_ok_and(|f| {
                f.members
                    .iter()
                    .any(|m| m.id == dead && m.last_contact_ms.is_some_and(|ms| ms > 500))
            })
        },
    )
    .await;
    let got = node
        .transfer_leadership(None, Duration::from_secs(5))
        .await
        .expect("transfer");
    assert_eq!(got, live);
    c.shutdown().await;
}
