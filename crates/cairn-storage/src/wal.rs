//! The durable Raft log: append-only segment files in one directory.
//!
//! Why a log of our own: a database commit (pages of a B-tree written and synced) costs far
//! more CPU per replicated write than appending records to a file. Here every mutation of
//! the log is a record appended to the current segment; one writer thread takes everything
//! queued, writes it with one positioned write and one `fdatasync` (group commit), then
//! reports durability in order.
//!
//! Parts:
//! - [`record`]: the checksummed record format; [`segment`]: preallocated segment files;
//! - [`recovery`] and [`image`]: replaying the segments at start (a torn last write is cut
//!   off, any other damage refuses to open); [`index`]: where each live entry is on disk;
//! - [`writer`]: the group-commit thread; [`lock`]: one writer per directory;
//! - [`crate::recent`]: the tail of the log in memory, so replication and the state
//!   machine read new entries at once without waiting for the fsync or decoding them.
//!
//! The vote, the committed log id and the purge point are records in the same stream (and
//! each segment starts with their current values), so they need no other file. As
//! openraft requires, `append` returns once the entries are submitted and its callback
//! fires after they are durable; votes, truncations and purges wait for their sync before
//! returning. The committed log id is a restart hint written without its own sync.

mod image;
mod index;
mod lock;
mod record;
mod recovery;
mod segment;
mod state;
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

use crate::codec::{decode, encode, io_err, is_empty_range, owned_bounds};
use crate::hold::WriteHold;
use crate::recent::Recent;
pub use recovery::Corrupt;
use writer::{Job, Op, Shared, Writer};

/// The default size of a segment file (preallocated when it is created).
pub const SEGMENT_SIZE: u64 = 64 << 20;

/// How long [`WalLogStore::open`] waits for a previous writer on the directory to stop.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Options for [`WalLogStore::open_with`].
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Size of each segment file; a write larger than a segment gets a larger one.
    pub segment_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: SEGMENT_SIZE,
        }
    }
}

/// A Raft log store kept in segment files in one directory.
///
/// Cloning is cheap and yields a handle onto the same log (this is also the log reader).
pub struct WalLogStore<C: RaftTypeConfig> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: RaftTypeConfig> {
    shared: Arc<Shared>,
    recent: Arc<Mutex<Recent<C::Entry>>>,
    /// The committed log id last saved by this process (`None`: nothing saved yet, the
    /// image has it). Its write is not waited for, so reads answer from here.
    committed: Mutex<Option<Option<Vec<u8>>>>,
    writer: Writer,
    _c: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for WalLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C: RaftTypeConfig> Debug for WalLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalLogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> WalLogStore<C>
where
    C::Entry: Clone,
{
    /// Opens (creating if needed) the log in directory `dir` with default options.
    ///
    /// Blocking (it replays the segments); call it from `spawn_blocking` on an executor.
    /// A directory already open in this process yields a handle onto the same store.
    /// Damage other than a torn last write is an error of kind `InvalidData` naming the
    /// segment file and the byte offset.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_with(dir, WalOptions::default())
    }

    /// [`open`](Self::open) with explicit options.
    pub fn open_with(dir: impl AsRef<Path>, opts: WalOptions) -> io::Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let key = dir.canonicalize()?;
        // A previous instance's writer may still be draining on another thread: wait for
        // its lock for a short while.
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        let (mut open, lock) = loop {
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
            match lock::try_lock(&key)? {
                Some(lock) => break (open, lock),
                None if std::time::Instant::now() < deadline => {
                    drop(open);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "the Raft log {} is in use by another process",
                            key.display()
                        ),
                    ))
                }
            }
        };
        let mut rec = recovery::recover(&key)?;
        let (first, next) = (rec.state.first, rec.state.next);
        let image = image::Image {
            state: rec.state.clone(),
            index: std::mem::take(&mut rec.index),
        };
        let shared = Arc::new(Shared::new(key.clone(), image));
        let writer = Writer::start(&key, &rec, shared.clone(), opts.segment_size, lock)?;
        let inner = Arc::new(Inner {
            shared,
            recent: Arc::new(Mutex::new({
                let mut r = Recent::new(next);
                r.set_log_first(first);
                r
            })),
            committed: Mutex::new(None),
            writer,
            _c: PhantomData,
        });
        let erased: Arc<dyn Any + Send + Sync> = inner.clone();
        open.insert(key, Arc::downgrade(&erased));
        Ok(Self { inner })
    }

    /// Runs `f` on tokio's blocking pool, turning a panic into an error.
    async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce(&Shared) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.inner.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(io_err)?
    }

    /// Holds every write back until the guard is dropped: appends are accepted and
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

