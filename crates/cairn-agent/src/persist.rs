//! Persistence of the agent's local services and checks in the data directory.
//!
//! The agent is the source of truth for its node's services; if it forgot them on a
//! restart, anti-entropy would delete them from the catalog. Like Consul, a durable
//! agent keeps its local definitions (services, checks, maintenance) on disk and
//! restores them at start. The file is rewritten atomically (temporary file, fsync,
//! rename, fsync of the directory) after every local change. Check *status* is not kept
//! here: the catalog (replicated and durable) has it, and the restored check starts from
//! the catalog's status.

use std::path::PathBuf;

use cairn_types::definition::CheckDefinition;
use cairn_types::{HealthCheck, NodeService};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::local::LocalCheck;
use crate::node::Agent;

const FILE: &str = "local-state.snap";

#[derive(Serialize, Deserialize, Default)]
struct Persisted {
    services: Vec<NodeService>,
    checks: Vec<PersistedCheck>,
    config_services: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct PersistedCheck {
    check: HealthCheck,
    def: CheckDefinition,
    from_config: bool,
}

impl Agent {
    fn local_dir(&self) -> Option<PathBuf> {
        self.inner.cfg.data_dir.as_ref().map(|d| d.join("agent"))
    }

    /// Writes the local definitions (no-op without a data directory).
    pub(crate) fn persist_local(&self) {
        let Some(dir) = self.local_dir() else {
            return;
        };
        let p = {
            let local = self.inner.local.lock();
            Persisted {
                services: local.services.values().cloned().collect(),
                checks: local
                    .checks
                    .values()
                    .map(|c| PersistedCheck {
                        check: c.check.clone(),
                        def: c.def.clone(),
                        from_config: c.from_config,
                    })
                    .collect(),
                config_services: local.config_services.iter().cloned().collect(),
            }
        };
        let bytes = match serde_json::to_vec(&p) {
            Ok(b) => b,
            Err(e) => {
                warn!("could not encode local state: {e}");
                return;
            }
        };
        if let Err(e) = std::fs::create_dir_all(&dir)
            .and_then(|_| cairn_storage::write_snapshot_file(&dir, FILE, &bytes))
        {
            warn!(
                "could not persist local services and checks to {}: {e}",
                dir.display()
            );
        }
    }

    /// Restores the local definitions written by [`Agent::persist_local`], taking each
    /// check's status from the catalog, and starts their runners.
    pub(crate) fn restore_local(&self) -> anyhow::Result<()> {
        let Some(dir) = self.local_dir() else {
            return Ok(());
        };
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        let p: Persisted = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("decoding {}: {e}", path.display()))?;
        let node = self.inner.cfg.node_name.clone();
        let mut restored = Vec::new();
        {
            let st = self.inner.state.read();
            for pc in p.checks {
                let mut check = pc.check;
                if let Some(c) = st.check(&node, &check.check_id) {
                    check.status = c.status.clone();
                    check.output = c.output.clone();
                }
                let critical = check.status == cairn_types::CRITICAL;
                let ttl = cairn_types::duration::parse_duration(&pc.def.ttl)
                    .ok()
                    .filter(|d| !d.is_zero());
                restored.push(LocalCheck {
                    check,
                    ttl,
                    deadline: ttl.map(|t| Instant::now() + t),
                    from_config: pc.from_config,
                    def: pc.def,
                    runner: None,
                    critical_since: critical.then(Instant::now),
                });
            }
        }
        let n_services = p.services.len();
        let n_checks = restored.len();
        let mut local = self.inner.local.lock();
        for s in p.services {
            local.services.insert(s.id.clone(), s);
        }
        local.config_services = p.config_services.into_iter().collect();
        for mut c in restored {
            c.runner = crate::checks::spawn_runner(self, &c);
            local.checks.insert(c.check.check_id.clone(), c);
        }
        info!(
            services = n_services,
            checks = n_checks,
            "restored local services and checks"
        );
        Ok(())
    }
}
