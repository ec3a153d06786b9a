//! An exclusive lock on the log directory, held while a writer runs.
//!
//! Why it exists: two writers appending to the same segment would interleave records and
//! destroy the log. The lock is an advisory `flock` on `DIR/LOCK`, released by the kernel
//! when the file is closed (also when the process dies).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Holds the lock until dropped.
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock on `dir`; `Ok(None)` when someone else holds it.
pub(crate) fn try_lock(dir: &Path) -> io::Result<Option<DirLock>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    // SAFETY: `flock` takes a file descriptor and flags and touches no memory; the
    // descriptor is valid because `file` is alive for the whole call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(DirLock { _file: file }));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(err)
    }
}
