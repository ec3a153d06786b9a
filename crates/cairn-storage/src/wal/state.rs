//! The log's small state, carried by the first record of every segment.
//!
//! Why it exists: the vote, the committed log id and the purge point are records in the
//! segment stream (written with the entries, under the same `fdatasync`), so the oldest
//! segments can be deleted after a purge only if what they said survives elsewhere. Each
//! segment therefore starts with the state as it was when the segment was opened; replay
//! starts from the first segment still present.

use serde::{Deserialize, Serialize};

/// The state in a segment's `Start` record (values are encoded by the store, opaque here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentState {
    /// The index of the first live entry (equal to `next` when the log has none).
    pub first: u64,
    /// The index the next entry gets.
    pub next: u64,
    /// The last purged index and its encoded log id.
    pub purged: Option<(u64, Vec<u8>)>,
    /// The encoded vote.
    pub vote: Option<Vec<u8>>,
    /// The encoded committed log id.
    pub committed: Option<Vec<u8>>,
}

impl SegmentState {
    /// The index after the purged prefix (0 when nothing was purged).
    pub(crate) fn after_purged(&self) -> u64 {
        self.purged.as_ref().map_or(0, |(p, _)| p + 1)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("unreadable segment start: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = SegmentState {
            first: 5,
            next: 9,
            purged: Some((4, b"id".to_vec())),
            vote: Some(b"v".to_vec()),
            committed: None,
        };
        assert_eq!(SegmentState::decode(&s.encode()).unwrap(), s);
        assert_eq!(s.after_purged(), 5);
        assert!(SegmentState::decode(&[0xff; 3]).is_err());
    }
}
