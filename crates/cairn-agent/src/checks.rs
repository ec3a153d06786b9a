//! Check runners: the agent runs HTTP, TCP, UDP, gRPC, H2PING, script and alias checks
//! on their interval and reports status changes to the catalog. (TTL checks are driven
//! by their update endpoints and expire in `local/timers.rs`.)
//!
//! Timing follows Consul: `Interval` is clamped to at least 1s; the first run comes
//! after a random delay within one interval (so checks registered together do not fire
//! together), then every interval from that offset: each check keeps a fixed phase, so
//! load stays flat even when some runs are slow (a run that overruns delays only its own
//! next tick). HTTP checks share pooled clients. `Timeout` defaults to
//! 10s, 30s for scripts. Each result goes through the flap-damping counters
//! ([`threshold`]); until a threshold is reached the check keeps its status (the
//! registered initial status at first).
//!
//! Reporting ([`Reporter`]): a status change is written to the catalog at once; an
//! output-only change is shown locally at once and written to the catalog at most every
//! `check_update_interval` (Consul's default 5m; 0 = at once), so chatty outputs do not
//! turn into a Raft write per interval.

mod alias;
mod grpc;
mod http;
mod net;
mod script;
mod threshold;
mod tls;

use std::time::Duration;

use cairn_types::definition::CheckDefinition;
use cairn_types::duration::parse_duration;
use cairn_types::{CRITICAL, PASSING, WARNING};
use rand::Rng;
use tokio::time::Instant;

use crate::local::{truncate_output, LocalCheck};
use crate::node::Agent;

/// Shortest interval a check runs at (Consul's `checks.MinInterval`).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default timeout of network checks.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of script checks.
pub(crate) const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one run of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub status: &'static str,
    pub output: String,
}

impl Outcome {
    pub(crate) fn new(status: &'static str, output: String) -> Outcome {
        Outcome { status, output }
    }
    pub(crate) fn passing(output: String) -> Outcome {
        Outcome::new(PASSING, output)
    }
    pub(crate) fn warning(output: String) -> Outcome {
        Outcome::new(WARNING, output)
    }
    pub(crate) fn critical(output: String) -> Outcome {
        Outcome::new(CRITICAL, output)
    }
}

/// An error and its causes, `: `-separated (reqwest and hyper hide the useful part in
/// the source chain).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Interval and timeout of a check definition, with Consul's defaults and clamping.
pub(crate) fn timing(def: &CheckDefinition, kind: &str) -> (Duration, Duration) {
    let parse = |s: &str| {
        if s.is_empty() {
            None
        } else {
            parse_duration(s).ok()
        }
    };
    let interval = parse(&def.interval)
        .unwrap_or(MIN_INTERVAL)
        .max(MIN_INTERVAL);
    let default_timeout = if kind == "script" {
        DEFAULT_SCRIPT_TIMEOUT
    } else {
        DEFAULT_TIMEOUT
    };
    let timeout = parse(&def.timeout)
        .filter(|t| !t.is_zero())
        .unwrap_or(default_timeout);
    (interval, timeout)
}

/// What one run of a check does.
#[derive(Debug)]
enum Probe {
    Http(Box<http::HttpProbe>),
    Tcp(net::TcpProbe),
    Udp(net::UdpProbe),
    Script(script::ScriptProbe),
    Grpc(grpc::GrpcProbe),
    H2Ping(grpc::H2PingProbe),
    /// A definition that cannot run: reported critical with this output.
    Broken(String),
}

impl Probe {
    fn new(def: &CheckDefinition, kind: &str, timeout: Duration) -> Probe {
        match kind {
            "http" => match http::HttpProbe::new(def, timeout) {
                Ok(p) => Probe::Http(Box::new(p)),
                Err(e) => Probe::Broken(e),
            },
            "tcp" => Probe::Tcp(net::TcpProbe {
                addr: def.tcp.clone(),
                timeout,
            }),
            "udp" => Probe::Udp(net::UdpProbe {
                addr: def.udp.clone(),
                timeout,
            }),
            "script" if !def.docker_container_id.is_empty() => {
                Probe::Broken("Docker checks (DockerContainerID) are not supported by Cairn".into())
            }
            "script" => Probe::Script(script::ScriptProbe {
                args: def.args.clone(),
                timeout,
            }),
            "grpc" => {
                let tls = def.grpc_use_tls.then(|| grpc::Tls {
                    skip_verify: def.tls_skip_verify,
                    server_name: def.tls_server_name.clone(),
                });
                Probe::Grpc(grpc::GrpcProbe::new(&def.grpc, tls, timeout))
            }
            "h2ping" => Probe::H2Ping(grpc::H2PingProbe {
                addr: def.h2ping.clone(),
                tls: def.h2ping_use_tls.then(|| grpc::Tls {
                    skip_verify: def.tls_skip_verify,
                    server_name: def.tls_server_name.clone(),
                }),
                timeout,
            }),
            other => Probe::Broken(format!("check type {other:?} has no runner")),
        }
    }

