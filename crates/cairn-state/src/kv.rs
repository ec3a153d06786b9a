//! The key/value store with Consul's check-and-set and session-lock semantics.

use cairn_types::KvEntry;

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
        let i = live.max(dead);
        let i = if i == 0 { self.tables.kv } else { i };
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
