//! Hand-written histories (linearizable and not, with indeterminate operations) and a
//! seeded property test: histories generated from a sequential run, with each operation's
//! interval stretched around its instant, are linearizable; corrupting one read is not.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn e(client: usize, call: u64, ret: u64, op: Op, outcome: Outcome) -> Entry {
    Entry {
        client,
        via: String::new(),
        key: "k".into(),
        op,
        call,
        ret,
        outcome,
    }
}

fn w(v: &str) -> Op {
    Op::Write { value: v.into() }
}

fn cas(expect: Option<&str>, v: &str) -> Op {
    Op::Cas {
        expect: expect.map(String::from),
        value: v.into(),
    }
}

fn acq(s: &str, v: &str) -> Op {
    Op::Acquire {
        session: s.into(),
        value: v.into(),
    }
}

fn rel(s: &str, v: &str) -> Op {
    Op::Release {
        session: s.into(),
        value: v.into(),
    }
}

fn saw(v: &str) -> Outcome {
    Outcome::Read(Some(Observed {
        value: v.into(),
        holder: None,
    }))
}

fn saw_held(v: &str, h: &str) -> Outcome {
    Outcome::Read(Some(Observed {
        value: v.into(),
        holder: Some(h.into()),
    }))
}

const OK: Outcome = Outcome::Bool(true);
const NO: Outcome = Outcome::Bool(false);
const ABSENT: Outcome = Outcome::Read(None);
const UNKNOWN: Outcome = Outcome::Unknown;

fn verdict(h: &[Entry]) -> Verdict {
    search::check_key(h, DEFAULT_BUDGET)
}

