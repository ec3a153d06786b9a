//! Snapshot transfer in chunks, both halves, free of I/O: [`split`] cuts a snapshot for the
//! sender, and [`Assembler`] puts the chunks back together on the receiver, refusing anything
//! out of order or over its size limit.

use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};

use crate::protocol::SnapshotChunk;
use crate::types::{SnapshotData, TypeConfig};

type Vote = VoteOf<TypeConfig>;
type Snapshot = SnapshotOf<TypeConfig, SnapshotData>;

/// Why a chunk was refused. Each refusal drops the transfer in progress: the sender starts
/// again from offset 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("snapshot chunk at offset {offset} without a transfer in progress")]
    NoTransfer { offset: u64 },
    #[error(
        "snapshot chunk out of order (offset {offset}, expected {expected} of the same \
         transfer); restart the transfer"
    )]
    OutOfOrder { offset: u64, expected: u64 },
    #[error("snapshot larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// Cuts `text` into pieces of at most `max` bytes at character boundaries (at least one
/// piece, possibly empty; `max` of at least 4 so that any character fits).
pub fn split(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let cut = (1..=max)
            .rev()
            .find(|i| rest.is_char_boundary(*i))
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// Reassembles one snapshot transfer at a time. A chunk at offset 0 starts a new transfer
/// (replacing any other, as a new leader's would).
pub struct Assembler {
    limit: usize,
    partial: Option<Partial>,
}

struct Partial {
    vote: Vote,
    meta: SnapshotMetaOf<TypeConfig>,
    bytes: Vec<u8>,
}

impl Assembler {
    /// Accepts snapshots of up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Assembler {
            limit,
            partial: None,
        }
    }

    /// Adds a chunk; returns the leader's vote and the whole snapshot after the last one.
    pub fn accept(&mut self, chunk: SnapshotChunk) -> Result<Option<(Vote, Snapshot)>, ChunkError> {
        if chunk.offset == 0 {
            self.partial = Some(Partial {
                vote: chunk.vote,
                meta: chunk.meta.clone(),
                bytes: Vec::new(),
            });
        }
        let Some(p) = self.partial.as_mut() else {
            return Err(ChunkError::NoTransfer {
                offset: chunk.offset,
            });
        };
        let expected = p.bytes.len() as u64;
        if p.vote != chunk.vote || p.meta != chunk.meta || expected != chunk.offset {
            self.partial = None;
            return Err(ChunkError::OutOfOrder {
                offset: chunk.offset,
                expected,
            });
        }
        if p.bytes.len() + chunk.data.len() > self.limit {
            self.partial = None;
            return Err(ChunkError::TooLarge { limit: self.limit });
        }
        p.bytes.extend_from_slice(chunk.data.as_bytes());
        if !chunk.done {
            return Ok(None);
        }
        Ok(self.partial.take().map(|p| {
            (
                p.vote,
                Snapshot {
                    meta: p.meta,
                    snapshot: p.bytes,
                },
            )
        }))
    }

    /// Whether a transfer is in progress.
    pub fn receiving(&self) -> bool {
        self.partial.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(term: u64) -> Vote {
        Vote::new_committed(term, 1)
    }

    fn chunks_of(text: &str, max: usize, vote: Vote) -> Vec<SnapshotChunk> {
        let parts = split(text, max);
        let n = parts.len();
        let mut offset = 0;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let c = SnapshotChunk {
                    vote,
                    meta: Default::default(),
                    offset,
                    data: p.to_string(),
                    done: i + 1 == n,
                };
                offset += p.len() as u64;
                c
            })
            .collect()
    }

    #[test]
    fn split_cuts_at_char_boundaries_and_rejoins() {
        let text = "aé€😀".repeat(50);
        for max in [4, 5, 7, 64, 10_000] {
            let parts = split(&text, max);
            assert!(parts.iter().all(|p| p.len() <= max), "max {max}");
            assert_eq!(parts.concat(), text, "max {max}");
        }
        assert_eq!(split("", 8), vec![""]);
        // A limit below one character's width still makes progress.
        assert_eq!(split("😀😀", 1).concat(), "😀😀");
    }

    #[test]
    fn chunks_in_order_rebuild_the_snapshot() {
        let text = r#"{"state":"abcdefghijklmnopqrstuvwxyz"}"#;
        let mut a = Assembler::new(1 << 20);
        let mut out = None;
        for c in chunks_of(text, 8, vote(3)) {
            assert!(out.is_none(), "nothing before the last chunk");
            out = a.accept(c).unwrap();
        }
        let (v, snap) = out.expect("snapshot after the last chunk");
        assert_eq!(v, vote(3));
        assert_eq!(snap.snapshot, text.as_bytes());
        assert!(!a.receiving());
    }

    #[test]
    fn gaps_repeats_and_strays_are_refused_and_drop_the_transfer() {
        let chunks = chunks_of("0123456789abcdef", 4, vote(2));
        let mut a = Assembler::new(1 << 20);
        assert_eq!(
            a.accept(chunks[1].clone()).unwrap_err(),
            ChunkError::NoTransfer { offset: 4 }
        );
        a.accept(chunks[0].clone()).unwrap();
        assert_eq!(
            a.accept(chunks[2].clone()).unwrap_err(),
            ChunkError::OutOfOrder {
                offset: 8,
                expected: 4
            }
        );
        assert!(!a.receiving());

        // Another leader's chunk in the middle of a transfer.
        a.accept(chunks[0].clone()).unwrap();
        let mut other = chunks[1].clone();
        other.vote = vote(5);
        assert!(matches!(
            a.accept(other),
            Err(ChunkError::OutOfOrder { .. })
        ));

        // A restart from offset 0 always begins afresh.
        for c in &chunks {
            a.accept(c.clone()).unwrap();
        }
        assert!(!a.receiving());
    }

    #[test]
    fn a_snapshot_over_the_limit_is_refused() {
        let mut a = Assembler::new(10);
        let chunks = chunks_of("0123456789abcdef", 4, vote(1));
        a.accept(chunks[0].clone()).unwrap();
        a.accept(chunks[1].clone()).unwrap();
        assert_eq!(
            a.accept(chunks[2].clone()).unwrap_err(),
            ChunkError::TooLarge { limit: 10 }
        );
        assert!(!a.receiving());
    }
}
