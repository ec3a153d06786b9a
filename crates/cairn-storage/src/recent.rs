//! The tail of the log kept in memory: entries appended but not yet durable, plus the most
//! recent durable ones.
//!
//! Why it exists: openraft hands an append to the store and expects it to return once the
//! write is *submitted*; durability is reported later through a callback. Replication to the
//! followers and the leader's own state machine read the new entries at once. Keeping them
//! here means those reads neither wait for the fsync (the leader's disk write overlaps the
//! followers' round) nor decode them again from the database.
//!
//! Invariants:
//! - the cache holds a contiguous run of indexes `first .. first + len`;
//! - every log entry below `first` is durable in the database (an entry leaves the cache only
//!   once it is durable), and no entry exists at or above `first + len`;
//! - durability is reported per *epoch*: a truncation or purge starts a new epoch, so the
//!   completion of a write submitted before it can never mark a later, different entry at
//!   the same index as durable.
//!
//! Pure and synchronous; the store wraps it in a mutex.

use std::collections::VecDeque;

/// How many durable entries are kept at most (non-durable ones are never evicted).
pub(crate) const KEEP_ENTRIES: usize = 4096;
/// How many bytes of durable entries (their encoded size) are kept at most.
pub(crate) const KEEP_BYTES: usize = 16 << 20;

/// Entries at `first ..` with their encoded sizes; see the module docs.
pub(crate) struct Recent<E> {
    first: u64,
    entries: VecDeque<(E, usize)>,
    bytes: usize,
    /// Highest index known durable in the current epoch.
    durable: Option<u64>,
    epoch: u64,
    keep_entries: usize,
    keep_bytes: usize,
    /// The first live entry of the whole log as submitted (`next()` when it has none).
    log_first: u64,
}

/// An append does not continue the cached run and would leave a gap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    pub expected: u64,
    pub got: u64,
}

impl<E: Clone> Recent<E> {
    /// An empty cache whose next entry is `next` (the database's last index + 1).
    pub(crate) fn new(next: u64) -> Self {
        Self::with_limits(next, KEEP_ENTRIES, KEEP_BYTES)
    }

    pub(crate) fn with_limits(next: u64, keep_entries: usize, keep_bytes: usize) -> Self {
        Self {
            first: next,
            entries: VecDeque::new(),
            bytes: 0,
            durable: None,
            epoch: 0,
            keep_entries,
            keep_bytes,
            log_first: next,
        }
    }

    /// Sets the first live entry of the log (at open: entries below the cache may exist).
    pub(crate) fn set_log_first(&mut self, first: u64) {
        self.log_first = first;
    }

    /// True when the log (not just the cache) holds no live entry.
    pub(crate) fn log_is_empty(&self) -> bool {
        self.log_first >= self.next()
    }

