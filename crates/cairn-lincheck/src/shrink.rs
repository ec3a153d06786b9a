//! Shrinks a non-linearizable key history to a small window that still shows the
//! violation:
//!
//! 1. cut the history at the earliest time `t` where it already fails: keep the
//!    operations invoked by `t`, and make those still running at `t` indeterminate (any
//!    linearization of the whole history, cut at `t`, is one of the cut history, so the
//!    cut is a genuine witness);
//! 2. drop, one at a time, each read, then each write whose value no remaining operation
//!    reads or expects, keeping the change when the history still fails.
//!
//! The window is a sub-history of the recorded one that cannot be linearized by itself,
//! and it keeps every write whose value its reads observe.

use crate::history::{Entry, Op, Outcome};
use crate::search::{check_key, Verdict};

/// Histories larger than this are only cut, not shrunk operation by operation.
const DROP_LIMIT: usize = 1500;

/// Steps each trial search of the shrinking may take (a trial that runs out counts as
/// "does not fail", which only makes the window larger).
const TRIAL_BUDGET: u64 = 200_000;

pub(crate) fn minimal_window(ops: &[Entry], budget: u64) -> Vec<Entry> {
    let budget = budget.min(TRIAL_BUDGET);
    let fails = |h: &[Entry]| check_key(h, budget) == Verdict::Violation;
    let mut calls: Vec<u64> = ops.iter().map(|e| e.call).collect();
    calls.sort_unstable();
    // Smallest index into `calls` whose cut fails (the full history does).
    let (mut lo, mut hi) = (0usize, calls.len().saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&cut(ops, calls[mid])) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let mut h = match calls.get(lo) {
        Some(t) if fails(&cut(ops, *t)) => cut(ops, *t),
        _ => ops.to_vec(),
    };
    if h.len() <= DROP_LIMIT {
        // Reads first (dropping one only removes a constraint), then the writes.
        for reads in [true, false] {
            let mut i = h.len();
            while i > 0 {
                i -= 1;
                if (h[i].op == Op::Read) != reads || mentioned(&h, i) {
                    continue;
                }
                let mut trial = h.clone();
                trial.remove(i);
                if fails(&trial) {
                    h = trial;
                }
            }
        }
    }
    h.sort_by_key(|e| e.call);
    h
}

/// Whether another operation of `h` reads or expects the value `h[i]` writes.
fn mentioned(h: &[Entry], i: usize) -> bool {
    let value = match &h[i].op {
        Op::Read => return false,
        Op::Write { value }
        | Op::Cas { value, .. }
        | Op::Acquire { value, .. }
        | Op::Release { value, .. } => value,
    };
    h.iter().enumerate().any(|(j, e)| {
        j != i
            && (matches!(&e.outcome, Outcome::Read(Some(o)) if o.value == *value)
                || matches!(&e.op, Op::Cas { expect: Some(x), .. } if x == value))
    })
}

/// The history as seen at time `t`.
fn cut(ops: &[Entry], t: u64) -> Vec<Entry> {
    ops.iter()
        .filter(|e| e.call <= t)
        .filter_map(|e| {
            let mut e = e.clone();
            if e.outcome != Outcome::Unknown && e.ret > t {
                if e.op == Op::Read {
                    return None;
                }
                e.outcome = Outcome::Unknown;
            }
            Some(e)
        })
        .collect()
}
