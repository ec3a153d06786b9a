//! Autopilot's settings, kept in the replicated state so that every server (and a new
//! leader) applies the same ones: Consul's `/v1/operator/autopilot/configuration`.
//!
//! Durations are milliseconds here; the HTTP layer shows them as Consul's duration
//! strings ("200ms", "10s").

use serde::{Deserialize, Serialize};

use crate::{Outcome, State};

/// Autopilot's settings (Consul's field set, open-source part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotConfig {
    /// Remove servers that have failed for longer than the stabilisation time.
    pub cleanup_dead_servers: bool,
    /// A server whose last contact with the leader is older than this is unhealthy.
    pub last_contact_threshold_ms: u64,
    /// A server more than this many entries behind the leader is unhealthy.
    pub max_trailing_logs: u64,
    /// Dead servers are never removed below this many voters (0: no floor).
    pub min_quorum: u64,
    /// How long a server must be healthy (or dead) before autopilot acts on it.
    pub server_stabilization_time_ms: u64,
    /// Index of the write that first stored the settings (0: never stored).
    pub create_index: u64,
    /// Index of the last write that changed them.
    pub modify_index: u64,
}

impl Default for AutopilotConfig {
    /// Consul's defaults.
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold_ms: 200,
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time_ms: 10_000,
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl State {
    /// The autopilot settings in force (Consul's defaults until some were stored).
    pub fn autopilot_config(&self) -> AutopilotConfig {
        self.autopilot.clone().unwrap_or_default()
    }

    /// Stores `config`; with `cas`, only if the stored settings' `modify_index` is `cas`
    /// (0: none stored yet). `Bool(false)` when the check fails.
    pub(crate) fn autopilot_set(
        &mut self,
        index: u64,
        config: &AutopilotConfig,
        cas: Option<u64>,
    ) -> Outcome {
        let current = self.autopilot.as_ref().map_or(0, |c| c.modify_index);
        if cas.is_some_and(|want| want != current) {
            return Outcome::Bool(false);
        }
        let create_index = self.autopilot.as_ref().map_or(index, |c| c.create_index);
        self.autopilot = Some(AutopilotConfig {
            create_index,
            modify_index: index,
            ..config.clone()
        });
        Outcome::Bool(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, Outcome, State};

    use super::AutopilotConfig;

    fn set(cas: Option<u64>, min_quorum: u64) -> Command {
        Command::AutopilotSetConfig {
            config: AutopilotConfig {
                min_quorum,
                ..AutopilotConfig::default()
            },
            cas,
        }
    }

    #[test]
    fn defaults_then_set_then_cas() {
        let mut s = State::new();
        assert_eq!(s.autopilot_config(), AutopilotConfig::default());
        assert_eq!(s.apply(5, &set(None, 3)), Outcome::Bool(true));
        let c = s.autopilot_config();
        assert_eq!((c.min_quorum, c.create_index, c.modify_index), (3, 5, 5));
        // A stale index is refused and changes nothing.
        assert_eq!(s.apply(6, &set(Some(4), 1)), Outcome::Bool(false));
        assert_eq!(s.autopilot_config().min_quorum, 3);
        assert_eq!(s.apply(7, &set(Some(5), 1)), Outcome::Bool(true));
        let c = s.autopilot_config();
        assert_eq!((c.min_quorum, c.create_index, c.modify_index), (1, 5, 7));
    }

    #[test]
    fn cas_zero_only_when_nothing_stored() {
        let mut s = State::new();
        assert_eq!(s.apply(2, &set(Some(0), 2)), Outcome::Bool(true));
        assert_eq!(s.apply(3, &set(Some(0), 4)), Outcome::Bool(false));
    }

    #[test]
    fn a_snapshot_without_the_field_reads_as_defaults() {
        let mut v = serde_json::to_value(State::new()).unwrap();
        v.as_object_mut().unwrap().remove("autopilot");
        let s: State = serde_json::from_value(v).unwrap();
        assert_eq!(s.autopilot_config(), AutopilotConfig::default());
    }
}
