//! Process-wide counters of the stores' disk work, for benchmarks and tests.
//!
//! Why it exists: "how many syncs per entry" is the figure group commit is about, and it
//! cannot be observed from outside the writer threads.

use std::sync::atomic::{AtomicU64, Ordering};

static SYNCS: AtomicU64 = AtomicU64::new(0);

/// Counts one durable sync of a log file.
pub(crate) fn count_sync() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

/// How many durable syncs the log stores of this process have made so far.
#[doc(hidden)]
pub fn syncs() -> u64 {
    SYNCS.load(Ordering::Relaxed)
}
