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
//!
//! A file is named by the SHA-256 of its ID (64 hex digits, as Consul names its files by
//! a hash), so IDs of any length persist; the file holds the full ID. A registration is
//! written here *before* it reaches the catalog, and one that cannot be written is an
//! error to the caller rather than a 200 that a restart would forget. A file that cannot
//! be decoded is skipped at start with a warning naming it, as Consul does, so one bad
//! file never keeps the agent down.
//!
//! A service registered with its own ACL token keeps that token in its file (Consul does
//! the same), so that after a restart anti-entropy still writes the service with it and
//! not with the agent token. The files are therefore readable by their owner only.

use std::path::{Path, PathBuf};

use cairn_types::definition::CheckDefinition;
use cairn_types::{HealthCheck, NodeService};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::local::{LocalCheck, LocalError};
use crate::node::Agent;

#[derive(Serialize, Deserialize)]
struct PersistedService {
    service: NodeService,
    from_config: bool,
    /// The token the service was registered with (empty: none, the agent token signs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    token: String,
}

#[derive(Serialize, Deserialize)]
struct PersistedCheck {
    check: HealthCheck,
    def: CheckDefinition,
    from_config: bool,
}

/// File name for an ID: the SHA-256 of its bytes, so any ID fits a file name.
fn file_name(id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.snap")
}

/// The name earlier versions used (hex of the ID's bytes), removed alongside.
fn legacy_file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.snap")
}

fn remove_durably(dir: &Path, id: &str) -> std::io::Result<()> {
    let mut removed = false;
    for name in [file_name(id), legacy_file_name(id)] {
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A legacy name too long for the file system cannot exist.
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {}
            Err(e) => return Err(e),
        }
    }
    if removed {
        cairn_fs::sync_dir(dir)?;
    }
    Ok(())
}

fn write_durably<T: Serialize>(dir: &Path, id: &str, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    cairn_fs::write_private_file_durably(dir, &file_name(id), &bytes)?;
    // A file from an earlier version under the old name would restore a stale copy.
    match std::fs::remove_file(dir.join(legacy_file_name(id))) {
        Ok(()) => cairn_fs::sync_dir(dir),
        Err(_) => Ok(()),
    }
}

/// Decodes every `.snap` file in `dir`; a file that cannot be read or decoded is skipped
/// with a warning naming it.
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
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => out.push(v),
            Err(e) => warn!(
                file = %path.display(),
                "skipping a persisted definition that cannot be decoded: {e}"
            ),
        }
    }
    Ok(out)
}

/// An error to the caller when a registration cannot be made durable.
fn persist_error(what: &str, id: &str, e: std::io::Error) -> LocalError {
    LocalError::Persist(format!(
        "could not persist {what} {id:?} to the data directory, so it was not registered: {e}"
    ))
}

impl Agent {
    fn local_dir(&self, kind: &str) -> Option<PathBuf> {
        self.inner
            .cfg
            .data_dir
            .as_ref()
            .map(|d| d.join("agent").join(kind))
    }

    /// Writes service `svc` before it is registered; an error means "do not register".
    pub(crate) fn save_service(
        &self,
        svc: &NodeService,
        from_config: bool,
        token: &str,
    ) -> Result<(), LocalError> {
        let Some(dir) = self.local_dir("services") else {
            return Ok(());
        };
        let v = PersistedService {
            service: svc.clone(),
            from_config,
            token: token.to_string(),
        };
        write_durably(&dir, &svc.id, &v).map_err(|e| persist_error("service", &svc.id, e))
    }

    /// Writes check `c` before it is registered; an error means "do not register".
    pub(crate) fn save_check(&self, c: &LocalCheck) -> Result<(), LocalError> {
        let Some(dir) = self.local_dir("checks") else {
            return Ok(());
        };
        let v = PersistedCheck {
            check: c.check.clone(),
            def: c.def.clone(),
            from_config: c.from_config,
        };
        write_durably(&dir, &c.check.check_id, &v)
            .map_err(|e| persist_error("check", &c.check.check_id, e))
    }

    /// Writes the definition of local service `id` as the local state holds it (removes
    /// the file when it holds none): brings the disk back in line after a failed write.
    pub(crate) fn persist_service(&self, id: &str) {
        let Some(dir) = self.local_dir("services") else {
            return;
        };
        let value = {
            let local = self.inner.local.lock();
            local.services.get(id).map(|s| PersistedService {
                service: s.clone(),
                from_config: local.config_services.contains(id),
                token: local.service_tokens.get(id).cloned().unwrap_or_default(),
            })
        };
        let r = match value {
            Some(v) => write_durably(&dir, id, &v),
            None => remove_durably(&dir, id),
        };
        if let Err(e) = r {
            warn!("could not persist service {id:?} in {}: {e}", dir.display());
        }
    }

    /// Writes the definition of local check `id` as the local state holds it.
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
        let r = match value {
            Some(v) => write_durably(&dir, id, &v),
            None => remove_durably(&dir, id),
        };
        if let Err(e) = r {
            warn!("could not persist check {id:?} in {}: {e}", dir.display());
        }
    }

    /// Forgets local service `id` on disk.
    pub(crate) fn unpersist_service(&self, id: &str) {
        if let Some(dir) = self.local_dir("services") {
            if let Err(e) = remove_durably(&dir, id) {
                warn!(
                    "could not remove service {id:?} from {}: {e}",
                    dir.display()
                );
            }
        }
    }

    /// Forgets local check `id` on disk.
    pub(crate) fn unpersist_check(&self, id: &str) {
        if let Some(dir) = self.local_dir("checks") {
            if let Err(e) = remove_durably(&dir, id) {
                warn!("could not remove check {id:?} from {}: {e}", dir.display());
            }
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
            if !ps.token.is_empty() {
                local.service_tokens.insert(ps.service.id.clone(), ps.token);
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
