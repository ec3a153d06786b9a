//! Unit tests of the state machine, driven through `apply` exactly as Raft drives it.

use cairn_types::{HealthCheck, Node, NodeService, Session, CRITICAL, PASSING};
use proptest::prelude::*;

use super::*;

fn node(name: &str) -> Node {
    Node {
        node: name.into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        ..Default::default()
    }
}

fn register(
    st: &mut State,
    idx: u64,
    n: &str,
    svc: Option<(&str, &str)>,
    checks: Vec<HealthCheck>,
) -> Outcome {
    let service = svc.map(|(id, name)| NodeService {
        id: id.into(),
        service: name.into(),
        port: 80,
        ..Default::default()
    });
    st.apply(
        idx,
        &Command::Register(Registration {
            node: node(n),
            service,
            checks,
            ..Default::default()
        }),
    )
}

fn check(id: &str, svc: &str, status: &str) -> HealthCheck {
    HealthCheck {
        check_id: id.into(),
        name: id.into(),
        service_id: svc.into(),
        status: status.into(),
        ..Default::default()
    }
}

fn kv(verb: KvVerb, key: &str, value: &str) -> Command {
    let mut op = KvOp::new(verb, key);
    op.value = value.as_bytes().to_vec();
    Command::Kv(op)
}

fn kv_with(verb: KvVerb, key: &str, f: impl FnOnce(&mut KvOp)) -> Command {
    let mut op = KvOp::new(verb, key);
    f(&mut op);
    Command::Kv(op)
}

#[test]
fn cas_zero_creates_only_once() {
    let mut st = State::new();
    assert_eq!(st.apply(1, &kv(KvVerb::Cas, "a", "1")), Outcome::Bool(true));
    assert_eq!(
        st.apply(2, &kv(KvVerb::Cas, "a", "2")),
        Outcome::Bool(false)
    );
    let (e, idx) = st.kv_get("a");
    assert_eq!(e.unwrap().value, b"1");
    assert_eq!(idx, 1);
    // cas with the current ModifyIndex wins, a stale one loses.
    let ok = kv_with(KvVerb::Cas, "a", |o| o.index = 1);
    assert_eq!(st.apply(3, &ok), Outcome::Bool(true));
    assert_eq!(st.apply(4, &ok), Outcome::Bool(false));
}

#[test]
fn delete_leaves_monotonic_prefix_index() {
    let mut st = State::new();
    st.apply(1, &kv(KvVerb::Set, "p/a", "1"));
    st.apply(2, &kv(KvVerb::Set, "p/b", "1"));
    st.apply(3, &kv(KvVerb::Set, "other", "1"));
    assert_eq!(st.kv_list("p/").1, 2);
    st.apply(4, &kv(KvVerb::Delete, "p/b", ""));
    assert_eq!(
        st.kv_list("p/").1,
        4,
        "deleting the newest key must not lower the index"
    );
    assert_eq!(st.kv_get("p/b").1, 4);
    st.apply(5, &kv(KvVerb::Set, "other", "2"));
    assert_eq!(
        st.kv_list("p/").1,
        4,
        "writes elsewhere leave the prefix index alone"
    );
}

#[test]
fn keys_with_separator() {
    let mut st = State::new();
    for (i, k) in ["web/a", "web/sub/x", "web/sub/y", "web/z"]
        .iter()
        .enumerate()
    {
        st.apply(i as u64 + 1, &kv(KvVerb::Set, k, "v"));
    }
    let (keys, _) = st.kv_keys("web/", "/");
    assert_eq!(keys, vec!["web/a", "web/sub/", "web/z"]);
}

fn session(id: &str, node: &str, delay_ns: u64, behavior: &str) -> Command {
    Command::SessionCreate {
        session: Session {
            id: id.into(),
            node: node.into(),
            lock_delay: delay_ns,
            behavior: behavior.into(),
            node_checks: vec![cairn_types::SERF_CHECK_ID.into()],
            ..Default::default()
        },
    }
}

