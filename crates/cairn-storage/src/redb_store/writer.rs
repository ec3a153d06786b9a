//! The one thread that writes the Raft log file.
//!
//! Why it exists: redb allows one write transaction at a time and each durable commit costs an
//! fsync. Every mutation of the log (appends, truncations, purges, vote and committed id) is
//! queued here in the order openraft issued it; the thread takes everything queued at that
//! moment, applies it in one transaction and commits once, then reports completion to each
//! submitter in order. Under concurrent client writes this is group commit: one fsync serves
//! many batches. The queue is FIFO, so a completion also means every earlier mutation is
//! durable.
//!
//! The thread owns a handle on the database and exits when the last submitter is dropped,
//! after draining what was queued.

use std::io;
use std::ops::Bound;
use std::sync::mpsc;
use std::sync::Arc;

use redb::{Database, Durability};

use super::{LOG, META};
use crate::codec::io_err;

/// Called once with the outcome of the transaction that carried the job.
pub(crate) type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Most jobs (and encoded bytes) one transaction takes, so a backlog cannot build one huge
/// transaction.
const MAX_JOBS_PER_TXN: usize = 1024;
const MAX_BYTES_PER_TXN: usize = 64 << 20;

/// One primitive change to the database.
pub(crate) enum Mutation {
    LogPut(Vec<(u64, Vec<u8>)>),
    LogRemove(Bound<u64>, Bound<u64>),
    MetaPut(&'static str, Vec<u8>),
    MetaRemove(&'static str),
}

impl Mutation {
    fn bytes(&self) -> usize {
        match self {
            Mutation::LogPut(v) => v.iter().map(|(_, b)| b.len() + 8).sum(),
            Mutation::MetaPut(_, b) => b.len(),
            _ => 0,
        }
    }
}

/// Mutations that commit together, whether they need an fsync, and who to tell.
pub(crate) struct Job {
    pub mutations: Vec<Mutation>,
    pub durable: bool,
    pub done: Option<Done>,
}

/// The submitting side; dropping the last one stops the thread once its queue is drained.
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    gate: Arc<Gate>,
}

/// Lets a test hold commits back, to observe what readers see before durability.
#[derive(Default)]
struct Gate {
    held: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn wait_open(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self.cv.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn set(&self, value: bool) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = value;
        self.cv.notify_all();
    }
}

/// While alive, the writer commits nothing (see [`Writer::hold`]).
pub struct WriteHold(Arc<Gate>);

impl Drop for WriteHold {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Writer {
    /// Starts the writer thread for `db`.
    pub(crate) fn start(db: Arc<Database>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let gate = Arc::new(Gate::default());
        let thread_gate = gate.clone();
        std::thread::Builder::new()
            .name("cairn-raft-log".into())
            .spawn(move || run(&db, &rx, &thread_gate))?;
        Ok(Self { tx, gate })
    }

    /// Holds every commit back until the returned guard is dropped (for tests).
    pub(crate) fn hold(&self) -> WriteHold {
        self.gate.set(true);
        WriteHold(self.gate.clone())
    }

    /// Queues a job. If the thread is gone (it only stops when every submitter is dropped,
    /// or after a panic it could not contain), the job completes at once with an error.
    pub(crate) fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            if let Some(done) = job.done {
                done(Err(io::Error::other("the Raft log writer has stopped")));
            }
        }
    }

    /// Queues a job and waits until its transaction has committed.
    pub(crate) async fn submit_wait(
        &self,
        mutations: Vec<Mutation>,
        durable: bool,
    ) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job {
            mutations,
            durable,
            done: Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        });
        rx.await
            .map_err(|_| io::Error::other("the Raft log writer dropped a write"))?
    }
}

fn run(db: &Database, rx: &mpsc::Receiver<Job>, gate: &Gate) {
    while let Ok(first) = rx.recv() {
        gate.wait_open();
        let mut bytes: usize = first.mutations.iter().map(Mutation::bytes).sum();
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_TXN && bytes < MAX_BYTES_PER_TXN {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.mutations.iter().map(Mutation::bytes).sum::<usize>();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let result = crate::quiet_panic::catch(|| commit(db, &jobs)).unwrap_or_else(|panic| {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the Raft log is corrupt (the storage engine failed: {panic})"),
            ))
        });
        for job in jobs {
            if let Some(done) = job.done {
                done(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
    }
}

fn commit(db: &Database, jobs: &[Job]) -> io::Result<()> {
    let mut txn = db.begin_write().map_err(io_err)?;
    let durability = if jobs.iter().any(|j| j.durable) {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(durability).map_err(io_err)?;
    if jobs.iter().any(|j| j.durable) {
        crate::stats::count_sync();
    }
    {
        let mut log = txn.open_table(LOG).map_err(io_err)?;
        let mut meta = txn.open_table(META).map_err(io_err)?;
        for m in jobs.iter().flat_map(|j| &j.mutations) {
            match m {
                Mutation::LogPut(entries) => {
                    for (index, bytes) in entries {
                        log.insert(*index, bytes.as_slice()).map_err(io_err)?;
                    }
                }
                Mutation::LogRemove(from, to) => {
                    log.retain_in::<u64, _>((*from, *to), |_, _| false)
                        .map_err(io_err)?;
                }
                Mutation::MetaPut(key, bytes) => {
                    meta.insert(*key, bytes.as_slice()).map_err(io_err)?;
                }
                Mutation::MetaRemove(key) => {
                    meta.remove(*key).map_err(io_err)?;
                }
            }
        }
    }
    txn.commit().map_err(io_err)
}
