//! Runs a task definition's containers as local processes: a host port per port mapping
//! (dynamic unless `hostPort` is set, passed as `PORT`), a supervisor per process that
//! restarts essential containers with backoff, and a graceful stop (SIGTERM, then SIGKILL).
//! It is a [`Source`]: each process appears as a [`Container`], so the registrator core
//! treats a task exactly like a Docker container.

use crate::backoff::{jitter_unit, Backoff};
use crate::container::{Container, PortBinding, Proto, RunState};
use crate::error::SourceError;
use crate::log;
use crate::source::Source;
use crate::tasks::command::ImageMap;
use crate::tasks::taskdef::TaskDefinition;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// How tasks are run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Copies of the task (`--count`).
    pub count: usize,
    pub images: ImageMap,
    /// Ignore fixed `hostPort`s and pick free ports (tests, or several copies of a fixed-port task).
    pub dynamic_ports: bool,
    /// Delay before restarting an essential container.
    pub restart: Backoff,
    /// A run at least this long resets the restart backoff.
    pub stable_after: Duration,
    /// How long a process gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            count: 1,
            images: ImageMap::default(),
            dynamic_ports: false,
            restart: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            stable_after: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// Most copies of a task one runner starts.
pub const MAX_COUNT: usize = 1000;

/// The running processes of one task definition.
pub struct TaskRunner {
    family: String,
    shared: Arc<Mutex<Vec<Container>>>,
    notify: Arc<Notify>,
    stop_tx: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

struct Plan {
    idx: usize,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    essential: bool,
}

/// A socket holding a picked port until every port of the runner has been picked, so the
/// kernel cannot hand the same port out twice.
#[allow(dead_code)]
enum Held {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// A free port on every interface for `proto` (the kernel's pick), held by the returned socket.
fn free_port(proto: Proto) -> Result<(u16, Held), std::io::Error> {
    Ok(match proto {
        Proto::Tcp => {
            let l = std::net::TcpListener::bind("0.0.0.0:0")?;
            (l.local_addr()?.port(), Held::Tcp(l))
        }
        Proto::Udp => {
            let u = std::net::UdpSocket::bind("0.0.0.0:0")?;
            (u.local_addr()?.port(), Held::Udp(u))
        }
    })
}

impl TaskRunner {
    /// Resolves every command and port first (so a bad definition starts nothing), then
    /// starts the processes. Must be called inside a Tokio runtime.
    pub fn start(td: &TaskDefinition, cfg: RunnerConfig) -> Result<Self, SourceError> {
        if cfg.count == 0 || cfg.count > MAX_COUNT {
            return Err(SourceError::Config(format!(
                "--count must be 1 to {MAX_COUNT}"
            )));
        }
        let mut containers = Vec::new();
        let mut plans = Vec::new();
        let mut held = Vec::new();
        for copy in 1..=cfg.count {
            for def in &td.container_definitions {
                let mut ports = Vec::new();
                let mut env: Vec<(String, String)> = def
                    .environment
                    .iter()
                    .map(|kv| (kv.name.clone(), kv.value.clone()))
                    .collect();
                for m in &def.port_mappings {
                    let proto =
                        Proto::parse(m.protocol.as_deref().unwrap_or("tcp")).unwrap_or(Proto::Tcp);
                    let host = match m.host_port.filter(|p| *p != 0 && !cfg.dynamic_ports) {
                        Some(p) => p,
                        None => {
                            let (port, socket) = free_port(proto).map_err(|e| {
                                SourceError::Config(format!("cannot pick a free port: {e}"))
                            })?;
                            held.push(socket);
                            port
                        }
                    };
                    if ports.is_empty() {
                        env.push(("PORT".into(), host.to_string()));
                    }
                    env.push((format!("PORT_{}", m.container_port), host.to_string()));
                    ports.push(PortBinding {
                        exposed: m.container_port,
                        proto,
                        host_ip: None,
                        host_port: Some(host),
                    });
                }
                let first = ports.first().and_then(|p| p.host_port);
                let argv = cfg
                    .images
                    .argv(def, first)
                    .map_err(|e| SourceError::Config(format!("container {:?}: {e}", def.name)))?;
                let id = format!("{}-{copy}-{}", td.family, def.name);
                plans.push(Plan {
                    idx: containers.len(),
                    argv,
                    env,
                    essential: def.is_essential(),
                });
                containers.push(Container {
                    id: id.clone(),
                    name: id,
                    image: def.image.clone(),
                    env: def
                        .environment
                        .iter()
                        .map(|kv| format!("{}={}", kv.name, kv.value))
                        .collect(),
                    labels: def.docker_labels.clone(),
                    ports,
                    ip: None,
                    state: RunState::Exited(None),
                    health: None,
                });
            }
        }
        // Every port is picked; release them for the processes.
        drop(held);
        let shared = Arc::new(Mutex::new(containers));
        let notify = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let handles = plans
            .into_iter()
            .map(|p| {
                tokio::spawn(supervise(
                    p,
                    shared.clone(),
                    notify.clone(),
                    stop_rx.clone(),
                    cfg.clone(),
                ))
            })
            .collect();
        Ok(TaskRunner {
            family: td.family.clone(),
            shared,
            notify,
            stop_tx,
            handles,
        })
    }

