//! The one thread that writes the segments.
//!
//! Why it exists: every mutation of the log (appends, truncations, purges, vote, committed
//! id) is queued here in the order openraft issued it. The thread takes everything queued
//! at that moment, encodes it as records into one buffer, writes it with one positioned
//! write and one `fdatasync` (group commit), applies the records to the shared [`Image`],
//! then reports completion to each submitter in order. The queue is FIFO, so a completion
//! also means every earlier mutation is durable.
//!
//! After a failed write the segment's tail is unknown, so the writer refuses every later
//! job (the server stops; recovery at the next start cuts what was torn).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use parking_lot::Mutex;

use super::image::Image;
use super::lock::DirLock;
use super::record::{self, Kind, HEADER};
use super::recovery::Recovered;
use super::segment;
use crate::hold::{Gate, WriteHold};

/// Called once with the outcome of the write that carried the job.
pub(crate) type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Most jobs (and bytes) one write takes, so a backlog cannot build one huge write.
const MAX_JOBS_PER_WRITE: usize = 1024;
const MAX_BYTES_PER_WRITE: usize = 16 << 20;

/// One change to the log.
pub(crate) enum Op {
    /// Entries (index, encoded) in ascending, contiguous order.
    Entries(Vec<(u64, Vec<u8>)>),
    /// Remove every entry at or after this index.
    Truncate(u64),
    /// Purge up to and including this index (with its encoded log id).
    Purge(u64, Vec<u8>),
    Vote(Vec<u8>),
    Committed(Option<Vec<u8>>),
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Entries(v) => v.iter().map(|(_, b)| record::size(b.len())).sum(),
            Op::Purge(_, b) | Op::Vote(b) => record::size(b.len()),
            Op::Committed(b) => record::size(b.as_ref().map_or(0, Vec::len)),
            Op::Truncate(_) => HEADER,
        }
    }
}

/// Ops written together, whether they need an fsync, and who to tell.
pub(crate) struct Job {
    pub ops: Vec<Op>,
    pub durable: bool,
    pub done: Option<Done>,
}

/// What readers share with the writer: the image (state and entry map) and open files.
pub(crate) struct Shared {
    dir: PathBuf,
    pub image: Mutex<Image>,
    files: Mutex<HashMap<u64, Arc<File>>>,
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, image: Image) -> Self {
        Self {
            dir,
            image: Mutex::new(image),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the encoded entries in `[start, end)` that are on disk, checking each record.
    pub(crate) fn read(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let places = self.image.lock().index.range(start, end);
        let mut out = Vec::with_capacity(places.len());
        for (index, pos) in places {
            let file = self.file(pos.seq)?;
            let at = pos.offset - HEADER as u64;
            let bytes = segment::read_at(&file, at, HEADER + pos.len as usize)?;
            match record::decode(&bytes) {
                Ok((r, _)) if r.kind == Kind::Entry && r.index == index => {
                    out.push((index, r.payload.to_vec()));
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the Raft log is corrupt: {} at byte {at}: entry {index} does not read back",
                            segment::path(&self.dir, pos.seq).display()
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn file(&self, seq: u64) -> io::Result<Arc<File>> {
        if let Some(f) = self.files.lock().get(&seq) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(segment::path(&self.dir, seq))?);
        self.files.lock().insert(seq, f.clone());
        Ok(f)
    }

    fn forget(&self, seq: u64) {
        self.files.lock().remove(&seq);
    }
}

/// The submitting side; dropping the last one stops the thread once its queue is drained.
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    gate: Arc<Gate>,
}

impl Writer {
    /// Starts the writer on a recovered log, continuing its last segment or opening a new
    /// one. `lock` is held until the thread exits.
    pub(crate) fn start(
        dir: &Path,
        rec: &Recovered,
        shared: Arc<Shared>,
        segment_size: u64,
        lock: DirLock,
    ) -> io::Result<Self> {
        let mut segments = rec.segments.clone();
        let (file, seq, offset) = match rec.tail {
            Some((seq, offset)) => (segment::open(dir, seq)?, seq, offset),
            None => {
                let seq = segments.keys().next_back().map_or(1, |s| s + 1);
                let mut start = Vec::new();
                let state = shared.image.lock().state.encode();
                record::encode(&mut start, Kind::Start, rec.next_group, seq, &state);
                segments.insert(seq, None);
                let f = segment::create(dir, seq, segment_size, &start)?;
                (f, seq, start.len() as u64)
            }
        };
        let size = file.metadata()?.len();
        let mut t = Thread {
            dir: dir.to_path_buf(),
            file,
            seq,
            offset,
            size,
            segment_size,
            group: rec.next_group + 1,
            segments,
            shared,
            failed: None,
            buf: Vec::new(),
            _lock: lock,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let gate = Arc::new(Gate::default());
        let thread_gate = gate.clone();
        std::thread::Builder::new()
            .name("cairn-raft-log".into())
            .spawn(move || t.run(&rx, &thread_gate))?;
        Ok(Self { tx, gate })
    }

    /// Holds every write back until the returned guard is dropped (for tests).
    pub(crate) fn hold(&self) -> WriteHold {
        self.gate.hold()
    }

    /// Queues a job. If the thread is gone, the job completes at once with an error.
    pub(crate) fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            if let Some(done) = job.done {
                done(Err(io::Error::other("the Raft log writer has stopped")));
            }
        }
    }

    /// Queues ops and waits until they are written (and synced when `durable`).
    pub(crate) async fn submit_wait(&self, ops: Vec<Op>, durable: bool) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job {
            ops,
            durable,
            done: Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        });
        rx.await
            .map_err(|_| io::Error::other("the Raft log writer dropped a write"))?
    }
}

