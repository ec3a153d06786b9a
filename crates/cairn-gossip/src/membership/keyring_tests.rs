//! Pool-wide keyring operations, driven by the deterministic simulator:
//! a full rotation keeps the pool together, a silent member is named,
//! removing the primary key is refused, and retries (answered from the
//! cache, never applied twice) get through a lossy network.

use std::time::Duration;

use crate::config::Timing;
use crate::crypto::keygen;
use crate::keyquery::{KeyOp, KeyringReport};
use crate::member::MemberStatus;
use crate::sim::{sim_addr, sim_name, Sim};
use crate::transport::LinkRules;

const SEED: u64 = 7;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn link(drop: f64) -> LinkRules {
    LinkRules {
        drop,
        delay: Duration::from_micros(200),
        jitter: Duration::from_micros(300),
    }
}

/// `n` nodes sharing `key`, joined through node 0 and converged.
fn keyed_cluster(n: usize, key: &str, drop: f64) -> Sim {
    println!("simulation seed {SEED}");
    let mut sim = Sim::new(0, SEED, Timing::lan(), link(drop));
    for i in 0..n {
        sim.add_node(&sim_name(i), sim_addr(i), vec![key.to_owned()]);
    }
    for i in 1..n {
        sim.join(i, &[0]);
    }
    let ok = sim.run_until_true(secs(30.0), secs(0.1), |s| {
        (0..n).all(|v| s.nodes[v].core.num_alive() == n)
    });
    assert!(ok, "cluster of {n} did not converge");
    sim
}

/// Runs a keyring operation from `node` and waits (virtual time) for its report.
fn query(sim: &mut Sim, node: usize, op: KeyOp, relay: u8) -> KeyringReport {
    let mut id = None;
    sim.apply(node, &mut |_, _, _| {}, |c, now| {
        let (qid, plan) = c.key_query(now, &op, relay, secs(3.0)).unwrap();
        id = Some(qid);
        plan
    });
    let id = id.unwrap();
    let found = |s: &Sim| s.key_reports.iter().any(|(n, q, _)| *n == node && *q == id);
    assert!(
        sim.run_until_true(secs(10.0), secs(0.05), found),
        "no report"
    );
    let pos = sim
        .key_reports
        .iter()
        .position(|(n, q, _)| *n == node && *q == id)
        .unwrap();
    sim.key_reports.remove(pos).2
}

fn all_alive(sim: &Sim, n: usize) -> bool {
    (0..n).all(|v| (0..n).all(|s| sim.view(v, s).map(|m| m.status) == Some(MemberStatus::Alive)))
}

#[test]
fn rotation_install_use_remove_keeps_the_pool_together() {
    let (old, new) = (keygen(), keygen());
    let n = 4;
    let mut sim = keyed_cluster(n, &old, 0.0);

    let r = query(&mut sim, 1, KeyOp::Install(new.clone()), 0);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.num_nodes, n);
    assert_eq!((r.keys[&old], r.keys[&new]), (n, n));
    assert_eq!(r.primary_keys.get(&old), Some(&n));
    sim.run_for(secs(3.0));
    assert!(all_alive(&sim, n));

    let r = query(&mut sim, 2, KeyOp::Use(new.clone()), 0);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.primary_keys.get(&new), Some(&n));
    assert_eq!(r.primary_keys.len(), 1);
    sim.run_for(secs(3.0));
    assert!(all_alive(&sim, n));

    let r = query(&mut sim, 0, KeyOp::Remove(old.clone()), 0);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.keys.len(), 1);
    assert_eq!(r.keys[&new], n);
    sim.run_for(secs(3.0));
    assert!(all_alive(&sim, n));
    // Every node's keyring changed, and the change was handed over for
    // persistence (the simulator keeps it as a restart's keys).
    for node in &sim.nodes {
        assert_eq!(node.core.keyring().list(), vec![new.clone()]);
        assert_eq!(node.keys, vec![new.clone()]);
    }
    let r = query(&mut sim, 3, KeyOp::List, 0);
    assert!(r.ok());
    assert_eq!(r.keys[&new], n);

    // A newcomer with only the new key joins; one with only the old cannot.
    let fresh = sim.add_node("fresh", sim_addr(10), vec![new.clone()]);
    let stale = sim.add_node("stale", sim_addr(11), vec![old.clone()]);
    sim.join(fresh, &[0]);
    sim.join(stale, &[0]);
    sim.run_for(secs(5.0));
    assert_eq!(sim.nodes[fresh].core.num_alive(), n + 1);
    assert_eq!(sim.nodes[stale].core.num_alive(), 1);
    assert_eq!(sim.nodes[0].core.member("stale"), None);

    // A node restarted with its persisted keys rejoins.
    sim.crash(2);
    sim.run_for(secs(1.0));
    sim.restart(2, 5);
    sim.join(2, &[0]);
    let back = sim.run_until_true(secs(10.0), secs(0.1), |s| {
        s.nodes[2].core.num_alive() == n + 1
    });
    assert!(
        back,
        "restarted node did not rejoin with its persisted keys"
    );
}

#[test]
fn a_silent_member_is_named_and_the_others_still_apply() {
    let (old, new) = (keygen(), keygen());
    let mut sim = keyed_cluster(4, &old, 0.0);
    // Crashed just now: still listed alive when the query starts.
    sim.crash(3);
    let r = query(&mut sim, 0, KeyOp::Install(new.clone()), 0);
    assert!(!r.ok());
    assert_eq!(r.num_nodes, 4);
    assert_eq!(r.no_answer, vec![sim_name(3)]);
    assert_eq!(r.keys[&new], 3);
    let e = r.error().unwrap();
    assert!(
        e.contains("1 of 4 nodes did not answer") && e.contains("node-3"),
        "{e}"
    );
    for i in 0..3 {
        assert!(sim.nodes[i].core.keyring().list().contains(&new));
    }
}