#[test]
fn locks_and_lock_delay() {
    let mut st = State::new();
    register(
        &mut st,
        1,
        "n1",
        None,
        vec![check("serfHealth", "", PASSING)],
    );
    assert_eq!(
        st.apply(2, &session("s1", "n1", 15_000_000_000, "release")),
        Outcome::None
    );
    assert_eq!(
        st.apply(3, &session("s2", "n1", 0, "release")),
        Outcome::None
    );
    let acq = |s: &str, now: u64| {
        kv_with(KvVerb::Lock, "lock", |o| {
            o.session = s.into();
            o.now_ms = now;
        })
    };
    assert_eq!(st.apply(4, &acq("s1", 1000)), Outcome::Bool(true));
    assert_eq!(st.kv_get("lock").0.unwrap().lock_index, 1);
    assert_eq!(
        st.apply(5, &acq("s2", 1000)),
        Outcome::Bool(false),
        "held by s1"
    );
    assert_eq!(
        st.apply(6, &acq("s1", 1000)),
        Outcome::Bool(true),
        "re-acquire by holder"
    );
    assert_eq!(
        st.kv_get("lock").0.unwrap().lock_index,
        1,
        "no increment on re-acquire"
    );
    // Invalidate s1 at t=2000: the key is released and lock-delay runs to 17000.
    assert_eq!(
        st.apply(
            7,
            &Command::SessionDestroy {
                id: "s1".into(),
                now_ms: 2000
            }
        ),
        Outcome::Bool(true)
    );
    assert_eq!(st.kv_get("lock").0.unwrap().session, "");
    assert_eq!(
        st.apply(8, &acq("s2", 16_999)),
        Outcome::Bool(false),
        "lock-delay"
    );
    assert_eq!(st.apply(9, &acq("s2", 17_001)), Outcome::Bool(true));
    assert_eq!(st.kv_get("lock").0.unwrap().lock_index, 2);
    // Unknown sessions are an error, not a false.
    assert!(matches!(
        st.apply(10, &acq("nope", 20_000)),
        Outcome::Error(ApplyError::InvalidSession(_))
    ));
}

#[test]
fn critical_check_invalidates_session_and_delete_behavior_removes_keys() {
    let mut st = State::new();
    register(
        &mut st,
        1,
        "n1",
        None,
        vec![check("serfHealth", "", PASSING)],
    );
    st.apply(2, &session("s1", "n1", 0, "delete"));
    st.apply(3, &kv_with(KvVerb::Lock, "k", |o| o.session = "s1".into()));
    st.apply(
        4,
        &Command::UpdateCheck(CheckUpdate {
            node: "n1".into(),
            check_id: "serfHealth".into(),
            status: CRITICAL.into(),
            ..Default::default()
        }),
    );
    assert!(st.session("s1").0.is_none());
    assert!(
        st.kv_get("k").0.is_none(),
        "behavior=delete removes held keys"
    );
    // A session cannot be created against a critical check.
    assert!(matches!(
        st.apply(5, &session("s2", "n1", 0, "release")),
        Outcome::Error(ApplyError::CriticalCheck(_))
    ));
}

#[test]
fn idempotent_register_keeps_indexes() {
    let mut st = State::new();
    register(
        &mut st,
        1,
        "n1",
        Some(("web1", "web")),
        vec![check("c1", "web1", PASSING)],
    );
    assert_eq!(st.service_name_index("web"), 1);
    register(
        &mut st,
        2,
        "n1",
        Some(("web1", "web")),
        vec![check("c1", "web1", PASSING)],
    );
    assert_eq!(
        st.service_name_index("web"),
        1,
        "same registration changes nothing"
    );
    register(&mut st, 3, "n1", Some(("db1", "db")), vec![]);
    assert_eq!(
        st.service_name_index("web"),
        1,
        "another service leaves web alone"
    );
    register(&mut st, 4, "n1", None, vec![check("c1", "web1", CRITICAL)]);
    assert_eq!(st.service_name_index("web"), 4);
    let (inst, _) = st.service_health("web");
    assert_eq!(inst.len(), 1);
    assert_eq!(inst[0].aggregate_status(), CRITICAL);
}

#[test]
fn check_for_unknown_service_is_rejected_whole() {
    let mut st = State::new();
    let out = register(&mut st, 1, "n1", None, vec![check("c", "missing", PASSING)]);
    assert!(matches!(out, Outcome::Error(ApplyError::UnknownService(_))));
    assert!(st.node("n1").0.is_none());
}

#[test]
fn deregister_node_removes_everything_and_sessions() {
    let mut st = State::new();
    register(
        &mut st,
        1,
        "n1",
        Some(("web1", "web")),
        vec![check("serfHealth", "", PASSING)],
    );
    st.apply(2, &session("s1", "n1", 0, "release"));
    st.apply(
        3,
        &Command::Deregister(Deregistration {
            node: "n1".into(),
            ..Default::default()
        }),
    );
    assert!(st.node("n1").0.is_none());
    assert!(st.sessions().0.is_empty());
    assert_eq!(st.service_name_index("web"), 3);
}

