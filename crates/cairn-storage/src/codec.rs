//! Value encoding shared by the stores.
//!
//! Exists so that the on-disk byte format of entries, votes and log ids is decided in one
//! place, and so that every codec failure is reported as an [`io::Error`] (openraft's storage
//! traits speak `io::Error`) instead of panicking.

use std::io;
use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Serializes a value to bytes: postcard, compact and cheap (a KV value's bytes are written
/// as they are, not as a JSON array of numbers). postcard is not self-describing, so a type
/// stored here must not use `skip_serializing_if`, `untagged`, `flatten` or free-form JSON;
/// openraft's entry, vote and log id types do not, and an application payload that does
/// must write itself differently when `is_human_readable()` is false (as Cairn's does).
pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Deserializes a value produced by [`encode`]; trailing bytes are an error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if !rest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes after an encoded value", rest.len()),
        ));
    }
    Ok(value)
}

/// Copies any `RangeBounds<u64>` into an owned pair of bounds that can be moved across threads.
pub(crate) fn owned_bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

/// Converts any displayable storage error into an `io::Error`.
pub(crate) fn io_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// True when no `u64` can lie in the bounds. `BTreeMap::range` panics on such ranges
/// (start > end, or equal and excluded), so callers check first.
pub(crate) fn is_empty_range(bounds: &(Bound<u64>, Bound<u64>)) -> bool {
    let start = match bounds.0 {
        Bound::Included(s) => s,
        Bound::Excluded(s) => match s.checked_add(1) {
            Some(s) => s,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match bounds.1 {
        Bound::Included(e) => start > e,
        Bound::Excluded(e) => start >= e,
        Bound::Unbounded => false,
    }
}
