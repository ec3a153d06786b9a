//! The openraft state-machine adapter around [`cairn_state::State`].
//!
//! `cairn-state` knows nothing about Raft: it exposes `State::apply(index, &Command)`. This
//! module is the glue openraft drives:
//!
//! - committed normal entries are applied to the shared `Arc<RwLock<State>>` (the same lock
//!   the HTTP layer reads from) and each [`Outcome`] goes back to the waiting client;
//! - blank and membership entries only advance the applied log id / membership;
//! - after every applied batch the last applied index is published on a
//!   `watch::Sender<u64>`, which wakes blocking queries;
//! - snapshots are `serde_json` of `{meta, state}`. With a snapshot directory (durable mode)
//!   they are also written atomically to `<data_dir>/snapshots/<index>.snap`, and
//!   [`CairnStateMachine::open`] restores the latest one before openraft replays the log
//!   behind it. Without a directory (`-dev`) snapshots live in memory only.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_state::{Command, Outcome, State};
use cairn_storage::{prune_snapshots, read_latest_snapshot, write_snapshot_file};
use futures::{Stream, StreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{ApplyResponder, EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::types::{SnapshotData, TypeConfig};

type LogId = LogIdOf<TypeConfig>;
type SnapshotMeta = SnapshotMetaOf<TypeConfig>;
type StoredMembership = StoredMembershipOf<TypeConfig>;
type Snapshot = SnapshotOf<TypeConfig, SnapshotData>;

/// How many snapshot files to keep on disk.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// Serialized form of a snapshot (what goes on disk and over the wire).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    meta: &'a SnapshotMeta,
    state: &'a State,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    meta: SnapshotMeta,
    state: State,
}

/// Raft bookkeeping that is not part of `State`.
#[derive(Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<(SnapshotMeta, SnapshotData)>,
}

struct Shared {
    state: Arc<RwLock<State>>,
    applied_tx: watch::Sender<u64>,
    /// Every applied command with its index, for replicas that follow this server
    /// (client agents' state replicas). Sent only while someone listens.
    entries_tx: tokio::sync::broadcast::Sender<AppliedEntry>,
    snapshot_dir: Option<PathBuf>,
    applied: Mutex<Applied>,
}

/// One applied command and its log index, as published to followers of the state.
pub type AppliedEntry = (u64, Arc<Command>);

/// How many applied entries a slow follower may lag before it must start over from a
/// copy of the state.
pub const APPLIED_ENTRIES_BUFFER: usize = 4096;

/// The state machine openraft drives. Cheap to clone (shared inner).
#[derive(Clone)]
pub struct CairnStateMachine {
    shared: Arc<Shared>,
}

fn invalid_data<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

impl CairnStateMachine {
    /// Creates the adapter. With `snapshot_dir`, the latest snapshot file found there is loaded
    /// into `state` first (blocking file I/O: call from `spawn_blocking` or at startup).
    pub fn open(
        state: Arc<RwLock<State>>,
        applied_tx: watch::Sender<u64>,
        snapshot_dir: Option<PathBuf>,
    ) -> io::Result<Self> {
        let mut applied = Applied::default();
        if let Some(dir) = &snapshot_dir {
            if let Some((path, bytes)) = read_latest_snapshot(dir)? {
                let snap: SnapshotOwned = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid_data(format!("snapshot {}: {e}", path.display())))?;
                tracing::info!(
                    path = %path.display(),
                    last_log_id = ?snap.meta.last_log_id,
                    "restored state from snapshot"
                );
                *state.write() = snap.state;
                applied.last_applied = snap.meta.last_log_id;
                applied.membership = snap.meta.last_membership.clone();
                applied.current = Some((snap.meta, bytes));
            }
        }
        let idx = applied.last_applied.map(|l| l.index()).unwrap_or(0);
        applied_tx.send_replace(idx);
        Ok(Self {
            shared: Arc::new(Shared {
                state,
                applied_tx,
                entries_tx: tokio::sync::broadcast::channel(APPLIED_ENTRIES_BUFFER).0,
                snapshot_dir,
                applied: Mutex::new(applied),
            }),
        })
    }

    /// Subscribes to the commands applied from now on. Subscribe *before* copying the
    /// state, then skip entries at or below the copy's `index`: nothing is missed. A
    /// receiver that falls [`APPLIED_ENTRIES_BUFFER`] entries behind gets `Lagged`.
    pub fn subscribe_applied(&self) -> tokio::sync::broadcast::Receiver<AppliedEntry> {
        self.shared.entries_tx.subscribe()
    }

    /// The last applied log index (0 if nothing was applied yet).
    pub fn last_applied_index(&self) -> u64 {
        self.shared
            .applied
            .lock()
            .last_applied
            .map(|l| l.index())
            .unwrap_or(0)
    }

    fn publish(&self, index: u64) {
        self.shared.applied_tx.send_if_modified(|cur| {
            if index > *cur {
                *cur = index;
                true
            } else {
                false
            }
        });
    }
}

