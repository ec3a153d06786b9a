//! The core's side of pool-wide keyring operations (see `keyquery.rs`):
//! starting a query, answering and relaying requests, collecting answers,
//! retries and the deadline. Every change to the local keyring is reported
//! in the plan so that the runtime can persist it; the answers that report the
//! change are held until the runtime says how the save went
//! ([`Membership::keyring_saved`]), and a failed save is an error in them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{KeyringSave, Membership, Plan, Timer, TimerKind};
use crate::envelope::Envelope;
use crate::error::{GossipError, KeyError};
use crate::keyquery::{
    KeyAction, KeyAnswer, KeyOp, PendingQuery, MAX_PENDING_QUERIES, MAX_RELAY_FACTOR,
};
use crate::member::MemberStatus;

/// An answer held until the keyring change it reports is saved.
pub(super) enum Held {
    /// To member `from`'s request `id`: sent, with its relays, once saved.
    Remote {
        from: SocketAddr,
        id: u64,
        relay: u8,
        answer: KeyAnswer,
    },
    /// This node's own answer to its query `id`.
    Local { id: u64, answer: KeyAnswer },
}

impl Membership {
    /// Starts a keyring operation on every alive member, this node
    /// included (applied here at once). The report comes back in a later
    /// plan's `key_reports` under the returned id (in this plan's when this
    /// node is alone) once every member answered or `timeout` passed.
    pub fn key_query(
        &mut self,
        now: Instant,
        op: &KeyOp,
        relay: u8,
        timeout: Duration,
    ) -> Result<(u64, Plan), GossipError> {
        if relay > MAX_RELAY_FACTOR {
            return Err(GossipError::RelayFactor(relay));
        }
        if self.local_status == MemberStatus::Left {
            return Err(GossipError::Left);
        }
        if !self.keyring.enabled() {
            return Err(KeyError::NotEnabled.into());
        }
        if self.key_queries.len() >= MAX_PENDING_QUERIES {
            return Err(GossipError::Busy);
        }
        let action = op.action()?;
        let mut plan = Plan::default();
        let mut silent: BTreeMap<String, SocketAddr> = self
            .table
            .values()
            .filter(|e| e.status == MemberStatus::Alive)
            .map(|e| (e.id.name().to_owned(), e.id.addr()))
            .collect();
        let others = silent.clone();
        silent.insert(self.cfg.name.clone(), self.cfg.advertise);
        let retry = (timeout / 5).max(self.cfg.timing.probe_timeout);
        let mut q = PendingQuery {
            action,
            relay,
            silent,
            answers: BTreeMap::new(),
            deadline: now + timeout,
            retry,
        };
        let id = self.rng.next_u64();
        match self.apply_key_action(action, &mut plan) {
            (answer, Some(ticket)) => {
                self.held.insert(ticket, Held::Local { id, answer });
            }
            (answer, None) => {
                q.record(answer);
            }
        }
        if q.done() {
            plan.key_reports.push((id, q.report()));
            return Ok((id, plan));
        }
        for addr in others.values() {
            self.send(
                *addr,
                &Envelope::KeyRequest { id, action, relay },
                &mut plan,
            );
        }
        plan.timers.push((retry, Timer(TimerKind::KeyRetry(id))));
        plan.timers
            .push((timeout, Timer(TimerKind::KeyDeadline(id))));
        self.key_queries.insert(id, q);
        Ok((id, plan))
    }

    /// Applies an operation to the local keyring. A change is put in `plan` to be
    /// saved, under the returned ticket: the answer must wait for it.
    fn apply_key_action(&mut self, action: KeyAction, plan: &mut Plan) -> (KeyAnswer, Option<u64>) {
        let before = self.keyring.raw();
        let result = if !self.keyring.enabled() {
            Err(KeyError::NotEnabled)
        } else {
            match action {
                KeyAction::List => Ok(()),
                KeyAction::Install(k) => self.keyring.install_raw(k),
                KeyAction::Use(k) => self.keyring.use_raw(k),
                KeyAction::Remove(k) => self.keyring.remove_raw(k),
            }
        };
        let keys = self.keyring.raw();
        let mut ticket = None;
        if action.changes_keys() && keys != before {
            self.next_ticket += 1;
            ticket = Some(self.next_ticket);
            plan.keyring = Some(KeyringSave {
                ticket: self.next_ticket,
                keys: self.keyring.list(),
            });
        }
        let answer = KeyAnswer {
            node: self.cfg.name.clone(),
            error: result.err().map(|e| e.to_string()),
            keys,
        };
        (answer, ticket)
    }