#[test]
fn sequential_reads_see_the_last_write() {
    let h = [
        e(0, 1, 2, Op::Read, ABSENT),
        e(0, 3, 4, w("a"), OK),
        e(1, 5, 6, Op::Read, saw("a")),
        e(1, 7, 8, w("b"), OK),
        e(0, 9, 10, Op::Read, saw("b")),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn a_stale_read_after_a_completed_write_is_a_violation() {
    let h = [
        e(0, 1, 2, w("a"), OK),
        e(0, 3, 4, w("b"), OK),
        e(1, 5, 6, Op::Read, saw("a")),
    ];
    assert_eq!(verdict(&h), Verdict::Violation);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in ["a", "b"] {
        let h = [
            e(0, 1, 2, w("a"), OK),
            e(0, 3, 6, w("b"), OK),
            e(1, 4, 5, Op::Read, saw(seen)),
        ];
        assert_eq!(verdict(&h), Verdict::Linearizable, "saw {seen}");
    }
}

#[test]
fn reads_must_agree_on_one_order_of_concurrent_writes() {
    // Two writes overlap; two later reads in sequence see b then a: a after b means the
    // first read's b was overwritten by a, so a finished last; but then a second
    // sequence seeing a then b is impossible together with it.
    let h = [
        e(0, 1, 10, w("a"), OK),
        e(1, 2, 9, w("b"), OK),
        e(2, 11, 12, Op::Read, saw("b")),
        e(3, 13, 14, Op::Read, saw("a")),
    ];
    assert_eq!(verdict(&h), Verdict::Violation);
}

#[test]
fn a_read_cannot_see_a_value_never_written() {
    let h = [e(0, 1, 2, w("a"), OK), e(1, 3, 4, Op::Read, saw("z"))];
    assert_eq!(verdict(&h), Verdict::Violation);
}

#[test]
fn an_indeterminate_write_may_take_effect_late_or_never() {
    // Seen long after its invocation (even after a later write completed).
    let late = [
        e(0, 1, 0, w("a"), UNKNOWN),
        e(1, 2, 3, w("b"), OK),
        e(2, 10, 11, Op::Read, saw("a")),
    ];
    assert_eq!(verdict(&late), Verdict::Linearizable);
    // Never seen.
    let never = [
        e(0, 1, 0, w("a"), UNKNOWN),
        e(1, 2, 3, Op::Read, ABSENT),
        e(2, 4, 5, Op::Read, ABSENT),
    ];
    assert_eq!(verdict(&never), Verdict::Linearizable);
}

#[test]
fn an_indeterminate_write_takes_effect_at_most_once() {
    // a, then b over it, then a again: a would have to happen twice.
    let h = [
        e(0, 1, 0, w("a"), UNKNOWN),
        e(1, 2, 3, Op::Read, saw("a")),
        e(1, 4, 5, w("b"), OK),
        e(1, 6, 7, Op::Read, saw("b")),
        e(2, 8, 9, Op::Read, saw("a")),
    ];
    assert_eq!(verdict(&h), Verdict::Violation);
}

#[test]
fn an_indeterminate_write_cannot_take_effect_before_its_invocation() {
    let h = [e(1, 1, 2, Op::Read, saw("a")), e(0, 3, 0, w("a"), UNKNOWN)];
    assert_eq!(verdict(&h), Verdict::Violation);
}

#[test]
fn check_and_set_succeeds_only_on_the_expected_value() {
    let ok = [
        e(0, 1, 2, cas(None, "a"), OK),
        e(1, 3, 4, cas(None, "x"), NO),
        e(0, 5, 6, cas(Some("a"), "b"), OK),
        e(1, 7, 8, cas(Some("a"), "y"), NO),
        e(1, 9, 10, Op::Read, saw("b")),
    ];
    assert_eq!(verdict(&ok), Verdict::Linearizable);
    // Two sequential CAS from the same expected value cannot both succeed.
    let both = [
        e(0, 1, 2, w("a"), OK),
        e(0, 3, 4, cas(Some("a"), "b"), OK),
        e(1, 5, 6, cas(Some("a"), "c"), OK),
    ];
    assert_eq!(verdict(&both), Verdict::Violation);
    // A CAS that failed although nothing else wrote.
    let spurious = [e(0, 1, 2, w("a"), OK), e(0, 3, 4, cas(Some("a"), "b"), NO)];
    assert_eq!(verdict(&spurious), Verdict::Violation);
}

#[test]
fn an_indeterminate_cas_applies_only_if_its_condition_holds() {
    let h = [
        e(0, 1, 2, w("a"), OK),
        e(1, 3, 0, cas(Some("z"), "b"), UNKNOWN),
        e(0, 4, 5, Op::Read, saw("b")),
    ];
    assert_eq!(verdict(&h), Verdict::Violation);
    let h = [
        e(0, 1, 2, w("a"), OK),
        e(1, 3, 0, cas(Some("a"), "b"), UNKNOWN),
        e(0, 4, 5, Op::Read, saw("b")),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn one_lock_holder_at_a_time() {
    let ok = [
        e(0, 1, 2, acq("s1", "1"), OK),
        e(1, 3, 4, acq("s2", "2"), NO),
        e(1, 5, 6, Op::Read, saw_held("1", "s1")),
        e(1, 7, 8, rel("s2", "3"), NO),
        e(0, 9, 10, rel("s1", "4"), OK),
        e(1, 11, 12, acq("s2", "5"), OK),
        e(0, 13, 14, Op::Read, saw_held("5", "s2")),
    ];
    assert_eq!(verdict(&ok), Verdict::Linearizable);
    let two_holders = [
        e(0, 1, 2, acq("s1", "1"), OK),
        e(1, 3, 4, acq("s2", "2"), OK),
    ];
    assert_eq!(verdict(&two_holders), Verdict::Violation);
    // A plain write keeps the holder.
    let keeps = [
        e(0, 1, 2, acq("s1", "1"), OK),
        e(1, 3, 4, w("x"), OK),
        e(1, 5, 6, Op::Read, saw_held("x", "s1")),
        e(1, 7, 8, acq("s2", "2"), NO),
    ];
    assert_eq!(verdict(&keeps), Verdict::Linearizable);
}

#[test]
fn check_reports_per_key_and_shrinks_to_the_violation() {
    let h = History::new();
    // Key "good": a long clean run.
    for i in 0..50 {
        let p = h.invoke(0, "n1", "good", w(&format!("g{i}")));
        h.complete(p, OK);
        let p = h.invoke(1, "n1", "good", Op::Read);
        h.complete(p, saw(&format!("g{i}")));
    }
    // Key "bad": a deposed leader's read among many good ones.
    for i in 0..30 {
        let p = h.invoke(0, "n1", "bad", w(&format!("b{i}")));
        h.complete(p, OK);
    }
    let p = h.invoke(2, "n1", "bad", Op::Read);
    h.complete(p, saw("b10"));
    for i in 30..40 {
        let p = h.invoke(0, "n1", "bad", w(&format!("b{i}")));
        h.complete(p, OK);
    }
    let r = check(&h.entries(), DEFAULT_BUDGET);
    assert_eq!(r.keys, 2);
    assert_eq!(r.ops, 100 + 41);
    assert!(r.undecided.is_empty());
    assert_eq!(r.violations.len(), 1, "{r}");
    let v = &r.violations[0];
    assert_eq!(v.key, "bad");
    // The stale read, the write it missed, and what that write overwrote (relaxed or not).
    let definite: Vec<&Entry> = v
        .window
        .iter()
        .filter(|e| e.outcome != Outcome::Unknown)
        .collect();
    assert!(definite.iter().any(|e| e.outcome == saw("b10")), "{v}");
    assert!(v.window.len() <= 4, "window too large:\n{v}");
    assert!(
        v.window
            .iter()
            .all(|e| !matches!(&e.op, Op::Write { value } if value == "b35")),
        "writes after the read are outside the window:\n{v}"
    );
    println!("{r}");
}

#[test]
fn unknown_reads_are_ignored_and_the_budget_bounds_the_search() {
    let h = [
        e(0, 1, 2, w("a"), OK),
        e(1, 3, 0, Op::Read, UNKNOWN),
        e(1, 4, 5, Op::Read, saw("a")),
    ];
    let r = check(&h, DEFAULT_BUDGET);
    assert_eq!(r.ops, 2);
    assert!(r.ok(), "{r}");
    // Many overlapping indeterminate writes, each value read once, and an impossible
    // read: the exhaustive search is exponential; a small budget ends it undecided.
    let mut h: Vec<Entry> = (0..40)
        .map(|i| e(i, i as u64 + 1, 0, w(&format!("v{i}")), UNKNOWN))
        .collect();
    for i in 0..40u64 {
        h.push(e(
            50,
            100 + 2 * i,
            101 + 2 * i,
            Op::Read,
            saw(&format!("v{i}")),
        ));
    }
    h.push(e(99, 200, 201, Op::Read, saw("nope")));
    let r = check(&h, 10_000);
    assert_eq!(r.undecided, vec!["k".to_string()], "{r}");
    assert!(!r.ok());
}

#[test]
fn many_indeterminate_writes_nobody_reads_are_decided_quickly() {
    // Values nobody reads are interchangeable, and so are the writes of them: without
    // that, 60 such writes before an impossible read would take 2^60 steps.
    let mut h: Vec<Entry> = (0..60)
        .map(|i| e(i, i as u64 + 1, 0, w(&format!("v{i}")), UNKNOWN))
        .collect();
    h.push(e(99, 100, 101, w("x"), OK));
    h.push(e(99, 102, 103, Op::Read, saw("x")));
    assert_eq!(search::check_key(&h, 100_000), Verdict::Linearizable);
    h.push(e(98, 104, 105, Op::Read, saw("nope")));
    assert_eq!(search::check_key(&h, 100_000), Verdict::Violation);
    // A value read after a later write completed: only its own (late) write explains it.
    h.pop();
    h.push(e(98, 104, 105, Op::Read, saw("v7")));
    h.push(e(98, 106, 107, Op::Read, saw("x")));
    assert_eq!(search::check_key(&h, 100_000), Verdict::Violation);
}

/// A sequential run of random operations on a few keys by a few clients, each operation
/// given an interval around its instant; the outcomes are those of the model.
fn generated(rng: &mut StdRng, n: usize) -> Vec<Entry> {
    use std::collections::HashMap;
    #[derive(Clone, Default)]
    struct K {
        value: Option<String>,
        holder: Option<String>,
    }
    let mut keys: HashMap<String, K> = HashMap::new();
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("k{}", rng.random_range(0..3));
        let cur = keys.entry(key.clone()).or_default();
        let instant = 10 * i as u64 + 5;
        let v = format!("v{i}");
        let session = format!("s{}", rng.random_range(0..2));
        let (op, outcome) = match rng.random_range(0..6) {
            0 | 1 => (
                Op::Read,
                Outcome::Read(cur.value.clone().map(|value| Observed {
                    value,
                    holder: cur.holder.clone(),
                })),
            ),
            2 => {
                cur.value = Some(v.clone());
                (w(&v), OK)
            }
            3 => {
                let expect = if rng.random_bool(0.7) {
                    cur.value.clone()
                } else {
                    Some("stale".into())
                };
                let ok = expect == cur.value;
                if ok {
                    cur.value = Some(v.clone());
                }
                (
                    Op::Cas {
                        expect,
                        value: v.clone(),
                    },
                    Outcome::Bool(ok),
                )
            }
            4 => {
                let ok = cur.holder.is_none() || cur.holder.as_ref() == Some(&session);
                if ok {
                    cur.value = Some(v.clone());
                    cur.holder = Some(session.clone());
                }
                (acq(&session, &v), Outcome::Bool(ok))
            }
            _ => {
                let ok = cur.value.is_some() && cur.holder.as_ref() == Some(&session);
                if ok {
                    cur.value = Some(v.clone());
                    cur.holder = None;
                }
                (rel(&session, &v), Outcome::Bool(ok))
            }
        };
        // Stretch the interval: up to 4 operations either side overlap.
        let call = instant - rng.random_range(0..=40.min(instant));
        let ret = instant + rng.random_range(0..=40);
        let outcome = if op != Op::Read && rng.random_bool(0.1) {
            UNKNOWN
        } else {
            outcome
        };
        out.push(Entry {
            client: i % 5,
            via: String::new(),
            key,
            op,
            call,
            ret,
            outcome,
        });
    }
    out
}

fn seed() -> u64 {
    let seed = std::env::var("CAIRN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("seed {seed} (replay with CAIRN_SEED={seed})");
    seed
}

#[test]
fn property_histories_from_a_sequential_run_are_linearizable() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..200 {
        let h = generated(&mut rng, 60);
        let r = check(&h, DEFAULT_BUDGET);
        assert!(r.ok(), "seed {seed} round {round}: {r}");
    }
}

#[test]
fn property_a_corrupted_read_is_caught() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut caught = 0;
    for round in 0..200 {
        let mut h = generated(&mut rng, 60);
        // A read that answers a value nobody wrote can never be linearized.
        let reads: Vec<usize> = (0..h.len())
            .filter(|i| h[*i].op == Op::Read && h[*i].outcome != UNKNOWN)
            .collect();
        if reads.is_empty() {
            continue;
        }
        let i = reads[rng.random_range(0..reads.len())];
        h[i].outcome = saw("never-written");
        let r = check(&h, DEFAULT_BUDGET);
        assert_eq!(r.violations.len(), 1, "seed {seed} round {round}: {r}");
        let v = &r.violations[0];
        assert!(
            v.window.iter().any(|e| e.outcome == saw("never-written")),
            "seed {seed} round {round}: the window misses the bad read:\n{v}"
        );
        caught += 1;
    }
    assert!(caught > 150, "only {caught} rounds had a read");
}
