//! The sans-IO membership core. It owns foca and the member table, takes
//! packets, timer firings and commands with the current time, and returns a
//! [`Plan`]: datagrams to send, timers to schedule, member events and join
//! replies. A tokio runtime (`runtime.rs`) and the deterministic simulator
//! (`sim.rs`) both drive it; randomness comes from the configured seed and
//! encryption nonces from an injected source.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::{Duration, Instant};

use foca::{Foca, Member as FocaMember, NoCustomBroadcast, OwnedNotification, State};

use crate::codec::{encode_member, NodeCodec};
use crate::config::MembershipConfig;
use crate::crypto::Keyring;
use crate::envelope::Envelope;
use crate::error::{ConfigError, GossipError, KeyError, PacketError};
use crate::identity::{NodeId, Tags};
use crate::keyquery::{AnswerCache, KeyringReport, PendingQuery};
use crate::member::{Member, MemberEvent, MemberStatus};
use crate::rng::SeededRng;

/// How many times a suspect is told directly (each notice or its answer
/// may be lost).
const SUSPECT_NOTICES: u8 = 4;

/// Full member lists sent per second in answer to join requests and
/// push/pull: a small request gets a large answer, so without a key a
/// forged source address could use us to flood someone.
const MAX_STATE_ANSWERS_PER_SEC: u32 = 20;

/// How often dropped-packet warnings may be logged.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// A source of 12-byte encryption nonces.
pub type NonceSource = Box<dyn FnMut() -> [u8; 12] + Send>;

/// A timer the core asked for; hand it back to [`Membership::handle_timer`]
/// when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer(TimerKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerKind {
    Foca(foca::Timer<NodeId>),
    Reap,
    PushPull,
    HintCheck(u64),
    HintDown(NodeId, u16),
    /// Tell a suspect again (the first notice may have been lost).
    Resuspect(NodeId, u16, u8),
    LeaveFinish,
    /// Ask the silent members of a keyring query again.
    KeyRetry(u64),
    /// A keyring query's deadline.
    KeyDeadline(u64),
}

/// The answer of one seed to a join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinReply {
    /// The seed accepted us; we announced ourselves to it.
    Accepted { join: u64, from: SocketAddr },
    /// The seed knows a live member with our name at `existing`.
    Refused {
        join: u64,
        from: SocketAddr,
        existing: SocketAddr,
    },
}

/// What the caller must do after an input.
#[derive(Debug, Default)]
pub struct Plan {
    /// Datagrams to send.
    pub sends: Vec<(SocketAddr, Vec<u8>)>,
    /// Timers to schedule, relative to the input's `now`.
    pub timers: Vec<(Duration, Timer)>,
    /// Membership changes, in order.
    pub events: Vec<MemberEvent>,
    /// Replies to join requests.
    pub joins: Vec<JoinReply>,
    /// Finished keyring queries (see [`Membership::key_query`]).
    pub key_reports: Vec<(u64, KeyringReport)>,
    /// The local keyring changed and must be saved: the runtime saves it and
    /// reports the outcome with [`Membership::keyring_saved`], which sends the
    /// answers that report the change (so none says "done" before it is on disk).
    pub keyring: Option<KeyringSave>,
}

/// A keyring change to persist (see [`Plan::keyring`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringSave {
    /// Hand back to [`Membership::keyring_saved`].
    pub ticket: u64,
    /// The keys now (base64, primary first).
    pub keys: Vec<String>,
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Packets dropped because they failed to decrypt or decode.
    pub packets_dropped: u64,
    /// Of which: failed decryption or a key mismatch.
    pub decrypt_failures: u64,
    /// The reason of the last drop, with the sender.
    pub last_drop: Option<String>,
}

struct Entry {
    id: NodeId,
    status: MemberStatus,
    since: Instant,
}

/// Collects what foca asks for during one call.
#[derive(Default)]
struct Acc {
    sends: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Duration, foca::Timer<NodeId>)>,
    notes: Vec<OwnedNotification<NodeId>>,
}

