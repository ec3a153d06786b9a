//! The agent's local services and checks: what this node runs, as the agent was told
//! by its API and config files. The agent is the source of truth for its node's entries
//! in the catalog. This module holds the local state itself; `define` decides what a
//! definition becomes (pure), `register` carries a change out (files, catalog, state),
//! `timers` expires TTL checks and reaps long-critical services, and `reload` applies the
//! configuration files' services and checks again.

mod define;
mod register;
mod reload;
mod timers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cairn_server::CatalogError;
use cairn_types::definition::CheckDefinition;
use cairn_types::{HealthCheck, NodeService};
use tokio::time::Instant;

pub(crate) use define::{prepare_check, prepare_service, script_allowed};
pub(crate) use timers::ttl_loop;

/// Longest check output kept (Consul's default `check_output_max_size`).
pub const MAX_CHECK_OUTPUT: usize = 4096;
/// Cuts a check output to [`MAX_CHECK_OUTPUT`] bytes (at a character boundary) plus a
/// marker. Idempotent, so runners can compare a fresh output with the stored one.
pub(crate) fn truncate_output(mut s: String) -> String {
    if s.len() > MAX_CHECK_OUTPUT {
        let mut cut = MAX_CHECK_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ... (output truncated)");
    }
    s
}

/// Why a change to the local services and checks was refused or did not happen. Only
/// the HTTP edge (`backend.rs`) turns these into statuses.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The definition or the request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// No such service or check on this agent.
    #[error("{0}")]
    Unknown(String),
    /// The state machine refused the write.
    #[error("{0}")]
    Refused(String),
    /// The definition could not be saved in the data directory, so it was not registered.
    #[error("{0}")]
    Persist(String),
    /// The catalog could not take the write.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A local check and its runtime state.
#[derive(Debug)]
pub struct LocalCheck {
    pub check: HealthCheck,
    /// For TTL checks: the TTL and when it runs out.
    pub ttl: Option<Duration>,
    pub deadline: Option<Instant>,
    /// Registered from a config file (reload replaces these).
    pub from_config: bool,
    /// The definition, for the check runner.
    pub def: CheckDefinition,
    /// The task running this check (HTTP, TCP, script, ...); aborted on removal.
    pub runner: Option<tokio::task::AbortHandle>,
    /// Since when the check has been critical (for `DeregisterCriticalServiceAfter`).
    pub critical_since: Option<Instant>,
}

impl Drop for LocalCheck {
    fn drop(&mut self) {
        if let Some(r) = self.runner.take() {
            r.abort();
        }
    }
}

impl LocalCheck {
    /// Whether the timer loop must watch this check: a TTL to expire, or a service to
    /// reap once critical for `DeregisterCriticalServiceAfter`. Decided by fields fixed
    /// when the check is built.
    fn is_timed(&self) -> bool {
        self.ttl.is_some()
            || (!self.def.deregister_critical_service_after.is_empty()
                && !self.check.service_id.is_empty())
    }

    /// `DeregisterCriticalServiceAfter`, when set to a positive duration.
    fn reap_after(&self) -> Option<Duration> {
        match define::dur(
            "DeregisterCriticalServiceAfter",
            &self.def.deregister_critical_service_after,
        ) {
            Ok(Some(d)) if !d.is_zero() => Some(d),
            _ => None,
        }
    }
}

/// The agent's local checks by ID, plus the IDs of the few the timer loop watches
/// ([`LocalCheck::is_timed`]), so that loop costs nothing per HTTP/TCP check: with
/// 10,000 checks, scanning them all four times a second was 5% of the agent's CPU.
#[derive(Debug, Default)]
pub struct Checks {
    map: BTreeMap<String, LocalCheck>,
    timed: BTreeSet<String>,
}

