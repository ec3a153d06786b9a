//! Stopping a server in-process gives back what it held: its Raft log writer thread and
//! its segment files. A long fault-injection run starts, stops and restarts servers
//! hundreds of times in one process; anything a stopped server, or a whole cluster
//! dropped at the end of a schedule, leaves behind piles up until clusters stop forming.
//! This file is its own test binary, so the threads it counts are its own. It reads
//! `/proc`, so it runs on Linux only.
#![cfg(target_os = "linux")]

mod harness;

use harness::*;

/// The tests count process-wide threads and files, so they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many threads of this process carry `name` (Linux: `/proc/self/task/*/comm`).
fn threads_named(name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// Open descriptors of this process that point at a Raft log segment.
fn open_segments() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.to_string_lossy().contains("/raft/"))
        .count()
}

/// The process holds at most `threads` log writers and `segments` open segment files.
struct HeldAtMost {
    threads: usize,
    segments: usize,
}

impl Condition for HeldAtMost {
    async fn holds(&self, _: &Cluster) -> bool {
        threads_named("cairn-raft-log") <= self.threads && open_segments() <= self.segments
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_servers_give_back_their_log_writer_and_files() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::new("stopped_servers_give_back_their_log_writer_and_files");
    let servers = ["s1", "s2", "s3"];
    for name in servers {
        c.durable_server(name, 3, "").await;
    }
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    assert_eq!(c.http("s1", "PUT", "/v1/kv/k", "v").await.0, 200);
    let running = threads_named("cairn-raft-log");
    assert_eq!(running, 3, "one log writer per durable server");
    assert!(open_segments() >= 3, "each server has its segment open");

    // A crash and restart of one server: the stopped incarnation's writer goes.
    c.kill("s2").await;
    c.wait_until(
        "s2's writer and files released",
        HeldAtMost {
            threads: 2,
            segments: usize::MAX,
        },
    )
    .await;
    c.restart("s2").await;
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    assert_eq!(threads_named("cairn-raft-log"), 3);

    // Stopping every server leaves nothing behind.
    c.stop_all().await;
    c.wait_until(
        "every writer and segment file released",
        HeldAtMost {
            threads: 0,
            segments: 0,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_cluster_stops_its_servers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::new("a_dropped_cluster_stops_its_servers");
    for name in ["s1", "s2", "s3"] {
        c.durable_server(name, 3, "").await;
    }
    c.wait_until("one leader, known everywhere", LeaderAgreed(None))
        .await;
    drop(c);
    let start = std::time::Instant::now();
    while threads_named("cairn-raft-log") > 0 || open_segments() > 0 {
        assert!(
            start.elapsed() < *WAIT,
            "a dropped cluster still holds {} log writer(s) and {} segment file(s)",
            threads_named("cairn-raft-log"),
            open_segments()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
