//! Segment files: naming, creating, and reading one back record by record.
//!
//! Why it exists: the log is a sequence of preallocated files `NNNNNNNNNNNNNNNNNNNN.wal`
//! (a 20-digit sequence number) in one directory. A segment is created whole (written as a
//! temporary file with its `Start` record, extended to its full size, synced, renamed, and
//! the directory synced), so a segment file either does not exist or starts with a valid
//! record. Its size is fixed from the start, so appending never changes the file's size and
//! an `fdatasync` flushes only the data written.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{self, Bad, Kind, Record, HEADER, MAGIC};

const SUFFIX: &str = ".wal";
/// How much of a segment is read at a time while scanning it.
const CHUNK: usize = 1 << 20;

/// The file name of segment `seq`.
pub(crate) fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

/// The sequence numbers of the segments in `dir`, ascending. Leftover temporary files of
/// an interrupted segment creation are removed.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".wal.tmp") {
            std::fs::remove_file(e.path())?;
            continue;
        }
        if let Some(stem) = name.strip_suffix(SUFFIX) {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(seq) = stem.parse() {
                    seqs.push(seq);
                }
            }
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Creates segment `seq` of `size` bytes holding `start` (one encoded `Start` record) and
/// makes it durable; returns it open for reading and writing.
pub(crate) fn create(dir: &Path, seq: u64, size: u64, start: &[u8]) -> io::Result<File> {
    let final_path = path(dir, seq);
    let tmp = final_path.with_extension("wal.tmp");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all_at(start, 0)?;
    file.set_len(size.max(start.len() as u64))?;
    file.sync_all()?;
    std::fs::rename(&tmp, &final_path)?;
    sync_dir(dir)?;
    Ok(file)
}

pub(crate) use cairn_fs::sync_dir;

/// Where and why a segment's records stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct End {
    /// Offset just after the last good record.
    pub offset: u64,
    /// The last good record was a `Seal`.
    pub sealed: bool,
    /// What follows the last good record when not sealed (`Bad::Zero`: clean end).
    pub bad: Option<Bad>,
    /// The group of the last good record.
    pub last_group: u64,
}

/// Reads segment `file` from the start, calling `each(offset, record)` for every good
/// record until a `Seal`, a zero header, or bytes that are not a record. `each` may stop
/// the scan with an error.
pub(crate) fn scan(
    file: &File,
    mut each: impl FnMut(u64, Record<'_>) -> Result<(), String>,
) -> Result<End, ScanError> {
    let len = file.metadata().map_err(ScanError::Io)?.len();
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at: u64 = 0; // file offset of buf[0]
    let mut pos = 0usize;
    let mut last_group = 0;
    loop {
        let at = buf_at + pos as u64;
        match record::decode(&buf[pos..]) {
            Ok((r, n)) => {
                each(at, r).map_err(|reason| ScanError::Bad { offset: at, reason })?;
                last_group = r.group;
                pos += n;
                if r.kind == Kind::Seal {
                    return Ok(End {
                        offset: at + n as u64,
                        sealed: true,
                        bad: None,
                        last_group,
                    });
                }
            }
            Err(bad) => {
                let have_all = buf_at + buf.len() as u64 >= len;
                let need_more = match bad {
                    Bad::Short => true,
                    Bad::Zero => buf.len() - pos < HEADER,
                    Bad::Corrupt(_) => false,
                };
                if !need_more || have_all {
                    return Ok(End {
                        offset: at,
                        sealed: false,
                        bad: Some(bad),
                        last_group,
                    });
                }
                buf.drain(..pos);
                buf_at += pos as u64;
                pos = 0;
                let want = need_len(&buf).max(CHUNK);
                let read_at = buf_at + buf.len() as u64;
                let take = (len - read_at).min(want as u64) as usize;
                let old = buf.len();
                buf.resize(old + take, 0);
                file.read_exact_at(&mut buf[old..], read_at)
                    .map_err(ScanError::Io)?;
            }
        }
    }
}

/// How many bytes the record at the start of `buf` needs (its header says), at least a
/// header's worth.
fn need_len(buf: &[u8]) -> usize {
    match buf.get(8..12) {
        Some(b) => HEADER + u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize,
        None => HEADER,
    }
    .min(record::MAX_PAYLOAD + HEADER)
}

/// What is found after the last good record of the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Only zeros: the clean end of the data.
    Zeros,
    /// Something else, but no complete record of a later write: a write torn by a crash.
    Torn,
    /// A complete record from a write after the one the damage belongs to, at this offset:
    /// acknowledged data lies beyond the damage.
    LaterRecord(u64),
}

