//! Behaviour of the core, driven by the deterministic simulator.

use std::time::Duration;

use crate::config::Timing;
use crate::crypto::keygen;
use crate::error::GossipError;
use crate::identity::Tags;
use crate::member::{MemberEvent, MemberStatus};
use crate::membership::JoinReply;
use crate::sim::{sim_name, Sim};
use crate::transport::LinkRules;

const SEED: u64 = 42;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn lan_link() -> LinkRules {
    LinkRules {
        drop: 0.0,
        delay: Duration::from_micros(200),
        jitter: Duration::from_micros(300),
    }
}

/// `n` nodes all joined through node 0 and converged.
fn cluster(n: usize, timing: Timing) -> Sim {
    let mut sim = Sim::new(n, SEED, timing, lan_link());
    for i in 1..n {
        sim.join(i, &[0]);
    }
    let ok = sim.run_until_true(secs(30.0), secs(0.1), |s| {
        (0..n).all(|v| s.nodes[v].core.num_alive() == n)
    });
    assert!(ok, "cluster of {n} did not converge");
    sim
}

fn status(sim: &Sim, viewer: usize, subject: usize) -> Option<MemberStatus> {
    sim.view(viewer, subject).map(|m| m.status)
}

#[test]
fn join_makes_everyone_alive_everywhere() {
    let mut sim = Sim::new(4, SEED, Timing::lan(), lan_link());
    let mut joins = Vec::new();
    sim.join(1, &[0]);
    sim.join(2, &[0]);
    sim.join(3, &[1]);
    sim.run_until(secs(5.0), &mut |_, node, e| {
        if let MemberEvent::Join(m) = e {
            joins.push((node, m.name.clone()));
        }
    });
    for v in 0..4 {
        assert_eq!(sim.nodes[v].core.num_alive(), 4, "view of node {v}");
        let names: Vec<String> = sim.nodes[v]
            .core
            .members()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, (0..4).map(sim_name).collect::<Vec<_>>());
    }
    // Every node saw the three others join exactly once.
    assert_eq!(joins.len(), 12, "{joins:?}");
}

#[test]
fn crash_is_failed_then_restart_is_alive_again() {
    let mut sim = cluster(5, Timing::lan());
    sim.crash(4);
    let t0 = sim.now();
    let ok = sim.run_until_true(secs(20.0), secs(0.05), |s| {
        (0..4).all(|v| status(s, v, 4) == Some(MemberStatus::Failed))
    });
    assert!(ok, "crash not detected by all");
    let took = sim.now() - t0;
    assert!(took < secs(10.0), "detection took {took:?}");

    sim.restart(4, 2);
    sim.join(4, &[0]);
    let ok = sim.run_until_true(secs(10.0), secs(0.05), |s| {
        (0..5).all(|v| status(s, v, 4) == Some(MemberStatus::Alive))
            && s.nodes[4].core.num_alive() == 5
    });
    assert!(ok, "restarted node not alive everywhere");
    assert_eq!(sim.view(0, 4).unwrap().generation, 2);
}

#[test]
fn graceful_leave_is_left_not_failed() {
    let mut sim = cluster(4, Timing::lan());
    let mut failed = Vec::new();
    sim.apply(3, &mut |_, _, _| {}, |c, now| c.leave(now));
    assert_eq!(status(&sim, 3, 3), Some(MemberStatus::Leaving));
    let until = sim.now() + secs(20.0);
    sim.run_until(until, &mut |_, node, e| {
        if let MemberEvent::Failed(m) = e {
            failed.push((node, m.name.clone()));
        }
    });
    for v in 0..3 {
        assert_eq!(status(&sim, v, 3), Some(MemberStatus::Left), "view of {v}");
    }
    assert!(sim.nodes[3].core.has_left());
    assert!(
        failed.is_empty(),
        "a leave was seen as a failure: {failed:?}"
    );
}