struct Thread {
    dir: PathBuf,
    file: File,
    seq: u64,
    /// Where the next record goes in the current segment.
    offset: u64,
    size: u64,
    segment_size: u64,
    group: u64,
    /// Every segment present -> the highest entry index written in it.
    segments: BTreeMap<u64, Option<u64>>,
    shared: Arc<Shared>,
    failed: Option<String>,
    buf: Vec<u8>,
    _lock: DirLock,
}

impl Thread {
    fn run(&mut self, rx: &mpsc::Receiver<Job>, gate: &Gate) {
        while let Ok(first) = rx.recv() {
            gate.wait_open();
            let mut bytes: usize = first.ops.iter().map(Op::bytes).sum();
            let mut jobs = vec![first];
            while jobs.len() < MAX_JOBS_PER_WRITE && bytes < MAX_BYTES_PER_WRITE {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes += job.ops.iter().map(Op::bytes).sum::<usize>();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let result = match &self.failed {
                Some(why) => Err(io::Error::other(why.clone())),
                None => self.write(&jobs),
            };
            if let Err(e) = &result {
                if self.failed.is_none() {
                    tracing::error!(error = %e, "writing the Raft log failed; no further writes are accepted");
                    self.failed = Some(format!("the Raft log writer failed earlier: {e}"));
                }
            }
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

    /// Writes the jobs' ops as one group.
    fn write(&mut self, jobs: &[Job]) -> io::Result<()> {
        let group = self.group;
        self.group += 1;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut purged = false;
        for op in jobs.iter().flat_map(|j| &j.ops) {
            match op {
                Op::Entries(entries) => {
                    for (index, bytes) in entries {
                        record::encode(&mut buf, Kind::Entry, group, *index, bytes);
                    }
                }
                Op::Truncate(from) => record::encode(&mut buf, Kind::Truncate, group, *from, &[]),
                Op::Purge(upto, id) => {
                    purged = true;
                    record::encode(&mut buf, Kind::Purge, group, *upto, id);
                }
                Op::Vote(v) => record::encode(&mut buf, Kind::Vote, group, 0, v),
                Op::Committed(c) => {
                    let (index, bytes) = match c {
                        Some(b) => (1, b.as_slice()),
                        None => (0, &[][..]),
                    };
                    record::encode(&mut buf, Kind::Committed, group, index, bytes);
                }
            }
        }
        let result = self.write_buf(group, &buf, jobs.iter().any(|j| j.durable), purged);
        self.buf = buf;
        result
    }

    fn write_buf(&mut self, group: u64, buf: &[u8], durable: bool, purged: bool) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.offset + (buf.len() + HEADER) as u64 > self.size {
            self.rotate(group, buf.len())?;
        }
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(buf, self.offset)?;
        if durable {
            self.file.sync_data()?;
            crate::stats::count_sync();
        }
        let base = self.offset;
        self.offset += buf.len() as u64;
        self.apply(base, buf)?;
        if purged {
            self.delete_purged()?;
        }
        Ok(())
    }

    /// Feeds the records just written to the image, as recovery would.
    fn apply(&mut self, base: u64, buf: &[u8]) -> io::Result<()> {
        let mut image = self.shared.image.lock();
        let max = self.segments.entry(self.seq).or_insert(None);
        let mut at = 0;
        while at < buf.len() {
            let (r, n) = record::decode(&buf[at..])
                .map_err(|e| io::Error::other(format!("re-reading a record: {e:?}")))?;
            image
                .apply(self.seq, base + at as u64, &r)
                .map_err(io::Error::other)?;
            if r.kind == Kind::Entry {
                *max = Some(max.map_or(r.index, |m| m.max(r.index)));
            }
            at += n;
        }
        Ok(())
    }

    /// Seals the current segment and opens the next, big enough for `need` bytes.
    fn rotate(&mut self, group: u64, need: usize) -> io::Result<()> {
        let mut seal = Vec::new();
        record::encode(&mut seal, Kind::Seal, group, 0, &[]);
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&seal, self.offset)?;
        self.file.sync_data()?;
        let seq = self.seq + 1;
        let state = self.shared.image.lock().state.encode();
        let mut start = Vec::new();
        record::encode(&mut start, Kind::Start, group, seq, &state);
        let size = self
            .segment_size
            .max((start.len() + need + 2 * HEADER) as u64);
        self.file = segment::create(&self.dir, seq, size, &start)?;
        self.segments.insert(seq, None);
        self.seq = seq;
        self.offset = start.len() as u64;
        self.size = size;
        Ok(())
    }

    /// Deletes the oldest segments while every entry they hold is purged (the purge record
    /// that allows it is already durable, and later segments carry the state forward).
    fn delete_purged(&mut self) -> io::Result<()> {
        let after = self.shared.image.lock().state.after_purged();
        let mut deleted = false;
        while let Some((&seq, &max)) = self.segments.iter().next() {
            if seq >= self.seq || max.is_some_and(|m| m >= after) {
                break;
            }
            std::fs::remove_file(segment::path(&self.dir, seq))?;
            self.shared.forget(seq);
            self.segments.remove(&seq);
            deleted = true;
        }
        if deleted {
            segment::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}
