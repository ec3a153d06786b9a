//! Script checks (`Args`): the command runs with the agent's environment, stdin closed,
//! stdout and stderr on one socket (so the output interleaves as written), in a process
//! group of its own. Exit 0 = passing, 1 = warning, anything else (a signal included) =
//! critical. The output is the last 4 KiB written, prefixed as Consul does when cut
//! (`Captured N of M bytes\n...\n`).
//!
//! On timeout (default 30s) the whole group is killed: the script and everything it
//! started. The group is also killed once the script has exited, so that background
//! processes it left behind do not pile up on every interval (a health check has no
//! business leaving daemons; Consul leaks them), and when the run is cancelled because
//! the check was removed. Caveat: the after-exit kill happens once the script has been
//! reaped; should the group be empty by then, its id is free and could in theory name a
//! new group already (pid reuse within microseconds); the timeout and cancel paths kill
//! before reaping and have no such window.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::Outcome;
use crate::local::MAX_CHECK_OUTPUT;

/// Bytes of output kept: the 4 KiB budget less room for the `Captured ...` prefix.
const KEEP: usize = MAX_CHECK_OUTPUT - 64;

/// A configured script check.
#[derive(Debug)]
pub(crate) struct ScriptProbe {
    pub(crate) args: Vec<String>,
    pub(crate) timeout: Duration,
}

/// The last `cap` bytes of a stream, and how many bytes it had.
#[derive(Debug)]
pub(crate) struct Tail {
    buf: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            buf: Vec::new(),
            cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, b: &[u8]) {
        self.total += b.len() as u64;
        self.buf.extend_from_slice(b);
        if self.buf.len() > 2 * self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
    }

    /// The output as Consul reports it.
    pub(crate) fn render(&self) -> String {
        let start = self.buf.len().saturating_sub(self.cap);
        let kept = &self.buf[start..];
        let text = String::from_utf8_lossy(kept);
        if self.total > kept.len() as u64 {
            format!(
                "Captured {} of {} bytes\n...\n{text}",
                kept.len(),
                self.total
            )
        } else {
            text.into_owned()
        }
    }
}

impl ScriptProbe {
    pub(crate) async fn run(&self) -> Outcome {
        match self.exec().await {
            Ok(o) => o,
            Err(e) => Outcome::critical(format!("Failed to invoke: {e}")),
        }
    }

    async fn exec(&self) -> std::io::Result<Outcome> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let mut child = {
            let err: OwnedFd = theirs.try_clone()?.into();
            let out: OwnedFd = theirs.into();
            let mut cmd = tokio::process::Command::new(&self.args[0]);
            cmd.args(&self.args[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .process_group(0)
                .kill_on_drop(true);
            cmd.spawn()?
            // `cmd` drops here, closing our copies of the child's end.
        };
        let pgid = child.id().unwrap_or(0);
        // Declared after `child`, so dropped first: if this future is dropped (the check
        // was deregistered mid-run), the whole group dies, not just the script.
        let mut guard = GroupGuard { pgid, armed: true };
        ours.set_nonblocking(true)?;
        let mut reader = tokio::net::UnixStream::from_std(ours)?;
        let deadline = Instant::now() + self.timeout;
        let mut tail = Tail::new(KEEP);
        let mut buf = [0u8; 4096];
        let mut exit = None;
        let mut eof = false;
        while exit.is_none() || !eof {
            tokio::select! {
                r = child.wait(), if exit.is_none() => {
                    // Leftover background processes of the script go with it.
                    guard.armed = false;
                    kill_group(pgid);
                    exit = Some(r?);
                }
                r = reader.read(&mut buf), if !eof => match r {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => tail.push(&buf[..n]),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if exit.is_none() {
                        // Not yet reaped, so the group id cannot have been reused.
                        guard.armed = false;
                        kill_group(pgid);
                        let _ = child.wait().await;
                        return Ok(Outcome::critical(format!(
                            "Timed out ({}) running check",
                            cairn_types::duration::format_duration(self.timeout)
                        )));
                    }
                    // Exited, but something outside its group holds the output open.
                    break;
                }
            }
        }
        let output = tail.render();
        Ok(match exit.and_then(|s| s.code()) {
            Some(0) => Outcome::passing(output),
            Some(1) => Outcome::warning(output),
            _ => Outcome::critical(output),
        })
    }
}

/// Kills the script's process group when dropped while armed (the script not reaped).
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid);
        }
    }
}

/// SIGKILLs every process of group `pgid`.
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // 0 and 1 would address our own group or every process: never.
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and reads or writes no memory of this process,
    // so it cannot break Rust's memory safety. The negative pid addresses the process
    // group the child leads (`process_group(0)` made its pid the group id).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> ScriptProbe {
        ScriptProbe {
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout,
        }
    }

    #[tokio::test]
    async fn exit_codes() {
        let t = Duration::from_secs(10);
        assert_eq!(
            sh("echo ok", t).run().await,
            Outcome::passing("ok\n".into())
        );
        assert_eq!(
            sh("echo warn >&2; exit 1", t).run().await,
            Outcome::warning("warn\n".into())
        );
        assert_eq!(
            sh("echo a; echo b >&2; exit 2", t).run().await,
            Outcome::critical("a\nb\n".into())
        );
        assert_eq!(sh("kill -9 $$", t).run().await.status, "critical");
    }

    #[tokio::test]
    async fn missing_program_is_critical() {
        let p = ScriptProbe {
            args: vec!["/nonexistent/cairn-check".into()],
            timeout: Duration::from_secs(5),
        };
        let o = p.run().await;
        assert_eq!(o.status, "critical");
        assert!(o.output.starts_with("Failed to invoke: "), "{}", o.output);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let o = sh(&script, Duration::from_millis(500)).run().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            o,
            Outcome::critical("Timed out (500ms) running check".into())
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is gone (it may linger as a zombie of its reaper for a moment).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            if stat.is_empty() || state == Some('Z') {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "background sleep {pid} survived: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_gone(pid: i32) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            if stat.is_empty() || state == Some('Z') {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process {pid} survived: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn cancelling_a_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let p = sh(&script, Duration::from_secs(60));
        let run = tokio::spawn(async move { p.run().await });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&pidfile)
            .map(|s| s.trim().is_empty())
            .unwrap_or(true)
        {
            assert!(std::time::Instant::now() < deadline, "script did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run.abort();
        let _ = run.await;
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn leftover_background_process_does_not_hold_the_check() {
        let started = std::time::Instant::now();
        let o = sh("sleep 30 & echo done", Duration::from_secs(10))
            .run()
            .await;
        assert_eq!(o, Outcome::passing("done\n".into()));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail::new(4);
        t.push(b"ab");
        assert_eq!(t.render(), "ab");
        t.push(b"cdefghij");
        t.push(b"kl");
        assert_eq!(t.render(), "Captured 4 of 12 bytes\n...\nijkl");
        let mut t = Tail::new(KEEP);
        t.push(&vec![b'x'; 100_000]);
        assert!(t.render().len() <= MAX_CHECK_OUTPUT);
    }
}
