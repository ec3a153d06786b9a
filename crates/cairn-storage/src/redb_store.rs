//! The durable Raft log: entries, vote, committed and purged log ids in one redb file.
//!
//! Why redb: pure Rust, ACID, one fsync per committed write transaction, fast to build.
//!
//! Layout:
//! - table `log`: `u64` index -> encoded entry;
//! - table `meta`: `"vote" | "committed" | "last_purged"` -> encoded value.
//!
//! Every mutating call (append, save_vote, save_committed, truncate_after, purge) is exactly one
//! write transaction committed with [`Durability::Immediate`]; only after that commit returns is
//! openraft's [`IOFlushed`] callback invoked. openraft hands appends over in batches, and a
//! whole batch goes into one transaction, so there is one fsync per batch rather than per entry.
//! All redb work runs on tokio's blocking pool so the Raft core's executor thread never waits
//! on the disk.

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::{decode, encode, io_err, is_empty_range, owned_bounds};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// How long [`RedbLogStore::open`] waits for a previous in-process handle to finish closing.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// A Raft log store backed by a redb database file.
///
/// Cloning is cheap and yields a handle onto the same database (this is also the log reader).
pub struct RedbLogStore<C> {
    db: Arc<Database>,
    _c: PhantomData<fn() -> C>,
}

impl<C> Clone for RedbLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            _c: PhantomData,
        }
    }
}

impl<C> Debug for RedbLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> RedbLogStore<C> {
    /// Opens (creating if needed, along with its parent directory) the database at `path`.
    ///
    /// This is a blocking call (it may have to repair the file after a crash); call it from
    /// `spawn_blocking` if you are on an async executor and care about latency.
    ///
    /// redb refuses to open a file twice in one process. A previous store on the same file may
    /// still be alive for a moment after its Raft instance shut down (tasks holding a reader
    /// clone exit asynchronously), so opening a path that is already open in this process
    /// returns a handle onto the same database instead of failing.
    ///
    /// A file the engine cannot read (corrupt pages) is an error of kind `InvalidData`
    /// naming the file, never a panic.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        crate::quiet_panic::catch(|| Self::open_inner(path)).unwrap_or_else(|panic| {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is corrupt (the storage engine failed reading it: {panic})",
                    path.display()
                ),
            ))
        })
    }

    fn open_inner(path: &Path) -> io::Result<Self> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let file_name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "database path has no file name",
            )
        })?;
        let key = parent.canonicalize()?.join(file_name);

        // The last handle of a previous instance may be mid-drop on another thread (redb
        // releases its file lock at the end of `Drop`): retry "already open" for a short while.
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        let (mut open, db) = loop {
            let mut open = open_databases().lock();
            open.retain(|_, w| w.strong_count() > 0);
            if let Some(db) = open.get(&key).and_then(Weak::upgrade) {
                return Ok(Self {
                    db,
                    _c: PhantomData,
                });
            }
            match Database::create(&key) {
                Ok(db) => break (open, db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if std::time::Instant::now() < deadline =>
                {
                    drop(open);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(io_err(e)),
            }
        };
        // Make sure both tables exist so read transactions never see "table does not exist".
        let mut txn = db.begin_write().map_err(io_err)?;
        txn.set_durability(Durability::Immediate).map_err(io_err)?;
        {
            txn.open_table(LOG).map_err(io_err)?;
            txn.open_table(META).map_err(io_err)?;
        }
        txn.commit().map_err(io_err)?;
        let db = Arc::new(db);
        open.insert(key, Arc::downgrade(&db));
        Ok(Self {
            db,
            _c: PhantomData,
        })
    }

    /// Runs `f` against the database on tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce(&Database) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            crate::quiet_panic::catch(|| f(&db)).unwrap_or_else(|panic| {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the Raft log is corrupt (the storage engine failed: {panic})"),
                ))
            })
        })
        .await
        .map_err(io_err)?
    }

    /// Runs `f` inside one write transaction and commits it durably (fsync) before returning.
    async fn write_txn<F>(&self, f: F) -> io::Result<()>
    where
        F: FnOnce(&redb::WriteTransaction) -> io::Result<()> + Send + 'static,
    {
        self.write_txn_with(Durability::Immediate, f).await
    }

    async fn write_txn_with<F>(&self, durability: Durability, f: F) -> io::Result<()>
    where
        F: FnOnce(&redb::WriteTransaction) -> io::Result<()> + Send + 'static,
    {
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(io_err)?;
            txn.set_durability(durability).map_err(io_err)?;
            f(&txn)?;
            txn.commit().map_err(io_err)
        })
        .await
    }

    /// Reads and decodes one meta value.
    async fn read_meta<T>(&self, key: &'static str) -> io::Result<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.blocking(move |db| read_meta_sync(db, key)).await
    }

    /// Encodes and durably stores one meta value (`None` removes it).
    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: Option<&T>,
    ) -> io::Result<()> {
        self.write_meta_with(Durability::Immediate, key, value)
            .await
    }

    async fn write_meta_with<T: serde::Serialize>(
        &self,
        durability: Durability,
        key: &'static str,
        value: Option<&T>,
    ) -> io::Result<()> {
        let bytes = value.map(encode).transpose()?;
        self.write_txn_with(durability, move |txn| {
            let mut meta = txn.open_table(META).map_err(io_err)?;
            match bytes {
                Some(b) => meta.insert(key, b.as_slice()).map_err(io_err)?,
                None => meta.remove(key).map_err(io_err)?,
            };
            Ok(())
        })
        .await
    }
}

