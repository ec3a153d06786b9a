//! Reading the segments back at start: the log's state, where every live entry is, and
//! where the writer continues.
//!
//! Why it exists: the store must never serve a log that differs from what it acknowledged.
//! Every record is checked; the only damage repaired is a torn last write (a crash in the
//! middle of writing the last segment: a short, zero or garbage tail after the last good
//! record, with no complete record of a later write behind it), which is cut off with a
//! warning. Anything else (a bad record before the tail, a missing segment, a gap in the
//! indexes, a segment that does not continue the previous one) is a [`Corrupt`] error and
//! the store does not open.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::image::Image;
use super::index::LogIndex;
use super::record::{Bad, Kind};
use super::segment::{self, After, ScanError};
use super::state::SegmentState;

/// The log as found on disk.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The state after replaying every record (`next`: the next entry's index).
    pub state: SegmentState,
    pub index: LogIndex,
    /// Every segment present: sequence number -> highest entry index written in it.
    pub segments: BTreeMap<u64, Option<u64>>,
    /// The last segment and the offset where writing continues; `None` when it is sealed
    /// or there is none (the writer starts a new one).
    pub tail: Option<(u64, u64)>,
    /// The next write's group number.
    pub next_group: u64,
}

/// Damage that refuses the open.
#[derive(Debug, thiserror::Error)]
#[error("the Raft log is corrupt: {path} at byte {offset}: {reason}")]
pub struct Corrupt {
    pub path: PathBuf,
    pub offset: u64,
    pub reason: String,
}

impl From<Corrupt> for io::Error {
    fn from(c: Corrupt) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, c)
    }
}

/// Replays the segments in `dir` (which must exist), repairing a torn last write.
pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
    let seqs = segment::list(dir)?;
    let mut replay: Option<Image> = None;
    let mut segments = BTreeMap::new();
    let mut tail = None;
    let mut next_group = 0;
    for (i, &seq) in seqs.iter().enumerate() {
        let path = segment::path(dir, seq);
        let corrupt = |offset: u64, reason: String| Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        if i > 0 && seqs[i - 1] + 1 != seq {
            return Err(corrupt(
                0,
                format!(
                    "segment {} is missing (the log skips from it to this one)",
                    seqs[i - 1] + 1
                ),
            )
            .into());
        }
        let file = segment::open(dir, seq)?;
        let mut max_index = None;
        let mut first = true;
        let end = segment::scan(&file, |offset, r| {
            let was_first = std::mem::replace(&mut first, false);
            if was_first != (r.kind == Kind::Start) {
                return Err(if was_first {
                    "the segment does not begin with its start record".to_string()
                } else {
                    "a start record in the middle of a segment".to_string()
                });
            }
            if r.kind == Kind::Entry {
                max_index = Some(max_index.map_or(r.index, |m: u64| m.max(r.index)));
            }
            match &mut replay {
                None => replay = Some(Image::begin(seq, &r)?),
                Some(rp) => rp.apply(seq, offset, &r)?,
            }
            Ok(())
        })
        .map_err(|e| match e {
            ScanError::Io(e) => e,
            ScanError::Bad { offset, reason } => corrupt(offset, reason).into(),
        })?;
        if first {
            return Err(corrupt(0, "no start record".into()).into());
        }
        segments.insert(seq, max_index);
        next_group = next_group.max(end.last_group + 1);
        let is_last = i + 1 == seqs.len();
        if end.sealed {
            if is_last {
                tail = None;
            }
            continue;
        }
        if !is_last {
            return Err(corrupt(end.offset, not_a_record(end.bad)).into());
        }
        match segment::after(&file, end.offset, end.last_group)? {
            After::Zeros => {}
            After::LaterRecord(at) => {
                return Err(corrupt(
                    end.offset,
                    format!(
                        "{}, but a record written later follows at byte {at}",
                        not_a_record(end.bad)
                    ),
                )
                .into())
            }
            After::Torn => {
                tracing::warn!(
                    path = %path.display(),
                    offset = end.offset,
                    "the Raft log ends with a write torn by a crash ({}); cutting it off (it was never acknowledged)",
                    not_a_record(end.bad)
                );
                let size = file.metadata()?.len();
                file.set_len(end.offset)?;
                file.set_len(size)?;
                file.sync_all()?;
            }
        }
        tail = Some((seq, end.offset));
    }
    let Some(replay) = replay else {
        return Ok(Recovered {
            state: SegmentState::default(),
            index: LogIndex::new(0),
            segments,
            tail: None,
            next_group,
        });
    };
    let state = replay.state;
    let first_seq = seqs.first().copied().unwrap_or(0);
    if state.next > state.first && replay.index.first() != state.first {
        return Err(Corrupt {
            path: segment::path(dir, first_seq),
            offset: 0,
            reason: format!(
                "entries {} to {} are missing (an older segment was removed)",
                state.first,
                replay.index.first().saturating_sub(1)
            ),
        }
        .into());
    }
    Ok(Recovered {
        state,
        index: replay.index,
        segments,
        tail,
        next_group,
    })
}

fn not_a_record(bad: Option<Bad>) -> String {
    match bad {
        Some(Bad::Zero) => "zeros where a record should be".into(),
        Some(Bad::Short) => "a record cut short".into(),
        Some(Bad::Corrupt(why)) => format!("damaged bytes ({why})"),
        None => "no record".into(),
    }
}
