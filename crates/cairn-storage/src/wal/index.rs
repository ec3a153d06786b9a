//! Where each live entry sits on disk: index -> (segment, offset, length).
//!
//! Why it exists: the segments are append-only, so an entry's bytes never move; reading an
//! old entry is one positioned read once its place is known. Recovery builds this map while
//! replaying the segments, the writer keeps it current, readers consult it. It holds the
//! contiguous run `first .. next` of entries that have data (a few bytes per entry; the log
//! is purged behind every snapshot).
//!
//! Pure and synchronous.

use std::collections::VecDeque;

/// One entry's payload on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
}

/// Entries `first .. first + len` and where they are.
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    first: u64,
    positions: VecDeque<Pos>,
}

impl LogIndex {
    /// An empty run starting at `first`.
    pub(crate) fn new(first: u64) -> Self {
        Self {
            first,
            positions: VecDeque::new(),
        }
    }

    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The index after the last entry with data.
    pub(crate) fn next(&self) -> u64 {
        self.first + self.positions.len() as u64
    }

    /// Records entry `index` at `pos`, dropping any entry at or after it. `index` must not
    /// be above [`next`](Self::next) (the caller checks for gaps).
    pub(crate) fn put(&mut self, index: u64, pos: Pos) {
        self.truncate_from(index);
        if self.positions.is_empty() {
            self.first = index;
        }
        self.positions.push_back(pos);
    }

    /// Drops every entry at or after `from`.
    pub(crate) fn truncate_from(&mut self, from: u64) {
        if from <= self.first {
            self.positions.clear();
            self.first = from;
        } else {
            let keep = (from - self.first) as usize;
            self.positions.truncate(keep);
        }
    }

    /// Drops every entry up to and including `upto`; the run then starts after it at the
    /// earliest.
    pub(crate) fn purge(&mut self, upto: u64) {
        while self.first <= upto {
            if self.positions.pop_front().is_none() {
                self.first = upto + 1;
                break;
            }
            self.first += 1;
        }
    }

    /// The positions of the entries in `[start, end)` that have data.
    pub(crate) fn range(&self, start: u64, end: u64) -> Vec<(u64, Pos)> {
        let from = start.max(self.first);
        let to = end.min(self.next());
        (from..to)
            .map(|i| (i, self.positions[(i - self.first) as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(i: u64) -> Pos {
        Pos {
            seq: 1,
            offset: i * 10,
            len: 3,
        }
    }

    fn indexes(x: &LogIndex) -> Vec<u64> {
        x.range(0, u64::MAX).iter().map(|(i, _)| *i).collect()
    }

    #[test]
    fn put_truncate_purge() {
        let mut x = LogIndex::new(0);
        for i in 0..6 {
            x.put(i, pos(i));
        }
        assert_eq!(indexes(&x), vec![0, 1, 2, 3, 4, 5]);
        x.put(3, pos(30));
        assert_eq!(indexes(&x), vec![0, 1, 2, 3]);
        assert_eq!(x.range(3, 4)[0].1.offset, 300);
        x.purge(1);
        assert_eq!((x.first(), x.next()), (2, 4));
        x.truncate_from(3);
        assert_eq!(indexes(&x), vec![2]);
        x.purge(10);
        assert_eq!((x.first(), x.next()), (11, 11));
        x.truncate_from(5);
        assert_eq!((x.first(), x.next()), (5, 5));
    }
}