/// Databases currently open in this process, by canonical path.
fn open_databases() -> &'static parking_lot::Mutex<HashMap<PathBuf, Weak<Database>>> {
    static OPEN: OnceLock<parking_lot::Mutex<HashMap<PathBuf, Weak<Database>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

fn read_meta_sync<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &str,
) -> io::Result<Option<T>> {
    let txn = db.begin_read().map_err(io_err)?;
    let meta = txn.open_table(META).map_err(io_err)?;
    match meta.get(key).map_err(io_err)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for RedbLogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let bounds = owned_bounds(&range);
        if is_empty_range(&bounds) {
            return Ok(Vec::new());
        }
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(io_err)?;
            let log = txn.open_table(LOG).map_err(io_err)?;
            let mut out = Vec::new();
            for item in log.range::<u64>(bounds).map_err(io_err)? {
                let (_, v) = item.map_err(io_err)?;
                out.push(decode::<C::Entry>(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.read_meta(KEY_VOTE).await
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for RedbLogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        self.blocking(|db| {
            let last_purged: Option<LogIdOf<C>> = read_meta_sync(db, KEY_LAST_PURGED)?;
            let txn = db.begin_read().map_err(io_err)?;
            let log = txn.open_table(LOG).map_err(io_err)?;
            let last = match log.last().map_err(io_err)? {
                Some((_, v)) => Some(decode::<C::Entry>(v.value())?.log_id()),
                None => last_purged.clone(),
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.write_meta(KEY_VOTE, Some(vote)).await
    }

    /// The committed log id is a hint that speeds up restarts (openraft re-derives it
    /// from the log otherwise), so it is written without its own fsync: it becomes durable
    /// with the next log append or vote. Losing it in a crash loses no acknowledged write.
    /// This halves the fsyncs per client write.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.write_meta_with(Durability::None, KEY_COMMITTED, committed.as_ref())
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        self.read_meta(KEY_COMMITTED).await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.index(), encode(&e)?)))
            .collect::<io::Result<Vec<(u64, Vec<u8>)>>>()?;
        if !encoded.is_empty() {
            self.write_txn(move |txn| {
                let mut log = txn.open_table(LOG).map_err(io_err)?;
                for (index, bytes) in &encoded {
                    log.insert(*index, bytes.as_slice()).map_err(io_err)?;
                }
                Ok(())
            })
            .await?;
        }
        // The transaction is committed (fsynced): only now may openraft treat it as durable.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = match &last_log_id {
            Some(id) => Bound::Excluded(id.index()),
            None => Bound::Unbounded,
        };
        self.write_txn(move |txn| {
            let mut log = txn.open_table(LOG).map_err(io_err)?;
            log.retain_in::<u64, _>((from, Bound::Unbounded), |_, _| false)
                .map_err(io_err)?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let upto = log_id.index();
        let bytes = encode(&log_id)?;
        self.write_txn(move |txn| {
            let mut log = txn.open_table(LOG).map_err(io_err)?;
            log.retain_in::<u64, _>(..=upto, |_, _| false)
                .map_err(io_err)?;
            let mut meta = txn.open_table(META).map_err(io_err)?;
            meta.insert(KEY_LAST_PURGED, bytes.as_slice())
                .map_err(io_err)?;
            Ok(())
        })
        .await
    }
}