    /// The runtime saved the keyring change of `ticket` (`Err`: it could not): sends
    /// the answers held for it. A failed save is an error in them, although the
    /// change holds in memory: the node would lose it on a restart.
    pub fn keyring_saved(&mut self, ticket: u64, result: Result<(), String>) -> Plan {
        let mut plan = Plan::default();
        let Some(held) = self.held.remove(&ticket) else {
            return plan;
        };
        let outcome = |mut a: KeyAnswer| {
            if let (Err(e), None) = (&result, &a.error) {
                a.error = Some(format!(
                    "changed in memory but not saved (lost on restart): {e}"
                ));
            }
            a
        };
        match held {
            Held::Remote {
                from,
                id,
                relay,
                answer,
            } => {
                let answer = outcome(answer);
                self.answered.put(from, id, answer.clone());
                self.send_key_answer(from, id, relay, answer, &mut plan);
            }
            Held::Local { id, answer } => self.on_key_response(id, outcome(answer), &mut plan),
        }
        plan
    }

    pub(super) fn on_key_request(
        &mut self,
        from: SocketAddr,
        id: u64,
        action: KeyAction,
        relay: u8,
        plan: &mut Plan,
    ) {
        // Without encryption nobody may manage keys, and anyone could forge the
        // sender's address: such requests are dropped unanswered.
        if self.local_status == MemberStatus::Left || !self.keyring.enabled() {
            return;
        }
        // A retry: answer again without applying twice.
        let answer = match self.answered.get(from, id) {
            Some(a) => a.clone(),
            None => {
                let (a, ticket) = self.apply_key_action(action, plan);
                self.answered.put(from, id, a.clone());
                if let Some(ticket) = ticket {
                    let held = Held::Remote {
                        from,
                        id,
                        relay,
                        answer: a,
                    };
                    self.held.insert(ticket, held);
                    return;
                }
                a
            }
        };
        self.send_key_answer(from, id, relay, answer, plan);
    }

    /// Sends `answer` to `from`, and through `relay` other members in case the
    /// direct path is broken.
    fn send_key_answer(
        &mut self,
        from: SocketAddr,
        id: u64,
        relay: u8,
        answer: KeyAnswer,
        plan: &mut Plan,
    ) {
        let relays: Vec<SocketAddr> = self
            .table
            .values()
            .filter(|e| e.status == MemberStatus::Alive && e.id.addr() != from)
            .map(|e| e.id.addr())
            .collect();
        let mut relays = relays;
        for _ in 0..usize::from(relay).min(relays.len()) {
            let pick = relays.swap_remove(self.rng.below(relays.len() as u64) as usize);
            let env = Envelope::KeyRelay {
                id,
                to: from,
                answer: answer.clone(),
            };
            self.send(pick, &env, plan);
        }
        self.send(from, &Envelope::KeyResponse { id, answer }, plan);
    }

    pub(super) fn on_key_relay(
        &mut self,
        id: u64,
        to: SocketAddr,
        answer: KeyAnswer,
        plan: &mut Plan,
    ) {
        // Only towards a live member: never a reflector for anyone else.
        let known = self
            .table
            .values()
            .any(|e| e.status == MemberStatus::Alive && e.id.addr() == to);
        if known && self.local_status != MemberStatus::Left {
            self.send(to, &Envelope::KeyResponse { id, answer }, plan);
        }
    }

    pub(super) fn on_key_response(&mut self, id: u64, answer: KeyAnswer, plan: &mut Plan) {
        let done = match self.key_queries.get_mut(&id) {
            Some(q) => q.record(answer) && q.done(),
            None => false,
        };
        if done {
            if let Some(q) = self.key_queries.remove(&id) {
                plan.key_reports.push((id, q.report()));
            }
        }
    }

    pub(super) fn on_key_retry(&mut self, now: Instant, id: u64, plan: &mut Plan) {
        let Some(q) = self.key_queries.get(&id) else {
            return;
        };
        let (action, relay, retry, deadline) = (q.action, q.relay, q.retry, q.deadline);
        let silent: Vec<SocketAddr> = q.silent.values().copied().collect();
        for addr in silent {
            self.send(addr, &Envelope::KeyRequest { id, action, relay }, plan);
        }
        if now + retry < deadline {
            plan.timers.push((retry, Timer(TimerKind::KeyRetry(id))));
        }
    }

    pub(super) fn on_key_deadline(&mut self, id: u64, plan: &mut Plan) {
        if let Some(q) = self.key_queries.remove(&id) {
            plan.key_reports.push((id, q.report()));
        }
    }
}
