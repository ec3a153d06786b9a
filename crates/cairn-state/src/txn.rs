//! `/v1/txn`: KV operations applied atomically. All operations are checked against the
//! state as it would be after the previous operations; if any fails, nothing applies.

use crate::kv::KvWrite;
use crate::{KvVerb, Outcome, State, TxnError, TxnRequest, TxnResult};

impl State {
    pub(crate) fn txn(&mut self, idx: u64, t: &TxnRequest) -> Outcome {
        // Dry-run on a copy of the KV-relevant state. Transactions are bounded
        // (128 ops), so the copy is cheap compared to the safety of all-or-nothing.
        let mut scratch = self.clone();
        let mut result = TxnResult::default();
        for (i, op) in t.ops.iter().enumerate() {
            let entries = if op.verb == KvVerb::GetTree {
                let (v, _) = scratch.kv_list(&op.key);
                v.into_iter().cloned().collect()
            } else {
                match scratch.kv_write(idx, op) {
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
        if result.errors.is_empty() {
            let index = self.index;
            *self = scratch;
            self.index = index.max(idx);
        } else {
            result.results.clear();
        }
        Outcome::Txn(result)
    }
}
