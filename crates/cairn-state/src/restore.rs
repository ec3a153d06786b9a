//! Replacing the whole state with a snapshot's, as one replicated write.
//!
//! An operator's restore (`PUT /v1/snapshot`) is a [`Command::Restore`](crate::Command)
//! applied at some log index. The restored data keeps its own `CreateIndex` and
//! `ModifyIndex` values, as Consul's does; but every blocking query must wake, and no
//! index a reader already saw may go backwards. So every table, every service name (old
//! or new), every node and every KV prefix reports at least the restore's index.
//!
//! The restored data may carry indexes above this cluster's log (a backup of an older,
//! longer-lived cluster restored into a fresh one). Consul's Raft library jumps its log
//! index past the snapshot's; openraft cannot, so the state keeps an `index_offset` added
//! to every log index it stamps from then on. `State::index` stays the log index (what
//! replicas and barriers compare); only the stamped indexes move.

use crate::State;

impl State {
    /// Replaces this state with `restored`, applied at log index `log_index`.
    pub(crate) fn restore_at(&mut self, log_index: u64, restored: State) {
        let old_services: Vec<String> = self.service_index.keys().cloned().collect();
        let old_nodes: Vec<String> = self.nodes.keys().cloned().collect();
        let log_index = log_index.max(self.index);
        // Above what readers saw here, and above every index in the restored data.
        let floor = (log_index + self.index_offset).max(restored.last_index() + 1);
        let restores = self.restores.max(restored.restores) + 1;
        *self = restored;
        self.restores = restores;
        self.index = log_index;
        self.index_offset = floor - log_index;
        let t = &mut self.tables;
        for i in [
            &mut t.nodes,
            &mut t.services,
            &mut t.checks,
            &mut t.kv,
            &mut t.sessions,
            &mut t.acl_tokens,
            &mut t.acl_policies,
            &mut t.acl_roles,
        ] {
            *i = (*i).max(floor);
        }
        let new_services: Vec<String> = self.service_index.keys().cloned().collect();
        for name in old_services.into_iter().chain(new_services) {
            self.service_index.insert(name, floor);
        }
        let new_nodes: Vec<String> = self.nodes.keys().cloned().collect();
        for node in old_nodes.into_iter().chain(new_nodes) {
            self.node_writes.insert(node, floor);
        }
        self.kv_reaped.raise_all(floor);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, KvOp, KvVerb, State};

    fn set(st: &mut State, index: u64, key: &str) {
        let mut op = KvOp::new(KvVerb::Set, key);
        op.value = b"v".to_vec();
        st.apply(index, &Command::Kv(op));
    }

    #[test]
    fn restore_replaces_the_data_and_no_index_goes_backwards() {
        let mut snap = State::new();
        set(&mut snap, 3, "kept/a");
        let mut live = State::new();
        for i in 1..=20 {
            set(&mut live, i, &format!("gone/{i}"));
        }
        let cmd = Command::Restore {
            state: Box::new(snap.clone()),
        };
        live.apply(21, &cmd);
        assert_eq!(live.kv_len(), 1);
        let (e, _) = live.kv_get("kept/a");
        assert_eq!(
            e.map(|e| e.modify_index),
            Some(3),
            "the data keeps its indexes"
        );
        assert_eq!(
            live.kv_list("gone/").1,
            21,
            "a vanished prefix still moves on"
        );
        assert_eq!(live.kv_list("kept/").1, 21);
        assert_eq!(live.table_indexes().kv, 21);
        assert_eq!(live.last_index(), 21);
        assert_eq!(live.index, 21);
        assert_eq!(
            live.restore_count(),
            1,
            "the leader's session timers restart on this"
        );
    }

    #[test]
    fn writes_after_restoring_a_longer_history_stamp_higher_indexes() {
        let mut old = State::new();
        for i in 1..=500 {
            set(&mut old, i, "hot");
        }
        let mut fresh = State::new();
        set(&mut fresh, 1, "x");
        fresh.apply(
            2,
            &Command::Restore {
                state: Box::new(old),
            },
        );
        assert_eq!(fresh.index, 2, "the log index stays this cluster's");
        assert!(fresh.last_index() > 500);
        let before = fresh.kv_get("hot").0.unwrap().modify_index;
        assert_eq!(before, 500);
        set(&mut fresh, 3, "hot");
        let after = fresh.kv_get("hot").0.unwrap().modify_index;
        assert!(after > 500, "a write after the restore stamps {after}");
        assert_eq!(fresh.kv_get("hot").1, after);
        // A second restore of the same data still moves forward.
        let copy = fresh.clone();
        fresh.apply(
            4,
            &Command::Restore {
                state: Box::new(copy),
            },
        );
        set(&mut fresh, 5, "hot");
        assert!(fresh.kv_get("hot").0.unwrap().modify_index > after + 1);
    }

    #[test]
    fn restore_through_json_round_trips() {
        let mut snap = State::new();
        set(&mut snap, 7, "k");
        let cmd = Command::Restore {
            state: Box::new(snap),
        };
        let json = serde_json::to_vec(&cmd).unwrap();
        let back: Command = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, cmd);
    }
}
