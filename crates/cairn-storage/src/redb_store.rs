//! The durable Raft log: entries, vote, committed and purged log ids in one redb file.
//!
//! Why redb: pure Rust, ACID, one fsync per committed write transaction, fast to build.
//!
//! Layout:
//! - table `log`: `u64` index -> encoded entry;
//! - table `meta`: `"vote" | "committed" | "last_purged"` -> encoded value.
//!
//! The write path follows openraft's contract: `append` returns as soon as the entries are
//! *submitted*, and the [`IOFlushed`] callback fires only after the transaction that carries
//! them has committed with an fsync. Two parts make that fast and safe:
//! - [`writer`]: one thread applies every mutation in submission order, taking everything
//!   queued into one transaction (group commit: one fsync for many batches);
//! - [`recent`]: the tail of the log in memory, so replication and the state machine read new
//!   entries at once (the leader's fsync overlaps the followers' round trip) without decoding
//!   them again.
//!
//! Votes, truncations and purges wait for their commit before returning, as openraft requires.
//! The committed log id is a restart hint written without its own fsync.

mod writer;

use std::any::Any;
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
use parking_lot::Mutex;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::{decode, encode, io_err, is_empty_range, owned_bounds};
use crate::recent::Recent;
pub use writer::WriteHold;
use writer::{Job, Mutation, Writer};

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
pub struct RedbLogStore<C: RaftTypeConfig> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: RaftTypeConfig> {
    db: Arc<Database>,
    recent: Arc<Mutex<Recent<C::Entry>>>,
    /// The committed log id last saved by this process (`None`: nothing saved yet, read the
    /// file). Its write is not waited for, so reads answer from here.
    committed: Mutex<Option<Option<LogIdOf<C>>>>,
    writer: Writer,
    _c: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for RedbLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C: RaftTypeConfig> Debug for RedbLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> RedbLogStore<C>
where
    C::Entry: Clone,
{
    /// Opens (creating if needed, along with its parent directory) the database at `path`.
    ///
    /// This is a blocking call (it may have to repair the file after a crash); call it from
    /// `spawn_blocking` if you are on an async executor and care about latency.
    ///
    /// redb refuses to open a file twice in one process. A previous store on the same file may
    /// still be alive for a moment after its Raft instance shut down (tasks holding a reader
    /// clone exit asynchronously), so opening a path that is already open in this process
    /// returns a handle onto the same store instead of failing.
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
        // releases its file lock when its writer thread has drained and dropped it): retry
        // "already open" for a short while.
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        let (mut open, db) = loop {
            let mut open = open_stores().lock();
            open.retain(|_, w| w.strong_count() > 0);
            if let Some(existing) = open.get(&key).and_then(Weak::upgrade) {
                let inner = existing.downcast::<Inner<C>>().map_err(|_| {
                    io::Error::other(format!(
                        "{} is already open with another entry type",
                        key.display()
                    ))
                })?;
                return Ok(Self { inner });
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
        let next = next_index(&db)?;
        let db = Arc::new(db);
        let inner = Arc::new(Inner {
            writer: Writer::start(db.clone())?,
            db,
            recent: Arc::new(Mutex::new(Recent::new(next))),
            committed: Mutex::new(None),
            _c: PhantomData,
        });
        let erased: Arc<dyn Any + Send + Sync> = inner.clone();
        open.insert(key, Arc::downgrade(&erased));
        Ok(Self { inner })
    }

    /// Runs `f` against the database on tokio's blocking pool (reads only: every write goes
    /// through the writer thread).
    async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce(&Database) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.inner.db.clone();
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

    /// Reads and decodes one meta value.
    async fn read_meta<T>(&self, key: &'static str) -> io::Result<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.blocking(move |db| read_meta_sync(db, key)).await
    }

    /// Holds every commit back until the guard is dropped: appends are accepted and
    /// readable but not durable, and their callbacks wait (tests observe that state).
    #[doc(hidden)]
    pub fn hold_writes(&self) -> WriteHold {
        self.inner.writer.hold()
    }

    /// How many entries the in-memory tail holds (tests watch its bounds).
    #[doc(hidden)]
    pub fn cached_entries(&self) -> usize {
        self.inner.recent.lock().len()
    }
}

/// Stores currently open in this process, by canonical path (type-erased: the map is
/// shared by every entry type).
type OpenStores = HashMap<PathBuf, Weak<dyn Any + Send + Sync>>;

fn open_stores() -> &'static Mutex<OpenStores> {
    static OPEN: OnceLock<Mutex<OpenStores>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The index after the last entry in the file (0 for an empty log).
fn next_index(db: &Database) -> io::Result<u64> {
    let txn = db.begin_read().map_err(io_err)?;
    let log = txn.open_table(LOG).map_err(io_err)?;
    let next = match log.last().map_err(io_err)? {
        Some((k, _)) => k.value() + 1,
        None => 0,
    };
    Ok(next)
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

/// `[start, end)` of a range of indexes (`end` saturates at `u64::MAX`).
fn half_open(bounds: &(Bound<u64>, Bound<u64>)) -> (u64, u64) {
    let start = match bounds.0 {
        Bound::Included(s) => s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match bounds.1 {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<C: RaftTypeConfig> RaftLogReader<C> for RedbLogStore<C>
where
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let bounds = owned_bounds(&range);
        if is_empty_range(&bounds) {
            return Ok(Vec::new());
        }
        let (start, end) = half_open(&bounds);
        let (first, cached) = {
            let recent = self.inner.recent.lock();
            (recent.first(), recent.range(start, end))
        };
        if start >= first {
            return Ok(cached);
        }
        // Everything below the cached tail is durable in the file.
        let upto = end.min(first);
        let mut out = self
            .blocking(move |db| {
                let txn = db.begin_read().map_err(io_err)?;
                let log = txn.open_table(LOG).map_err(io_err)?;
                let mut out = Vec::new();
                for item in log.range::<u64>(start..upto).map_err(io_err)? {
                    let (_, v) = item.map_err(io_err)?;
                    out.push(decode::<C::Entry>(v.value())?);
                }
                Ok(out)
            })
            .await?;
        out.extend(cached);
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.read_meta(KEY_VOTE).await
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for RedbLogStore<C>
where
    C::Entry: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let cached_last = self.inner.recent.lock().last().map(|e| e.log_id());
        self.blocking(move |db| {
            let last_purged: Option<LogIdOf<C>> = read_meta_sync(db, KEY_LAST_PURGED)?;
            let last = match cached_last {
                Some(id) => Some(id),
                None => {
                    let txn = db.begin_read().map_err(io_err)?;
                    let log = txn.open_table(LOG).map_err(io_err)?;
                    let last = match log.last().map_err(io_err)? {
                        Some((_, v)) => Some(decode::<C::Entry>(v.value())?.log_id()),
                        None => last_purged.clone(),
                    };
                    last
                }
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
        let bytes = encode(vote)?;
        self.inner
            .writer
            .submit_wait(vec![Mutation::MetaPut(KEY_VOTE, bytes)], true)
            .await
    }

    /// The committed log id is a hint that speeds up restarts (openraft re-derives it
    /// from the log otherwise), so it is queued without waiting and without its own fsync:
    /// it becomes durable with the next log append or vote. Losing it in a crash loses no
    /// acknowledged write.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let mutation = match &committed {
            Some(id) => Mutation::MetaPut(KEY_COMMITTED, encode(id)?),
            None => Mutation::MetaRemove(KEY_COMMITTED),
        };
        *self.inner.committed.lock() = Some(committed);
        self.inner.writer.submit(Job {
            mutations: vec![mutation],
            durable: false,
            done: Some(Box::new(|r| {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "saving the committed log id failed");
                }
            })),
        });
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        if let Some(saved) = self.inner.committed.lock().clone() {
            return Ok(saved);
        }
        self.read_meta(KEY_COMMITTED).await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        let mut cached = Vec::new();
        for e in entries {
            let bytes = encode(&e)?;
            let index = e.index();
            cached.push((e, bytes.len()));
            encoded.push((index, bytes));
        }
        let Some(&(start, _)) = encoded.first() else {
            // Nothing to write, but report in order behind whatever is queued.
            self.inner.writer.submit(Job {
                mutations: Vec::new(),
                durable: false,
                done: Some(Box::new(move |r| callback.io_completed(r))),
            });
            return Ok(());
        };
        let last = encoded.last().map_or(start, |(i, _)| *i);
        let epoch = {
            let mut recent = self.inner.recent.lock();
            recent.append(start, cached).map_err(|gap| {
                io::Error::other(format!(
                    "non-contiguous append: the log continues at {}, got {}",
                    gap.expected, gap.got
                ))
            })?;
            recent.epoch()
        };
        let recent = self.inner.recent.clone();
        // Readers see the entries now; openraft is told they are durable only after the
        // commit that carries them.
        self.inner.writer.submit(Job {
            mutations: vec![Mutation::LogPut(encoded)],
            durable: true,
            done: Some(Box::new(move |r| {
                if r.is_ok() {
                    recent.lock().mark_durable(last, epoch);
                }
                callback.io_completed(r);
            })),
        });
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let last = last_log_id.as_ref().map(|id| id.index());
        let from = match last {
            Some(i) => Bound::Excluded(i),
            None => Bound::Unbounded,
        };
        let epoch = {
            let mut recent = self.inner.recent.lock();
            recent.truncate_after(last);
            recent.epoch()
        };
        self.inner
            .writer
            .submit_wait(vec![Mutation::LogRemove(from, Bound::Unbounded)], true)
            .await?;
        // Every write queued before the truncation has committed with it.
        if let Some(last) = last {
            self.inner.recent.lock().mark_durable(last, epoch);
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let upto = log_id.index();
        let bytes = encode(&log_id)?;
        self.inner.recent.lock().purge(upto);
        self.inner
            .writer
            .submit_wait(
                vec![
                    Mutation::LogRemove(Bound::Unbounded, Bound::Included(upto)),
                    Mutation::MetaPut(KEY_LAST_PURGED, bytes),
                ],
                true,
            )
            .await
    }
}
