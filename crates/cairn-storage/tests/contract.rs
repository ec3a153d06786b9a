//! One contract suite for both log stores.
//!
//! openraft's own `testing::log::Suite` (which needs a state machine, so a minimal one lives
//! here) plus Cairn-specific checks: truncate/purge semantics, batched appends, and that a
//! `WalLogStore` reopened after drop still has its vote, committed id and entries.

use std::io;
use std::sync::Arc;

use cairn_storage::{
    prune_snapshots, read_latest_snapshot, write_snapshot_file, MemLogStore, WalLogStore,
    WalOptions,
};
use futures::{Stream, StreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{
    EntryResponder, IOFlushed, RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder,
    RaftStateMachine,
};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::testing::{blank_ent, log_id};
use openraft::type_config::TypeConfigExt;
use openraft::{OptionalSend, RaftLogReader, StorageError};
use parking_lot::Mutex;

openraft::declare_raft_types!(pub TC: D = String, R = String);

#[derive(Default)]
struct SmInner {
    last_applied: Option<LogIdOf<TC>>,
    membership: StoredMembershipOf<TC>,
    current: Option<(SnapshotMetaOf<TC>, Vec<u8>)>,
}

/// The smallest state machine the openraft suite accepts: it only tracks applied state.
#[derive(Clone, Default)]
struct TestSm(Arc<Mutex<SmInner>>);

impl RaftSnapshotBuilder<TC> for TestSm {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TC, Vec<u8>>, io::Error> {
        let mut g = self.0.lock();
        let meta = SnapshotMetaOf::<TC> {
            last_log_id: g.last_applied,
            last_membership: g.membership.clone(),
        };
        let data = serde_json::to_vec(&g.last_applied).map_err(io::Error::other)?;
        g.current = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<TC, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TC> for TestSm {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TC>>, StoredMembershipOf<TC>), io::Error> {
        let g = self.0.lock();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TC>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut g = self.0.lock();
                g.last_applied = Some(entry.log_id());
                if let Some(m) = entry.get_membership() {
                    g.membership = StoredMembershipOf::<TC>::new(Some(entry.log_id()), m);
                }
            }
            if let Some(r) = responder {
                r.send(String::new());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TC>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let mut g = self.0.lock();
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.current = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<TC, Vec<u8>>>, io::Error> {
        Ok(self
            .0
            .lock()
            .current
            .clone()
            .map(|(meta, snapshot)| SnapshotOf::<TC, Vec<u8>> { meta, snapshot }))
    }
}

struct MemBuilder;

impl StoreBuilder<TC, MemLogStore<TC>, TestSm> for MemBuilder {
    async fn build(&self) -> Result<((), MemLogStore<TC>, TestSm), StorageError<TC>> {
        Ok(((), MemLogStore::new(), TestSm::default()))
    }
}

struct WalBuilder;

impl StoreBuilder<TC, WalLogStore<TC>, TestSm, tempfile::TempDir> for WalBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, WalLogStore<TC>, TestSm), StorageError<TC>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = WalLogStore::open(dir.path().join("log")).expect("open wal");
        Ok((dir, store, TestSm::default()))
    }
}

#[tokio::test]
async fn openraft_suite_wal() {
    Suite::test_all(WalBuilder).await.expect("suite");
}

/// A durable store the tests below run against: opened on a path inside a directory, with
/// the test hooks.
trait Durable: RaftLogStorage<TC> + RaftLogReader<TC> + Clone + Sized {
    fn open_in(dir: &std::path::Path) -> Self;
    fn hold(&self) -> Box<dyn std::any::Any>;
    fn cached(&self) -> usize;
}

impl Durable for WalLogStore<TC> {
    fn open_in(dir: &std::path::Path) -> Self {
        // Small segments, so that the tests cross segment boundaries.
        WalLogStore::open_with(
            dir.join("log"),
            WalOptions {
                segment_size: 64 << 10,
            },
        )
        .unwrap()
    }
    fn hold(&self) -> Box<dyn std::any::Any> {
        Box::new(self.hold_writes())
    }
    fn cached(&self) -> usize {
        self.cached_entries()
    }
}

/// Runs a generic durable-store test against every durable store.
macro_rules! durable_tests {
    ($($name:ident),* $(,)?) => {
        mod wal {
            $(#[tokio::test]
            async fn $name() {
                super::$name::<cairn_storage::WalLogStore<super::TC>>().await;
            })*
        }
    };
}

durable_tests!(
    semantics,
    reopen_keeps_vote_committed_and_entries,
    append_callback_fires_after_commit,
    append_is_readable_before_it_is_durable,
    group_commit_keeps_order_and_bounds_the_tail,
    truncate_then_append_replaces_entries,
);

#[tokio::test]
async fn openraft_suite_mem() {
    Suite::test_all(MemBuilder).await.expect("suite");
}

fn lid(index: u64) -> LogIdOf<TC> {
    log_id::<TC>(1, 0, index)
}