/// Builds one snapshot from the state serialized atomically with its applied log id.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    meta: SnapshotMeta,
    /// The serialized snapshot (or the error serializing it).
    bytes: Result<Vec<u8>, serde_json::Error>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let meta = self.meta.clone();
        let bytes = std::mem::replace(&mut self.bytes, Ok(Vec::new())).map_err(invalid_data)?;
        let dir = self.shared.snapshot_dir.clone();
        let index = meta.last_log_id.map(|l| l.index()).unwrap_or(0);
        let bytes = blocking(move || {
            if let Some(dir) = dir {
                write_snapshot_file(&dir, &format!("{index:020}.snap"), &bytes)?;
                prune_snapshots(&dir, SNAPSHOTS_TO_KEEP)?;
            }
            Ok(bytes)
        })
        .await?;
        tracing::debug!(index, size = bytes.len(), "built snapshot");
        {
            let mut a = self.shared.applied.lock();
            let newer = match &a.current {
                Some((m, _)) => m.last_log_id <= meta.last_log_id,
                None => true,
            };
            if newer {
                a.current = Some((meta.clone(), bytes.clone()));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: bytes,
        })
    }
}

impl RaftStateMachine<TypeConfig> for CairnStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let a = self.shared.applied.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut replies: Vec<(ApplyResponder<TypeConfig>, Outcome)> = Vec::new();
        let mut last = None;
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id;
            let index = log_id.index();
            let outcome = match entry.payload {
                EntryPayload::Normal(req) => {
                    let outcome = self.shared.state.write().apply(index, &req.0);
                    if self.shared.entries_tx.receiver_count() > 0 {
                        let _ = self.shared.entries_tx.send((index, Arc::new(req.0)));
                    }
                    outcome
                }
                EntryPayload::Blank => Outcome::default(),
                EntryPayload::Membership(m) => {
                    self.shared.applied.lock().membership = StoredMembership::new(Some(log_id), m);
                    Outcome::default()
                }
            };
            self.shared.applied.lock().last_applied = Some(log_id);
            last = Some(index);
            if let Some(r) = responder {
                replies.push((r, outcome));
            }
        }
        // Publish before replying, so a client that got index N back can immediately block on
        // "index > N" without racing the watch.
        if let Some(index) = last {
            self.publish(index);
        }
        for (r, outcome) in replies {
            r.send(outcome);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Runs on the state-machine task, serialized with `apply`: the state and its
        // applied log id are consistent. The state is serialized here, under the read
        // lock, rather than deep-copied for serializing later: the copy cost more memory
        // than the state itself for a moment (a 30-50 MB peak with 10,000 services and
        // checks), the bytes are a fraction of it, and reads go on meanwhile.
        let a = self.shared.applied.lock();
        let meta = SnapshotMeta {
            last_log_id: a.last_applied,
            last_membership: a.membership.clone(),
        };
        drop(a);
        let bytes = serde_json::to_vec(&SnapshotRef {
            meta: &meta,
            state: &self.shared.state.read(),
        });
        SnapshotBuilder {
            shared: self.shared.clone(),
            meta,
            bytes,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let dir = self.shared.snapshot_dir.clone();
        let index = meta.last_log_id.map(|l| l.index()).unwrap_or(0);
        let (state, bytes) = blocking(move || {
            let snap: SnapshotOwned = serde_json::from_slice(&snapshot).map_err(invalid_data)?;
            if let Some(dir) = dir {
                write_snapshot_file(&dir, &format!("{index:020}.snap"), &snapshot)?;
                prune_snapshots(&dir, SNAPSHOTS_TO_KEEP)?;
            }
            Ok((snap.state, snapshot))
        })
        .await?;
        *self.shared.state.write() = state;
        {
            let mut a = self.shared.applied.lock();
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
            a.current = Some((meta.clone(), bytes));
        }
        self.shared.applied_tx.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let a = self.shared.applied.lock();
        Ok(a.current.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: bytes.clone(),
        }))
    }
}