    async fn run(&self) -> Outcome {
        match self {
            Probe::Http(p) => p.run().await,
            Probe::Tcp(p) => p.run().await,
            Probe::Udp(p) => p.run().await,
            Probe::Script(p) => p.run().await,
            Probe::Grpc(p) => p.run().await,
            Probe::H2Ping(p) => p.run().await,
            Probe::Broken(e) => Outcome::critical(e.clone()),
        }
    }
}

/// Starts the runner task of a check, if its type has one. Must not lock
/// `agent.inner.local`: callers may hold it.
pub(crate) fn spawn_runner(agent: &Agent, check: &LocalCheck) -> Option<tokio::task::AbortHandle> {
    let def = &check.def;
    let kind = def.check_type()?;
    let id = check.check.check_id.clone();
    let agent = agent.clone();
    let task = match kind {
        "ttl" => return None,
        "alias" => spawn_check(alias::run(
            agent,
            id,
            def.alias_node.clone(),
            def.alias_service.clone(),
        )),
        _ => {
            let (interval, timeout) = timing(def, kind);
            let probe = Probe::new(def, kind, timeout);
            let counters = threshold::Thresholds::new(
                def.success_before_passing,
                def.failures_before_warning,
                def.failures_before_critical,
            );
            spawn_check(run_loop(agent, id, probe, interval, counters))
        }
    };
    Some(task.abort_handle())
}

