//! Damage found at start: a real `cairn agent` on a data directory whose latest snapshot
//! file, or whose Raft log (`raft.redb`), was cut short or had bytes flipped exits with
//! status 1 and a message naming the file and the damage, never a panic, and never
//! serves a different state. Putting the file back brings everything back.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{durable_args, run_to_exit, tempdir, unb64, Agent};

/// Snapshots early and often, so a few writes leave a snapshot file behind.
const SNAPSHOT_OFTEN: &str =
    "raft_snapshot_threshold = 10\nraft_snapshot_interval = \"50ms\"\nraft_trailing_logs = 2";

fn args(dir: &Path) -> Vec<String> {
    let mut a = durable_args(dir);
    a.extend(["-hcl".to_string(), SNAPSHOT_OFTEN.to_string()]);
    a
}

/// Starts the agent on `dir`, expecting it to refuse; its stderr.
fn refused_start(dir: &Path) -> String {
    let a = args(dir);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, stderr) = run_to_exit(&a, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(1),
        "the agent must refuse to start; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    stderr
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("snapshots"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "snap"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A durable server with 60 keys and at least one snapshot file, killed.
async fn populated(dir: &Path) {
    let owned = args(dir);
    let a: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut agent = Agent::start(&a).await;
    for i in 0..60 {
        agent.kv_put(&format!("k{i}"), format!("value {i}")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while snapshot_files(dir).is_empty() {
        assert!(Instant::now() < deadline, "no snapshot file was written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.kill9();
}

async fn assert_intact(dir: &Path) {
    let owned = args(dir);
    let a: Vec<&str> = owned.iter().map(String::as_str).collect();
    let agent = Agent::start(&a).await;
    for i in [0, 31, 59] {
        let e = agent.kv_entry(&format!("k{i}")).await.expect("key back");
        assert_eq!(unb64(&e["Value"]), format!("value {i}").into_bytes());
    }
}

#[tokio::test]
async fn a_damaged_snapshot_file_stops_the_agent_by_name() {
    let (_d, dir) = tempdir();
    populated(&dir).await;
    let snap = snapshot_files(&dir).pop().unwrap();
    let name = snap.file_name().unwrap().to_string_lossy().into_owned();
    let saved = std::fs::read(&snap).unwrap();

    std::fs::write(&snap, &saved[..saved.len() * 2 / 3]).unwrap();
    let e = refused_start(&dir);
    assert!(e.contains(&name) && e.contains("truncated"), "{e}");

    let mut flipped = saved.clone();
    let at = saved.len() - 10;
    flipped[at] ^= 0x01;
    std::fs::write(&snap, &flipped).unwrap();
    let e = refused_start(&dir);
    assert!(e.contains(&name) && e.contains("SHA-256"), "{e}");

    std::fs::write(&snap, &saved).unwrap();
    assert_intact(&dir).await;
}

#[tokio::test]
async fn a_torn_or_flipped_raft_log_stops_the_agent_by_name() {
    let (_d, dir) = tempdir();
    populated(&dir).await;
    let log = dir.join("raft").join("raft.redb");
    let saved = std::fs::read(&log).unwrap();

    // A torn tail: the file cut short.
    for keep in [saved.len() / 2, saved.len() - 1, 4096, 100] {
        std::fs::write(&log, &saved[..keep]).unwrap();
        let e = refused_start(&dir);
        assert!(e.contains("raft.redb"), "cut to {keep} bytes: {e}");
        println!("cut to {keep} of {} bytes: {e}", saved.len());
    }

    // One flipped byte in every page after the header.
    let mut flipped = saved.clone();
    for off in (4096..flipped.len()).step_by(4096) {
        flipped[off + 200] ^= 0x01;
    }
    std::fs::write(&log, &flipped).unwrap();
    let e = refused_start(&dir);
    assert!(e.contains("raft.redb"), "flipped: {e}");
    println!("flipped: {e}");

    std::fs::write(&log, &saved).unwrap();
    assert_intact(&dir).await;
}
