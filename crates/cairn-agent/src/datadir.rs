//! The data directory's integrity check at start, and the node ID kept in it.
//!
//! A server's acknowledged writes live in its Raft log (the segment files in `raft/log/`).
//! If they are deleted (a bad restore, a full disk during a copy, an operator's mistake),
//! openraft would start as a brand-new node, or from an older snapshot, and every write
//! after it would silently vanish. So a data directory that shows this node existed (its
//! `node-id`, snapshots, or persisted agent state) but has no log is refused, with what is
//! wrong and how to recover (docs/operations.md, "Recovering a damaged data directory").

use std::path::Path;

/// Refuses to start on a data directory whose Raft log is missing or empty although the
/// node has run before.
pub(crate) fn check_intact(dir: &Path) -> anyhow::Result<()> {
    cairn_raft::check_log_format(dir)?;
    let log = cairn_raft::log_path(dir);
    let log_state = match std::fs::read_dir(&log) {
        Ok(entries) => {
            let has_segment = entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".wal"));
            if has_segment {
                return Ok(());
            }
            "is empty (no segment files)"
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing",
        Err(e) => anyhow::bail!("cannot read the Raft log {}: {e}", log.display()),
    };
    let mut evidence = Vec::new();
    if dir.join(NODE_ID_FILE).is_file() {
        evidence.push(format!("{} exists", NODE_ID_FILE));
    }
    if non_empty(&cairn_raft::snapshot_dir(dir)) {
        evidence.push("snapshots/ holds snapshots".to_string());
    }
    if non_empty(&dir.join("agent").join("services"))
        || non_empty(&dir.join("agent").join("checks"))
    {
        evidence.push("agent/ holds registered services or checks".to_string());
    }
    if evidence.is_empty() {
        return Ok(()); // a new data directory
    }
    anyhow::bail!(
        "refusing to start: the Raft log {} {log_state}, but this data directory belonged to a \
         node that has run before ({}). Starting would lose every acknowledged write. To \
         recover: restore {} from a backup of this node; or, to start over with an empty \
         state on purpose, move the whole data directory {} aside and start again (see \
         docs/operations.md)",
        log.display(),
        evidence.join(", "),
        log.display(),
        dir.display()
    )
}

fn non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// The file holding this node's ID.
pub(crate) const NODE_ID_FILE: &str = "node-id";

/// This node's ID: the configured one, else the one kept in the data directory, else a new
/// one, which is written durably (fsync) before use so it never changes across a crash.
/// `-dev` (no data directory) gets a fresh ID on every run, as Consul.
pub(crate) fn node_id(configured: Option<&str>, data_dir: Option<&Path>) -> anyhow::Result<String> {
    if let Some(id) = configured {
        return Ok(id.to_string());
    }
    let fresh = cairn_http::new_uuid();
    let Some(dir) = data_dir else {
        return Ok(fresh);
    };
    let path = dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    cairn_fs::write_file_durably(dir, NODE_ID_FILE, fresh.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot persist the node ID to {}: {e}", path.display()))?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directory_starts_and_existing_node_without_log_is_refused() {
        let d = tempfile::tempdir().unwrap();
        check_intact(d.path()).unwrap();
        let id = node_id(None, Some(d.path())).unwrap();
        assert_eq!(node_id(None, Some(d.path())).unwrap(), id, "stable");
        let e = check_intact(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("is missing") && e.contains("node-id exists"),
            "{e}"
        );
        let log = cairn_raft::log_path(d.path());
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("LOCK"), b"").unwrap();
        let e = check_intact(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("is empty") && e.contains("docs/operations.md"),
            "{e}"
        );
        std::fs::write(log.join("00000000000000000001.wal"), b"x").unwrap();
        check_intact(d.path()).unwrap();
        // A log in the old single-file format is refused by name, not ignored.
        std::fs::write(cairn_raft::legacy_log_path(d.path()), b"old").unwrap();
        let e = check_intact(d.path()).unwrap_err().to_string();
        assert!(e.contains("raft.redb") && e.contains("older Cairn"), "{e}");
    }

    #[test]
    fn snapshots_or_agent_state_alone_are_evidence() {
        for sub in ["snapshots", "agent/services", "agent/checks"] {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
            check_intact(d.path()).unwrap();
            std::fs::write(d.path().join(sub).join("x.snap"), b"{}").unwrap();
            assert!(check_intact(d.path()).is_err(), "{sub}");
        }
    }

    #[test]
    fn configured_id_wins_and_dev_is_fresh() {
        assert_eq!(node_id(Some("abc"), None).unwrap(), "abc");
        assert_ne!(node_id(None, None).unwrap(), node_id(None, None).unwrap());
    }
}