/// Looks at everything after `from` in `file` for the remains of a write. Records of write
/// `last_group` or `last_group + 1` may be left from the write a crash interrupted (pages
/// reach the disk in any order); a record of any later write means the damage is not a
/// torn tail.
pub(crate) fn after(file: &File, from: u64, last_group: u64) -> io::Result<After> {
    let len = file.metadata()?.len();
    let mut found = After::Zeros;
    let mut chunk = vec![0u8; CHUNK];
    let mut region_from = from;
    // Only the regions holding data are read: the rest of a preallocated segment is a hole.
    while let Some((data, hole)) = data_region(file, region_from, len)? {
        let mut at = data;
        while at < hole {
            let take = (hole - at).min(CHUNK as u64) as usize;
            file.read_exact_at(&mut chunk[..take], at)?;
            let bytes = &chunk[..take];
            if found == After::Zeros && bytes.iter().any(|b| *b != 0) {
                found = After::Torn;
            }
            if found == After::Torn {
                for i in 0..take.saturating_sub(3) {
                    if bytes[i..i + 4] == MAGIC {
                        let off = at + i as u64;
                        if off > from && later_record_at(file, off, len, last_group)? {
                            return Ok(After::LaterRecord(off));
                        }
                    }
                }
            }
            // A marker split across two chunks is looked at from the next chunk's start.
            at += if take > 4 && at + (take as u64) < hole {
                (take - 3) as u64
            } else {
                take as u64
            };
        }
        region_from = hole;
    }
    Ok(found)
}

/// The next `[data, hole)` region at or after `from` (`lseek` with `SEEK_DATA` and
/// `SEEK_HOLE`); the whole rest of the file where the file system cannot tell.
fn data_region(file: &File, from: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    use std::os::fd::AsRawFd;
    if from >= len {
        return Ok(None);
    }
    let fd = file.as_raw_fd();
    // SAFETY: `lseek` on a descriptor that `file` keeps open; it touches no memory. The
    // file position it moves is not used by this crate (all I/O is positioned).
    let data = unsafe { libc::lseek(fd, from as libc::off_t, libc::SEEK_DATA) };
    if data < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Ok(Some((from, len))),
        };
    }
    // SAFETY: as above.
    let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
    let hole = if hole < 0 { len } else { hole as u64 };
    Ok(Some((data as u64, hole.min(len))))
}

fn later_record_at(file: &File, off: u64, len: u64, last_group: u64) -> io::Result<bool> {
    let mut header = [0u8; HEADER];
    if off + HEADER as u64 > len {
        return Ok(false);
    }
    file.read_exact_at(&mut header, off)?;
    let need = need_len(&header) as u64;
    if off + need > len {
        return Ok(false);
    }
    let mut bytes = vec![0u8; need as usize];
    file.read_exact_at(&mut bytes, off)?;
    Ok(match record::decode(&bytes) {
        Ok((r, _)) => r.group > last_group + 1,
        Err(_) => false,
    })
}

/// Opens an existing segment for reading and writing.
pub(crate) fn open(dir: &Path, seq: u64) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path(dir, seq))
}

/// Reads `len` bytes at `offset` (an entry's payload).
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Why a segment could not be read.
#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    /// A good record that does not fit the log (the replay refused it).
    Bad {
        offset: u64,
        reason: String,
    },
}