    /// Index of the first cached entry (reads below it go to the database).
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The index after the last cached entry.
    pub(crate) fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.back().map(|(e, _)| e)
    }

    /// The epoch a write submitted now belongs to.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Adds entries starting at index `start`. An append that overlaps the cached run
    /// replaces the overlapped tail (as a truncation would); one that leaves a gap is refused
    /// while non-durable entries are cached, and otherwise restarts the run at `start`.
    pub(crate) fn append(
        &mut self,
        start: u64,
        entries: impl IntoIterator<Item = (E, usize)>,
    ) -> Result<(), Gap> {
        if self.log_is_empty() || start < self.log_first {
            self.log_first = start;
        }
        if start > self.next() {
            if self.has_pending() {
                return Err(Gap {
                    expected: self.next(),
                    got: start,
                });
            }
            // Everything cached is durable: drop it and start the run here.
            self.entries.clear();
            self.bytes = 0;
            self.first = start;
        } else if start < self.next() {
            self.truncate_from(start);
        }
        for (e, size) in entries {
            self.bytes += size;
            self.entries.push_back((e, size));
        }
        self.evict();
        Ok(())
    }

    /// Clones the cached entries with indexes in `[start, end)`.
    pub(crate) fn range(&self, start: u64, end: u64) -> Vec<E> {
        let from = start.max(self.first);
        let to = end.min(self.next());
        if from >= to {
            return Vec::new();
        }
        let skip = (from - self.first) as usize;
        let take = (to - from) as usize;
        self.entries
            .iter()
            .skip(skip)
            .take(take)
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Removes every entry after `last` (all of them for `None`); starts a new epoch.
    pub(crate) fn truncate_after(&mut self, last: Option<u64>) {
        self.truncate_from(last.map_or(0, |l| l.saturating_add(1)));
    }

    fn truncate_from(&mut self, from: u64) {
        self.epoch += 1;
        self.log_first = self.log_first.min(from);
        if from <= self.first {
            self.entries.clear();
            self.bytes = 0;
            self.first = from;
        } else {
            let keep = ((from - self.first) as usize).min(self.entries.len());
            for (_, size) in self.entries.drain(keep..) {
                self.bytes -= size;
            }
        }
        if let Some(d) = self.durable {
            self.durable = from.checked_sub(1).map(|f| f.min(d));
        }
    }

    /// Removes every entry up to and including `upto` (purged from the log). Entries after
    /// `upto` keep their identity, so the epoch stays.
    pub(crate) fn purge(&mut self, upto: u64) {
        self.log_first = self.log_first.max(upto + 1);
        while self.first <= upto {
            match self.entries.pop_front() {
                Some((_, size)) => {
                    self.bytes -= size;
                    self.first += 1;
                }
                None => {
                    self.first = upto + 1;
                    break;
                }
            }
        }
    }

    /// A write of entries up to `upto`, submitted in `epoch`, is durable.
    pub(crate) fn mark_durable(&mut self, upto: u64, epoch: u64) {
        if epoch != self.epoch {
            return;
        }
        self.durable = Some(self.durable.map_or(upto, |d| d.max(upto)));
        self.evict();
    }

    fn has_pending(&self) -> bool {
        match (self.entries.is_empty(), self.durable) {
            (true, _) => false,
            (false, None) => true,
            (false, Some(d)) => d + 1 < self.next(),
        }
    }

    fn evict(&mut self) {
        let Some(durable) = self.durable else { return };
        while (self.entries.len() > self.keep_entries || self.bytes > self.keep_bytes)
            && self.first <= durable
        {
            let Some((_, size)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= size;
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &Recent<u64>, start: u64, end: u64) -> Vec<u64> {
        r.range(start, end)
    }

    fn push(r: &mut Recent<u64>, start: u64, n: u64) {
        r.append(start, (start..start + n).map(|i| (i, 10)))
            .unwrap();
    }

    #[test]
    fn serves_only_what_it_holds() {
        let mut r = Recent::with_limits(5, 100, 1 << 20);
        push(&mut r, 5, 3);
        assert_eq!(run(&r, 0, 100), vec![5, 6, 7]);
        assert_eq!(run(&r, 6, 7), vec![6]);
        assert_eq!(run(&r, 8, 100), Vec::<u64>::new());
        assert_eq!((r.first(), r.next()), (5, 8));
    }

    #[test]
    fn pending_entries_are_never_evicted() {
        let mut r = Recent::with_limits(1, 2, 1 << 20);
        push(&mut r, 1, 10);
        assert_eq!(r.len(), 10, "nothing durable yet");
        let e = r.epoch();
        r.mark_durable(4, e);
        assert_eq!(r.first(), 5, "durable entries beyond the limit go");
        assert_eq!(r.len(), 6);
        r.mark_durable(10, e);
        assert_eq!((r.first(), r.len()), (9, 2));
    }

    #[test]
    fn byte_limit_evicts_durable_entries() {
        let mut r = Recent::with_limits(1, 1000, 25);
        push(&mut r, 1, 5);
        r.mark_durable(5, r.epoch());
        assert_eq!(r.len(), 2, "two entries of 10 bytes fit in 25");
    }

    #[test]
    fn a_completion_from_before_a_truncation_marks_nothing() {
        let mut r = Recent::with_limits(1, 0, 0);
        push(&mut r, 1, 5);
        let old = r.epoch();
        r.truncate_after(Some(2));
        push(&mut r, 3, 3); // new entries 3..=5, pending
        r.mark_durable(5, old); // the old write of 1..=5 finished
        assert_eq!(
            r.len(),
            5,
            "the new 3..=5 are not durable: nothing may be evicted"
        );
        r.mark_durable(5, r.epoch());
        assert_eq!(r.len(), 0);
        assert_eq!(r.first(), 6);
    }

    #[test]
    fn truncation_below_the_cache_restarts_it() {
        let mut r = Recent::with_limits(10, 100, 1 << 20);
        push(&mut r, 10, 5);
        r.truncate_after(Some(7));
        assert_eq!((r.first(), r.len()), (8, 0));
        push(&mut r, 8, 2);
        assert_eq!(run(&r, 0, 100), vec![8, 9]);
        r.truncate_after(None);
        assert_eq!((r.first(), r.len()), (0, 0));
    }

    #[test]
    fn overlapping_append_replaces_the_tail() {
        let mut r = Recent::with_limits(1, 100, 1 << 20);
        push(&mut r, 1, 5);
        r.append(3, [(30, 1), (40, 1)]).unwrap();
        assert_eq!(run(&r, 0, 100), vec![1, 2, 30, 40]);
    }

    #[test]
    fn a_gap_is_refused_while_writes_are_pending() {
        let mut r = Recent::with_limits(1, 100, 1 << 20);
        push(&mut r, 1, 2);
        assert_eq!(
            r.append(9, [(9, 1)]),
            Err(Gap {
                expected: 3,
                got: 9
            })
        );
        r.mark_durable(2, r.epoch());
        r.append(9, [(9, 1)]).unwrap();
        assert_eq!((r.first(), r.next()), (9, 10));
    }

    #[test]
    fn purge_drops_the_head() {
        let mut r = Recent::with_limits(1, 100, 1 << 20);
        push(&mut r, 1, 5);
        r.purge(3);
        assert_eq!(run(&r, 0, 100), vec![4, 5]);
        r.purge(9);
        assert_eq!((r.first(), r.len()), (10, 0));
    }
}
