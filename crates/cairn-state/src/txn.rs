//! `/v1/txn`: KV operations applied atomically. Operations run in order against the live
//! state, each seeing the effects of the ones before it; an undo log records what every
//! write touched, and if any operation fails the log is replayed backwards so nothing
//! of the transaction remains. The cost is proportional to the keys touched, not to the
//! size of the store.

use cairn_types::KvEntry;

use crate::kv::KvWrite;
use crate::{KvVerb, Outcome, State, TxnError, TxnRequest, TxnResult};

/// What a key looked like before the transaction touched it.
struct Undo {
    key: String,
    entry: Option<KvEntry>,
    tombstone: Option<u64>,
}

impl State {
    fn keys_touched_by(&self, verb: KvVerb, key: &str) -> Vec<String> {
        match verb {
            KvVerb::DeleteTree => self
                .kv
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(k, _)| k.clone())
                .collect(),
            v if v.is_read() => Vec::new(),
            _ => vec![key.to_string()],
        }
    }

    pub(crate) fn txn(&mut self, idx: u64, t: &TxnRequest) -> Outcome {
        let kv_index_before = self.tables.kv;
        let mut undo: Vec<Undo> = Vec::new();
        let mut result = TxnResult::default();
        for (i, op) in t.ops.iter().enumerate() {
            for key in self.keys_touched_by(op.verb, &op.key) {
                undo.push(Undo {
                    entry: self.kv.get(&key).cloned(),
                    tombstone: self.kv_tombstones.get(&key).copied(),
                    key,
                });
            }
            let entries = if op.verb == KvVerb::GetTree {
                self.kv_list(&op.key).0.into_iter().cloned().collect()
            } else {
                match self.kv_write(idx, op) {
                    KvWrite::Done(e) => e.into_iter().collect::<Vec<_>>(),
                    KvWrite::Failed(what) => {
                        result.errors.push(TxnError { op_index: i, what });
                        continue;
                    }
                    KvWrite::Error(e) => {
                        result.errors.push(TxnError {
                            op_index: i,
                            what: e.to_string(),
                        });
                        continue;
                    }
                }
            };
            for mut e in entries {
                // Writes return the entry without its value, as Consul does.
                if !op.verb.is_read() {
                    e.value.clear();
                }
                result.results.push(e);
            }
        }
        if !result.errors.is_empty() {
            for u in undo.into_iter().rev() {
                match u.entry {
                    Some(e) => self.kv.insert(u.key.clone(), e),
                    None => self.kv.remove(&u.key),
                };
                match u.tombstone {
                    Some(t) => self.kv_tombstones.insert(u.key, t),
                    None => self.kv_tombstones.remove(&u.key),
                };
            }
            self.tables.kv = kv_index_before;
            result.results.clear();
        }
        Outcome::Txn(result)
    }
}