/// Spawns a check task on the checks runtime: one thread of its own, running a
/// current-thread scheduler. Thousands of checks waking for their I/O on one thread
/// cost far less than on the agent's multi-threaded runtime, where every wake-up may
/// unpark another worker (with 10,000 HTTP checks, scheduler wake-ups were about a fifth
/// of the agent's CPU), and the checks cannot starve the HTTP API or Raft of workers.
/// Falls back to the caller's runtime if that thread cannot be started.
fn spawn_check<F>(f: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use std::sync::OnceLock;
    static RT: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    let handle = RT.get_or_init(|| {
        // The runtime is built on its own thread and never leaves it: a runtime may not
        // be dropped from async code, which is where this runs.
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("cairn-checks".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        let outcome = match spawned {
            Ok(_) => rx
                .recv()
                .unwrap_or_else(|_| Err("thread ended".to_string())),
            Err(e) => Err(e.to_string()),
        };
        outcome
            .map_err(|e| tracing::warn!("checks runtime: {e}; checks share the agent's runtime"))
            .ok()
    });
    match handle {
        Some(h) => h.spawn(f),
        None => tokio::spawn(f),
    }
}

async fn run_loop(
    agent: Agent,
    id: String,
    probe: Probe,
    interval: Duration,
    mut counters: threshold::Thresholds,
) {
    let mut reporter = Reporter::new(agent, id);
    let stagger = rand::rng().random_range(Duration::ZERO..interval);
    // A fixed phase per check: runs start every `interval` from a random offset, so
    // checks registered together stay spread out whatever a single run costs (a schedule
    // relative to the end of the previous run lets stalls merge checks into bursts).
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + stagger, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    // The large futures (an HTTP request, a Raft write) are boxed while they run, so an
    // idle check task stays small: with 10,000 checks, inline futures cost ~15 KB each.
    if !Box::pin(reporter.wait_registered()).await {
        return;
    }
    loop {
        let result = Box::pin(probe.run()).await;
        tracing::trace!(check = %reporter.id, status = result.status, "check ran");
        if let Some(status) = counters.observe(result.status) {
            if !Box::pin(reporter.report(Outcome::new(status, result.output))).await {
                return;
            }
        } else {
            tracing::debug!(check = %reporter.id, status = result.status, "check result below its threshold; status kept");
        }
        ticker.tick().await;
    }
}

/// Writes a check's results to the agent's local state and the catalog.
pub(crate) struct Reporter {
    agent: Agent,
    id: String,
    last_sync: Option<Instant>,
    /// The local output is newer than the catalog's.
    pending: bool,
    /// The last catalog write failed: retry on the next result, whatever it is.
    retry: bool,
}

impl Reporter {
    pub(crate) fn new(agent: Agent, id: String) -> Reporter {
        Reporter {
            agent,
            id,
            last_sync: None,
            pending: false,
            retry: false,
        }
    }

    /// Whether the check exists, and (if so) whether its status and output differ
    /// from `status`/`output` (compared in place: no copy of a 4 KiB output per run).
    fn compare(&self, status: &str, output: &str) -> Option<(bool, bool)> {
        let local = self.agent.inner.local.lock();
        local
            .checks
            .get(&self.id)
            .map(|c| (c.check.status != status, c.check.output != output))
    }

    /// Waits until the check is in the local state (the runner is started just before
    /// it is inserted). False if it does not appear.
    pub(crate) async fn wait_registered(&self) -> bool {
        for _ in 0..500 {
            if self.agent.inner.local.lock().checks.contains_key(&self.id) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(check = %self.id, "check runner stopped: the check was never registered");
        false
    }

    /// Reports a result. False when the check no longer exists (the runner should end).
    pub(crate) async fn report(&mut self, outcome: Outcome) -> bool {
        let output = truncate_output(outcome.output);
        let Some((status_changed, output_changed)) = self.compare(outcome.status, &output) else {
            return false;
        };
        if !status_changed && !output_changed && !self.pending && !self.retry {
            return true;
        }
        let every = self.agent.inner.cfg.check_update_interval;
        let due = status_changed
            || self.retry
            || every.is_zero()
            || self.last_sync.is_none_or(|t| t.elapsed() >= every);
        if !due {
            let mut local = self.agent.inner.local.lock();
            match local.checks.get_mut(&self.id) {
                Some(c) => c.check.output = output,
                None => return false,
            }
            self.pending = true;
            return true;
        }
        let _guard = self.agent.inner.local_lock.lock().await;
        match self
            .agent
            .set_check_status(&self.id, outcome.status, output, false)
            .await
        {
            Ok(()) => {
                self.last_sync = Some(Instant::now());
                self.pending = false;
                self.retry = false;
                true
            }
            Err(crate::local::LocalError::Unknown(_)) => false,
            Err(e) => {
                tracing::warn!(check = %self.id, "could not update check status: {e}");
                // The local state already has the new status; the catalog does not.
                self.retry = true;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_defaults_and_clamping() {
        let def = |interval: &str, timeout: &str| CheckDefinition {
            interval: interval.into(),
            timeout: timeout.into(),
            ..Default::default()
        };
        assert_eq!(
            timing(&def("10s", ""), "http"),
            (Duration::from_secs(10), DEFAULT_TIMEOUT)
        );
        assert_eq!(
            timing(&def("100ms", ""), "tcp"),
            (MIN_INTERVAL, DEFAULT_TIMEOUT)
        );
        assert_eq!(
            timing(&def("5s", ""), "script"),
            (Duration::from_secs(5), DEFAULT_SCRIPT_TIMEOUT)
        );
        assert_eq!(timing(&def("5s", "2s"), "script").1, Duration::from_secs(2));
        assert_eq!(
            timing(&def("5s", "1m30s"), "grpc").1,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn output_fitting_is_idempotent() {
        assert_eq!(truncate_output("short".into()), "short");
        let long = "é".repeat(5000);
        let once = truncate_output(long);
        assert!(once.ends_with(" ... (output truncated)"));
        assert!(once.len() <= crate::local::MAX_CHECK_OUTPUT + 30);
        assert_eq!(truncate_output(once.clone()), once);
    }

    #[test]
    fn error_chain_joins_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(error_chain(&e), "error sending request: connection refused");
    }

    #[tokio::test]
    async fn broken_definitions_report_critical() {
        let def = CheckDefinition {
            args: vec!["true".into()],
            docker_container_id: "abc".into(),
            ..Default::default()
        };
        let p = Probe::new(&def, "script", DEFAULT_TIMEOUT);
        assert_eq!(p.run().await.status, CRITICAL);
    }
}