impl foca::Runtime<NodeId> for Acc {
    fn notify(&mut self, n: foca::Notification<'_, NodeId>) {
        match n {
            foca::Notification::DataReceived(_) | foca::Notification::DataSent(_) => {}
            other => self.notes.push(other.to_owned()),
        }
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        let mut payload = Vec::with_capacity(data.len() + 1);
        payload.push(0);
        payload.extend_from_slice(data);
        self.sends.push((to.addr(), payload));
    }

    fn submit_after(&mut self, event: foca::Timer<NodeId>, after: Duration) {
        self.timers.push((after, event));
    }
}

type FocaT = Foca<NodeId, NodeCodec, SeededRng, NoCustomBroadcast>;

/// The membership state machine of one node.
pub struct Membership {
    foca: FocaT,
    cfg: MembershipConfig,
    keyring: Keyring,
    nonce: NonceSource,
    rng: SeededRng,
    table: BTreeMap<String, Entry>,
    local_status: MemberStatus,
    hints: HashMap<u64, NodeId>,
    stats: Stats,
    last_drop_log: Option<Instant>,
    drops_since_log: u64,
    max_tx: u8,
    /// Start of the current one-second window and the full-state answers
    /// sent in it (see [`MAX_STATE_ANSWERS_PER_SEC`]).
    state_window: Option<(Instant, u32)>,
    /// Keyring queries this node started, by id.
    key_queries: HashMap<u64, PendingQuery>,
    /// Recent answers to keyring requests (retries are answered again).
    answered: AnswerCache,
    /// Answers waiting for their keyring change to be saved, by ticket.
    held: HashMap<u64, keys::Held>,
    next_ticket: u64,
    /// Whether another member's full state has been merged since this member started
    /// (see [`Membership::state_merged`]).
    state_merged: bool,
    /// When this member started (for [`Membership::settled`]).
    started: Instant,
}

fn max_transmissions(mult: u32, members: usize) -> u8 {
    let digits = ((members + 1) as f64).log10().ceil().max(1.0) as u32;
    u8::try_from(mult.saturating_mul(digits))
        .unwrap_or(u8::MAX)
        .max(1)
}

fn alive_status(id: &NodeId) -> MemberStatus {
    if id.leaving() {
        MemberStatus::Leaving
    } else {
        MemberStatus::Alive
    }
}

impl Membership {
    /// Builds the core and returns the timers it needs from the start.
    pub fn new(
        now: Instant,
        cfg: MembershipConfig,
        nonce: NonceSource,
    ) -> Result<(Self, Plan), ConfigError> {
        cfg.validate()?;
        let id = NodeId::new(&cfg.name, cfg.advertise, cfg.generation, cfg.tags.clone())?;
        let mut keyring = Keyring::none();
        for k in &cfg.keys {
            keyring.install(k)?;
        }
        let max_tx = max_transmissions(cfg.timing.retransmit_mult, 1);
        let foca_cfg = Self::foca_config(&cfg, max_tx);
        let mut rng = SeededRng::new(cfg.seed);
        let foca = Foca::new(id, foca_cfg, SeededRng::new(rng.next_u64()), NodeCodec);
        let me = Self {
            foca,
            keyring,
            nonce,
            rng,
            table: BTreeMap::new(),
            local_status: MemberStatus::Alive,
            hints: HashMap::new(),
            stats: Stats::default(),
            last_drop_log: None,
            drops_since_log: 0,
            max_tx,
            state_window: None,
            key_queries: HashMap::new(),
            answered: AnswerCache::default(),
            held: HashMap::new(),
            next_ticket: 0,
            state_merged: false,
            started: now,
            cfg,
        };
        let mut plan = Plan::default();
        plan.timers
            .push((me.reap_interval(), Timer(TimerKind::Reap)));
        plan.timers
            .push((me.push_pull_interval(), Timer(TimerKind::PushPull)));
        Ok((me, plan))
    }

