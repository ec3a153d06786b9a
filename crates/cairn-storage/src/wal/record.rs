//! The byte format of one record in a segment file.
//!
//! Why it exists: recovery must tell a complete record from a torn or damaged one without
//! trusting anything it has not checked. Every record is a fixed 32-byte header followed by
//! its payload; a CRC-32 covers every header field after the checksum and the payload, so a
//! flipped bit anywhere (length included) is caught.
//!
//! Layout (little-endian):
//!
//! | bytes | field                                                   |
//! |-------|---------------------------------------------------------|
//! | 0..4  | magic `CWAL`                                            |
//! | 4..8  | CRC-32 of bytes 8.. of the header and of the payload    |
//! | 8..12 | payload length                                          |
//! | 12    | kind (see [`Kind`])                                     |
//! | 13..16| zero                                                    |
//! | 16..24| group: the write (one `write` + one `fdatasync`) it came in |
//! | 24..32| log index (meaning depends on the kind)                 |
//!
//! Pure: encoding into a buffer and decoding from a slice.

/// Marks the start of a record (`CWAL`).
pub(crate) const MAGIC: [u8; 4] = *b"CWAL";
/// Size of the fixed header.
pub(crate) const HEADER: usize = 32;
/// The largest payload accepted (a Raft entry is far smaller; anything above is damage).
pub(crate) const MAX_PAYLOAD: usize = 32 << 20;

/// What a record means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// First record of every segment: the log's state when the segment was opened
    /// (payload: [`super::state::SegmentState`]; index: the segment's sequence number).
    Start = 1,
    /// A log entry at `index` (payload: the encoded entry). Replaces any entry at or after it.
    Entry = 2,
    /// Every entry at or after `index` is removed.
    Truncate = 3,
    /// Every entry up to and including `index` is purged (payload: the encoded log id).
    Purge = 4,
    /// The vote (payload: encoded).
    Vote = 5,
    /// The committed log id (payload: encoded; `index` 0 means none and the payload is empty).
    Committed = 6,
    /// Last record of a segment that is full: the log continues in the next segment.
    Seal = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::Start,
            2 => Kind::Entry,
            3 => Kind::Truncate,
            4 => Kind::Purge,
            5 => Kind::Vote,
            6 => Kind::Committed,
            7 => Kind::Seal,
            _ => return None,
        })
    }
}

/// A decoded record borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub kind: Kind,
    pub group: u64,
    pub index: u64,
    pub payload: &'a [u8],
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// All header bytes are zero: nothing was ever written here (the end of the data).
    Zero,
    /// Fewer bytes than the record needs.
    Short,
    /// Wrong magic, unknown kind, impossible length or checksum mismatch.
    Corrupt(&'static str),
}

/// Appends the encoding of one record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, kind: Kind, group: u64, index: u64, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]); // checksum, filled below
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = checksum(&out[start + 8..start + HEADER], payload);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The encoded size of a record with `payload_len` bytes of payload.
pub(crate) fn size(payload_len: usize) -> usize {
    HEADER + payload_len
}

/// Decodes the record at the start of `bytes`; on success also returns its total size.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), Bad> {
    if bytes.len() < HEADER {
        return Err(if bytes.iter().all(|b| *b == 0) {
            Bad::Zero
        } else {
            Bad::Short
        });
    }
    let header = &bytes[..HEADER];
    if header.iter().all(|b| *b == 0) {
        return Err(Bad::Zero);
    }
    if header[..4] != MAGIC {
        return Err(Bad::Corrupt("no record marker"));
    }
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(header[8..12].try_into().unwrap_or_default()) as usize;
    if len > MAX_PAYLOAD {
        return Err(Bad::Corrupt("impossible length"));
    }
    let Some(kind) = Kind::from_u8(header[12]) else {
        return Err(Bad::Corrupt("unknown record kind"));
    };
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Err(Bad::Short);
    };
    if checksum(&header[8..], payload) != crc {
        return Err(Bad::Corrupt("checksum mismatch"));
    }
    let group = u64::from_le_bytes(header[16..24].try_into().unwrap_or_default());
    let index = u64::from_le_bytes(header[24..32].try_into().unwrap_or_default());
    Ok((
        Record {
            kind,
            group,
            index,
            payload,
        },
        HEADER + len,
    ))
}

fn checksum(header_rest: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_rest);
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_its_size() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Entry, 7, 42, b"payload");
        encode(&mut buf, Kind::Seal, 8, 0, b"");
        let (r, n) = decode(&buf).unwrap();
        assert_eq!(n, size(7));
        assert_eq!(
            r,
            Record {
                kind: Kind::Entry,
                group: 7,
                index: 42,
                payload: b"payload"
            }
        );
        let (r, n2) = decode(&buf[n..]).unwrap();
        assert_eq!((r.kind, r.group, n2), (Kind::Seal, 8, HEADER));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_caught() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Entry, 1, 9, b"abcdefgh");
        for at in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[at] ^= 1 << bit;
                assert!(decode(&b).is_err(), "flip at {at} bit {bit} accepted");
            }
        }
        for keep in 1..buf.len() {
            let e = decode(&buf[..keep]).unwrap_err();
            assert!(matches!(e, Bad::Short), "cut at {keep}: {e:?}");
        }
        assert_eq!(decode(&[0; 40]).unwrap_err(), Bad::Zero);
        assert_eq!(decode(&[0; 5]).unwrap_err(), Bad::Zero);
    }
}
