//! `cairn reload` and SIGHUP: the configuration files read again and their services and
//! checks applied. Everything is read and vetted before anything changes, so a bad file
//! leaves the agent as it was; [`leftovers`] decides, from the local state alone, which
//! entries the files no longer hold; then those go and the files' entries are registered
//! again (a re-registration keeps each check's health). TLS certificates are swapped, all
//! or nothing, for new connections. Other settings need a restart.

use std::collections::BTreeSet;

use cairn_types::definition::{CheckDefinition, ServiceDefinition};

use super::{prepare_check, prepare_service, LocalError, LocalState};
use crate::node::Agent;

/// A refusal of the new configuration: nothing was changed.
fn unchanged(e: impl std::fmt::Display) -> LocalError {
    LocalError::Invalid(format!("reload failed, configuration unchanged: {e}"))
}

/// The configuration's `kind` definitions (`service`, `check`) as typed values.
fn definitions<T: serde::de::DeserializeOwned>(
    values: Vec<serde_json::Value>,
    kind: &str,
) -> Result<Vec<T>, LocalError> {
    values
        .into_iter()
        .map(|v| {
            serde_json::from_value(cairn_types::input::normalize(v)).map_err(|e| {
                LocalError::Invalid(format!("reload failed: invalid {kind} definition: {e}"))
            })
        })
        .collect()
}

/// The services and standalone checks that came from the configuration files and that
/// the new files no longer hold (`services`: IDs of the files' services, `checks`: IDs
/// of their standalone checks). Entries registered through the API are not touched, and
/// a service's checks go with their service.
fn leftovers(
    local: &LocalState,
    services: &BTreeSet<String>,
    checks: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let gone_services = local
        .config_services
        .iter()
        .filter(|id| !services.contains(*id))
        .cloned()
        .collect();
    let gone_checks = local
        .checks
        .values()
        .filter(|c| {
            c.from_config && c.check.service_id.is_empty() && !checks.contains(&c.check.check_id)
        })
        .map(|c| c.check.check_id.clone())
        .collect();
    (gone_services, gone_checks)
}

impl Agent {
    /// Re-reads the configuration and applies its services and checks (see the module
    /// docs). An error before anything changed says "configuration unchanged".
    pub async fn do_reload(&self) -> Result<(), LocalError> {
        let mut cfg = crate::config::load(&self.inner.args).map_err(unchanged)?;
        for w in &cfg.warnings {
            tracing::warn!("config (reload): {w}");
        }
        let services: Vec<ServiceDefinition> =
            definitions(std::mem::take(&mut cfg.services), "service")?;
        let checks: Vec<CheckDefinition> = definitions(std::mem::take(&mut cfg.checks), "check")?;
        // Vet everything before changing anything.
        let mut service_ids = BTreeSet::new();
        for def in &services {
            let (svc, _) = prepare_service(&self.inner.cfg, def, true).map_err(unchanged)?;
            service_ids.insert(svc.id);
        }
        let mut check_ids = BTreeSet::new();
        for def in &checks {
            let c = prepare_check(&self.inner.cfg, def, true).map_err(unchanged)?;
            check_ids.insert(c.check.check_id.clone());
        }
        // Certificates last among the checks: the swap is all or nothing.
        self.inner.tls.reload(&cfg).map_err(unchanged)?;
        let (gone_services, gone_checks) =
            leftovers(&self.inner.local.lock(), &service_ids, &check_ids);
        for id in gone_services {
            self.do_deregister_service(id).await?;
        }
        for id in gone_checks {
            self.do_deregister_check(id).await?;
        }
        for def in services {
            self.do_register_service(def, true, true).await?;
        }
        for def in checks {
            self.do_register_check(def, true).await?;
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    fn ids(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_entries_from_the_files_that_the_files_dropped_go() {
        let mut local = LocalState {
            config_services: ids(&["web", "db"]),
            ..Default::default()
        };
        for (id, service, from_config) in [
            ("disk", "", true),
            ("mem", "", true),
            ("api-made", "", false),
            ("service:db", "db", true),
        ] {
            let mut c = check(id, service, None, "");
            c.from_config = from_config;
            local.checks.insert(id.into(), c);
        }
        let (services, checks) = leftovers(&local, &ids(&["web"]), &ids(&["disk"]));
        assert_eq!(services, ["db"]);
        assert_eq!(
            checks,
            ["mem"],
            "not the API's check, not a service's check"
        );
        let (services, checks) = leftovers(&local, &ids(&["web", "db"]), &ids(&["disk", "mem"]));
        assert!(services.is_empty() && checks.is_empty());
    }
}
