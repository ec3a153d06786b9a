//! Manual outage recovery: `raft/peers.json` in a server's data directory rewrites the
//! Raft membership when the server starts (Consul's `peers.json` recovery).
//!
//! When a cluster has lost its quorum for good (a majority of servers destroyed), no
//! membership change can commit. The operator stops every surviving server, writes the
//! same `peers.json` (the servers that are to form the cluster now) into each survivor's
//! `data_dir/raft/`, and starts them. Before Raft opens its log, each survivor appends one
//! membership entry naming exactly those servers, under a term above any it has seen and
//! its own node as the entry's leader (so the entries of different survivors never share
//! a log ID), and records a vote for itself in that term (openraft requires the vote to
//! be at least the last entry's leader). The survivors elect a leader among themselves, which commits its copy of
//! the entry; the others' copies are replaced as any uncommitted entry is. The file is
//! renamed `peers.json.applied` so that a later restart does not apply it again.
//!
//! The format is Consul's (Raft protocol 3):
//! `[{"id": "<node ID>", "address": "IP:port", "non_voter": false}, ...]`.
//! Uncommitted entries at the end of a survivor's log may commit, as in Consul.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cairn_storage::WalLogStore;
use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::vote::RaftLeaderId;
use openraft::{BasicNode, Membership};
use serde::Deserialize;

use crate::types::TypeConfig;

/// The largest `peers.json` read.
pub const MAX_PEERS_FILE_BYTES: u64 = 1 << 20;

/// Where the recovery file is looked for.
pub fn peers_file(data_dir: &Path) -> PathBuf {
    data_dir.join("raft").join("peers.json")
}

/// Why the recovery file could not be applied (the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
    #[error("rewriting the Raft log for {0}: {1}")]
    Log(PathBuf, String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    address: String,
    #[serde(default)]
    non_voter: bool,
}

/// The members a recovery file names: Raft ID -> (address, voter).
pub type Members = BTreeMap<u64, (String, bool)>;

/// Pure: reads a recovery file's text; `raft_id` turns a node ID into a Raft ID.
pub fn parse(text: &str, raft_id: impl Fn(&str) -> u64) -> Result<Members, String> {
    let entries: Vec<Entry> =
        serde_json::from_str(text).map_err(|e| format!("not a peers.json list: {e}"))?;
    let mut out = Members::new();
    for e in entries {
        if e.address.parse::<SocketAddr>().is_err() {
            return Err(format!("address {:?} is not IP:port", e.address));
        }
        let id = raft_id(&e.id);
        if out.insert(id, (e.address, !e.non_voter)).is_some() {
            return Err(format!("id {:?} appears twice", e.id));
        }
    }
    if !out.values().any(|(_, voter)| *voter) {
        return Err("no voter: at least one server must vote".into());
    }
    Ok(out)
}

/// If `data_dir/raft/peers.json` exists: appends a membership entry naming its members to
/// this server's log and renames the file. Returns the members applied. Call it before
/// the server's Raft starts (it opens the log itself).
pub async fn apply_peers_file(
    data_dir: &Path,
    me: u64,
    raft_id: impl Fn(&str) -> u64,
) -> Result<Option<Members>, RecoveryError> {
    let path = peers_file(data_dir);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RecoveryError::Read(path, e)),
    };
    if meta.len() > MAX_PEERS_FILE_BYTES {
        return Err(RecoveryError::Invalid(
            path,
            format!("larger than {MAX_PEERS_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| RecoveryError::Read(path.clone(), e))?;
    let members = parse(&text, raft_id).map_err(|m| RecoveryError::Invalid(path.clone(), m))?;
    if !members.contains_key(&me) {
        tracing::warn!(
            "{} does not name this server: it will not be a member",
            path.display()
        );
    }
    let shown = crate::node::log_path(data_dir);
    let dir = data_dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || crate::node::open_log_store(&dir))
        .await
        .map_err(|e| RecoveryError::Log(shown.clone(), e.to_string()))?
        .map_err(|e| RecoveryError::Log(shown.clone(), format!("{e:#}")))?;
    append_membership(store, me, &members)
        .await
        .map_err(|e| RecoveryError::Log(shown, e))?;
    let applied = path.with_extension("json.applied");
    std::fs::rename(&path, &applied).map_err(|e| RecoveryError::Read(path.clone(), e))?;
    tracing::warn!(
        members = ?members,
        "applied {}: the Raft membership was rewritten (renamed to {})",
        path.display(),
        applied.display()
    );
    Ok(Some(members))
}

async fn append_membership(
    mut store: WalLogStore<TypeConfig>,
    me: u64,
    members: &Members,
) -> Result<(), String> {
    let state = store.get_log_state().await.map_err(|e| e.to_string())?;
    let vote = store
        .get_log_reader()
        .await
        .read_vote()
        .await
        .map_err(|e| e.to_string())?;
    let last_term = state
        .last_log_id
        .as_ref()
        .map_or(0, |l| l.committed_leader_id().term());
    let vote_term = vote.as_ref().map_or(0, |v| v.leader_id().term());
    let term = last_term.max(vote_term) + 1;
    let index = state.last_log_id.as_ref().map_or(0, |l| l.index() + 1);
    let voters: BTreeSet<u64> = members
        .iter()
        .filter(|(_, (_, voter))| *voter)
        .map(|(id, _)| *id)
        .collect();
    let nodes: BTreeMap<u64, BasicNode> = members
        .iter()
        .map(|(id, (addr, _))| (*id, BasicNode::new(addr.clone())))
        .collect();
    let membership = Membership::new(vec![voters], nodes).map_err(|e| e.to_string())?;
    let log_id = openraft::LogId::new(
        openraft::vote::leader_id_adv::LeaderId::new(term, me),
        index,
    );
    let entry = <TypeConfig as openraft::RaftTypeConfig>::Entry::new_membership(log_id, membership);
    store
        .blocking_append([entry])
        .await
        .map_err(|e| e.to_string())?;
    // openraft requires the vote to be at least the last entry's leader: as if this
    // server had voted for itself in that term.
    store
        .save_vote(&openraft::alias::VoteOf::<TypeConfig>::new(term, me))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> u64 {
        s.trim_start_matches('n').parse().unwrap_or(0)
    }

    #[test]
    fn peers_files_are_read_and_checked() {
        let m = parse(
            r#"[{"id": "n1", "address": "10.0.0.1:8300", "non_voter": false},
                {"id": "n2", "address": "10.0.0.2:8300"},
                {"id": "n3", "address": "10.0.0.3:8300", "non_voter": true}]"#,
            id,
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[&3], ("10.0.0.3:8300".to_string(), false));
        assert!(m[&2].1);
        let bad = |t: &str| parse(t, id).unwrap_err();
        assert!(bad("{}").contains("not a peers.json list"));
        assert!(bad(r#"[{"id": "n1", "address": "host:8300"}]"#).contains("IP:port"));
        assert!(bad(
            r#"[{"id": "n1", "address": "10.0.0.1:1"}, {"id": "n1", "address": "10.0.0.2:1"}]"#
        )
        .contains("twice"));
        assert!(
            bad(r#"[{"id": "n1", "address": "10.0.0.1:1", "non_voter": true}]"#)
                .contains("no voter")
        );
        assert!(
            bad(r#"[{"id": "n1", "address": "10.0.0.1:1", "extra": 1}]"#).contains("unknown field")
        );
    }
}
