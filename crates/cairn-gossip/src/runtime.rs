//! The tokio runtime around the sans-IO core: one task owns the transport,
//! the timers and the core's plan execution; a cheap [`Gossip`] handle
//! sends it commands and reads the member list.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{MembershipConfig, Timing};
use crate::crypto::os_nonce;
use crate::error::{ConfigError, GossipError, KeyError};
use crate::identity::Tags;
use crate::keyquery::{KeyOp, KeyringReport};
use crate::member::{Member, MemberEvent};
use crate::membership::{JoinReply, Membership, Plan, Stats, Timer};
use crate::transport::{Transport, UdpTransport, MAX_DATAGRAM};

/// Runtime configuration.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// Node name (unique in the LAN pool).
    pub name: String,
    /// Address to bind (used by [`Gossip::start_udp`]).
    pub bind: SocketAddr,
    /// Address advertised to others; defaults to the transport's address.
    pub advertise: Option<SocketAddr>,
    /// Initial tags.
    pub tags: Tags,
    /// Encryption keys in base64 (Consul's `encrypt`), primary first.
    pub keys: Vec<String>,
    /// Protocol timing (Consul's LAN defaults).
    pub timing: Timing,
    /// Largest datagram sent or accepted.
    pub max_packet_size: usize,
    /// How long `join` waits for answers.
    pub join_timeout: Duration,
    /// Seed of the protocol's randomness; random when `None`.
    pub seed: Option<u64>,
    /// Capacity of the event channel (slow subscribers see `Lagged`).
    pub event_capacity: usize,
    /// Where the keyring is persisted after every change (Consul's
    /// `serf/local.keyring`; see [`crate::keyfile`]); `None`: not persisted.
    pub keyring_file: Option<PathBuf>,
    /// How long a pool-wide keyring operation waits for every member.
    pub key_query_timeout: Duration,
}

impl GossipConfig {
    /// LAN defaults for a node name and bind address.
    pub fn new(name: impl Into<String>, bind: SocketAddr) -> Self {
        Self {
            name: name.into(),
            bind,
            advertise: None,
            tags: Tags::new(),
            keys: Vec::new(),
            timing: Timing::lan(),
            max_packet_size: 1400,
            join_timeout: Duration::from_secs(5),
            seed: None,
            event_capacity: 1024,
            keyring_file: None,
            key_query_timeout: Duration::from_secs(5),
        }
    }
}

enum Command {
    Join(Vec<SocketAddr>, oneshot::Sender<Result<usize, GossipError>>),
    Leave(oneshot::Sender<()>),
    ForceLeave(String, bool, oneshot::Sender<Result<(), GossipError>>),
    SetTags(Tags, oneshot::Sender<Result<(), GossipError>>),
    HintSuspect(String, oneshot::Sender<Result<(), GossipError>>),
    Keyring(
        KeyOp,
        u8,
        oneshot::Sender<Result<KeyringReport, GossipError>>,
    ),
    Shutdown,
}

struct PendingJoin {
    addrs: Vec<SocketAddr>,
    answered: HashSet<SocketAddr>,
    accepted: usize,
    deadline: Instant,
    retry_at: Instant,
    reply: oneshot::Sender<Result<usize, GossipError>>,
}

/// A running gossip member. Cheap to share behind an `Arc`; dropping every
/// handle stops the task (without a leave).
pub struct Gossip {
    core: Arc<Mutex<Membership>>,
    cmds: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<MemberEvent>,
    task: Mutex<Option<JoinHandle<()>>>,
    local_addr: SocketAddr,
}

