//! Persistence of the agent's local services and checks in the data directory.
//!
//! The agent is the source of truth for its node's services; if it forgot them on a
//! restart, anti-entropy would delete them from the catalog. Like Consul, a durable
//! agent keeps each local definition (service, check, maintenance) in its own file
//! under `<data-dir>/agent/{services,checks}/`, written atomically (temporary file,
//! fsync, rename, fsync of the directory) before the registration is acknowledged, and
//! restores them at start. One file per definition keeps the cost of a registration
//! constant however many services the agent has. Check *status* is taken from the
//! catalog (replicated and durable) at restore, not from these files.

use std::path::{Path, PathBuf};

use cairn_types::definition::CheckDefinition;
use cairn_types::{HealthCheck, NodeService};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::local::LocalCheck;
use crate::node::Agent;

#[derive(Serialize, Deserialize)]
struct PersistedService {
    service: NodeService,
    from_config: bool,
}

#[derive(Serialize, Deserialize)]
struct PersistedCheck {
    check: HealthCheck,
    def: CheckDefinition,
    from_config: bool,
}

/// File name for an ID: hex of its bytes (IDs may hold any character).
fn file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.snap")
}

fn remove_durably(dir: &Path, id: &str) {
    let path = dir.join(file_name(id));
    match std::fs::remove_file(&path) {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!("could not remove {}: {e}", path.display()),
    }
}

fn write_durably<T: Serialize>(dir: &Path, id: &str, value: &T) {
    let result = serde_json::to_vec(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            std::fs::create_dir_all(dir)?;
            cairn_storage::write_snapshot_file(dir, &file_name(id), &bytes)
        });
    if let Err(e) = result {
        warn!("could not persist {id:?} in {}: {e}", dir.display());
    }
}

fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> anyhow::Result<Vec<T>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "snap") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        out.push(
            serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("decoding {}: {e}", path.display()))?,
        );
    }
    Ok(out)
}

impl Agent {
    fn local_dir(&self, kind: &str) -> Option<PathBuf> {
        self.inner
            .cfg
            .data_dir
            .as_ref()
            .map(|d| d.join("agent").join(kind))
    }

    /// Writes the definition of local service `id` (no-op without a data directory).
    pub(crate) fn persist_service(&self, id: &str) {
        let Some(dir) = self.local_dir("services") else {
            return;
        };
        let value = {
            let local = self.inner.local.lock();
            local.services.get(id).map(|s| PersistedService {
                service: s.clone(),
                from_config: local.config_services.contains(id),
            })
        };
        match value {
            Some(v) => write_durably(&dir, id, &v),
            None => remove_durably(&dir, id),
        }
    }

    /// Writes the definition of local check `id`.
    pub(crate) fn persist_check(&self, id: &str) {
        let Some(dir) = self.local_dir("checks") else {
            return;
        };
        let value = self
            .inner
            .local
            .lock()
            .checks
            .get(id)
            .map(|c| PersistedCheck {
                check: c.check.clone(),
                def: c.def.clone(),
                from_config: c.from_config,
            });
        match value {
            Some(v) => write_durably(&dir, id, &v),
            None => remove_durably(&dir, id),
        }
    }

    /// Forgets local service `id` on disk.
    pub(crate) fn unpersist_service(&self, id: &str) {
        if let Some(dir) = self.local_dir("services") {
            remove_durably(&dir, id);
        }
    }

    /// Forgets local check `id` on disk.
    pub(crate) fn unpersist_check(&self, id: &str) {
        if let Some(dir) = self.local_dir("checks") {
            remove_durably(&dir, id);
        }
    }

    /// Restores the local definitions, taking each check's status from the catalog,
    /// and starts their runners.
    pub(crate) fn restore_local(&self) -> anyhow::Result<()> {
        let (Some(sdir), Some(cdir)) = (self.local_dir("services"), self.local_dir("checks"))
        else {
            return Ok(());
        };
        let services: Vec<PersistedService> = read_all(&sdir)?;
        let checks: Vec<PersistedCheck> = read_all(&cdir)?;
        let node = self.inner.cfg.node_name.clone();
        let mut restored = Vec::new();
        let mut refused = Vec::new();
        {
            let st = self.inner.state.read();
            for pc in checks {
                // The configuration may have changed since the check was registered.
                if pc.def.check_type() == Some("script") {
                    if let Err(why) = crate::local::script_allowed(&self.inner.cfg, pc.from_config)
                    {
                        warn!(check = %pc.check.check_id, "not restoring script check: {why}");
                        refused.push(pc.check.check_id);
                        continue;
                    }
                }
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
        let n_services = services.len();
        let n_checks = restored.len();
        let mut local = self.inner.local.lock();
        for ps in services {
            if ps.from_config {
                local.config_services.insert(ps.service.id.clone());
            }
            local.services.insert(ps.service.id.clone(), ps.service);
        }
        for mut c in restored {
            c.runner = crate::checks::spawn_runner(self, &c);
            local.checks.insert(c.check.check_id.clone(), c);
        }
        drop(local);
        for id in &refused {
            self.unpersist_check(id);
        }
        info!(
            services = n_services,
            checks = n_checks,
            "restored local services and checks"
        );
        Ok(())
    }
}
