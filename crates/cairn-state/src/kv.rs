//! The key/value store with Consul's check-and-set and session-lock semantics, the
//! tombstones of deleted keys that keep prefix indexes moving forward, and their reaping.

use std::collections::BTreeMap;

use cairn_types::KvEntry;
use serde::{Deserialize, Serialize};

use crate::index::at_least_one;
use crate::{ApplyError, KvOp, KvVerb, Outcome, State};

/// Result of one KV write inside the state (shared by `/v1/kv` and `/v1/txn`).
pub(crate) enum KvWrite {
    /// Applied; the entry as stored (None for deletes).
    Done(Option<KvEntry>),
    /// A check-and-set or lock condition did not hold.
    Failed(String),
    /// The operation is invalid (unknown session, ...).
    Error(ApplyError),
}

impl State {
    pub(crate) fn kv_op(&mut self, idx: u64, op: &KvOp) -> Outcome {
        match self.kv_write(idx, op) {
            KvWrite::Done(_) => Outcome::Bool(true),
            KvWrite::Failed(_) => Outcome::Bool(false),
            KvWrite::Error(e) => Outcome::Error(e),
        }
    }

    /// Checks whether `op` would succeed, without changing anything.
    pub(crate) fn kv_precheck(&self, op: &KvOp) -> Result<(), KvWrite> {
        let cur = self.kv.get(&op.key);
        match op.verb {
            KvVerb::Cas => {
                let ok = match cur {
                    None => op.index == 0,
                    Some(e) => op.index != 0 && e.modify_index == op.index,
                };
                if !ok {
                    return Err(KvWrite::Failed(format!(
                        "failed to set key {:?}, index is stale",
                        op.key
                    )));
                }
            }
            KvVerb::DeleteCas => {
                // Consul: deleting a key that is already gone succeeds.
                let ok = cur.is_none_or(|e| e.modify_index == op.index);
                if !ok {
                    return Err(KvWrite::Failed(format!(
                        "failed to delete key {:?}, index is stale",
                        op.key
                    )));
                }
            }
            KvVerb::Lock => {
                if !self.sessions.contains_key(&op.session) {
                    return Err(KvWrite::Error(ApplyError::InvalidSession(
                        op.session.clone(),
                    )));
                }
                if let Some(e) = cur {
                    if !e.session.is_empty() && e.session != op.session {
                        return Err(KvWrite::Failed(format!(
                            "failed to lock key {:?}, lock is already held",
                            op.key
                        )));
                    }
                }
                let fresh = cur.is_none_or(|e| e.session != op.session);
                if fresh {
                    if let Some(until) = self.lock_delays.get(&op.key) {
                        if op.now_ms < *until {
                            return Err(KvWrite::Failed(format!(
                                "failed to lock key {:?}, lock-delay in effect",
                                op.key
                            )));
                        }
                    }
                }
            }
            KvVerb::Unlock if cur.is_none_or(|e| e.session != op.session) => {
                return Err(KvWrite::Failed(format!(
                    "failed to unlock key {:?}, lock isn't held, or is held by another session",
                    op.key
                )));
            }
            KvVerb::CheckIndex if cur.is_none_or(|e| e.modify_index != op.index) => {
                return Err(KvWrite::Failed(format!(
                    "current modify index for key {:?} does not match",
                    op.key
                )));
            }
            KvVerb::CheckSession if cur.is_none_or(|e| e.session != op.session) => {
                return Err(KvWrite::Failed(format!(
                    "key {:?} is not locked by session {:?}",
                    op.key, op.session
                )));
            }
            KvVerb::CheckNotExists if cur.is_some() => {
                return Err(KvWrite::Failed(format!("key {:?} exists", op.key)));
            }
            KvVerb::Get if cur.is_none() => {
                return Err(KvWrite::Failed(format!("key {:?} doesn't exist", op.key)));
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn kv_write(&mut self, idx: u64, op: &KvOp) -> KvWrite {
        if let Err(e) = self.kv_precheck(op) {
            return e;
        }
        match op.verb {
            KvVerb::Set | KvVerb::Cas => KvWrite::Done(Some(self.kv_store(idx, op, None))),
            KvVerb::Lock => {
                let fresh = self.kv.get(&op.key).is_none_or(|e| e.session != op.session);
                let e = self.kv_store(idx, op, Some((op.session.clone(), fresh)));
                KvWrite::Done(Some(e))
            }
            KvVerb::Unlock => {
                KvWrite::Done(Some(self.kv_store(idx, op, Some((String::new(), false)))))
            }
            KvVerb::Delete | KvVerb::DeleteCas => {
                self.kv_delete(idx, &op.key);
                KvWrite::Done(None)
            }
            KvVerb::DeleteTree => {
                let keys: Vec<String> = self
                    .kv
                    .range(op.key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&op.key))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    self.kv_delete(idx, &k);
                }
                KvWrite::Done(None)
            }
            KvVerb::Get | KvVerb::GetOrEmpty | KvVerb::CheckIndex | KvVerb::CheckSession => {
                KvWrite::Done(self.kv.get(&op.key).cloned())
            }
            KvVerb::GetTree | KvVerb::CheckNotExists => KvWrite::Done(None),
        }
    }

    /// Writes a value; `lock` = Some((session, fresh_acquire)) changes the lock holder.
    fn kv_store(&mut self, idx: u64, op: &KvOp, lock: Option<(String, bool)>) -> KvEntry {
        let e = self.kv.entry(op.key.clone()).or_insert_with(|| KvEntry {
            key: op.key.clone(),
            create_index: idx,
            ..Default::default()
        });
        e.value = op.value.clone();
        e.flags = op.flags;
        e.modify_index = idx;
        if let Some((session, fresh)) = lock {
            if fresh && !session.is_empty() {
                e.lock_index += 1;
            }
            e.session = session;
        }
        self.tables.kv = idx;
        self.kv_tombstones.remove(&op.key);
        e.clone()
    }

    pub(crate) fn kv_delete(&mut self, idx: u64, key: &str) {
        if self.kv.remove(key).is_some() {
            self.kv_tombstones.insert(key.to_string(), idx);
            self.tables.kv = idx;
        }
    }

    /// Drops the tombstones created at or below `upto`, folding each into the floor of
    /// its key's bucket. Returns how many were dropped.
    pub(crate) fn kv_reap(&mut self, upto: u64) -> usize {
        let floors = &mut self.kv_reaped;
        let before = self.kv_tombstones.len();
        self.kv_tombstones.retain(|key, idx| {
            if *idx <= upto {
                floors.raise(key, *idx);
                false
            } else {
                true
            }
        });
        before - self.kv_tombstones.len()
    }

    /// Number of KV tombstones held (a metric: the tombstone GC keeps it bounded).
    pub fn kv_tombstone_count(&self) -> usize {
        self.kv_tombstones.len()
    }

    /// The highest tombstone index, if any (where the leader's tombstone GC starts).
    pub fn kv_max_tombstone(&self) -> Option<u64> {
        self.kv_tombstones.values().copied().max()
    }

    // ---- reads ---------------------------------------------------------------

    /// One key and the index to block on: its ModifyIndex, or the index of its
    /// deletion, or the KV table index if it never existed.
    pub fn kv_get(&self, key: &str) -> (Option<&KvEntry>, u64) {
        match self.kv.get(key) {
            Some(e) => (Some(e), at_least_one(e.modify_index)),
            None => {
                let i = self
                    .kv_tombstones
                    .get(key)
                    .copied()
                    .unwrap_or(self.tables.kv);
                (None, at_least_one(i))
            }
        }
    }

    /// All entries under `prefix` and the index to block on: the highest ModifyIndex
    /// or tombstone under the prefix (the KV table index if none).
    pub fn kv_list(&self, prefix: &str) -> (Vec<&KvEntry>, u64) {
        let entries: Vec<&KvEntry> = self
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e)
            .collect();
        let live = entries.iter().map(|e| e.modify_index).max().unwrap_or(0);
        let dead = self
            .kv_tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        // Nothing (live or tombstone) under the prefix: the table index, which is above
        // any reaped tombstone. Otherwise the newest entry, raised to the reaped floor.
        let i = match live.max(dead) {
            0 => self.tables.kv,
            i => i.max(self.kv_reaped.floor(prefix)),
        };
        (entries, at_least_one(i))
    }

