//! The runtime: learns the agent's identity, then reconciles on start, on every source hint
//! (coalesced) and every `-resync`, carrying each [`Plan`] out against the [`Registry`] with
//! bounded concurrency, per-write retries and a backed-off retry of the whole round when the
//! source or the agent is down. It never exits on its own; the caller's shutdown ends it.

use crate::backoff::{jitter_unit, Backoff};
use crate::build::{services_for, Settings, Wanted};
use crate::container::{Container, RunState};
use crate::error::RegistryError;
use crate::log;
use crate::reconcile::{reconcile, Input, Op, Plan};
use crate::registry::Registry;
use crate::source::Source;
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

/// `-deregister`: when a stopped container's services go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeregisterMode {
    /// As soon as the container stops.
    #[default]
    Always,
    /// Only after a clean exit (code 0, or killed by a signal); a failed container keeps its
    /// registration (its checks will say it is down) until it is removed.
    OnSuccess,
}

impl DeregisterMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(DeregisterMode::Always),
            "on-success" => Some(DeregisterMode::OnSuccess),
            _ => None,
        }
    }
}

/// How the registrator behaves (its flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub ip: Option<String>,
    pub ip_label: Option<String>,
    pub internal: bool,
    pub explicit: bool,
    pub tags: Vec<String>,
    pub cleanup: bool,
    pub deregister: DeregisterMode,
    /// `-resync`: a full reconcile this often (besides events); `None` = events only.
    pub resync: Option<Duration>,
    /// Appended to the node name in the owner value (`<node>/<scope>`), so independent
    /// registrators on one node (Docker, each task family) never remove each other's services.
    pub scope: Option<String>,
    /// Writes in flight at once.
    pub concurrency: usize,
    pub backoff: Backoff,
    /// How long to keep collecting hints before reconciling.
    pub coalesce: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ip: None,
            ip_label: None,
            internal: false,
            explicit: false,
            tags: Vec::new(),
            cleanup: false,
            deregister: DeregisterMode::Always,
            resync: None,
            scope: None,
            concurrency: 16,
            backoff: Backoff::default(),
            coalesce: Duration::from_millis(30),
        }
    }
}

/// Counters, for logs, tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Completed reconcile rounds.
    pub rounds: u64,
    /// Successful writes (registrations + deregistrations).
    pub writes: u64,
    /// Writes that failed after their retries.
    pub failed_writes: u64,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    pub wanted: usize,
    pub writes: u64,
    pub failed: u64,
}

/// Why a round could not run.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error("{0}")]
    Source(#[from] crate::error::SourceError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The engine or the agent accepted the connection but did not answer in time.
    #[error("round did not finish within {0:?} (engine or agent not answering)")]
    Timeout(Duration),
}

/// Longest a round may take before it is abandoned and retried (a hung engine or agent
/// must not stall the registrator: the HTTP client has a connect timeout only).
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest the agent may take to say who it is.
pub const IDENTITY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a [`Runtime::drain`] may take (it runs at shutdown, where waiting long is worse).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The registrator.
pub struct Runtime<S, R> {
    source: S,
    registry: R,
    opts: Options,
    settings: Option<Settings>,
    stats: Stats,
    /// Last notes logged per container, so a resync does not repeat them.
    notes_seen: HashMap<String, Vec<String>>,
}