fn lock(core: &Mutex<Membership>) -> MutexGuard<'_, Membership> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gossip {
    /// Binds UDP on `config.bind` and starts.
    pub async fn start_udp(config: GossipConfig) -> Result<Gossip, GossipError> {
        let transport = UdpTransport::bind(config.bind)
            .await
            .map_err(|e| GossipError::Io(format!("bind {}: {e}", config.bind)))?;
        Self::start(config, transport)
    }

    /// Starts the member on a transport (inside a tokio runtime).
    pub fn start<T: Transport>(config: GossipConfig, transport: T) -> Result<Gossip, GossipError> {
        let local_addr = transport.local_addr();
        let advertise = config.advertise.unwrap_or(local_addr);
        if advertise.ip().is_unspecified() || advertise.port() == 0 {
            return Err(ConfigError::Advertise(advertise).into());
        }
        let generation = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let seed = config.seed.unwrap_or_else(|| {
            let n = os_nonce();
            u64::from_le_bytes([n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]])
        });
        let core_cfg = MembershipConfig {
            name: config.name.clone(),
            advertise,
            tags: config.tags.clone(),
            keys: config.keys.clone(),
            timing: config.timing.clone(),
            max_packet_size: config.max_packet_size,
            generation,
            seed,
        };
        let now = Instant::now();
        let (core, plan) = Membership::new(now, core_cfg, Box::new(os_nonce))?;
        let core = Arc::new(Mutex::new(core));
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let (cmds, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            core: core.clone(),
            transport,
            events: events.clone(),
            timers: BinaryHeap::new(),
            seq: 0,
            joins: HashMap::new(),
            leaves: Vec::new(),
            key_waiters: HashMap::new(),
            config,
        };
        let task = tokio::spawn(driver.run(rx, plan, now));
        Ok(Gossip {
            core,
            cmds,
            events,
            task: Mutex::new(Some(task)),
            local_addr,
        })
    }

    async fn ask<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Joins the pool through the given members; returns how many accepted.
    /// Fails if none answered within the join timeout, or at once if one
    /// reports that our name is used by another live member.
    pub async fn join(&self, addrs: &[SocketAddr]) -> Result<usize, GossipError> {
        let addrs = addrs.to_vec();
        self.ask(|tx| Command::Join(addrs, tx)).await?
    }

    /// Leaves gracefully: others see this node as `Left`, not `Failed`.
    /// Returns once the leave has been sent.
    pub async fn leave(&self) -> Result<(), GossipError> {
        self.ask(Command::Leave).await
    }

    /// Turns a failed member into a left one; `prune` also removes it.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<(), GossipError> {
        let name = name.to_owned();
        self.ask(|tx| Command::ForceLeave(name, prune, tx)).await?
    }

    /// Replaces this node's tags (spreads to all members).
    pub async fn set_tags(&self, tags: Tags) -> Result<(), GossipError> {
        self.ask(|tx| Command::SetTags(tags, tx)).await?
    }

    /// Probes a member at once (call it when a connection to it broke).
    pub async fn hint_suspect(&self, name: &str) -> Result<(), GossipError> {
        let name = name.to_owned();
        self.ask(|tx| Command::HintSuspect(name, tx)).await?
    }

    /// Applies a keyring operation on every alive member (this node
    /// included) and reports each member's keys once all answered or the
    /// key query timeout passed; see [`KeyringReport::error`] for failures.
    /// `relay` (0-5): members also send their answer through that many
    /// others. Changes are persisted on every member that has a keyring
    /// file before it answers.
    pub async fn keyring(&self, op: KeyOp, relay: u8) -> Result<KeyringReport, GossipError> {
        self.ask(|tx| Command::Keyring(op, relay, tx)).await?
    }

    /// Every known member, this node included, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        lock(&self.core).members()
    }

    /// One member by name.
    pub fn member(&self, name: &str) -> Option<Member> {
        lock(&self.core).member(name)
    }

    /// This node.
    pub fn local_member(&self) -> Member {
        lock(&self.core).local_member()
    }

    /// The address the transport is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether this member's list can be taken as the pool's now (see
    /// [`Membership::settled`]).
    pub fn settled(&self) -> bool {
        lock(&self.core).settled(Instant::now())
    }

    /// Packet counters (drops by reason, last drop reason).
    pub fn stats(&self) -> Stats {
        lock(&self.core).stats().clone()
    }

    /// Membership events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.events.subscribe()
    }

    /// Installs an encryption key on this node only (accepted for
    /// decryption at once; not persisted: see [`Gossip::keyring`]).
    pub fn install_key(&self, key: &str) -> Result<(), KeyError> {
        lock(&self.core).install_key(key)
    }

    /// Makes an installed key the primary (encrypting) one.
    pub fn use_key(&self, key: &str) -> Result<(), KeyError> {
        lock(&self.core).use_key(key)
    }

    /// Removes a non-primary key.
    pub fn remove_key(&self, key: &str) -> Result<(), KeyError> {
        lock(&self.core).remove_key(key)
    }

    /// The installed keys (base64), primary first.
    pub fn list_keys(&self) -> Vec<String> {
        lock(&self.core).keyring().list()
    }

    /// Stops the task (no leave: others will see this node fail).
    pub async fn shutdown(&self) {
        let _ = self.cmds.send(Command::Shutdown);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Driver<T> {
    core: Arc<Mutex<Membership>>,
    transport: T,
    events: broadcast::Sender<MemberEvent>,
    timers: BinaryHeap<Reverse<(Instant, u64, TimerSlot)>>,
    seq: u64,
    joins: HashMap<u64, PendingJoin>,
    leaves: Vec<oneshot::Sender<()>>,
    key_waiters: HashMap<u64, oneshot::Sender<Result<KeyringReport, GossipError>>>,
    config: GossipConfig,
}

/// Timers ordered by deadline and submission only.
struct TimerSlot(Timer);
impl PartialEq for TimerSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for TimerSlot {}
impl PartialOrd for TimerSlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerSlot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T: Transport> Driver<T> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, first: Plan, start: Instant) {
        self.execute(start, first).await;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let wake = self.next_wake();
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    if !self.command(cmd).await {
                        break;
                    }
                }
                got = self.transport.recv_from(&mut buf) => {
                    match got {
                        Ok((n, from)) => {
                            let now = Instant::now();
                            let plan = lock(&self.core).handle_packet(now, from, &buf[..n]);
                            self.execute(now, plan).await;
                        }
                        Err(e) => {
                            tracing::debug!("gossip receive: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            self.fire_due().await;
        }
        for (_, j) in self.joins.drain() {
            let _ = j.reply.send(Err(GossipError::Stopped));
        }
        for (_, w) in self.key_waiters.drain() {
            let _ = w.send(Err(GossipError::Stopped));
        }
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let timer = self
            .timers
            .peek()
            .map(|Reverse((at, _, _))| *at)
            .unwrap_or(far);
        self.joins
            .values()
            .map(|j| j.retry_at.min(j.deadline))
            .fold(timer, Instant::min)
    }

    async fn fire_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, TimerSlot(timer)))) = self.timers.pop() else {
                break;
            };
            let plan = lock(&self.core).handle_timer(now, timer);
            self.execute(now, plan).await;
        }
        self.check_joins(now).await;
    }

    async fn check_joins(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .joins
            .iter()
            .filter(|(_, j)| j.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for id in expired {
            if let Some(j) = self.joins.remove(&id) {
                let result = if j.accepted > 0 {
                    Ok(j.accepted)
                } else {
                    Err(GossipError::JoinFailed(j.addrs))
                };
                let _ = j.reply.send(result);
            }
        }
        // Datagrams get lost: ask the silent ones again.
        let mut resend = Vec::new();
        for (id, j) in self.joins.iter_mut() {
            if j.retry_at <= now {
                j.retry_at = now + self.config.join_timeout / 5;
                let silent: Vec<SocketAddr> = j
                    .addrs
                    .iter()
                    .filter(|a| !j.answered.contains(a))
                    .copied()
                    .collect();
                resend.push((*id, silent));
            }
        }
        for (id, silent) in resend {
            let plan = lock(&self.core).join(now, id, &silent);
            self.execute(now, plan).await;
        }
    }

    async fn command(&mut self, cmd: Command) -> bool {
        let now = Instant::now();
        match cmd {
            Command::Join(addrs, reply) => {
                if addrs.is_empty() {
                    let _ = reply.send(Err(GossipError::JoinFailed(addrs)));
                    return true;
                }
                let id = {
                    let mut core = lock(&self.core);
                    core.next_join_id()
                };
                let plan = lock(&self.core).join(now, id, &addrs);
                self.joins.insert(
                    id,
                    PendingJoin {
                        addrs,
                        answered: HashSet::new(),
                        accepted: 0,
                        deadline: now + self.config.join_timeout,
                        retry_at: now + self.config.join_timeout / 5,
                        reply,
                    },
                );
                self.execute(now, plan).await;
            }
            Command::Leave(reply) => {
                let (plan, done) = {
                    let mut core = lock(&self.core);
                    let plan = core.leave(now);
                    (plan, core.has_left())
                };
                self.execute(now, plan).await;
                if done {
                    let _ = reply.send(());
                } else {
                    self.leaves.push(reply);
                }
            }
            Command::ForceLeave(name, prune, reply) => {
                let r = lock(&self.core).force_leave(now, &name, prune);
                self.finish(now, r, reply).await;
            }
            Command::SetTags(tags, reply) => {
                let r = lock(&self.core).set_tags(now, tags);
                self.finish(now, r, reply).await;
            }
            Command::HintSuspect(name, reply) => {
                let r = lock(&self.core).hint_suspect(now, &name);
                self.finish(now, r, reply).await;
            }
            Command::Keyring(op, relay, reply) => {
                let timeout = self.config.key_query_timeout;
                let r = lock(&self.core).key_query(now, &op, relay, timeout);
                match r {
                    Ok((id, plan)) => {
                        self.key_waiters.insert(id, reply);
                        self.execute(now, plan).await;
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Shutdown => return false,
        }
        true
    }

    async fn finish(
        &mut self,
        now: Instant,
        r: Result<Plan, GossipError>,
        reply: oneshot::Sender<Result<(), GossipError>>,
    ) {
        match r {
            Ok(plan) => {
                self.execute(now, plan).await;
                let _ = reply.send(Ok(()));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    async fn execute(&mut self, now: Instant, plan: Plan) {
        let mut next = Some(plan);
        while let Some(plan) = next.take() {
            next = self.execute_once(now, plan).await;
        }
    }

    /// Saves the keyring change of `keys` (when this node keeps a keyring file).
    async fn save_keyring(&self, keys: &[String]) -> Result<(), String> {
        let Some(path) = self.config.keyring_file.clone() else {
            return Ok(());
        };
        let keys = keys.to_vec();
        let saved = tokio::task::spawn_blocking(move || crate::keyfile::save(&path, &keys)).await;
        let r = match saved {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &r {
            tracing::error!("the keyring changed but could not be saved: {e}");
        }
        r
    }

    /// Carries out `plan`; returns the plan that follows a keyring save.
    async fn execute_once(&mut self, now: Instant, plan: Plan) -> Option<Plan> {
        // Saved before the answers saying it changed are sent (they wait in the core).
        let saved = match &plan.keyring {
            Some(save) => Some((save.ticket, self.save_keyring(&save.keys).await)),
            None => None,
        };
        for (to, packet) in &plan.sends {
            if let Err(e) = self.transport.send_to(*to, packet).await {
                tracing::debug!(%to, "gossip send: {e}");
            }
        }
        for (after, timer) in plan.timers {
            self.seq += 1;
            self.timers
                .push(Reverse((now + after, self.seq, TimerSlot(timer))));
        }
        for event in plan.events {
            let _ = self.events.send(event);
        }
        for reply in plan.joins {
            self.on_join_reply(reply);
        }
        for (id, report) in plan.key_reports {
            if let Some(w) = self.key_waiters.remove(&id) {
                let _ = w.send(Ok(report));
            }
        }
        if !self.leaves.is_empty() && lock(&self.core).has_left() {
            for l in self.leaves.drain(..) {
                let _ = l.send(());
            }
        }
        saved.map(|(ticket, result)| lock(&self.core).keyring_saved(ticket, result))
    }

    fn on_join_reply(&mut self, reply: JoinReply) {
        match reply {
            JoinReply::Accepted { join, from } => {
                let done = match self.joins.get_mut(&join) {
                    Some(j) => {
                        if j.answered.insert(from) {
                            j.accepted += 1;
                        }
                        j.answered.len() >= j.addrs.len()
                    }
                    None => false,
                };
                if done {
                    if let Some(j) = self.joins.remove(&join) {
                        let _ = j.reply.send(Ok(j.accepted));
                    }
                }
            }
            JoinReply::Refused {
                join,
                from,
                existing,
            } => {
                if let Some(j) = self.joins.remove(&join) {
                    let name = lock(&self.core).identity().name().to_owned();
                    let _ = j.reply.send(Err(GossipError::NameConflict {
                        name,
                        existing,
                        refused_by: from,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Gossip>();
        assert_send_sync::<Member>();
        assert_send_sync::<MemberEvent>();
    }

    #[tokio::test]
    async fn advertise_must_be_concrete_and_commands_fail_after_shutdown() {
        let net = crate::transport::MemoryNetwork::new(1, Default::default());
        let t = net.bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let err = Gossip::start(GossipConfig::new("a", t.local_addr()), t).err();
        assert!(
            matches!(err, Some(GossipError::Config(ConfigError::Advertise(_)))),
            "{err:?}"
        );
        let g = Gossip::start(GossipConfig::new("a", any_addr()), net.bind_any().unwrap()).unwrap();
        assert_eq!(g.members().len(), 1);
        assert!(matches!(g.join(&[]).await, Err(GossipError::JoinFailed(_))));
        g.shutdown().await;
        assert_eq!(g.set_tags(Tags::new()).await, Err(GossipError::Stopped));
    }

    fn any_addr() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }
}