/// Stores currently open in this process, by canonical directory (type-erased: the map is
/// shared by every entry type).
type OpenStores = HashMap<PathBuf, Weak<dyn Any + Send + Sync>>;

fn open_stores() -> &'static Mutex<OpenStores> {
    static OPEN: OnceLock<Mutex<OpenStores>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
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

impl<C: RaftTypeConfig> RaftLogReader<C> for WalLogStore<C>
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
        // Everything below the cached tail is durable on disk.
        let upto = end.min(first);
        let mut out = self
            .blocking(move |shared| {
                shared
                    .read(start, upto)?
                    .iter()
                    .map(|(_, bytes)| decode::<C::Entry>(bytes))
                    .collect::<io::Result<Vec<_>>>()
            })
            .await?;
        out.extend(cached);
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        let bytes = self.inner.shared.image.lock().state.vote.clone();
        bytes.map(|b| decode(&b)).transpose()
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for WalLogStore<C>
where
    C::Entry: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let cached_last = self.inner.recent.lock().last().map(|e| e.log_id());
        let (purged, next) = {
            let image = self.inner.shared.image.lock();
            (image.state.purged.clone(), image.state.next)
        };
        let last_purged: Option<LogIdOf<C>> = purged.map(|(_, b)| decode(&b)).transpose()?;
        let last = match cached_last {
            Some(id) => Some(id),
            None => {
                let after = last_purged.as_ref().map_or(0, |p| p.index() + 1);
                if next > after {
                    let idx = next - 1;
                    let found = self.blocking(move |s| s.read(idx, idx + 1)).await?;
                    match found.first() {
                        Some((_, b)) => Some(decode::<C::Entry>(b)?.log_id()),
                        None => last_purged.clone(),
                    }
                } else {
                    last_purged.clone()
                }
            }
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let bytes = encode(vote)?;
        self.inner
            .writer
            .submit_wait(vec![Op::Vote(bytes)], true)
            .await
    }

    /// The committed log id is a hint that speeds up restarts (openraft re-derives it
    /// from the log otherwise), so it is queued without waiting and without its own sync:
    /// it becomes durable with the next append or vote. Losing it in a crash loses no
    /// acknowledged write.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let bytes = committed.as_ref().map(encode).transpose()?;
        *self.inner.committed.lock() = Some(bytes.clone());
        self.inner.writer.submit(Job {
            ops: vec![Op::Committed(bytes)],
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
        let saved = self.inner.committed.lock().clone();
        let bytes = match saved {
            Some(b) => b,
            None => self.inner.shared.image.lock().state.committed.clone(),
        };
        bytes.map(|b| decode(&b)).transpose()
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
                ops: Vec::new(),
                durable: false,
                done: Some(Box::new(move |r| callback.io_completed(r))),
            });
            return Ok(());
        };
        let last = encoded.last().map_or(start, |(i, _)| *i);
        let epoch = {
            let mut recent = self.inner.recent.lock();
            // A gap would be written to disk and refused at the next start: refuse it now.
            if start > recent.next() && !recent.log_is_empty() {
                return Err(io::Error::other(format!(
                    "non-contiguous append: the log continues at {}, got {start}",
                    recent.next()
                )));
            }
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
        // write that carries them is synced.
        self.inner.writer.submit(Job {
            ops: vec![Op::Entries(encoded)],
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
        let from = last.map_or(0, |i| i + 1);
        let epoch = {
            let mut recent = self.inner.recent.lock();
            recent.truncate_after(last);
            recent.epoch()
        };
        self.inner
            .writer
            .submit_wait(vec![Op::Truncate(from)], true)
            .await?;
        // Every write queued before the truncation is durable with it.
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
            .submit_wait(vec![Op::Purge(upto, bytes)], true)
            .await
    }
}

#[cfg(test)]
mod recovery_tests;
