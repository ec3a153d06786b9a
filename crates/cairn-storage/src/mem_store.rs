//! The in-memory Raft log used by `cairn agent -dev`.
//!
//! `-dev` promises a server that is ready in milliseconds and keeps nothing on disk, so the
//! log, vote and committed id live in a `BTreeMap` behind a mutex. Semantics are identical to
//! [`WalLogStore`](crate::WalLogStore) (the same test suite runs against both); only
//! durability differs. Operations never block for long, so they run inline on the executor.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig};
use parking_lot::Mutex;

use crate::codec::{is_empty_range, owned_bounds};

struct Inner<C: RaftTypeConfig> {
    log: BTreeMap<u64, C::Entry>,
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
    last_purged: Option<LogIdOf<C>>,
}

/// An in-memory Raft log store. Clones share the same log (a clone is the log reader).
pub struct MemLogStore<C: RaftTypeConfig> {
    inner: Arc<Mutex<Inner<C>>>,
}

impl<C: RaftTypeConfig> Clone for MemLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C: RaftTypeConfig> Debug for MemLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemLogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> Default for MemLogStore<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: RaftTypeConfig> MemLogStore<C> {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                log: BTreeMap::new(),
                vote: None,
                committed: None,
                last_purged: None,
            })),
        }
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for MemLogStore<C>
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
        let inner = self.inner.lock();
        Ok(inner.log.range(bounds).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.inner.lock().vote.clone())
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for MemLogStore<C>
where
    C::Entry: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let inner = self.inner.lock();
        let last = inner
            .log
            .last_key_value()
            .map(|(_, e)| e.log_id())
            .or_else(|| inner.last_purged.clone());
        Ok(LogState {
            last_purged_log_id: inner.last_purged.clone(),
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.inner.lock().vote = Some(vote.clone());
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.inner.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.inner.lock().committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut inner = self.inner.lock();
            for e in entries {
                inner.log.insert(e.index(), e);
            }
        }
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let mut inner = self.inner.lock();
        match last_log_id {
            Some(id) => {
                let _ = inner.log.split_off(&(id.index() + 1));
            }
            None => inner.log.clear(),
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let mut inner = self.inner.lock();
        let keep = inner.log.split_off(&(log_id.index() + 1));
        inner.log = keep;
        inner.last_purged = Some(log_id);
        Ok(())
    }
}