    /// Stops every process (SIGTERM, SIGKILL after the grace period) and waits for them.
    pub async fn stop(&mut self) {
        let _ = self.stop_tx.send(true);
        for h in self.handles.drain(..) {
            let _ = h.await;
        }
    }

    /// A snapshot of the processes.
    pub fn containers(&self) -> Vec<Container> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TaskRunner {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
    }
}

fn set_state(shared: &Mutex<Vec<Container>>, idx: usize, st: RunState) {
    if let Some(c) = shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(idx)
    {
        c.state = st;
    }
}

fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => i64::from(c),
        (None, Some(s)) => 128 + i64::from(s),
        _ => -1,
    }
}

/// Sends SIGTERM, waits up to `grace`, then kills.
async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, which
        // has not been reaped yet (we still hold it and have not awaited its exit), so the
        // PID cannot have been reused by another process.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

async fn supervise(
    p: Plan,
    shared: Arc<Mutex<Vec<Container>>>,
    notify: Arc<Notify>,
    mut stop_rx: watch::Receiver<bool>,
    cfg: RunnerConfig,
) {
    let name = shared
        .lock()
        .map(|v| v[p.idx].name.clone())
        .unwrap_or_default();
    let mut attempt = 0u32;
    loop {
        if *stop_rx.borrow() {
            return;
        }
        let mut cmd = tokio::process::Command::new(&p.argv[0]);
        cmd.args(&p.argv[1..])
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // prctl(2), which is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        match cmd.spawn() {
            Err(e) => {
                log::error(format!(
                    "container {name}: cannot start {:?}: {e}",
                    p.argv[0]
                ));
                set_state(&shared, p.idx, RunState::Exited(None));
                notify.notify_one();
            }
            Ok(mut child) => {
                let started = Instant::now();
                log::info(format!(
                    "container {name}: started pid {} ({})",
                    child.id().unwrap_or(0),
                    p.argv.join(" ")
                ));
                set_state(&shared, p.idx, RunState::Running);
                notify.notify_one();
                tokio::select! {
                    status = child.wait() => {
                        let code = status.map(exit_code).unwrap_or(-1);
                        log::warn(format!("container {name}: exited with code {code} after {:.1?}", started.elapsed()));
                        set_state(&shared, p.idx, RunState::Exited(Some(code)));
                        notify.notify_one();
                        if started.elapsed() >= cfg.stable_after {
                            attempt = 0;
                        }
                    }
                    _ = stop_rx.changed() => {
                        terminate(&mut child, cfg.stop_grace).await;
                        set_state(&shared, p.idx, RunState::Exited(Some(0)));
                        log::info(format!("container {name}: stopped"));
                        return;
                    }
                }
            }
        }
        if !p.essential {
            log::info(format!("container {name}: not essential; not restarted"));
            return;
        }
        let d = cfg.restart.delay(attempt, jitter_unit());
        attempt = attempt.saturating_add(1);
        log::info(format!(
            "container {name}: essential; restarting in {d:.1?}"
        ));
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = stop_rx.changed() => return,
        }
    }
}

impl Source for TaskRunner {
    async fn list(&mut self) -> Result<Vec<Container>, SourceError> {
        Ok(self.containers())
    }

    async fn changed(&mut self) {
        self.notify.notified().await
    }

    fn describe(&self) -> String {
        format!(
            "task {} ({} processes)",
            self.family,
            self.containers().len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::taskdef;
    use std::collections::BTreeSet;

    #[tokio::test]
    async fn dynamic_ports_are_distinct_and_fixed_ones_kept() {
        let doc = r#"{"family": "p", "containerDefinitions": [
            {"name": "a", "entryPoint": ["/bin/sleep", "30"], "essential": false,
             "portMappings": [{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}]},
            {"name": "b", "entryPoint": ["/bin/sleep", "30"], "essential": false,
             "portMappings": [{"containerPort": 81, "hostPort": 18081}]}]}"#;
        let td = taskdef::parse(doc.as_bytes()).unwrap();
        let cfg = RunnerConfig {
            count: 100,
            stop_grace: Duration::from_millis(100),
            ..Default::default()
        };
        let mut r = TaskRunner::start(&td, cfg).unwrap();
        let all = r.containers();
        assert_eq!(all.len(), 200);
        let mut tcp = BTreeSet::new();
        for c in all.iter().filter(|c| c.name.ends_with("-a")) {
            assert!(
                tcp.insert(c.ports[0].host_port.unwrap()),
                "port reused: {c:?}"
            );
            assert_eq!(c.ports[1].proto, Proto::Udp);
        }
        assert_eq!(tcp.len(), 100);
        assert!(all
            .iter()
            .filter(|c| c.name.ends_with("-b"))
            .all(|c| c.ports[0].host_port == Some(18081)));
        r.stop().await;
        assert!(r
            .containers()
            .iter()
            .all(|c| matches!(c.state, RunState::Exited(_))));
    }
}
