//! KV tombstone garbage collection.
//!
//! A deleted key leaves a tombstone (its deletion index) so that the blocking index of a
//! prefix moves forward on a delete. Kept forever, tombstones would grow without bound
//! in stores with key churn (locks, leader-election keys, short-lived config), and
//! every prefix read would scan them. Like Consul, the leader reaps them once they are
//! older than the tombstone TTL (`kv_tombstone_ttl`, 15 minutes), looking every
//! `kv_tombstone_granularity` (30 seconds), with one replicated `KvReap` entry per
//! batch; the state machine keeps a per-bucket floor so no index goes backwards (see
//! `cairn_state`'s `ReapedFloors`).
//!
//! Timing needs no replicated clock: every granularity tick the leader notes "all
//! tombstones up to index M exist now"; a mark older than the TTL lets it reap up to
//! that M, since each of those tombstones is at least that old. A new leader starts
//! with no marks, so it reaps nothing younger than the TTL, only later than it could.

use std::collections::VecDeque;

use cairn_state::Command;
use tokio::time::Instant;

use crate::leader::Duties;

/// The reap that is due at `now`: the newest mark at least `ttl` old, removed from
/// `marks` together with the older ones.
fn due(
    marks: &mut VecDeque<(Instant, u64)>,
    now: Instant,
    ttl: std::time::Duration,
) -> Option<(Instant, u64)> {
    let mut newest = None;
    while let Some(&(t, m)) = marks.front() {
        if now.duration_since(t) < ttl {
            break;
        }
        newest = Some((t, m));
        marks.pop_front();
    }
    newest
}

/// A leader duty ([`crate::leader`]): runs only while this server leads, and starts with
/// no marks on every new term of leadership.
pub(crate) async fn gc_loop(duties: Duties) {
    let ttl = duties.kv_tombstone_ttl;
    let mut tick = tokio::time::interval(duties.kv_tombstone_granularity);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut marks: VecDeque<(Instant, u64)> = VecDeque::new();
    loop {
        tick.tick().await;
        let now = Instant::now();
        if let Some(max) = duties.state.read().kv_max_tombstone() {
            if marks.back().is_none_or(|&(_, m)| m < max) {
                marks.push_back((now, max));
            }
        }
        let Some((mark, upto)) = due(&mut marks, now, ttl) else {
            continue;
        };
        match duties.write(Command::KvReap { upto }).await {
            Ok(_) => tracing::debug!(upto, "reaped KV tombstones"),
            Err(e) => {
                tracing::warn!(upto, "could not reap KV tombstones: {e}");
                // Try again on the next tick.
                marks.push_front((mark, upto));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reaps_up_to_the_newest_mark_old_enough() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut marks: VecDeque<(Instant, u64)> =
            [(t0, 10), (t0 + s(30), 20), (t0 + s(60), 35)].into();
        let ttl = s(60);
        assert_eq!(due(&mut marks, t0 + s(59), ttl), None);
        assert_eq!(marks.len(), 3);
        assert_eq!(due(&mut marks, t0 + s(90), ttl), Some((t0 + s(30), 20)));
        assert_eq!(marks.len(), 1);
        assert_eq!(due(&mut marks, t0 + s(100), ttl), None);
        assert_eq!(due(&mut marks, t0 + s(120), ttl), Some((t0 + s(60), 35)));
        assert!(marks.is_empty());
        assert_eq!(due(&mut marks, t0 + s(500), ttl), None);
    }
}
