//! The demo's child processes: each starts in a process group of its own (so Ctrl-C in the
//! terminal reaches only `cairn demo`, which then stops them in order), writes stdout and
//! stderr to a log file in the demo directory, and is stopped with SIGTERM to its leader,
//! then SIGKILL to its whole group, so nothing it started (a task's app processes) is left.
//! Should `cairn demo` itself be killed, each child gets SIGTERM from the kernel (the
//! parent-death signal) and stops the same way.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// One started process group.
pub struct Proc {
    /// Short name: `s1`, `c2`, `stock-price-1`, ...
    pub name: String,
    /// The leader's PID, which is also the group's ID.
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
    /// Whether an exit was already reported.
    reported: bool,
}

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot create log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// Sends `sig` to process group `pgid`.
fn kill_group(pgid: u32, sig: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions. A negative PID addresses the
    // process group `pgid`, which is the group our own child created as its leader; the
    // check above keeps us from ever signalling group 0 (our own) or -1 (every process).
    unsafe {
        libc::kill(-pgid, sig);
    }
}

impl Proc {
    /// Starts `program args` in a new process group with `env` added, logging to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: PathBuf,
    ) -> Result<Proc, ProcError> {
        let file = std::fs::File::create(&log).map_err(|source| ProcError::Log {
            path: log.display().to_string(),
            source,
        })?;
        let err = file.try_clone().map_err(|source| ProcError::Log {
            path: log.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .process_group(0);
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: the closure runs in the child between fork and exec. It calls only
        // prctl(2) and getppid(2), which are async-signal-safe, allocates nothing and
        // touches no memory of the parent. The death signal makes the child stop (SIGTERM)
        // if `cairn demo` itself is killed; the getppid check covers a parent that died
        // before prctl took effect. (The signal follows the spawning thread: the demo
        // spawns from its main future, which runs on the main thread until exit.)
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| ProcError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        Ok(Proc {
            name: name.to_string(),
            pid,
            log,
            child,
            reported: false,
        })
    }

    /// The exit status once the leader has exited (reported once), else `None`.
    pub fn newly_exited(&mut self) -> Option<String> {
        if self.reported {
            return None;
        }
        match self.child.try_wait() {
            Ok(Some(st)) => {
                self.reported = true;
                Some(st.to_string())
            }
            _ => None,
        }
    }

    /// Whether the leader has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM to the leader, up to `grace` for it to exit, then SIGKILL to the group (its
    /// leftover members, or everyone if the leader did not exit). Returns whether the
    /// leader exited on its own.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        let clean = if self.exited() {
            true
        } else {
            if let Some(pid) = self.child.id() {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our
                    // child, not yet reaped (`id()` returns None once it has been), so
                    // the PID cannot belong to another process.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
            tokio::time::timeout(grace, self.child.wait()).await.is_ok()
        };
        kill_group(self.pid, libc::SIGKILL);
        let _ = self.child.wait().await;
        clean
    }
}

/// Whether any process still belongs to group `pgid` (from /proc).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| stat_pgrp(&s))
                == Some(pgid)
        })
}

/// The process group of a /proc/PID/stat line (its fifth field, counted after the
/// parenthesised command name, which may itself contain spaces and parentheses), or `None`
/// for a zombie (exited, waiting to be reaped: nothing runs any more).
pub fn stat_pgrp(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(1)?.parse().ok()
}

/// Waits until no process is left in any of `pgids`, up to `deadline`; returns the ones left.
pub async fn wait_groups_gone(pgids: &[u32], deadline: Duration) -> Vec<u32> {
    let end = Instant::now() + deadline;
    loop {
        let left: Vec<u32> = pgids.iter().copied().filter(|g| group_alive(*g)).collect();
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        assert_eq!(stat_pgrp("123 (cairn) S 1 4567 4567 0 -1"), Some(4567));
        assert_eq!(stat_pgrp("9 (a b) c)) R 1 77 77 0"), Some(77));
        assert_eq!(stat_pgrp("garbage"), None);
        assert_eq!(stat_pgrp("5 (x) Z 1 77 77 0"), None);
    }

    #[tokio::test]
    async fn stop_leaves_nothing_in_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("trapped");
        // The leader ignores SIGTERM and has a child of its own: only the group kill ends both.
        let mut p = Proc::spawn(
            "t",
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                format!(
                    "trap '' TERM; : > '{}'; sleep 30 & sleep 30; wait",
                    ready.display()
                ),
            ],
            &[],
            dir.path().join("t.log"),
        )
        .unwrap();
        // The child joins its new group between fork and exec, and the shell must have set
        // its trap before the SIGTERM: poll for both.
        let end = Instant::now() + Duration::from_secs(5);
        while !group_alive(p.pid) || !ready.exists() {
            assert!(Instant::now() < end, "the group or its trap never appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(p.newly_exited().is_none());
        let clean = p.stop(Duration::from_millis(300)).await;
        assert!(!clean, "the leader ignored SIGTERM");
        assert!(wait_groups_gone(&[p.pid], Duration::from_secs(5))
            .await
            .is_empty());
    }
}
