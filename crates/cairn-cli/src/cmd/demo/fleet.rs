//! The set of process groups one demo run started (agents, task runners, registrators),
//! stopped in layers in reverse start order: task runners and
//! registrators first (so they deregister while the agents still run), then the clients,
//! then the server; then a check in /proc that no member of any group is left.

use super::procs::{self, Proc};
use crate::error::CliError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// SIGTERM-to-SIGKILL grace for a task runner (it stops its apps, then deregisters).
const RUNNER_GRACE: Duration = Duration::from_secs(12);
/// The same for an agent.
const AGENT_GRACE: Duration = Duration::from_secs(8);

/// The running demo: its directory and every process group started, in start order.
pub struct Demo {
    pub dir: PathBuf,
    procs: Vec<Proc>,
    /// (name, pgid) of every group ever started, for the final check.
    groups: Vec<(String, u32)>,
}

impl Demo {
    /// Starts `program args` as process group `name` (logging to `<dir>/<name>.log`) and
    /// lists it in `processes.tsv`; returns its index for [`Demo::proc_mut`].
    pub fn spawn(
        &mut self,
        name: &str,
        kind: &str,
        node: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<usize, CliError> {
        let log = self.dir.join(format!("{name}.log"));
        let p = Proc::spawn(name, program, args, env, log)
            .map_err(|e| CliError::failed(format!("error: {name}: {e}")))?;
        let line = format!(
            "{}\t{kind}\t{node}\t{}\t{}\t{}\n",
            p.name,
            p.pid,
            p.pid,
            p.log.display()
        );
        let path = self.dir.join("processes.tsv");
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| CliError::failed(format!("error: writing {}: {e}", path.display())))?;
        self.groups.push((p.name.clone(), p.pid));
        self.procs.push(p);
        Ok(self.procs.len() - 1)
    }

    /// Stops the groups in reverse start order, a layer at a time (runners, clients, server).
    pub async fn stop_all(&mut self) {
        let mut layers: Vec<Vec<Proc>> = Vec::new();
        let mut last_kind = None;
        for p in self.procs.drain(..).rev() {
            let kind = kind_of(&p.name);
            if last_kind != Some(kind) {
                layers.push(Vec::new());
                last_kind = Some(kind);
            }
            if let Some(l) = layers.last_mut() {
                l.push(p);
            }
        }
        for layer in layers {
            let mut set = tokio::task::JoinSet::new();
            for mut p in layer {
                let grace = if kind_of(&p.name) == 0 {
                    RUNNER_GRACE
                } else {
                    AGENT_GRACE
                };
                set.spawn(async move {
                    let clean = p.stop(grace).await;
                    (p.name.clone(), clean)
                });
            }
            while let Some(r) = set.join_next().await {
                if let Ok((name, false)) = r {
                    println!("    {name} did not stop within its grace period; killed");
                }
            }
        }
        let pgids: Vec<u32> = self.groups.iter().map(|(_, g)| *g).collect();
        let left = procs::wait_groups_gone(&pgids, Duration::from_secs(5)).await;
        for g in left {
            let name = self
                .groups
                .iter()
                .find(|(_, p)| *p == g)
                .map(|(n, _)| n.as_str())
                .unwrap_or("?");
            println!("    warning: process group {g} ({name}) still has members");
        }
    }
}

/// 0 for task runners, 1 for clients, 2 for the server (their stop layers).
fn kind_of(name: &str) -> u8 {
    match name {
        n if n.starts_with('s') && n.len() > 1 && n[1..].bytes().all(|b| b.is_ascii_digit()) => 2,
        n if n.starts_with('c') && n[1..].bytes().all(|b| b.is_ascii_digit()) => 1,
        _ => 0,
    }
}

impl Demo {
    /// An empty run writing into `dir`.
    pub fn new(dir: PathBuf) -> Demo {
        Demo {
            dir,
            procs: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Reports each process that exited since the last call (once per process).
    pub fn report_exits(&mut self) {
        for p in self.procs.iter_mut() {
            if let Some(st) = p.newly_exited() {
                println!(
                    "    note: {} exited ({st}); see {}",
                    p.name,
                    p.log.display()
                );
            }
        }
    }

    /// The process at `i` (as returned by [`Demo::spawn`]).
    pub fn proc_mut(&mut self, i: usize) -> &mut Proc {
        &mut self.procs[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_layers() {
        assert_eq!(kind_of("s1"), 2);
        assert_eq!(kind_of("c2"), 1);
        assert_eq!(kind_of("c12"), 1);
        assert_eq!(kind_of("stock-price-1"), 0);
        assert_eq!(kind_of("registrator-c2"), 0);
    }
}