    /// Keys under `prefix`, rolled up at the first `separator` after the prefix.
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> (Vec<String>, u64) {
        let (entries, idx) = self.kv_list(prefix);
        let mut out: Vec<String> = Vec::new();
        for e in entries {
            let k = &e.key;
            let key = if separator.is_empty() {
                k.clone()
            } else {
                match k[prefix.len()..].find(separator) {
                    Some(pos) => k[..prefix.len() + pos + separator.len()].to_string(),
                    None => k.clone(),
                }
            };
            if out.last() != Some(&key) {
                out.push(key);
            }
        }
        (out, idx)
    }

    /// Number of KV entries (metrics).
    pub fn kv_len(&self) -> usize {
        self.kv.len()
    }
}

/// The memory of reaped tombstones: for each bucket of keys, the highest index of a
/// tombstone reaped in it. A key's bucket is its first path segment (`web/` for
/// `web/a/b`); keys without `/` share the bucket `""`. A prefix list reports at least
/// the floor of every bucket its keys can fall in, so its index never goes backwards
/// when the tombstone that set it is reaped; the price is one extra wake-up for
/// watchers of other prefixes in the same bucket. Buckets are capped: past
/// [`MAX_REAPED_BUCKETS`] they fold into one floor that applies to every prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReapedFloors {
    buckets: BTreeMap<String, u64>,
    all: u64,
}

/// Most buckets [`ReapedFloors`] keeps apart.
pub(crate) const MAX_REAPED_BUCKETS: usize = 1024;

fn bucket(key: &str) -> &str {
    match key.find('/') {
        Some(p) => &key[..=p],
        None => "",
    }
}

impl ReapedFloors {
    fn raise(&mut self, key: &str, idx: u64) {
        let b = bucket(key);
        if let Some(f) = self.buckets.get_mut(b) {
            *f = (*f).max(idx);
        } else if self.buckets.len() < MAX_REAPED_BUCKETS {
            self.buckets.insert(b.to_string(), idx);
        } else {
            let most = self.buckets.values().copied().max().unwrap_or(0);
            self.all = self.all.max(most).max(idx);
            self.buckets.clear();
        }
    }

    /// Every prefix reports at least `idx` from now on (a restore replaced all keys).
    pub(crate) fn raise_all(&mut self, idx: u64) {
        self.all = self.all.max(idx);
    }

    #[cfg(test)]
    pub(crate) fn buckets_len(&self) -> usize {
        self.buckets.len()
    }

    /// The highest reaped tombstone index a key under `prefix` may have had.
    fn floor(&self, prefix: &str) -> u64 {
        let buckets = match prefix.find('/') {
            // Only keys of this one bucket can start with the prefix.
            Some(p) => self.buckets.get(&prefix[..=p]).copied().unwrap_or(0),
            // Any bucket that starts with the prefix, and the flat keys.
            None => self
                .buckets
                .range(prefix.to_string()..)
                .take_while(|(b, _)| b.starts_with(prefix))
                .map(|(_, i)| *i)
                .chain(self.buckets.get("").copied())
                .max()
                .unwrap_or(0),
        };
        buckets.max(self.all)
    }
}
