//! Session TTLs. Like Consul, the timers live on the leader only and are not
//! replicated: a new leader starts every TTL afresh. A session that is not renewed
//! within 2 x TTL (Consul's `SessionTTLMultiplier`) is destroyed through Raft, which
//! releases or deletes its locks. A restored snapshot (`PUT /v1/snapshot`) restarts
//! every timer, as a new leader does.

use std::collections::HashMap;
use std::time::Duration;

use cairn_state::Command;
use cairn_types::duration::parse_duration;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::leader::Duties;
use crate::now_ms;

/// Grace factor on session TTLs (Consul's `SessionTTLMultiplier`).
pub const TTL_MULTIPLIER: u32 = 2;

/// Deadlines of sessions with a TTL.
#[derive(Default)]
pub struct SessionTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
    renewed: Mutex<HashMap<String, Instant>>,
}

impl SessionTimers {
    /// Records a renewal (or creation); the reaper recomputes the deadline.
    pub fn renewed(&self, id: &str) {
        self.renewed.lock().insert(id.to_string(), Instant::now());
        self.deadlines.lock().remove(id);
    }
}

/// Destroys sessions whose TTL ran out. A leader duty ([`crate::leader`]): it runs only
/// while this server leads, and every TTL starts afresh with it.
pub(crate) async fn reaper_loop(duties: Duties) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let timers = &duties.sessions;
    timers.deadlines.lock().clear();
    timers.renewed.lock().clear();
    let mut restores = duties.state.read().restore_count();
    loop {
        tick.tick().await;
        let now = Instant::now();
        let sessions: Vec<(String, Duration)> = {
            let st = duties.state.read();
            if st.restore_count() != restores {
                // A snapshot was restored: every session gets a full TTL from now.
                restores = st.restore_count();
                timers.deadlines.lock().clear();
                timers.renewed.lock().clear();
            }
            st.sessions()
                .0
                .into_iter()
                .filter(|s| !s.ttl.is_empty())
                .filter_map(|s| parse_duration(&s.ttl).ok().map(|d| (s.id.clone(), d)))
                .collect()
        };
        let mut expired = Vec::new();
        {
            let mut deadlines = timers.deadlines.lock();
            let mut renewed = timers.renewed.lock();
            deadlines.retain(|id, _| sessions.iter().any(|(s, _)| s == id));
            renewed.retain(|id, _| sessions.iter().any(|(s, _)| s == id));
            for (id, ttl) in &sessions {
                let d = *deadlines.entry(id.clone()).or_insert_with(|| {
                    renewed.get(id).copied().unwrap_or(now) + *ttl * TTL_MULTIPLIER
                });
                if d <= now {
                    expired.push(id.clone());
                }
            }
        }
        for id in expired {
            tracing::info!(session = %id, "session TTL expired; invalidating");
            let cmd = Command::SessionDestroy {
                id: id.clone(),
                now_ms: now_ms(),
            };
            if duties.write(cmd).await.is_ok() {
                timers.deadlines.lock().remove(&id);
                timers.renewed.lock().remove(&id);
            }
        }
    }
}
