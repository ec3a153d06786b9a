//! When a server snapshots its state and how much log it keeps behind the snapshot:
//! Consul's `raft_snapshot_threshold`, `raft_snapshot_interval` and `raft_trailing_logs`.
//!
//! Consul checks every `raft_snapshot_interval` whether at least
//! `raft_snapshot_threshold` entries were applied since the last snapshot, and if so
//! takes one, keeping `raft_trailing_logs` entries behind it so that a follower slightly
//! behind catches up from the log rather than by a snapshot transfer. openraft's own
//! policy checks after every applied batch instead; with an interval set, that policy is
//! turned off and a task of the node ([`RaftNode::spawn_snapshot_checker`]) asks the
//! pure [`snapshot_due`] on each tick.

use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::{Config, SnapshotPolicy};

use crate::node::RaftNode;

/// Consul's `raft_snapshot_threshold` default.
pub const DEFAULT_THRESHOLD: u64 = 16384;
/// Consul's `raft_snapshot_interval` default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Consul's `raft_trailing_logs` default.
pub const DEFAULT_TRAILING_LOGS: u64 = 10240;

/// The snapshot policy of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// Entries applied since the last snapshot before a new one is taken.
    pub threshold: u64,
    /// How often the threshold is checked; `None` checks after every applied batch.
    pub interval: Option<Duration>,
    /// Entries kept in the log behind a snapshot.
    pub trailing_logs: u64,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            threshold: DEFAULT_THRESHOLD,
            interval: Some(DEFAULT_INTERVAL),
            trailing_logs: DEFAULT_TRAILING_LOGS,
        }
    }
}

impl SnapshotSettings {
    /// Sets openraft's policy and log retention from these settings.
    pub(crate) fn configure(&self, config: &mut Config) {
        config.snapshot_policy = match self.interval {
            Some(_) => SnapshotPolicy::Never,
            None => SnapshotPolicy::LogsSinceLast(self.threshold.max(1)),
        };
        config.max_in_snapshot_log_to_keep = self.trailing_logs;
    }
}

/// Whether a snapshot is due: at least `threshold` entries applied since the last one.
pub fn snapshot_due(last_applied: Option<u64>, last_snapshot: Option<u64>, threshold: u64) -> bool {
    let applied = last_applied.unwrap_or(0);
    let snapshot = last_snapshot.unwrap_or(0);
    applied.saturating_sub(snapshot) >= threshold.max(1)
}

impl RaftNode {
    /// With an interval in `settings`, checks every interval whether a snapshot is due
    /// and asks Raft to take one. Stops when Raft stops.
    pub(crate) fn spawn_snapshot_checker(&self, settings: SnapshotSettings) {
        let Some(interval) = settings.interval else {
            return;
        };
        let raft = self.raft().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let m = raft.metrics().borrow_watched().clone();
                if m.running_state.is_err() {
                    return;
                }
                let due = snapshot_due(
                    m.last_applied.map(|l| l.index()),
                    m.snapshot.map(|l| l.index()),
                    settings.threshold,
                );
                if due {
                    tracing::debug!(threshold = settings.threshold, "snapshot due");
                    if raft.trigger().snapshot().await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_the_threshold_is_reached() {
        assert!(!snapshot_due(None, None, 10));
        assert!(!snapshot_due(Some(9), None, 10));
        assert!(snapshot_due(Some(10), None, 10));
        assert!(!snapshot_due(Some(25), Some(20), 10));
        assert!(snapshot_due(Some(30), Some(20), 10));
        assert!(
            !snapshot_due(Some(5), Some(20), 10),
            "a newer snapshot than applied"
        );
        assert!(
            snapshot_due(Some(1), None, 0),
            "a zero threshold means every entry"
        );
    }

    #[test]
    fn an_interval_turns_openraft_policy_off() {
        let mut c = Config::default();
        SnapshotSettings::default().configure(&mut c);
        assert_eq!(c.snapshot_policy, SnapshotPolicy::Never);
        assert_eq!(c.max_in_snapshot_log_to_keep, DEFAULT_TRAILING_LOGS);
        let s = SnapshotSettings {
            threshold: 7,
            interval: None,
            trailing_logs: 0,
        };
        s.configure(&mut c);
        assert_eq!(c.snapshot_policy, SnapshotPolicy::LogsSinceLast(7));
    }
}