#[test]
fn a_change_that_cannot_be_saved_is_reported_not_acknowledged() {
    let (old, new) = (keygen(), keygen());
    let mut sim = keyed_cluster(3, &old, 0.0);
    let disk_full = "No space left on device (os error 28)";
    // Another member, then the asking member itself, cannot save the change.
    for failing in [2, 0] {
        sim.nodes[failing].save_error = Some(disk_full.into());
        let key = keygen();
        let r = query(&mut sim, 0, KeyOp::Install(key.clone()), 0);
        assert!(!r.ok(), "{r:?}");
        assert_eq!(r.failed.len(), 1, "{r:?}");
        let why = &r.failed[&sim_name(failing)];
        assert!(
            why.contains("not saved") && why.contains(disk_full),
            "{why}"
        );
        // The change holds in memory everywhere, so the pool stays together; only the
        // failing node's keys for a restart are the old ones.
        assert_eq!(r.keys[&key], 3);
        assert!(!sim.nodes[failing].keys.contains(&key));
        assert!(sim.nodes[(failing + 1) % 3].keys.contains(&key));
        sim.nodes[failing].save_error = None;
    }
    // Alone, the report waits for the save too.
    let mut alone = keyed_cluster(1, &old, 0.0);
    alone.nodes[0].save_error = Some(disk_full.into());
    let r = query(&mut alone, 0, KeyOp::Install(new), 0);
    assert!(r.error().is_some_and(|e| e.contains(disk_full)), "{r:?}");
}

#[test]
fn removing_the_primary_key_is_refused_everywhere() {
    let (old, new) = (keygen(), keygen());
    let mut sim = keyed_cluster(3, &old, 0.0);
    let r = query(&mut sim, 0, KeyOp::Install(new.clone()), 0);
    assert!(r.ok());
    let r = query(&mut sim, 0, KeyOp::Remove(old.clone()), 0);
    assert_eq!(r.failed.len(), 3, "{r:?}");
    assert!(r
        .failed
        .values()
        .all(|e| e.contains("primary key cannot be removed")));
    assert_eq!((r.keys[&old], r.keys[&new]), (3, 3));
    // Using a key nobody has fails on every node too; nothing changes.
    let r = query(&mut sim, 1, KeyOp::Use(keygen()), 0);
    assert_eq!(r.failed.len(), 3);
    assert_eq!(r.primary_keys.get(&old), Some(&3));
}

#[test]
fn retries_and_relays_get_through_loss_without_applying_twice() {
    let (old, new) = (keygen(), keygen());
    let n = 5;
    let mut sim = keyed_cluster(n, &old, 0.0);
    sim.net.set_default(link(0.3));
    for (op, relay) in [
        (KeyOp::Install(new.clone()), 2),
        (KeyOp::Use(new.clone()), 0),
        (KeyOp::Remove(old.clone()), 3),
    ] {
        // A retried remove answered from the cache, not applied again
        // (which would fail with "not installed").
        let r = query(&mut sim, 0, op.clone(), relay);
        assert!(r.ok(), "{op:?}: {r:?}");
        assert_eq!(r.num_nodes, n);
    }
    for node in &sim.nodes {
        assert_eq!(node.core.keyring().list(), vec![new.clone()]);
    }
}

#[test]
fn bad_requests_are_refused_before_anything_is_sent() {
    use crate::error::{GossipError, KeyError};
    let mut sim = Sim::new(1, SEED, Timing::lan(), link(0.0));
    let now = sim.instant();
    let core = &mut sim.nodes[0].core;
    let r = core.key_query(now, &KeyOp::List, 0, secs(1.0));
    assert_eq!(r.err(), Some(GossipError::Key(KeyError::NotEnabled)));
    let mut sim = keyed_cluster(1, &keygen(), 0.0);
    let now = sim.instant();
    let core = &mut sim.nodes[0].core;
    let r = core.key_query(now, &KeyOp::Install("not base64!".into()), 0, secs(1.0));
    assert_eq!(r.err(), Some(GossipError::Key(KeyError::Base64)));
    let r = core.key_query(now, &KeyOp::List, 6, secs(1.0));
    assert_eq!(r.err(), Some(GossipError::RelayFactor(6)));
    // An unencrypted node drops keyring requests without answering.
    let mut plain = Sim::new(1, SEED, Timing::lan(), link(0.0));
    let now = plain.instant();
    let req = crate::envelope::Envelope::KeyRequest {
        id: 1,
        action: crate::keyquery::KeyAction::List,
        relay: 0,
    };
    let packet = crate::crypto::Keyring::none().seal(&req.encode(), [0; 12]);
    let plan = plain.nodes[0].core.handle_packet(now, sim_addr(5), &packet);
    assert!(plan.sends.is_empty() && plan.keyring.is_none());
    // Alone: the report is in the same plan.
    let (id, plan) = core.key_query(now, &KeyOp::List, 0, secs(1.0)).unwrap();
    assert_eq!(plan.key_reports.len(), 1);
    assert_eq!(plan.key_reports[0].0, id);
    assert!(plan.sends.is_empty());
}
