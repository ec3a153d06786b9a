//! Crash and damage cases for the segment log: a torn last write is cut off and the log
//! opens with every synced entry; any other damage refuses to open with the file named.

use std::path::{Path, PathBuf};

use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::testing::log_id;

use super::record;
use super::segment;
use super::{WalLogStore, WalOptions};

openraft::declare_raft_types!(pub TC: D = String, R = String);

type Entry = <TC as openraft::RaftTypeConfig>::Entry;

fn entry(index: u64) -> Entry {
    Entry::new_normal(
        log_id::<TC>(1, 0, index),
        format!("value {index} {}", "x".repeat(60)),
    )
}

fn open(dir: &Path, segment_size: u64) -> std::io::Result<WalLogStore<TC>> {
    WalLogStore::open_with(dir, WalOptions { segment_size })
}

/// Writes entries `1..=n`, one synced write each, and closes the store.
async fn write(dir: &Path, n: u64, segment_size: u64) {
    let mut s = open(dir, segment_size).unwrap();
    for i in 1..=n {
        s.blocking_append([entry(i)]).await.unwrap();
    }
}

async fn indexes(s: &mut WalLogStore<TC>) -> Vec<u64> {
    s.try_get_log_entries(0..1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.index())
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .map(|s| segment::path(dir, s))
        .collect()
}

/// Start and end offsets of every record in a segment's bytes.
fn record_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while let Ok((_, n)) = record::decode(&bytes[at..]) {
        out.push((at, at + n));
        at += n;
    }
    out
}

#[tokio::test]
async fn a_torn_last_write_is_cut_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write(&log, 5, 1 << 20).await;
    let seg = segments(&log).pop().unwrap();
    let saved = std::fs::read(&seg).unwrap();
    let (last_start, last_end) = *record_spans(&saved).last().unwrap();
    for cut in last_start..last_end {
        for fill in [0u8, 0xAB] {
            let mut bytes = saved.clone();
            bytes[cut..last_end].fill(fill);
            std::fs::write(&seg, &bytes).unwrap();
            let mut s = open(&log, 1 << 20).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(indexes(&mut s).await, vec![1, 2, 3, 4], "cut at {cut}");
            assert_eq!(
                s.get_log_state().await.unwrap().last_log_id,
                Some(log_id::<TC>(1, 0, 4))
            );
        }
    }
    // The file itself cut short (not preallocated any more) is a torn tail too, and the
    // log continues after the cut.
    std::fs::write(&seg, &saved[..last_start + 3]).unwrap();
    {
        let mut s = open(&log, 1 << 20).unwrap();
        assert_eq!(indexes(&mut s).await, vec![1, 2, 3, 4]);
        s.blocking_append([entry(5), entry(6)]).await.unwrap();
    }
    let mut s = open(&log, 1 << 20).unwrap();
    assert_eq!(indexes(&mut s).await, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_bad_record_before_the_tail_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write(&log, 5, 1 << 20).await;
    let seg = segments(&log).pop().unwrap();
    let saved = std::fs::read(&seg).unwrap();
    let spans = record_spans(&saved);
    // Every byte of every record but the last (the start record included).
    let (_, before_last) = spans[spans.len() - 2];
    for at in 0..before_last {
        let mut bytes = saved.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&seg, &bytes).unwrap();
        let e = open(&log, 1 << 20)
            .err()
            .unwrap_or_else(|| panic!("flip at {at} opened"));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("corrupt") && msg.contains(".wal"),
            "flip at {at}: {msg}"
        );
    }
    std::fs::write(&seg, &saved).unwrap();
    let mut s = open(&log, 1 << 20).unwrap();
    assert_eq!(indexes(&mut s).await, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn missing_or_damaged_older_segments_refuse_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write(&log, 60, 1024).await;
    let segs = segments(&log);
    assert!(segs.len() >= 4, "small segments: {}", segs.len());
    let e_of = || open(&log, 1024).expect_err("must refuse").to_string();

    let middle = std::fs::read(&segs[1]).unwrap();
    std::fs::remove_file(&segs[1]).unwrap();
    let e = e_of();
    assert!(e.contains("missing"), "{e}");
    std::fs::write(&segs[1], &middle).unwrap();

    let first = std::fs::read(&segs[0]).unwrap();
    std::fs::remove_file(&segs[0]).unwrap();
    let e = e_of();
    assert!(e.contains("entries 1 to") && e.contains("missing"), "{e}");

    // A sealed segment's tail is never a torn write.
    let mut bytes = first.clone();
    let (start, _) = *record_spans(&bytes).last().unwrap();
    bytes[start + 5] ^= 1;
    std::fs::write(&segs[0], &bytes).unwrap();
    let e = e_of();
    assert!(
        e.contains("corrupt") && e.contains(&*segs[0].to_string_lossy()),
        "{e}"
    );

    std::fs::write(&segs[0], &first).unwrap();
    let mut s = open(&log, 1024).unwrap();
    assert_eq!(indexes(&mut s).await, (1..=60).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_later_write_behind_damage_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write(&log, 5, 1 << 20).await;
    let seg = segments(&log).pop().unwrap();
    let saved = std::fs::read(&seg).unwrap();
    let spans = record_spans(&saved);
    // Zeros over the second-to-last write, the last one intact behind it.
    let (start, end) = spans[spans.len() - 2];
    let mut bytes = saved.clone();
    bytes[start..end].fill(0);
    std::fs::write(&seg, &bytes).unwrap();
    let e = open(&log, 1 << 20).expect_err("must refuse").to_string();
    assert!(e.contains("written later"), "{e}");
}

#[tokio::test]
async fn purge_deletes_old_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write(&log, 60, 1024).await;
    let before = segments(&log).len();
    {
        let mut s = open(&log, 1024).unwrap();
        s.purge(log_id::<TC>(1, 0, 40)).await.unwrap();
        s.save_vote(&openraft::alias::VoteOf::<TC>::new(4, 2))
            .await
            .unwrap();
    }
    let after = segments(&log).len();
    assert!(after < before, "{after} segments left of {before}");
    let mut s = open(&log, 1024).unwrap();
    assert_eq!(indexes(&mut s).await, (41..=60).collect::<Vec<_>>());
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(log_id::<TC>(1, 0, 40)));
    assert_eq!(
        s.read_vote().await.unwrap(),
        Some(openraft::alias::VoteOf::<TC>::new(4, 2))
    );
    // Purging past the end empties the log; it continues after the purge point.
    s.purge(log_id::<TC>(1, 0, 100)).await.unwrap();
    s.blocking_append([entry(101)]).await.unwrap();
    drop(s);
    let mut s = open(&log, 1024).unwrap();
    assert_eq!(indexes(&mut s).await, vec![101]);
}