#[test]
fn tags_update_spreads() {
    let mut sim = cluster(4, Timing::lan());
    let mut tags = Tags::new();
    tags.insert("role".into(), "consul".into());
    tags.insert("port".into(), "8300".into());
    let mut updates = 0;
    sim.apply(2, &mut |_, _, _| {}, |c, now| {
        c.set_tags(now, tags.clone()).unwrap()
    });
    let until = sim.now() + secs(5.0);
    sim.run_until(until, &mut |_, _, e| {
        if let MemberEvent::Update(m) = e {
            assert_eq!(m.tags.get("role").map(String::as_str), Some("consul"));
            updates += 1;
        }
        assert!(
            !matches!(e, MemberEvent::Failed(_) | MemberEvent::Left(_)),
            "{e:?}"
        );
    });
    assert_eq!(updates, 3);
    for v in 0..4 {
        let m = sim.view(v, 2).unwrap();
        assert_eq!(m.tags, tags);
        assert_eq!(m.status, MemberStatus::Alive);
    }
}

#[test]
fn force_leave_turns_failed_into_left_everywhere_and_prune_removes() {
    let mut sim = cluster(5, Timing::lan());
    let err = sim.nodes[0]
        .core
        .force_leave(std::time::Instant::now(), &sim_name(4), false);
    assert!(matches!(err, Err(GossipError::MemberAlive(_))));
    sim.crash(4);
    sim.crash(3);
    let ok = sim.run_until_true(secs(30.0), secs(0.1), |s| {
        (0..3).all(|v| {
            status(s, v, 4) == Some(MemberStatus::Failed)
                && status(s, v, 3) == Some(MemberStatus::Failed)
        })
    });
    assert!(ok);
    let mut events = Vec::new();
    sim.apply(0, &mut |_, _, e| events.push(e.clone()), |c, now| {
        c.force_leave(now, &sim_name(4), false).unwrap()
    });
    assert!(
        matches!(&events[..], [MemberEvent::Left(m)] if m.name == sim_name(4)),
        "{events:?}"
    );
    let ok = sim.run_until_true(secs(5.0), secs(0.05), |s| {
        (0..3).all(|v| status(s, v, 4) == Some(MemberStatus::Left))
    });
    assert!(ok, "force-leave did not spread");
    events.clear();
    sim.apply(0, &mut |_, _, e| events.push(e.clone()), |c, now| {
        c.force_leave(now, &sim_name(3), true).unwrap()
    });
    assert!(
        matches!(&events[..], [MemberEvent::Left(_), MemberEvent::Reap(_)]),
        "{events:?}"
    );
    assert_eq!(sim.view(0, 3), None);
    assert!(matches!(
        sim.nodes[0]
            .core
            .force_leave(std::time::Instant::now(), "nope", false),
        Err(GossipError::UnknownMember(_))
    ));
}

#[test]
fn failed_and_left_members_are_reaped_after_their_timeouts() {
    let timing = Timing {
        reconnect_timeout: secs(20.0),
        tombstone_timeout: secs(10.0),
        ..Timing::lan()
    };
    let mut sim = cluster(4, timing);
    sim.crash(3);
    sim.apply(2, &mut |_, _, _| {}, |c, now| c.leave(now));
    let mut reaped = Vec::new();
    let until = sim.now() + secs(8.0);
    sim.run_until(until, &mut |_, _, _| {});
    assert_eq!(status(&sim, 0, 3), Some(MemberStatus::Failed));
    assert_eq!(status(&sim, 0, 2), Some(MemberStatus::Left));
    let until = sim.now() + secs(40.0);
    sim.run_until(until, &mut |t, node, e| {
        if let MemberEvent::Reap(m) = e {
            if node == 0 {
                reaped.push((t, m.name.clone(), m.status));
            }
        }
    });
    assert_eq!(reaped.len(), 2, "{reaped:?}");
    // The left member goes first (shorter tombstone timeout).
    assert_eq!(reaped[0].1, sim_name(2));
    assert_eq!(reaped[0].2, MemberStatus::Left);
    assert_eq!(reaped[1].1, sim_name(3));
    assert_eq!(sim.nodes[0].core.members().len(), 2);
}