async fn indexes<S: RaftLogStorage<TC>>(s: &mut S, range: std::ops::Range<u64>) -> Vec<u64> {
    let mut r = s.get_log_reader().await;
    r.try_get_log_entries(range)
        .await
        .expect("read")
        .iter()
        .map(|e| e.index())
        .collect()
}

/// Truncate/purge/vote/committed semantics every store must have.
async fn log_semantics<S: RaftLogStorage<TC>>(mut s: S) {
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_log_id, None);
    assert_eq!(st.last_purged_log_id, None);

    // One batch of ten entries.
    let batch: Vec<_> = (1..=10).map(|i| blank_ent::<TC>(1, 0, i)).collect();
    s.append(batch, IOFlushed::noop()).await.unwrap();
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(lid(10)));
    assert_eq!(indexes(&mut s, 3..6).await, vec![3, 4, 5]);
    assert_eq!(indexes(&mut s, 6..6).await, Vec::<u64>::new());
    assert_eq!(indexes(&mut s, 9..100).await, vec![9, 10]);

    // Truncate keeps entries <= the given id.
    s.truncate_after(Some(lid(7))).await.unwrap();
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(lid(7)));
    assert_eq!(indexes(&mut s, 0..100).await, (1..=7).collect::<Vec<_>>());

    // Purge removes entries <= the given id and remembers it.
    s.purge(lid(3)).await.unwrap();
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(lid(3)));
    assert_eq!(st.last_log_id, Some(lid(7)));
    assert_eq!(indexes(&mut s, 0..100).await, vec![4, 5, 6, 7]);

    // Purging everything: last_log_id falls back to the purged id.
    s.purge(lid(7)).await.unwrap();
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(lid(7)));
    assert_eq!(st.last_log_id, Some(lid(7)));
    assert!(indexes(&mut s, 0..100).await.is_empty());

    // Appending after a full purge continues from there.
    s.append([blank_ent::<TC>(2, 0, 8)], IOFlushed::noop())
        .await
        .unwrap();
    assert_eq!(
        s.get_log_state().await.unwrap().last_log_id,
        Some(log_id::<TC>(2, 0, 8))
    );

    // Truncate to None removes every entry.
    s.truncate_after(None).await.unwrap();
    assert!(indexes(&mut s, 0..100).await.is_empty());

    // Vote and committed.
    let vote = VoteOf::<TC>::new(5, 1);
    s.save_vote(&vote).await.unwrap();
    assert_eq!(
        s.get_log_reader().await.read_vote().await.unwrap(),
        Some(vote)
    );
    s.save_committed(Some(lid(7))).await.unwrap();
    assert_eq!(s.read_committed().await.unwrap(), Some(lid(7)));
}

#[tokio::test]
async fn semantics_mem() {
    log_semantics(MemLogStore::<TC>::new()).await;
}

async fn semantics<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    log_semantics(S::open_in(dir.path())).await;
}

async fn reopen_keeps_vote_committed_and_entries<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested");
    let vote = VoteOf::<TC>::new(3, 1);
    {
        let mut s = S::open_in(&path);
        let batch: Vec<_> = (1..=20).map(|i| blank_ent::<TC>(1, 0, i)).collect();
        s.append(batch, IOFlushed::noop()).await.unwrap();
        s.save_vote(&vote).await.unwrap();
        s.save_committed(Some(lid(15))).await.unwrap();
        s.purge(lid(5)).await.unwrap();
        s.truncate_after(Some(lid(18))).await.unwrap();
    }
    let mut s = S::open_in(&path);
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(lid(5)));
    assert_eq!(st.last_log_id, Some(lid(18)));
    assert_eq!(
        s.get_log_reader().await.read_vote().await.unwrap(),
        Some(vote)
    );
    assert_eq!(s.read_committed().await.unwrap(), Some(lid(15)));
    assert_eq!(indexes(&mut s, 0..100).await, (6..=18).collect::<Vec<_>>());
}

async fn append_callback_fires_after_commit<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = S::open_in(dir.path());
    // blocking_append waits for the IOFlushed callback, which we only fire after the commit.
    s.blocking_append([blank_ent::<TC>(1, 0, 1)]).await.unwrap();
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(lid(1)));
}

/// An append is readable as soon as it is submitted, but reported durable only after the
/// commit: with commits held back, the callback must not fire while readers already see the
/// entries (replication and the state machine rely on the first; safety on the second).
async fn append_is_readable_before_it_is_durable<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut s = S::open_in(path);
    s.blocking_append([blank_ent::<TC>(1, 0, 1)]).await.unwrap();

    let hold = s.hold();
    let (tx, mut rx) = TC::oneshot();
    s.append(
        (2..=4).map(|i| blank_ent::<TC>(1, 0, i)),
        IOFlushed::signal(tx),
    )
    .await
    .unwrap();
    assert_eq!(indexes(&mut s, 0..100).await, vec![1, 2, 3, 4]);
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(lid(4)));
    // Held: the transaction cannot have committed, so the callback must still be waiting.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), &mut rx)
            .await
            .is_err(),
        "durability reported before the commit"
    );
    drop(hold);
    rx.await.unwrap().unwrap();
    drop(s);

    let mut s = S::open_in(path);
    assert_eq!(indexes(&mut s, 0..100).await, vec![1, 2, 3, 4]);
}

