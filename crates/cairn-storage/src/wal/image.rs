//! The log's state and entry map, rebuilt from records.
//!
//! Why it exists: recovery replays the records found on disk and the writer applies the
//! records it has just written, and both must reach the same result; so both feed records
//! through [`Image::apply`]. Pure.

use super::index::{LogIndex, Pos};
use super::record::{Kind, Record, HEADER};
use super::state::SegmentState;

/// The state being rebuilt, record by record.
pub(crate) struct Image {
    pub state: SegmentState,
    pub index: LogIndex,
}

impl Image {
    /// Starts from the first segment's `Start` record.
    pub(crate) fn begin(seq: u64, r: &Record<'_>) -> Result<Self, String> {
        let state = start_state(seq, r)?;
        let index = LogIndex::new(state.next);
        Ok(Self { state, index })
    }

    /// Applies one record found at `offset` of segment `seq`.
    pub(crate) fn apply(&mut self, seq: u64, offset: u64, r: &Record<'_>) -> Result<(), String> {
        let s = &mut self.state;
        match r.kind {
            Kind::Start => {
                let next = start_state(seq, r)?.next;
                if next != s.next {
                    return Err(format!(
                        "this segment continues the log at index {next}, but the previous one ends at {}",
                        s.next
                    ));
                }
            }
            Kind::Entry => {
                let empty = s.first >= s.next;
                if r.index < s.after_purged() {
                    return Err(format!(
                        "entry {} is at or below the purged index {}",
                        r.index,
                        s.after_purged().saturating_sub(1)
                    ));
                }
                if !empty && r.index > s.next {
                    return Err(format!(
                        "entry {} leaves a gap: the log continues at {}",
                        r.index, s.next
                    ));
                }
                if !empty && r.index < s.first {
                    return Err(format!(
                        "entry {} is below the first entry {}",
                        r.index, s.first
                    ));
                }
                let pos = Pos {
                    seq,
                    offset: offset + HEADER as u64,
                    len: r.payload.len() as u32,
                };
                self.index.put(r.index, pos);
                if empty {
                    s.first = r.index;
                }
                s.next = r.index + 1;
            }
            Kind::Truncate => {
                let from = r.index.max(s.after_purged());
                if from < s.next {
                    self.index.truncate_from(from);
                    s.next = from;
                    s.first = s.first.min(from);
                }
            }
            Kind::Purge => {
                self.index.purge(r.index);
                s.purged = Some((r.index, r.payload.to_vec()));
                s.first = s.first.max(r.index + 1);
                s.next = s.next.max(r.index + 1);
            }
            Kind::Vote => s.vote = Some(r.payload.to_vec()),
            Kind::Committed => {
                s.committed = (r.index != 0).then(|| r.payload.to_vec());
            }
            Kind::Seal => {}
        }
        Ok(())
    }
}

fn start_state(seq: u64, r: &Record<'_>) -> Result<SegmentState, String> {
    if r.index != seq {
        return Err(format!(
            "the start record names segment {}, not this one",
            r.index
        ));
    }
    SegmentState::decode(r.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: Kind, index: u64, payload: &[u8]) -> Record<'_> {
        Record {
            kind,
            group: 0,
            index,
            payload,
        }
    }

    #[test]
    fn entries_truncations_purges_and_gaps() {
        let start = SegmentState::default().encode();
        let mut im = Image::begin(1, &rec(Kind::Start, 1, &start)).unwrap();
        for i in 0..5 {
            im.apply(1, 100 * i, &rec(Kind::Entry, i, b"e")).unwrap();
        }
        assert_eq!(im.state.next, 5);
        im.apply(1, 0, &rec(Kind::Truncate, 3, b"")).unwrap();
        assert_eq!((im.state.next, im.index.next()), (3, 3));
        im.apply(1, 0, &rec(Kind::Entry, 2, b"x")).unwrap();
        assert_eq!(im.state.next, 3, "an entry replaces any at or after it");
        let e = im.apply(1, 0, &rec(Kind::Entry, 9, b"x")).unwrap_err();
        assert!(e.contains("gap"), "{e}");
        im.apply(1, 0, &rec(Kind::Purge, 10, b"id")).unwrap();
        assert_eq!(
            (im.state.next, im.index.first(), im.state.first),
            (11, 11, 11)
        );
        im.apply(1, 0, &rec(Kind::Entry, 14, b"x")).unwrap();
        assert_eq!(
            (im.state.first, im.state.next),
            (14, 15),
            "an empty log may start anywhere"
        );
        im.apply(1, 0, &rec(Kind::Truncate, 0, b"")).unwrap();
        assert_eq!((im.state.first, im.state.next), (11, 11));
        let e = im.apply(1, 0, &rec(Kind::Entry, 10, b"x")).unwrap_err();
        assert!(e.contains("purged"), "{e}");
        im.apply(1, 0, &rec(Kind::Committed, 1, b"c")).unwrap();
        assert_eq!(im.state.committed.as_deref(), Some(&b"c"[..]));
        im.apply(1, 0, &rec(Kind::Committed, 0, b"")).unwrap();
        assert_eq!(im.state.committed, None);
        let other = SegmentState {
            next: 4,
            ..Default::default()
        }
        .encode();
        let e = im.apply(2, 0, &rec(Kind::Start, 2, &other)).unwrap_err();
        assert!(e.contains("previous one ends at 11"), "{e}");
    }
}