impl<S: Source, R: Registry> Runtime<S, R> {
    pub fn new(source: S, registry: R, opts: Options) -> Self {
        Runtime {
            source,
            registry,
            opts,
            settings: None,
            stats: Stats::default(),
            notes_seen: HashMap::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// The owner value, once the agent's identity is known.
    pub fn owner(&self) -> Option<&str> {
        self.settings.as_ref().map(|s| s.owner.as_str())
    }

    /// Learns the agent's identity, retrying with backoff until it answers (or `give_up`
    /// attempts, when given).
    pub async fn connect(&mut self, give_up: Option<u32>) -> Result<(), RegistryError> {
        let mut attempt = 0u32;
        let id = loop {
            let answer = tokio::time::timeout(IDENTITY_TIMEOUT, self.registry.identity())
                .await
                .unwrap_or_else(|_| {
                    Err(RegistryError::Invalid(format!(
                        "/v1/agent/self did not answer within {IDENTITY_TIMEOUT:?}"
                    )))
                });
            match answer {
                Ok(id) => break id,
                Err(e) => {
                    if give_up.is_some_and(|n| attempt + 1 >= n) {
                        return Err(e);
                    }
                    let d = self.opts.backoff.delay(attempt, jitter_unit());
                    log::warn(format!("{e}; retrying in {d:.1?}"));
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
            }
        };
        let owner = match &self.opts.scope {
            Some(s) => format!("{}/{s}", id.node),
            None => id.node.clone(),
        };
        let ip_note = match (&self.opts.ip, &self.opts.ip_label) {
            (Some(ip), _) => format!("service address {ip} from -ip"),
            (None, _) => format!(
                "service address {} from the agent's advertise address unless a port binding names a host IP",
                id.advertise
            ),
        };
        let label_note = match &self.opts.ip_label {
            Some(l) => format!("; label {l} overrides it per container"),
            None => String::new(),
        };
        log::info(format!(
            "agent node {:?}, owner {owner:?}; {ip_note}{label_note}{}",
            id.node,
            if self.opts.internal {
                "; -internal: container IPs and exposed ports"
            } else {
                ""
            }
        ));
        self.settings = Some(Settings {
            node: id.node,
            owner,
            advertise: id.advertise,
            ip: self.opts.ip.clone(),
            ip_label: self.opts.ip_label.clone(),
            internal: self.opts.internal,
            explicit: self.opts.explicit,
            tags: self.opts.tags.clone(),
        });
        Ok(())
    }

    /// The services `containers` should have, logging new notes per container.
    fn wanted(&mut self, containers: &[Container]) -> (Vec<Wanted>, BTreeSet<String>) {
        let settings = self.settings.clone().unwrap_or_default();
        let mut wanted = Vec::new();
        let mut keep = BTreeSet::new();
        let mut live = BTreeSet::new();
        for c in containers {
            live.insert(c.id.clone());
            let mut notes = Vec::new();
            wanted.extend(services_for(c, &settings, &mut notes));
            if self.notes_seen.get(&c.id) != Some(&notes) {
                for n in &notes {
                    log::warn(format!("container {} ({}): {n}", c.name, short(&c.id)));
                }
                self.notes_seen.insert(c.id.clone(), notes);
            }
            if let (DeregisterMode::OnSuccess, RunState::Exited(Some(code))) =
                (self.opts.deregister, c.state)
            {
                if code != 0 && code & 128 == 0 {
                    keep.insert(c.name.clone());
                }
            }
        }
        self.notes_seen.retain(|id, _| live.contains(id));
        (wanted, keep)
    }

    /// Plans one round against the agent's current services.
    async fn plan(
        &mut self,
        containers: Option<&[Container]>,
    ) -> Result<(Plan, Vec<Wanted>), RoundError> {
        let (wanted, keep) = match containers {
            Some(c) => self.wanted(c),
            None => (Vec::new(), BTreeSet::new()),
        };
        let actual = self.registry.services().await?;
        let settings = self.settings.as_ref().expect("connect() first");
        let defs: Vec<_> = wanted.iter().map(|w| w.def.clone()).collect();
        let plan = reconcile(Input {
            wanted: &defs,
            actual: &actual,
            owner: &settings.owner,
            keep_containers: &keep,
            legacy_node: self.opts.cleanup.then_some(settings.node.as_str()),
        });
        Ok((plan, wanted))
    }

    /// One full round: list, plan, write. Source and agent errors abort the round before any
    /// write (so an engine outage never deregisters anything).
    pub async fn reconcile_once(&mut self) -> Result<Round, RoundError> {
        let containers = self.source.list().await?;
        let (plan, wanted) = self.plan(Some(&containers)).await?;
        let n = wanted.len();
        let (writes, failed) = self.execute(plan, &wanted).await;
        self.stats.rounds += 1;
        Ok(Round {
            wanted: n,
            writes,
            failed,
        })
    }

    /// Deregisters everything this owner registered (used when a task runner stops).
    pub async fn drain(&mut self) -> Result<Round, RoundError> {
        let round = async {
            let (plan, _) = self.plan(None).await?;
            let (writes, failed) = self.execute(plan, &[]).await;
            Ok(Round {
                wanted: 0,
                writes,
                failed,
            })
        };
        tokio::time::timeout(DRAIN_TIMEOUT, round)
            .await
            .unwrap_or(Err(RoundError::Timeout(DRAIN_TIMEOUT)))
    }

    async fn execute(&mut self, plan: Plan, wanted: &[Wanted]) -> (u64, u64) {
        for n in &plan.notes {
            log::warn(n);
        }
        let registry = &self.registry;
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let results: Vec<(Op, Result<(), RegistryError>)> = futures::stream::iter(plan.ops)
            .map(|op| async move {
                let mut attempt = 0;
                loop {
                    let r = match &op {
                        Op::Register { def, .. } => registry.register(def).await,
                        Op::Deregister { id, .. } => registry.deregister(id).await,
                    };
                    match r {
                        Err(e) if !e.is_permanent() && attempt < 2 => {
                            tokio::time::sleep(backoff.delay(attempt, jitter_unit())).await;
                            attempt += 1;
                        }
                        r => return (op, r),
                    }
                }
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let (mut ok, mut failed) = (0, 0);
        for (op, r) in results {
            match (&op, r) {
                (Op::Register { def, reason }, Ok(())) => {
                    ok += 1;
                    let src = wanted
                        .iter()
                        .find(|w| w.def.id == def.id)
                        .map(|w| format!("; address from {}", w.ip_source))
                        .unwrap_or_default();
                    log::info(format!(
                        "registered {} as {:?} at {}:{} ({reason}{src})",
                        def.id,
                        def.name,
                        def.address,
                        def.port.unwrap_or(0)
                    ));
                }
                (Op::Deregister { id, name, reason }, Ok(())) => {
                    ok += 1;
                    log::info(format!("deregistered {id} ({name:?}): {reason}"));
                }
                (op, Err(e)) => {
                    failed += 1;
                    log::error(format!("writing {} failed: {e}", op.id()));
                }
            }
        }
        self.stats.writes += ok;
        self.stats.failed_writes += failed;
        (ok, failed)
    }

    /// Runs until `shutdown` completes: connects, reconciles, then follows hints, the resync
    /// timer and retries. Returns the runtime so the caller can [`Runtime::drain`] it.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Self {
        tokio::pin!(shutdown);
        if self.settings.is_none() {
            tokio::select! {
                r = self.connect(None) => { let _ = r; }
                _ = &mut shutdown => return self,
            }
        }
        log::info(format!("watching {}", self.source.describe()));
        let mut failures = 0u32;
        let mut next_resync = self.opts.resync.map(|d| Instant::now() + d);
        let mut retry_at: Option<Instant>;
        let mut kind = "start";
        loop {
            let result = match tokio::time::timeout(ROUND_TIMEOUT, self.reconcile_once()).await {
                Ok(r) => r,
                Err(_) => Err(RoundError::Timeout(ROUND_TIMEOUT)),
            };
            match result {
                Ok(round) => {
                    if failures > 0 {
                        log::info(format!("recovered after {failures} failed round(s)"));
                    }
                    failures = 0;
                    if kind == "resync" || round.writes > 0 || round.failed > 0 || kind == "start" {
                        log::info(format!(
                            "{kind}: {} services wanted, {} writes, {} failed",
                            round.wanted, round.writes, round.failed
                        ));
                    }
                    retry_at = (round.failed > 0)
                        .then(|| Instant::now() + self.opts.backoff.delay(0, 1.0));
                }
                Err(e) => {
                    let d = self.opts.backoff.delay(failures, jitter_unit());
                    log::error(format!("{kind} round failed: {e}; retrying in {d:.1?}"));
                    failures += 1;
                    retry_at = Some(Instant::now() + d);
                }
            }
            let deadline = [retry_at, next_resync].into_iter().flatten().min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return self,
                _ = self.source.changed() => {
                    kind = "event";
                    // Coalesce a burst of hints into one round.
                    let until = Instant::now() + self.opts.coalesce * 10;
                    while Instant::now() < until {
                        if tokio::time::timeout(self.opts.coalesce, self.source.changed()).await.is_err() {
                            break;
                        }
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    if next_resync.is_some_and(|t| t <= now) {
                        kind = "resync";
                        next_resync = self.opts.resync.map(|d| now + d);
                    } else {
                        kind = "retry";
                    }
                }
            }
        }
    }
}

/// The first 12 characters of an engine ID, as `docker ps` shows it.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
