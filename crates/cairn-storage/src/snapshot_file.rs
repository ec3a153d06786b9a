//! Atomic snapshot files.
//!
//! A state-machine snapshot is one opaque blob. It must never be observed half written: after a
//! crash we either have the previous snapshot or the new one. The recipe is the classic one:
//! write `<name>.tmp`, fsync it, rename it to `<name>`, fsync the directory (so the rename
//! itself is durable).
//!
//! "Latest" is defined by file name: callers name snapshots so that lexicographic order is
//! recency order (e.g. a zero-padded last log index first). Only files ending in
//! [`SNAPSHOT_EXT`] count; leftover `.tmp` files from a crash are ignored (and pruned).
//!
//! A snapshot file starts with one header line, `CAIRNSNAP 1 <length> <sha256 hex>`, then
//! the blob. Reading checks both, so a file cut short or with flipped bytes (a disk or
//! copy fault the atomic rename cannot prevent) is an `InvalidData` error naming the file
//! and what is wrong, never a silently different state. Files written before the header
//! existed (no `CAIRNSNAP` prefix) are read as they are.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cairn_fs::{sync_dir, write_file_durably};
use sha2::{Digest, Sha256};

/// Extension of complete snapshot files.
pub const SNAPSHOT_EXT: &str = "snap";

/// First bytes of a snapshot file with a header.
const MAGIC: &str = "CAIRNSNAP";
/// The longest header line read.
const MAX_HEADER: usize = 128;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bytes` behind a header line with their length and SHA-256.
fn with_header(bytes: &[u8]) -> Vec<u8> {
    let header = format!("{MAGIC} 1 {} {}\n", bytes.len(), sha256_hex(bytes));
    let mut out = Vec::with_capacity(header.len() + bytes.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The blob of a snapshot file read from `path`, its header checked.
pub fn verify_snapshot(path: &Path, mut file: Vec<u8>) -> io::Result<Vec<u8>> {
    let bad = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot file {} is damaged: {what}", path.display()),
        )
    };
    if !file.starts_with(MAGIC.as_bytes()) {
        return Ok(file);
    }
    let end = file
        .iter()
        .take(MAX_HEADER)
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad("its header line is cut off".into()))?;
    let header = std::str::from_utf8(&file[..end]).map_err(|_| bad("unreadable header".into()))?;
    let fields: Vec<&str> = header.split(' ').collect();
    let (len, sum) = match fields.as_slice() {
        [_, "1", len, sum] => (
            len.parse::<usize>()
                .map_err(|_| bad(format!("bad length in header {header:?}")))?,
            sum.to_string(),
        ),
        _ => return Err(bad(format!("unknown header {header:?}"))),
    };
    let body_len = file.len() - end - 1;
    if body_len != len {
        return Err(bad(format!(
            "the header says {len} bytes follow but {body_len} do (truncated or torn)"
        )));
    }
    file.drain(..=end);
    if sha256_hex(&file) != sum {
        return Err(bad(
            "its SHA-256 does not match the header (corrupt bytes)".into()
        ));
    }
    Ok(file)
}

/// Durably writes `bytes` to `dir/name` (created atomically). `name` should end in `.snap`
/// for [`read_latest_snapshot`] to consider it; if it does not, `.snap` is appended.
/// Returns the final path.
pub fn write_snapshot_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let final_name = if name.ends_with(&format!(".{SNAPSHOT_EXT}")) {
        name.to_string()
    } else {
        format!("{name}.{SNAPSHOT_EXT}")
    };
    write_file_durably(dir, &final_name, &with_header(bytes))
}

/// Reads the latest complete snapshot in `dir`: `Ok(None)` if the directory does not exist or
/// holds no `*.snap` file. A damaged file is an `InvalidData` error naming it (see the
/// module docs); an older snapshot is no substitute, as the log behind it may be gone.
pub fn read_latest_snapshot(dir: &Path) -> io::Result<Option<(PathBuf, Vec<u8>)>> {
    let mut names = list_snapshots(dir)?;
    match names.pop() {
        Some(path) => {
            let bytes = fs::read(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let bytes = verify_snapshot(&path, bytes)?;
            Ok(Some((path, bytes)))
        }
        None => Ok(None),
    }
}

/// Deletes all but the `keep` latest snapshots and any leftover `.tmp` files.
pub fn prune_snapshots(dir: &Path, keep: usize) -> io::Result<()> {
    let names = list_snapshots(dir)?;
    let n = names.len().saturating_sub(keep);
    for p in &names[..n] {
        fs::remove_file(p)?;
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for ent in rd {
            let p = ent?.path();
            if p.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&p)?;
            }
        }
    }
    sync_dir(dir)
}

/// Complete snapshot files in `dir`, oldest first.
fn list_snapshots(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent?;
        let p = ent.path();
        if p.extension().is_some_and(|e| e == SNAPSHOT_EXT) && ent.file_type()?.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
