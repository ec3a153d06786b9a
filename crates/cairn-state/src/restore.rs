//! Replacing the whole state with a snapshot's, as one replicated write.
//!
//! An operator's restore (`PUT /v1/snapshot`) is a [`Command::Restore`](crate::Command)
//! applied at some log index. The restored data keeps its own `CreateIndex` and
//! `ModifyIndex` values, as Consul's does; but every blocking query must wake, and no
//! index a reader already saw may go backwards. So every table, every service name (old
//! or new), every node and every KV prefix reports at least the restore's index.

use crate::State;

impl State {
    /// Replaces this state with `restored`, applied at log `index`.
    pub(crate) fn restore_at(&mut self, index: u64, restored: State) {
        let old_services: Vec<String> = self.service_index.keys().cloned().collect();
        let old_nodes: Vec<String> = self.nodes.keys().cloned().collect();
        let floor = index.max(self.index);
        *self = restored;
        self.index = self.index.max(floor);
        let t = &mut self.tables;
        for i in [
            &mut t.nodes,
            &mut t.services,
            &mut t.checks,
            &mut t.kv,
            &mut t.sessions,
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
        assert_eq!(e.map(|e| e.modify_index), Some(3), "the data keeps its indexes");
        assert_eq!(live.kv_list("gone/").1, 21, "a vanished prefix still moves on");
        assert_eq!(live.kv_list("kept/").1, 21);
        assert_eq!(live.table_indexes().kv, 21);
        assert_eq!(live.last_index(), 21);
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