impl std::ops::Deref for Checks {
    type Target = BTreeMap<String, LocalCheck>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Checks {
    pub fn insert(&mut self, id: String, c: LocalCheck) -> Option<LocalCheck> {
        if c.is_timed() {
            self.timed.insert(id.clone());
        } else {
            self.timed.remove(&id);
        }
        self.map.insert(id, c)
    }

    pub fn remove(&mut self, id: &str) -> Option<LocalCheck> {
        self.timed.remove(id);
        self.map.remove(id)
    }

    pub fn retain(&mut self, f: impl FnMut(&String, &mut LocalCheck) -> bool) {
        self.map.retain(f);
        let map = &self.map;
        self.timed.retain(|id| map.contains_key(id));
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut LocalCheck> {
        self.map.get_mut(id)
    }

    pub fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, String, LocalCheck> {
        self.map.values_mut()
    }

    /// The checks with a TTL or a reap timeout.
    fn timed(&self) -> impl Iterator<Item = &LocalCheck> {
        self.timed.iter().filter_map(|id| self.map.get(id))
    }

    /// Applies `f` to every check with a TTL or a reap timeout.
    fn for_each_timed(&mut self, mut f: impl FnMut(&mut LocalCheck)) {
        for id in &self.timed {
            if let Some(c) = self.map.get_mut(id) {
                f(c);
            }
        }
    }
}

/// Local services and checks of this agent.
#[derive(Debug, Default)]
pub struct LocalState {
    pub services: BTreeMap<String, NodeService>,
    pub checks: Checks,
    /// IDs of services that came from config files (a reload replaces exactly these).
    pub config_services: std::collections::BTreeSet<String>,
    /// The ACL token each service was registered with (its catalog writes use it).
    pub service_tokens: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn check(id: &str, service: &str, ttl: Option<u64>, reap_after: &str) -> LocalCheck {
        LocalCheck {
            check: HealthCheck {
                check_id: id.into(),
                service_id: service.into(),
                ..Default::default()
            },
            ttl: ttl.map(Duration::from_secs),
            deadline: None,
            from_config: false,
            def: CheckDefinition {
                deregister_critical_service_after: reap_after.into(),
                ..Default::default()
            },
            runner: None,
            critical_since: None,
        }
    }

    fn timed_ids(c: &Checks) -> Vec<String> {
        c.timed().map(|c| c.check.check_id.clone()).collect()
    }

    #[test]
    fn timed_index_follows_inserts_removals_and_retain() {
        let mut c = Checks::default();
        c.insert("http".into(), check("http", "web", None, ""));
        c.insert("ttl".into(), check("ttl", "", Some(10), ""));
        c.insert("reap".into(), check("reap", "web", None, "1m"));
        // A reap timeout on a node-level check reaps nothing: not watched.
        c.insert("node".into(), check("node", "", None, "1m"));
        assert_eq!(c.len(), 4);
        assert_eq!(timed_ids(&c), ["reap", "ttl"]);
        assert_eq!(
            c.timed().next().unwrap().reap_after(),
            Some(Duration::from_secs(60))
        );

        // Replacing a watched check by an unwatched one with the same ID unwatches it.
        c.insert("ttl".into(), check("ttl", "", None, ""));
        assert_eq!(timed_ids(&c), ["reap"]);
        c.insert("http".into(), check("http", "web", Some(5), ""));
        assert_eq!(timed_ids(&c), ["http", "reap"]);

        c.remove("reap");
        assert_eq!(timed_ids(&c), ["http"]);
        c.retain(|_, x| x.check.service_id != "web");
        assert_eq!(timed_ids(&c), Vec::<String>::new());
        assert_eq!(c.keys().collect::<Vec<_>>(), ["node", "ttl"]);

        let mut seen = 0;
        c.insert("t2".into(), check("t2", "", Some(1), ""));
        c.for_each_timed(|x| {
            x.deadline = Some(Instant::now());
            seen += 1;
        });
        assert_eq!(seen, 1);
        assert!(c.get("t2").unwrap().deadline.is_some());
        assert!(c.get("ttl").unwrap().deadline.is_none());
    }

    #[test]
    fn zero_or_bad_reap_timeouts_never_reap() {
        assert_eq!(check("a", "s", None, "0s").reap_after(), None);
        assert_eq!(check("a", "s", None, "soon").reap_after(), None);
        assert_eq!(check("a", "s", None, "").reap_after(), None);
        assert_eq!(
            check("a", "s", None, "90s").reap_after(),
            Some(Duration::from_secs(90))
        );
    }
}
