//! End-to-end tests of `RaftNode`: durable restart from the log, restart from a snapshot,
//! the in-memory `-dev` mode, and openraft's storage suite against our state machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_raft::{CairnStateMachine, RaftNode, RaftOptions, TypeConfig};
use cairn_state::{Command, State};
use cairn_storage::{MemLogStore, WalLogStore};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use parking_lot::RwLock;
use tokio::sync::watch;

struct Started {
    node: RaftNode,
    state: Arc<RwLock<State>>,
    applied: watch::Receiver<u64>,
}

async fn start(data_dir: Option<&Path>, dev: bool) -> Started {
    let state = Arc::new(RwLock::new(State::default()));
    let (applied_tx, applied) = watch::channel(0);
    let node = RaftNode::start(RaftOptions {
        node_id: 1,
        addr: "127.0.0.1:8300".to_string(),
        data_dir: data_dir.map(Path::to_path_buf),
        state: state.clone(),
        applied_tx,
        raft_multiplier: if dev { 1 } else { 5 },
    })
    .await
    .expect("start raft node");
    Started {
        node,
        state,
        applied,
    }
}

fn state_json(state: &RwLock<State>) -> serde_json::Value {
    serde_json::to_value(&*state.read()).unwrap()
}

/// Writes `n` commands, checking indexes increase and the watch follows; returns the last index.
async fn write_n(s: &Started, n: usize) -> u64 {
    let mut last = *s.applied.borrow();
    for _ in 0..n {
        let (index, _outcome) = s.node.write(Command::Noop).await.expect("write");
        assert!(index > last, "index {index} must exceed {last}");
        assert!(
            *s.applied.borrow() >= index,
            "watch must publish before replying"
        );
        last = index;
    }
    last
}

/// Polls openraft metrics until `f` holds (bounded).
async fn wait_metrics(
    node: &RaftNode,
    what: &str,
    f: impl Fn(&openraft::RaftMetrics<TypeConfig>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if f(&node.raft().metrics().borrow_watched()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_restart_replays_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(dir.path()), true).await;
    assert!(s.node.is_leader());
    assert_eq!(s.node.leader_addr().as_deref(), Some("127.0.0.1:8300"));
    assert_eq!(s.node.peers(), vec!["127.0.0.1:8300".to_string()]);
    assert_eq!(s.node.last_contact_ms(), 0);
    s.node.ensure_linearizable().await.unwrap();
    s.node.ensure_leader_lease().await.unwrap();

    let last = write_n(&s, 25).await;
    let before = state_json(&s.state);
    s.node.shutdown().await;
    drop(s);

    let t0 = Instant::now();
    let s = start(Some(dir.path()), true).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "restart took {:?}",
        t0.elapsed()
    );
    assert!(
        *s.applied.borrow() >= last,
        "applied index restored from the log"
    );
    assert_eq!(state_json(&s.state), before, "state rebuilt from the log");
    let (index, _) = s.node.write(Command::Noop).await.unwrap();
    assert!(index > last);
    s.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_from_snapshot_after_purge() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(dir.path()), true).await;
    let last = write_n(&s, 30).await;

    s.node.raft().trigger().snapshot().await.unwrap();
    wait_metrics(&s.node, "snapshot", |m| {
        m.snapshot.is_some_and(|l| l.index() >= last)
    })
    .await;
    // Drop the log behind the snapshot so the restart cannot replay it.
    s.node.raft().trigger().purge_log(last).await.unwrap();
    wait_metrics(&s.node, "purge", |m| {
        m.purged.is_some_and(|l| l.index() >= last)
    })
    .await;

    let snaps: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        snaps.iter().any(|n| n.ends_with(".snap")),
        "snapshot file written: {snaps:?}"
    );

    let before = state_json(&s.state);
    s.node.shutdown().await;
    drop(s);

    let s = start(Some(dir.path()), true).await;
    assert!(*s.applied.borrow() >= last);
    assert_eq!(
        state_json(&s.state),
        before,
        "state restored from the snapshot"
    );
    let m = s.node.raft().metrics().borrow_watched().clone();
    assert!(
        m.purged.is_some_and(|l| l.index() >= last),
        "log stays purged"
    );
    let (index, _) = s.node.write(Command::Noop).await.unwrap();
    assert!(index > last);
    s.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_dev_timeouts_still_start_fast() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let s = start(Some(dir.path()), false).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "first start took {:?}",
        t0.elapsed()
    );
    let last = write_n(&s, 3).await;
    s.node.shutdown().await;
    drop(s);
    let t0 = Instant::now();
    let s = start(Some(dir.path()), false).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "restart took {:?}",
        t0.elapsed()
    );
    assert!(s.node.is_leader());
    assert!(*s.applied.borrow() >= last);
    s.node.shutdown().await;
}

#[tokio::test]
async fn dev_mode_is_in_memory_and_fast() {
    let t0 = Instant::now();
    let s = start(None, true).await;
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "dev start took {:?}",
        t0.elapsed()
    );
    assert!(s.node.is_leader());
    let last = write_n(&s, 10).await;
    assert!(last >= 10);
    s.node.shutdown().await;
    // After shutdown writes fail cleanly instead of hanging or panicking.
    assert!(s.node.write(Command::Noop).await.is_err());
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, MemLogStore<TypeConfig>, CairnStateMachine> for MemBuilder {
    async fn build(
        &self,
    ) -> Result<((), MemLogStore<TypeConfig>, CairnStateMachine), StorageError<TypeConfig>> {
        let (tx, _rx) = watch::channel(0);
        let sm = CairnStateMachine::open(Arc::default(), tx, None).expect("sm");
        Ok(((), MemLogStore::new(), sm))
    }
}

struct WalBuilder;

impl StoreBuilder<TypeConfig, WalLogStore<TypeConfig>, CairnStateMachine, tempfile::TempDir>
    for WalBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            WalLogStore<TypeConfig>,
            CairnStateMachine,
        ),
        StorageError<TypeConfig>,
    > {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = WalLogStore::open(dir.path().join("log")).expect("wal");
        let (tx, _rx) = watch::channel(0);
        let sm = CairnStateMachine::open(Arc::default(), tx, Some(dir.path().join("snapshots")))
            .expect("sm");
        Ok((dir, store, sm))
    }
}

#[tokio::test]
async fn openraft_suite_with_cairn_state_machine_mem() {
    Suite::test_all(MemBuilder).await.expect("suite");
}

#[tokio::test]
async fn openraft_suite_with_cairn_state_machine_wal() {
    Suite::test_all(WalBuilder).await.expect("suite");
}
