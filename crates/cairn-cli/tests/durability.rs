//! Damage found at start: a real `cairn agent` on a data directory whose latest snapshot
//! file was cut short or had bytes flipped, or whose Raft log (a segment file in
//! `raft/log/`) had bytes flipped, exits with status 1 and a message naming the file and
//! the damage, never a panic, and never serves a different state. Putting the file back
//! brings everything back. (A log cut inside its last write is a crash's torn tail,
//! repaired at start: the storage crate's recovery tests cover it.)

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
async fn a_flipped_raft_log_stops_the_agent_by_name() {
    let (_d, dir) = tempdir();
    populated(&dir).await;
    let log_dir = dir.join("raft").join("log");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    let log = segs.pop().expect("a segment file");
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    let saved = std::fs::read(&log).unwrap();
    let used = saved
        .iter()
        .rposition(|b| *b != 0)
        .expect("data in the segment");

    // One flipped byte in the middle of the written records, and one in the first record.
    for at in [used / 2, 10] {
        let mut flipped = saved.clone();
        flipped[at] ^= 0x01;
        std::fs::write(&log, &flipped).unwrap();
        let e = refused_start(&dir);
        assert!(
            e.contains(&name) && e.contains("corrupt"),
            "flipped at {at}: {e}"
        );
        println!("flipped at {at} of {used} bytes: {e}");
    }

    std::fs::write(&log, &saved).unwrap();
    assert_intact(&dir).await;
}