#[test]
fn same_name_at_another_address_is_refused() {
    let mut sim = cluster(3, Timing::lan());
    let impostor = sim.add_node(&sim_name(1), "10.200.0.1:8301".parse().unwrap(), Vec::new());
    let seed_addr = sim.nodes[0].addr;
    sim.apply(impostor, &mut |_, _, _| {}, |c, now| {
        let id = c.next_join_id();
        c.join(now, id, &[seed_addr])
    });
    // Capture the refusal by running the impostor's inbound packets.
    let until = sim.now() + secs(1.0);
    sim.run_until(until, &mut |_, _, _| {});
    assert_eq!(
        sim.nodes[impostor].core.num_alive(),
        1,
        "impostor must not be admitted"
    );
    assert_eq!(status(&sim, 0, 1), Some(MemberStatus::Alive));
    assert_eq!(sim.view(0, 1).unwrap().addr, sim.nodes[1].addr);
}

#[test]
fn join_reply_reports_the_conflict() {
    use std::time::Instant;
    let mut sim = cluster(2, Timing::lan());
    let impostor = sim.add_node(&sim_name(1), "10.200.0.1:8301".parse().unwrap(), Vec::new());
    let now = Instant::now();
    let (seed_addr, imp_addr) = (sim.nodes[0].addr, sim.nodes[impostor].addr);
    let join = sim.nodes[impostor].core.next_join_id();
    let plan = sim.nodes[impostor].core.join(now, join, &[seed_addr]);
    let (_, request) = &plan.sends[0];
    let answer = sim.nodes[0].core.handle_packet(now, imp_addr, request);
    let (_, refusal) = &answer.sends[0];
    let back = sim.nodes[impostor]
        .core
        .handle_packet(now, seed_addr, refusal);
    assert_eq!(
        back.joins,
        vec![JoinReply::Refused {
            join,
            from: sim.nodes[0].addr,
            existing: sim.nodes[1].addr
        }]
    );
}

#[test]
fn wrong_key_cannot_join_and_is_counted() {
    let key = keygen();
    let mut sim = Sim::new(0, SEED, Timing::lan(), lan_link());
    let a = sim.add_node("a", "10.0.0.1:8301".parse().unwrap(), vec![key.clone()]);
    let b = sim.add_node("b", "10.0.0.2:8301".parse().unwrap(), vec![key]);
    let stranger = sim.add_node("c", "10.0.0.3:8301".parse().unwrap(), vec![keygen()]);
    let plain = sim.add_node("d", "10.0.0.4:8301".parse().unwrap(), Vec::new());
    sim.join(b, &[a]);
    sim.join(stranger, &[a]);
    sim.join(plain, &[a]);
    sim.run_for(secs(5.0));
    assert_eq!(sim.nodes[a].core.num_alive(), 2);
    assert_eq!(sim.nodes[stranger].core.num_alive(), 1);
    assert_eq!(sim.nodes[plain].core.num_alive(), 1);
    let stats = sim.nodes[a].core.stats();
    assert!(stats.decrypt_failures >= 2, "{stats:?}");
    assert!(stats.packets_dropped >= 2);
    let last = stats.last_drop.clone().unwrap();
    assert!(last.starts_with("gossip packet from 10.0.0."), "{last}");
}

#[test]
fn hint_suspect_detects_long_before_the_probe_would() {
    // Probing every 30 s: without the hint a crash takes tens of seconds.
    let timing = Timing {
        probe_interval: secs(30.0),
        ..Timing::lan()
    };
    let mut sim = cluster(4, timing);
    sim.crash(3);
    let t0 = sim.now();
    sim.apply(0, &mut |_, _, _| {}, |c, now| {
        c.hint_suspect(now, &sim_name(3)).unwrap()
    });
    let ok = sim.run_until_true(secs(5.0), secs(0.05), |s| {
        status(s, 0, 3) == Some(MemberStatus::Failed)
    });
    assert!(ok, "hinted crash not detected within 5 s");
    let took = sim.now() - t0;
    assert!(took <= secs(2.5), "took {took:?}");
    // A hint about a live member is refuted: it stays alive.
    sim.apply(0, &mut |_, _, _| {}, |c, now| {
        c.hint_suspect(now, &sim_name(2)).unwrap()
    });
    sim.run_for(secs(5.0));
    assert_eq!(status(&sim, 0, 2), Some(MemberStatus::Alive));
}