    fn foca_config(cfg: &MembershipConfig, max_tx: u8) -> foca::Config {
        let t = &cfg.timing;
        let nz = |n: usize| NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN);
        foca::Config {
            probe_period: t.probe_interval,
            probe_rtt: t.probe_timeout,
            num_indirect_probes: nz(t.indirect_checks),
            max_transmissions: NonZeroU8::new(max_tx).unwrap_or(NonZeroU8::MIN),
            suspect_to_down_after: t.suspicion_timeout,
            remove_down_after: Some(t.reconnect_timeout.min(t.tombstone_timeout)),
            max_packet_size: nz(cfg.foca_packet_size()),
            notify_down_members: true,
            periodic_announce: None,
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: t.reconnect_interval,
                num_members: nz(1),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: t.gossip_interval,
                num_members: nz(t.gossip_nodes),
            }),
        }
    }

    fn reap_interval(&self) -> Duration {
        let t = &self.cfg.timing;
        (t.reconnect_timeout.min(t.tombstone_timeout) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// memberlist scales push/pull with the cluster size above 32 nodes.
    fn push_pull_interval(&self) -> Duration {
        let n = self.table.len() + 1;
        let base = self.cfg.timing.push_pull_interval;
        if n <= 32 {
            return base;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() as u32 + 1;
        base * mult
    }

    /// This node's current identity.
    pub fn identity(&self) -> &NodeId {
        self.foca.identity()
    }

    /// The local node as a member.
    pub fn local_member(&self) -> Member {
        Member::from_id(self.foca.identity(), self.local_status)
    }

    /// Whether this member has merged another member's full state (a join's or a
    /// push-pull's answer) since it started: until then its list may lack members the
    /// pool has, as after a restart.
    pub fn state_merged(&self) -> bool {
        self.state_merged
    }

    /// Whether this member's list can be taken as the pool's at `now`: it has merged
    /// another member's full state and has run for two push-pull intervals (so it has
    /// exchanged full state more than once), or it has run for the reconnect timeout,
    /// after which a member it never heard of would have been reaped anyway. A member
    /// that just restarted knows little more than itself; what it does not list may
    /// still be alive.
    pub fn settled(&self, now: Instant) -> bool {
        let up = now.saturating_duration_since(self.started);
        (self.state_merged && up >= self.push_pull_interval() * 2)
            || up >= self.cfg.timing.reconnect_timeout
    }

    /// Every known member, the local node included, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        let mut out: Vec<Member> = self
            .table
            .values()
            .map(|e| Member::from_id(&e.id, e.status))
            .collect();
        let local = self.local_member();
        let pos = out.partition_point(|m| m.name < local.name);
        out.insert(pos, local);
        out
    }

    /// One member by name (the local node included).
    pub fn member(&self, name: &str) -> Option<Member> {
        if name == self.cfg.name {
            return Some(self.local_member());
        }
        self.table
            .get(name)
            .map(|e| Member::from_id(&e.id, e.status))
    }

    /// Number of members believed alive, the local node included.
    pub fn num_alive(&self) -> usize {
        1 + self
            .table
            .values()
            .filter(|e| e.status == MemberStatus::Alive)
            .count()
    }

    /// Packet counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The encryption keys (install, use, remove, list).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Installs a key (accepted for decryption at once).
    pub fn install_key(&mut self, key: &str) -> Result<(), KeyError> {
        self.keyring.install(key)
    }

    /// Makes an installed key the one used to encrypt.
    pub fn use_key(&mut self, key: &str) -> Result<(), KeyError> {
        self.keyring.use_key(key)
    }

    /// Removes a key that is not the primary one.
    pub fn remove_key(&mut self, key: &str) -> Result<(), KeyError> {
        self.keyring.remove(key)
    }

    /// Whether this node has left (after [`Membership::leave`]).
    pub fn has_left(&self) -> bool {
        self.local_status == MemberStatus::Left
    }

    // ---- inputs -------------------------------------------------------

    /// A datagram arrived from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) -> Plan {
        self.stats.packets_received += 1;
        let mut plan = Plan::default();
        let envelope = if packet.len() > self.cfg.max_packet_size {
            Err(PacketError::TooLarge(packet.len()))
        } else {
            self.keyring
                .open(packet)
                .and_then(|p| Envelope::decode(&p).map_err(PacketError::from))
        };
        match envelope {
            Ok(env) => self.handle_envelope(now, from, env, &mut plan),
            Err(e) => self.dropped(now, from, e),
        }
        plan
    }

    fn dropped(&mut self, now: Instant, from: SocketAddr, err: PacketError) {
        self.stats.packets_dropped += 1;
        if matches!(
            err,
            PacketError::Decrypt
                | PacketError::UnexpectedEncryption
                | PacketError::MissingEncryption
        ) {
            self.stats.decrypt_failures += 1;
        }
        let text = format!("gossip packet from {from} {err}");
        let due = self
            .last_drop_log
            .is_none_or(|t| now.saturating_duration_since(t) >= DROP_LOG_EVERY);
        if due {
            if self.drops_since_log > 0 {
                tracing::warn!(
                    suppressed = self.drops_since_log,
                    "{text} ({} more dropped since the last report)",
                    self.drops_since_log
                );
            } else {
                tracing::warn!("{text}");
            }
            self.last_drop_log = Some(now);
            self.drops_since_log = 0;
        } else {
            self.drops_since_log += 1;
        }
        self.stats.last_drop = Some(text);
    }

    fn handle_envelope(&mut self, now: Instant, from: SocketAddr, env: Envelope, plan: &mut Plan) {
        match env {
            Envelope::Foca(data) => {
                let mut acc = Acc::default();
                if let Err(e) = self.foca.handle_data(&data, &mut acc) {
                    match e {
                        foca::Error::DataFromOurselves => {}
                        foca::Error::Decode(_)
                        | foca::Error::MalformedPacket
                        | foca::Error::DataTooBig => {
                            self.dropped(now, from, PacketError::Protocol(e.to_string()))
                        }
                        other => tracing::debug!(%from, "foca: {other}"),
                    }
                }
                self.absorb(now, acc, plan);
            }
            Envelope::JoinRequest { nonce, id } => self.on_join_request(now, from, nonce, id, plan),
            Envelope::JoinAccept { nonce, seed } => {
                if seed.name() == self.cfg.name {
                    return;
                }
                let mut acc = Acc::default();
                if let Err(e) = self.foca.announce(seed, &mut acc) {
                    tracing::debug!(%from, "announce failed: {e}");
                }
                self.absorb(now, acc, plan);
                plan.joins.push(JoinReply::Accepted { join: nonce, from });
            }
            Envelope::JoinRefuse { nonce, existing } => plan.joins.push(JoinReply::Refused {
                join: nonce,
                from,
                existing,
            }),
            Envelope::State { reply, members } => {
                let mut acc = Acc::default();
                match self.foca.apply_many(members.into_iter(), false, &mut acc) {
                    Ok(()) => self.state_merged = true,
                    Err(e) => tracing::debug!(%from, "state merge failed: {e}"),
                }
                self.absorb(now, acc, plan);
                if reply && self.may_answer_with_state(now) {
                    self.send_state(from, false, plan);
                }
            }
            Envelope::Suspected {
                incarnation,
                target,
                from: prober,
            } => {
                if &target != self.foca.identity() || prober.name() == self.cfg.name {
                    return;
                }
                // Refute: foca raises our incarnation, then one message to
                // the prober carries the new incarnation in its header.
                let mut acc = Acc::default();
                let suspect = FocaMember::new(target, incarnation, State::Suspect);
                let _ = self
                    .foca
                    .apply_many(std::iter::once(suspect), true, &mut acc);
                let _ = self.foca.announce(prober, &mut acc);
                self.absorb(now, acc, plan);
            }
            Envelope::Ping { nonce } => {
                if self.local_status != MemberStatus::Left {
                    self.send(from, &Envelope::Ack { nonce }, plan);
                }
            }
            Envelope::Ack { nonce } => {
                self.hints.remove(&nonce);
            }
            Envelope::KeyRequest { id, action, relay } => {
                self.on_key_request(from, id, action, relay, plan)
            }
            Envelope::KeyResponse { id, answer } => self.on_key_response(id, answer, plan),
            Envelope::KeyRelay { id, to, answer } => self.on_key_relay(id, to, answer, plan),
        }
    }

    fn on_join_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        id: NodeId,
        plan: &mut Plan,
    ) {
        if self.local_status == MemberStatus::Left {
            return;
        }
        let me = self.foca.identity().clone();
        let conflict = if id.name() == me.name() {
            Some(me.addr())
        } else {
            self.table.get(id.name()).and_then(|e| {
                let live = matches!(e.status, MemberStatus::Alive | MemberStatus::Leaving);
                (live && e.id.addr() != id.addr()).then_some(e.id.addr())
            })
        };
        if let Some(existing) = conflict {
            tracing::warn!(
                "refused join of {:?} from {from}: the name is used by a live member at {existing}",
                id.name()
            );
            self.send(from, &Envelope::JoinRefuse { nonce, existing }, plan);
            return;
        }
        self.send(from, &Envelope::JoinAccept { nonce, seed: me }, plan);
        if self.may_answer_with_state(now) {
            self.send_state(from, false, plan);
        }
    }

    fn may_answer_with_state(&mut self, now: Instant) -> bool {
        match &mut self.state_window {
            Some((start, count))
                if now.saturating_duration_since(*start) < Duration::from_secs(1) =>
            {
                *count += 1;
                *count <= MAX_STATE_ANSWERS_PER_SEC
            }
            _ => {
                self.state_window = Some((now, 1));
                true
            }
        }
    }

    /// Sends our whole membership state to `to`, split over datagrams.
    fn send_state(&mut self, to: SocketAddr, reply: bool, plan: &mut Plan) {
        let budget = self.cfg.foca_packet_size().saturating_sub(4);
        let me = FocaMember::new(self.foca.identity().clone(), 0, State::Alive);
        let all: Vec<FocaMember<NodeId>> = std::iter::once(me)
            .chain(self.foca.iter_membership_state().cloned())
            .collect();
        let mut chunk: Vec<FocaMember<NodeId>> = Vec::new();
        let mut size = 0;
        let mut first = true;
        for m in all {
            let mut buf = Vec::new();
            encode_member(&m, &mut buf);
            if size + buf.len() > budget && !chunk.is_empty() {
                let env = Envelope::State {
                    reply: reply && first,
                    members: std::mem::take(&mut chunk),
                };
                self.send(to, &env, plan);
                first = false;
                size = 0;
            }
            size += buf.len();
            chunk.push(m);
        }
        if !chunk.is_empty() {
            let env = Envelope::State {
                reply: reply && first,
                members: chunk,
            };
            self.send(to, &env, plan);
        }
    }

    fn send(&mut self, to: SocketAddr, env: &Envelope, plan: &mut Plan) {
        let packet = self.keyring.seal(&env.encode(), (self.nonce)());
        self.stats.packets_sent += 1;
        plan.sends.push((to, packet));
    }

    /// A timer scheduled by an earlier plan fired.
    pub fn handle_timer(&mut self, now: Instant, timer: Timer) -> Plan {
        let mut plan = Plan::default();
        match timer.0 {
            TimerKind::Foca(t) => {
                let mut acc = Acc::default();
                if let Err(e) = self.foca.handle_timer(t, &mut acc) {
                    tracing::debug!("foca timer: {e}");
                }
                self.absorb(now, acc, &mut plan);
            }
            TimerKind::Reap => {
                self.reap(now, &mut plan);
                plan.timers
                    .push((self.reap_interval(), Timer(TimerKind::Reap)));
            }
            TimerKind::PushPull => {
                if self.local_status != MemberStatus::Left {
                    let alive: Vec<SocketAddr> = self
                        .table
                        .values()
                        .filter(|e| e.status == MemberStatus::Alive)
                        .map(|e| e.id.addr())
                        .collect();
                    if !alive.is_empty() {
                        let pick = alive[self.rng.below(alive.len() as u64) as usize];
                        self.send_state(pick, true, &mut plan);
                    }
                }
                plan.timers
                    .push((self.push_pull_interval(), Timer(TimerKind::PushPull)));
            }
            TimerKind::HintCheck(nonce) => {
                if let Some(id) = self.hints.remove(&nonce) {
                    self.suspect_now(now, id, &mut plan);
                }
            }
            TimerKind::HintDown(id, incarnation) => {
                let still = self.foca.iter_membership_state().any(|m| {
                    m.id() == &id && m.incarnation() == incarnation && m.state() == State::Suspect
                });
                if still {
                    let mut acc = Acc::default();
                    let down = FocaMember::new(id, incarnation, State::Down);
                    let _ = self.foca.apply_many(std::iter::once(down), true, &mut acc);
                    self.absorb(now, acc, &mut plan);
                }
            }
            TimerKind::Resuspect(id, incarnation, left) => {
                let still = self.foca.iter_membership_state().any(|m| {
                    m.id() == &id && m.incarnation() == incarnation && m.state() == State::Suspect
                });
                if still {
                    self.tell_suspect(&id, incarnation, &mut plan);
                    if left > 1 {
                        plan.timers.push((
                            self.resuspect_interval(),
                            Timer(TimerKind::Resuspect(id, incarnation, left - 1)),
                        ));
                    }
                }
            }
            TimerKind::LeaveFinish => {
                let mut acc = Acc::default();
                if let Err(e) = self.foca.leave_cluster(&mut acc) {
                    tracing::debug!("leave: {e}");
                }
                self.local_status = MemberStatus::Left;
                self.absorb(now, acc, &mut plan);
            }
            TimerKind::KeyRetry(id) => self.on_key_retry(now, id, &mut plan),
            TimerKind::KeyDeadline(id) => self.on_key_deadline(id, &mut plan),
        }
        plan
    }

    /// The direct ping of a hinted member got no answer: suspect it now
    /// (foca's own probe would get to it only on its turn).
    fn suspect_now(&mut self, now: Instant, id: NodeId, plan: &mut Plan) {
        let found = self
            .foca
            .iter_membership_state()
            .find(|m| m.id() == &id && m.state() != State::Down)
            .map(|m| m.incarnation());
        let Some(incarnation) = found else { return };
        let mut acc = Acc::default();
        let suspect = FocaMember::new(id.clone(), incarnation, State::Suspect);
        let _ = self
            .foca
            .apply_many(std::iter::once(suspect), true, &mut acc);
        self.absorb(now, acc, plan);
        self.tell_suspect(&id, incarnation, plan);
        plan.timers.push((
            self.resuspect_interval(),
            Timer(TimerKind::Resuspect(
                id.clone(),
                incarnation,
                SUSPECT_NOTICES - 1,
            )),
        ));
        plan.timers.push((
            self.cfg.timing.suspicion_timeout,
            Timer(TimerKind::HintDown(id, incarnation)),
        ));
    }

    /// Spreads the suspicion notices over the first half of the timeout.
    fn resuspect_interval(&self) -> Duration {
        self.cfg.timing.suspicion_timeout / (2 * u32::from(SUSPECT_NOTICES))
    }

    fn tell_suspect(&mut self, id: &NodeId, incarnation: u16, plan: &mut Plan) {
        let env = Envelope::Suspected {
            incarnation,
            target: id.clone(),
            from: self.foca.identity().clone(),
        };
        self.send(id.addr(), &env, plan);
    }

    // ---- commands -----------------------------------------------------

    /// A fresh number to tag a join attempt with.
    pub fn next_join_id(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Asks each address to let us join; replies come back in later plans
    /// as [`JoinReply`] carrying `join` (from [`Membership::next_join_id`];
    /// reuse it to retry the silent addresses).
    pub fn join(&mut self, _now: Instant, join: u64, addrs: &[SocketAddr]) -> Plan {
        let mut plan = Plan::default();
        let id = self.foca.identity().clone();
        for &addr in addrs {
            let env = Envelope::JoinRequest {
                nonce: join,
                id: id.clone(),
            };
            self.send(addr, &env, &mut plan);
        }
        plan
    }

    /// Adds known members without contacting them or broadcasting (e.g.
    /// restoring a saved member list after a restart, or building a large
    /// simulated cluster quickly). They are probed like any member, so
    /// stale entries are found out.
    pub fn restore(&mut self, now: Instant, members: impl IntoIterator<Item = NodeId>) -> Plan {
        let mut plan = Plan::default();
        let mut acc = Acc::default();
        let me = self.cfg.name.clone();
        let updates = members
            .into_iter()
            .filter(|id| id.name() != me)
            .map(FocaMember::alive);
        if let Err(e) = self.foca.apply_many(updates, false, &mut acc) {
            tracing::debug!("restore: {e}");
        }
        self.absorb(now, acc, &mut plan);
        plan
    }

    /// Starts a graceful leave: the cluster first learns that we are
    /// leaving, then (one probe interval later) that we have left.
    pub fn leave(&mut self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        if self.local_status != MemberStatus::Alive {
            return plan;
        }
        let leaving = self.foca.identity().as_leaving();
        let mut acc = Acc::default();
        if let Err(e) = self.foca.change_identity(leaving, &mut acc) {
            tracing::debug!("leave: {e}");
        }
        self.local_status = MemberStatus::Leaving;
        self.absorb(now, acc, &mut plan);
        plan.timers.push((
            self.cfg
                .timing
                .probe_interval
                .max(self.cfg.timing.gossip_interval * 3),
            Timer(TimerKind::LeaveFinish),
        ));
        plan
    }

    /// Replaces the local tags; the new identity spreads by gossip.
    pub fn set_tags(&mut self, now: Instant, tags: Tags) -> Result<Plan, GossipError> {
        if self.local_status != MemberStatus::Alive {
            return Err(GossipError::Left);
        }
        let id = self.foca.identity().with_tags(tags)?;
        let mut plan = Plan::default();
        let mut acc = Acc::default();
        if let Err(e) = self.foca.change_identity(id, &mut acc) {
            tracing::debug!("set_tags: {e}");
        }
        self.absorb(now, acc, &mut plan);
        Ok(plan)
    }

    /// Turns a failed member into a left one (and with `prune`, forgets it
    /// at once). The change spreads to the other members.
    pub fn force_leave(
        &mut self,
        now: Instant,
        name: &str,
        prune: bool,
    ) -> Result<Plan, GossipError> {
        let mut plan = Plan::default();
        let entry = self
            .table
            .get(name)
            .ok_or_else(|| GossipError::UnknownMember(name.to_owned()))?;
        if matches!(entry.status, MemberStatus::Alive | MemberStatus::Leaving) {
            return Err(GossipError::MemberAlive(name.to_owned()));
        }
        if entry.status == MemberStatus::Failed {
            let left = entry.id.as_leaving();
            let mut acc = Acc::default();
            let down = FocaMember::new(left, u16::MAX, State::Down);
            let _ = self.foca.apply_many(std::iter::once(down), true, &mut acc);
            self.absorb(now, acc, &mut plan);
            if let Some(e) = self.table.get_mut(name) {
                if e.status == MemberStatus::Failed {
                    e.id = e.id.as_leaving();
                    e.status = MemberStatus::Left;
                    e.since = now;
                    plan.events
                        .push(MemberEvent::Left(Member::from_id(&e.id, e.status)));
                }
            }
        }
        if prune {
            if let Some(e) = self.table.remove(name) {
                plan.events
                    .push(MemberEvent::Reap(Member::from_id(&e.id, e.status)));
            }
        }
        Ok(plan)
    }

    /// Checks a member at once (the caller saw its connection break):
    /// a direct ping, and if it does not answer within the probe timeout,
    /// suspicion starts, which the member refutes if it is alive.
    pub fn hint_suspect(&mut self, _now: Instant, name: &str) -> Result<Plan, GossipError> {
        let entry = self
            .table
            .get(name)
            .ok_or_else(|| GossipError::UnknownMember(name.to_owned()))?;
        let mut plan = Plan::default();
        if entry.status != MemberStatus::Alive {
            return Ok(plan);
        }
        let id = entry.id.clone();
        let nonce = self.rng.next_u64();
        self.hints.insert(nonce, id.clone());
        self.send(id.addr(), &Envelope::Ping { nonce }, &mut plan);
        plan.timers.push((
            self.cfg.timing.probe_timeout,
            Timer(TimerKind::HintCheck(nonce)),
        ));
        Ok(plan)
    }
}

mod keys;
mod notify;

#[cfg(test)]
mod keyring_tests;
#[cfg(test)]
mod tests;
