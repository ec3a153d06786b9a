//! The resolver's answer cache: resolved record sets by question, valid for
//! one catalog generation ([`crate::Catalog::generation`]).
//!
//! Entries hold what a lookup produced before shuffling and trimming (see
//! [`crate::resolver`]), so every answer is still shuffled and sized for its
//! own transport and buffer. A generation newer than the cache's empties it;
//! a value computed under an older generation is not stored (generations
//! only grow). The cache holds at most [`CAPACITY`] entries; when full it
//! is emptied (the working set of a DNS interface is its service names, far
//! below that; the bound only stops random names from growing it forever).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Most entries held at once.
pub(crate) const CAPACITY: usize = 8192;

struct Inner<V> {
    generation: u64,
    map: HashMap<Box<[u8]>, Arc<V>>,
}

/// A generation-checked map from question keys to shared values.
pub(crate) struct AnswerCache<V> {
    inner: RwLock<Inner<V>>,
}

impl<V> AnswerCache<V> {
    pub(crate) fn new() -> Self {
        Self {
            inner: RwLock::new(Inner {
                generation: 0,
                map: HashMap::new(),
            }),
        }
    }

    /// The value cached for `key` under `generation` (never for 0).
    pub(crate) fn get(&self, key: &[u8], generation: u64) -> Option<Arc<V>> {
        if generation == 0 {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return None;
        }
        inner.map.get(key).cloned()
    }

    /// Stores `value`, computed from the catalog at `generation`.
    pub(crate) fn put(&self, key: &[u8], generation: u64, value: Arc<V>) {
        if generation == 0 {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation {
            inner.map.clear();
            inner.generation = generation;
        }
        if inner.map.len() >= CAPACITY {
            inner.map.clear();
        }
        inner.map.insert(key.into(), value);
    }

    /// Number of entries (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.read().map(|i| i.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_invalidate() {
        let c = AnswerCache::new();
        c.put(b"a", 0, Arc::new(1));
        assert!(c.get(b"a", 0).is_none());
        assert_eq!(c.len(), 0);
        c.put(b"a", 5, Arc::new(1));
        assert_eq!(c.get(b"a", 5).as_deref(), Some(&1));
        assert!(c.get(b"a", 6).is_none());
        c.put(b"b", 4, Arc::new(2)); // stale: dropped
        assert!(c.get(b"b", 4).is_none());
        assert!(c.get(b"b", 5).is_none());
        c.put(b"b", 6, Arc::new(2)); // newer: empties the rest
        assert_eq!(c.len(), 1);
        assert!(c.get(b"a", 6).is_none());
        for i in 0..CAPACITY + 1 {
            c.put(format!("k{i}").as_bytes(), 6, Arc::new(0));
        }
        assert!(c.len() <= CAPACITY);
    }
}
