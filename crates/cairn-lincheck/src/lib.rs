//! A linearizability checker for histories of KV operations, for Cairn's Jepsen-style
//! tests: did every read, write, check-and-set and lock acquire/release that clients saw
//! complete take effect atomically at one instant between its invocation and its
//! completion, in one order consistent with a single copy of the store?
//!
//! Pure and synchronous: tests record a [`History`] (times come from a logical clock the
//! caller ticks, never the wall clock), then [`check`] splits it per key
//! (P-compositionality: a history is linearizable iff each key's sub-history is) and
//! runs a Wing-Gong search with Lowe's memoisation on each, under a step budget so it
//! always ends. A violation comes with a minimal window of the history that still
//! cannot be linearized ([`shrink`]).
//!
//! Operations whose outcome is unknown (timed out, or failed without a definite answer)
//! are *indeterminate*: they may have taken effect once, at any time after their
//! invocation, or never. Reads with an unknown outcome are dropped (they change nothing).

mod history;
mod model;
mod search;
mod shrink;

#[cfg(test)]
mod tests;

pub use history::{Entry, History, Observed, Op, Outcome, Pending};
pub use search::Verdict;

use std::collections::BTreeMap;
use std::fmt;

/// Steps one key's search may take before it gives up with [`Verdict::Unknown`].
pub const DEFAULT_BUDGET: u64 = 5_000_000;

/// A key whose history cannot be linearized, with the smallest window found that shows it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub key: String,
    /// The operations of the window, by invocation time.
    pub window: Vec<Entry>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?}: not linearizable; a minimal window ({} operations):",
            self.key,
            self.window.len()
        )?;
        for e in &self.window {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Keys checked.
    pub keys: usize,
    /// Operations that took part (reads with an unknown outcome excluded).
    pub ops: usize,
    /// Of those, the indeterminate ones.
    pub indeterminate: usize,
    pub violations: Vec<Violation>,
    /// Keys whose search ran out of budget (neither proven nor refuted).
    pub undecided: Vec<String>,
}

impl Report {
    /// Linearizable, and every key decided.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.undecided.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} keys, {} operations ({} indeterminate): {} violation(s), {} undecided",
            self.keys,
            self.ops,
            self.indeterminate,
            self.violations.len(),
            self.undecided.len()
        )?;
        for v in &self.violations {
            write!(f, "{v}")?;
        }
        for k in &self.undecided {
            writeln!(f, "key {k:?}: search budget exhausted")?;
        }
        Ok(())
    }
}

/// Checks `entries` key by key, each search limited to `budget` steps; violations are
/// shrunk to a minimal window.
pub fn check(entries: &[Entry], budget: u64) -> Report {
    let mut by_key: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        if e.op == Op::Read && e.outcome == Outcome::Unknown {
            continue;
        }
        by_key.entry(&e.key).or_default().push(e.clone());
    }
    let mut report = Report {
        keys: by_key.len(),
        ..Report::default()
    };
    for (key, ops) in by_key {
        report.ops += ops.len();
        report.indeterminate += ops.iter().filter(|e| e.outcome == Outcome::Unknown).count();
        match search::check_key(&ops, budget) {
            Verdict::Linearizable => {}
            Verdict::Unknown => report.undecided.push(key.to_string()),
            Verdict::Violation => report.violations.push(Violation {
                key: key.to_string(),
                window: shrink::minimal_window(&ops, budget),
            }),
        }
    }
    report
}
