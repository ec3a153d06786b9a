//! Sessions: creation with health-check validation, and invalidation that releases or
//! deletes the keys a session holds and arms their lock-delay.

use cairn_types::{Session, BEHAVIOR_DELETE, CRITICAL};

use crate::index::at_least_one;
use crate::{ApplyError, Outcome, State};

impl State {
    pub(crate) fn session_create(&mut self, idx: u64, s: &Session) -> Outcome {
        let Some(rec) = self.nodes.get(&s.node) else {
            return Outcome::Error(ApplyError::UnknownNode(s.node.clone()));
        };
        let ids = s
            .node_checks
            .iter()
            .chain(s.service_checks.iter().map(|c| &c.id));
        for id in ids {
            match rec.checks.get(id) {
                None => return Outcome::Error(ApplyError::UnknownCheck(id.clone())),
                Some(c) if c.status == CRITICAL => {
                    return Outcome::Error(ApplyError::CriticalCheck(id.clone()))
                }
                Some(_) => {}
            }
        }
        let mut s = s.clone();
        s.create_index = idx;
        s.modify_index = idx;
        self.sessions.insert(s.id.clone(), s);
        self.tables.sessions = idx;
        Outcome::None
    }

    /// Invalidates a session; returns false when it did not exist.
    pub(crate) fn session_destroy(&mut self, idx: u64, id: &str, now_ms: u64) -> bool {
        let Some(s) = self.sessions.remove(id) else {
            return false;
        };
        self.tables.sessions = idx;
        let held: Vec<String> = self
            .kv
            .values()
            .filter(|e| e.session == id)
            .map(|e| e.key.clone())
            .collect();
        let delay_ms = s.lock_delay / 1_000_000;
        for key in held {
            if s.behavior == BEHAVIOR_DELETE {
                self.kv_delete(idx, &key);
            } else if let Some(e) = self.kv.get_mut(&key) {
                e.session.clear();
                e.modify_index = idx;
                self.tables.kv = idx;
            }
            if delay_ms > 0 {
                self.lock_delays
                    .insert(key, now_ms.saturating_add(delay_ms));
            }
        }
        // Forget lock-delays that have run out, so the map stays small.
        self.lock_delays.retain(|_, until| *until > now_ms);
        true
    }

    /// Invalidates every session that depends on check `check_id` of `node`.
    pub(crate) fn invalidate_sessions_for_check(
        &mut self,
        idx: u64,
        node: &str,
        check_id: &str,
        now_ms: u64,
    ) {
        let ids: Vec<String> = self
            .sessions
            .values()
            .filter(|s| {
                s.node == node
                    && (s.node_checks.iter().any(|c| c == check_id)
                        || s.service_checks.iter().any(|c| c.id == check_id))
            })
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.session_destroy(idx, &id, now_ms);
        }
    }

    // ---- reads ---------------------------------------------------------------

    /// One session and the sessions table index.
    pub fn session(&self, id: &str) -> (Option<&Session>, u64) {
        (self.sessions.get(id), at_least_one(self.tables.sessions))
    }

    /// All sessions (sorted by ID).
    pub fn sessions(&self) -> (Vec<&Session>, u64) {
        (
            self.sessions.values().collect(),
            at_least_one(self.tables.sessions),
        )
    }

    /// Sessions of one node.
    pub fn node_sessions(&self, node: &str) -> (Vec<&Session>, u64) {
        (
            self.sessions.values().filter(|s| s.node == node).collect(),
            at_least_one(self.tables.sessions),
        )
    }
}