/// Many batches queued behind one held commit go into the file together and come back
/// intact; the in-memory tail stays bounded once they are durable, and older entries are
/// read from the file.
async fn group_commit_keeps_order_and_bounds_the_tail<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut s = S::open_in(path);
    let hold = s.hold();
    let mut waits = Vec::new();
    for batch in 0..100u64 {
        let (tx, rx) = TC::oneshot();
        let from = batch * 100 + 1;
        s.append(
            (from..from + 100).map(|i| blank_ent::<TC>(1, 0, i)),
            IOFlushed::signal(tx),
        )
        .await
        .unwrap();
        waits.push(rx);
    }
    assert_eq!(s.cached(), 10_000, "nothing durable yet: all cached");
    drop(hold);
    for rx in waits {
        rx.await.unwrap().unwrap();
    }
    assert!(
        s.cached() <= 4096,
        "the durable tail is bounded, got {}",
        s.cached()
    );
    assert_eq!(
        indexes(&mut s, 1..10_001).await,
        (1..=10_000).collect::<Vec<_>>()
    );
    assert_eq!(indexes(&mut s, 5..8).await, vec![5, 6, 7]);
    drop(s);
    let mut s = S::open_in(path);
    assert_eq!(
        s.get_log_state().await.unwrap().last_log_id,
        Some(lid(10_000))
    );
    assert_eq!(
        indexes(&mut s, 9_998..20_000).await,
        vec![9_998, 9_999, 10_000]
    );
}

/// A follower's log is overwritten from a point: the replacement entries (a newer term)
/// are what readers and a reopened store see, never the old ones at the same index.
async fn truncate_then_append_replaces_entries<S: Durable>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut s = S::open_in(path);
    s.blocking_append((1..=5).map(|i| blank_ent::<TC>(1, 0, i)))
        .await
        .unwrap();
    s.truncate_after(Some(lid(2))).await.unwrap();
    s.blocking_append((3..=4).map(|i| blank_ent::<TC>(2, 0, i)))
        .await
        .unwrap();
    let terms = |entries: Vec<<TC as openraft::RaftTypeConfig>::Entry>| {
        entries
            .iter()
            .map(|e| (e.index(), e.log_id().leader_id.term))
            .collect::<Vec<_>>()
    };
    let want = vec![(1, 1), (2, 1), (3, 2), (4, 2)];
    let mut r = s.get_log_reader().await;
    assert_eq!(terms(r.try_get_log_entries(0..100).await.unwrap()), want);
    drop((s, r));
    let s = S::open_in(path);
    let mut r = s.clone();
    assert_eq!(terms(r.try_get_log_entries(0..100).await.unwrap()), want);
}

#[test]
fn snapshot_files_latest_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snapshots");
    assert!(read_latest_snapshot(&snaps).unwrap().is_none());
    write_snapshot_file(&snaps, "00000000000000000010-a.snap", b"ten").unwrap();
    write_snapshot_file(&snaps, "00000000000000000020-b", b"twenty").unwrap();
    // A crash leftover must be ignored.
    std::fs::write(snaps.join("00000000000000000030-c.snap.tmp"), b"partial").unwrap();
    let (path, bytes) = read_latest_snapshot(&snaps).unwrap().unwrap();
    assert_eq!(bytes, b"twenty");
    assert!(path
        .to_string_lossy()
        .ends_with("00000000000000000020-b.snap"));
    prune_snapshots(&snaps, 1).unwrap();
    let left: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["00000000000000000020-b.snap".to_string()]);
    assert!(write_snapshot_file(&snaps, "../evil", b"x").is_err());
}

/// A snapshot file cut short, with a flipped byte, or with a mangled header is refused
/// with an error naming the file and the damage; a file without a header (written before
/// headers existed) still reads.
#[test]
fn damaged_snapshot_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snapshots");
    let blob = br#"{"meta":{},"state":{"many":"bytes of state"}}"#;
    let path = write_snapshot_file(&snaps, "00000000000000000007", blob).unwrap();
    let good = std::fs::read(&path).unwrap();
    assert!(good.starts_with(b"CAIRNSNAP 1 "), "a header comes first");
    assert_eq!(read_latest_snapshot(&snaps).unwrap().unwrap().1, blob);

    let err_of = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let e = read_latest_snapshot(&snaps).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("00000000000000000007.snap"), "{e}");
        e.to_string()
    };
    let e = err_of(&good[..good.len() - 5]);
    assert!(e.contains("truncated"), "{e}");
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x20;
    let e = err_of(&flipped);
    assert!(e.contains("SHA-256"), "{e}");
    let e = err_of(b"CAIRNSNAP 1 12");
    assert!(e.contains("header"), "{e}");
    let e = err_of(b"CAIRNSNAP 9 3 abc\nxyz");
    assert!(e.contains("unknown header"), "{e}");

    std::fs::write(&path, blob).unwrap();
    assert_eq!(read_latest_snapshot(&snaps).unwrap().unwrap().1, blob);
}