#[test]
fn partition_heals_and_members_come_back() {
    let timing = Timing {
        reconnect_interval: secs(5.0),
        ..Timing::lan()
    };
    let mut sim = cluster(6, timing);
    let left: Vec<_> = (0..3).map(|i| sim.nodes[i].addr).collect();
    let right: Vec<_> = (3..6).map(|i| sim.nodes[i].addr).collect();
    sim.net.partition(&[&left, &right]);
    let ok = sim.run_until_true(secs(30.0), secs(0.1), |s| {
        status(s, 0, 5) == Some(MemberStatus::Failed)
            && status(s, 5, 0) == Some(MemberStatus::Failed)
    });
    assert!(ok, "partition not detected");
    sim.net.heal();
    let ok = sim.run_until_true(secs(120.0), secs(0.5), |s| {
        (0..6).all(|v| s.nodes[v].core.num_alive() == 6)
    });
    assert!(ok, "cluster did not merge back after the partition healed");
}

#[test]
fn full_state_answers_are_rate_limited() {
    let mut sim = cluster(3, Timing::lan());
    // A fresh one-second window, after the cluster's own exchanges.
    let now = sim.instant() + Duration::from_secs(2);
    let mut answered = 0;
    for i in 0..50u16 {
        let stranger = sim.add_node(
            &format!("s{i}"),
            format!("10.100.0.{}:8301", i + 1).parse().unwrap(),
            Vec::new(),
        );
        let addr = sim.nodes[stranger].addr;
        let seed_addr = sim.nodes[0].addr;
        let join = sim.nodes[stranger].core.next_join_id();
        let plan = sim.nodes[stranger].core.join(now, join, &[seed_addr]);
        let answer = sim.nodes[0].core.handle_packet(now, addr, &plan.sends[0].1);
        // JoinAccept alone, or JoinAccept plus the member list.
        if answer.sends.len() > 1 {
            answered += 1;
        }
    }
    assert_eq!(answered, 20);
    // A second later the budget is back.
    let later = now + Duration::from_millis(1001);
    let stranger = sim.add_node("late", "10.101.0.1:8301".parse().unwrap(), Vec::new());
    let (addr, seed_addr) = (sim.nodes[stranger].addr, sim.nodes[0].addr);
    let join = sim.nodes[stranger].core.next_join_id();
    let plan = sim.nodes[stranger].core.join(later, join, &[seed_addr]);
    let answer = sim.nodes[0]
        .core
        .handle_packet(later, addr, &plan.sends[0].1);
    assert!(answer.sends.len() > 1);
}

#[test]
fn a_member_has_merged_the_pools_state_only_after_exchanging_it() {
    let mut sim = Sim::new(3, SEED, Timing::lan(), lan_link());
    sim.join(1, &[0]);
    sim.run_until_true(secs(10.0), secs(0.05), |s| s.nodes[0].core.num_alive() == 2);
    // Node 2 has not joined: it knows only itself, and nothing says that is the pool.
    assert!(!sim.nodes[2].core.state_merged());
    sim.join(2, &[1]);
    let merged = sim.run_until_true(
        secs(Timing::lan().push_pull_interval.as_secs_f64() * 2.0 + 5.0),
        secs(0.1),
        |s| s.nodes[2].core.state_merged(),
    );
    assert!(merged, "node 2 never merged another member's full state");
    assert_eq!(sim.nodes[2].core.num_alive(), 3);
    // Its list counts as the pool's once it has also run two push-pull intervals.
    sim.run_for(Timing::lan().push_pull_interval * 2);
    assert!(sim.nodes[2].core.settled(sim.instant()));
    assert!(!sim.nodes[2].core.settled(sim.instant() - sim.now()));
}