#[test]
fn txn_is_all_or_nothing() {
    let mut st = State::new();
    st.apply(1, &kv(KvVerb::Set, "a", "1"));
    let mut bad = KvOp::new(KvVerb::Cas, "a");
    bad.index = 99;
    let txn = TxnRequest {
        ops: vec![KvOp::new(KvVerb::Set, "b"), bad],
    };
    match st.apply(2, &Command::Txn(txn)) {
        Outcome::Txn(r) => {
            assert_eq!(r.errors.len(), 1);
            assert_eq!(r.errors[0].op_index, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(st.kv_get("b").0.is_none(), "first op must be rolled back");
    let ok = TxnRequest {
        ops: vec![KvOp::new(KvVerb::Set, "b"), KvOp::new(KvVerb::Get, "a")],
    };
    match st.apply(3, &Command::Txn(ok)) {
        Outcome::Txn(r) => {
            assert!(r.errors.is_empty());
            assert_eq!(r.results.len(), 2);
            assert_eq!(r.results[1].value, b"1");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(st.index, 3);
}

fn arb_cmd() -> impl Strategy<Value = Command> {
    let key = prop::sample::select(vec!["a", "a/b", "a/c", "b"]);
    let verb = prop::sample::select(vec![
        KvVerb::Set,
        KvVerb::Cas,
        KvVerb::Delete,
        KvVerb::DeleteTree,
        KvVerb::DeleteCas,
        KvVerb::Lock,
        KvVerb::Unlock,
    ]);
    let kv = (verb, key, 0u64..6, prop::sample::select(vec!["", "s1"])).prop_map(
        |(verb, key, index, s)| {
            let mut op = KvOp::new(verb, key);
            op.index = index;
            op.session = s.into();
            op.value = vec![index as u8];
            Command::Kv(op)
        },
    );
    // The tombstone GC's reap, at any index (even above the current one).
    let reap = (0u64..80).prop_map(|upto| Command::KvReap { upto });
    prop_oneof![6 => kv, 1 => reap]
}

proptest! {
    // Blocking indexes never go backwards, whatever sequence of KV writes is applied,
    // and a snapshot round trip (serde) restores an identical state.
    #[test]
    fn indexes_are_monotonic_and_snapshots_round_trip(cmds in prop::collection::vec(arb_cmd(), 1..60)) {
        let mut st = State::new();
        register(&mut st, 1, "n1", None, vec![check("serfHealth", "", PASSING)]);
        st.apply(2, &session("s1", "n1", 0, "release"));
        let mut last = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for (i, c) in cmds.iter().enumerate() {
            st.apply(i as u64 + 3, c);
            let now = (
                st.kv_list("a").1,
                st.kv_get("a").1,
                st.kv_list("").1,
                st.kv_list("a/").1,
                st.kv_get("a/b").1,
                st.kv_list("b").1,
            );
            prop_assert!(
                now.0 >= last.0 && now.1 >= last.1 && now.2 >= last.2
                    && now.3 >= last.3 && now.4 >= last.4 && now.5 >= last.5,
                "index went backwards after {:?}: {:?} -> {:?}", c, last, now
            );
            last = now;
        }
        let bytes = serde_json::to_vec(&st).unwrap();
        let back: State = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, st);
    }
}

proptest! {
    // A transaction that fails anywhere leaves no trace: the state after it equals the
    // state before it (apart from the applied index), whatever the earlier ops did.
    #[test]
    fn failed_txn_rolls_back_exactly(setup in prop::collection::vec(arb_cmd(), 0..30),
                                     ops in prop::collection::vec(arb_cmd(), 1..20)) {
        let mut st = State::new();
        register(&mut st, 1, "n1", None, vec![check("serfHealth", "", PASSING)]);
        st.apply(2, &session("s1", "n1", 0, "release"));
        for (i, c) in setup.iter().enumerate() {
            st.apply(i as u64 + 3, c);
        }
        let before = st.clone();
        let mut kv_ops: Vec<KvOp> = ops.into_iter().filter_map(|c| match c { Command::Kv(op) => Some(op), _ => None }).collect();
        let mut fail = KvOp::new(KvVerb::Cas, "a");
        fail.index = 1_000_000;
        kv_ops.push(fail);
        let idx = before.index + 1;
        let out = st.apply(idx, &Command::Txn(TxnRequest { ops: kv_ops }));
        prop_assert!(matches!(out, Outcome::Txn(ref r) if !r.errors.is_empty()));
        let mut expected = before;
        expected.index = idx;
        prop_assert_eq!(st, expected);
    }
}

fn arb_catalog_cmd() -> impl Strategy<Value = Command> {
    let node = prop::sample::select(vec!["n1", "n2"]);
    let id = prop::sample::select(vec!["a", "b", "c"]);
    let name = prop::sample::select(vec!["web", "Web", "db"]);
    prop_oneof![
        (node.clone(), id.clone(), name).prop_map(|(n, id, name)| Command::Register(
            Registration {
                node: node_named(n),
                service: Some(NodeService {
                    id: id.into(),
                    service: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        )),
        (node.clone(), id).prop_map(|(n, id)| Command::Deregister(Deregistration {
            node: n.into(),
            service_id: Some(id.into()),
            ..Default::default()
        })),
        node.prop_map(|n| Command::Deregister(Deregistration {
            node: n.into(),
            ..Default::default()
        })),
    ]
}

fn node_named(n: &str) -> Node {
    node(n)
}

proptest! {
    // The service-name index always equals what a full scan of the catalog finds.
    #[test]
    fn name_index_matches_a_scan(cmds in prop::collection::vec(arb_catalog_cmd(), 1..40)) {
        let mut st = State::new();
        for (i, c) in cmds.iter().enumerate() {
            st.apply(i as u64 + 1, c);
            for name in ["web", "Web", "db", "WEB"] {
                let mut via_index: Vec<(String, String)> = st
                    .service_health_ignore_case(name)
                    .iter()
                    .map(|h| (h.node.node.clone(), h.service.id.clone()))
                    .collect();
                let mut via_scan: Vec<(String, String)> = st
                    .node_records()
                    .flat_map(|r| r.services.values().map(move |s| (r, s)))
                    .filter(|(_, s)| s.service.eq_ignore_ascii_case(name))
                    .map(|(r, s)| (r.node.node.clone(), s.id.clone()))
                    .collect();
                via_index.sort();
                via_scan.sort();
                prop_assert_eq!(via_index, via_scan);
            }
        }
    }
}

#[test]
fn reaping_drops_old_tombstones_and_keeps_prefix_indexes() {
    let mut st = State::new();
    st.apply(1, &Command::Kv(KvOp::new(KvVerb::Set, "web/a")));
    st.apply(2, &Command::Kv(KvOp::new(KvVerb::Set, "web/b")));
    st.apply(3, &Command::Kv(KvOp::new(KvVerb::Set, "db/a")));
    st.apply(4, &Command::Kv(KvOp::new(KvVerb::Delete, "web/b")));
    st.apply(5, &Command::Kv(KvOp::new(KvVerb::Set, "flat")));
    st.apply(6, &Command::Kv(KvOp::new(KvVerb::Delete, "flat")));
    st.apply(7, &Command::Kv(KvOp::new(KvVerb::Delete, "db/a")));
    assert_eq!(st.kv_tombstone_count(), 3);
    assert_eq!(st.kv_max_tombstone(), Some(7));
    assert_eq!(st.kv_list("web/").1, 4);

    // Reap up to 6: the tombstones of web/b (4) and flat (6) go, db/a's (7) stays.
    st.apply(8, &Command::KvReap { upto: 6 });
    assert_eq!(st.kv_tombstone_count(), 1);
    assert_eq!(st.kv_max_tombstone(), Some(7));
    // web/ still reports 4 although only web/a (index 1) is left: no going backwards.
    assert_eq!(st.kv_list("web/").1, 4);
    assert_eq!(st.kv_list("web/a").1, 4);
    // Other buckets are not raised by web/'s floor.
    assert_eq!(st.kv_list("db/").1, 7);
    // A missing key reports the table index, which is above any reaped tombstone.
    assert_eq!(st.kv_get("web/b"), (None, 7));
    st.apply(9, &Command::KvReap { upto: 9 });
    assert_eq!(st.kv_tombstone_count(), 0);
    assert_eq!(st.kv_list("db/").1, 7);
    // Snapshots carry the floors.
    let back: State = serde_json::from_slice(&serde_json::to_vec(&st).unwrap()).unwrap();
    assert_eq!(back, st);
}

#[test]
fn reaped_buckets_are_capped() {
    let mut st = State::new();
    let n = crate::kv::MAX_REAPED_BUCKETS as u64 + 10;
    for i in 0..n {
        let key = format!("k{i}/x");
        st.apply(2 * i + 1, &Command::Kv(KvOp::new(KvVerb::Set, &key)));
        st.apply(2 * i + 2, &Command::Kv(KvOp::new(KvVerb::Delete, &key)));
    }
    let before: Vec<u64> = (0..n).map(|i| st.kv_list(&format!("k{i}/")).1).collect();
    st.apply(2 * n + 1, &Command::KvReap { upto: 2 * n });
    assert_eq!(st.kv_tombstone_count(), 0);
    assert!(st.kv_reaped.buckets_len() <= crate::kv::MAX_REAPED_BUCKETS);
    for (i, b) in before.iter().enumerate() {
        assert!(
            st.kv_list(&format!("k{i}/")).1 >= *b,
            "bucket k{i}/ went backwards"
        );
    }
}
