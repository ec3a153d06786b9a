//! How foca's output becomes Cairn's: datagrams are framed and sealed,
//! timers wrapped, and notifications (member up, down, renamed) turned
//! into the member table's statuses and [`MemberEvent`]s; plus reaping.

use std::time::Instant;

use foca::OwnedNotification;

use super::{
    alive_status, max_transmissions, Acc, Entry, Membership, Plan, Timer, TimerKind,
    SUSPECT_NOTICES,
};
use crate::identity::NodeId;
use crate::member::{Member, MemberEvent, MemberStatus};

impl Membership {
    pub(super) fn absorb(&mut self, now: Instant, acc: Acc, plan: &mut Plan) {
        for (to, payload) in acc.sends {
            let packet = self.keyring.seal(&payload, (self.nonce)());
            self.stats.packets_sent += 1;
            plan.sends.push((to, packet));
        }
        for (after, t) in acc.timers {
            plan.timers.push((after, Timer(TimerKind::Foca(t))));
        }
        for note in acc.notes {
            self.on_notification(now, note, plan);
        }
    }

    fn on_notification(&mut self, now: Instant, note: OwnedNotification<NodeId>, plan: &mut Plan) {
        let my_name = self.cfg.name.as_str();
        match note {
            OwnedNotification::MemberUp(id) if id.name() != my_name => {
                let status = alive_status(&id);
                let event = match self.table.get_mut(id.name()) {
                    None => {
                        self.table.insert(
                            id.name().to_owned(),
                            Entry {
                                id: id.clone(),
                                status,
                                since: now,
                            },
                        );
                        MemberEvent::Join(Member::from_id(&id, status))
                    }
                    Some(e) => {
                        let was_down =
                            matches!(e.status, MemberStatus::Failed | MemberStatus::Left);
                        e.id = id.clone();
                        e.status = status;
                        e.since = now;
                        if was_down {
                            MemberEvent::Join(Member::from_id(&id, status))
                        } else {
                            MemberEvent::Update(Member::from_id(&id, status))
                        }
                    }
                };
                plan.events.push(event);
                self.resize();
            }
            OwnedNotification::MemberDown(id) if id.name() != my_name => {
                let Some(e) = self.table.get_mut(id.name()) else {
                    return;
                };
                if e.id != id {
                    return;
                }
                let status = if id.leaving() {
                    MemberStatus::Left
                } else {
                    MemberStatus::Failed
                };
                if e.status != status {
                    e.status = status;
                    e.since = now;
                    let m = Member::from_id(&id, status);
                    plan.events.push(if status == MemberStatus::Left {
                        MemberEvent::Left(m)
                    } else {
                        MemberEvent::Failed(m)
                    });
                }
            }
            OwnedNotification::Rename(_old, new) if new.name() != my_name => {
                let Some(e) = self.table.get_mut(new.name()) else {
                    return;
                };
                let old = std::mem::replace(&mut e.id, new.clone());
                let active = matches!(e.status, MemberStatus::Alive | MemberStatus::Leaving);
                if active {
                    e.status = alive_status(&new);
                    let changed = old.tags() != new.tags()
                        || old.addr() != new.addr()
                        || old.generation() != new.generation();
                    if changed {
                        plan.events
                            .push(MemberEvent::Update(Member::from_id(&new, e.status)));
                    }
                } else if new.leaving() && e.status == MemberStatus::Failed {
                    e.status = MemberStatus::Left;
                    e.since = now;
                    plan.events
                        .push(MemberEvent::Left(Member::from_id(&new, e.status)));
                }
            }
            OwnedNotification::Defunct if self.local_status == MemberStatus::Alive => {
                tracing::warn!("this node was declared failed by the cluster");
            }
            OwnedNotification::Rejoin(id) => {
                tracing::info!(
                    ?id,
                    "declared failed by the cluster: rejoined with a new version"
                );
            }
            OwnedNotification::ProbeFailed(_, id) => {
                let incarnation = self
                    .foca
                    .iter_membership_state()
                    .find(|m| m.id() == &id)
                    .map(|m| m.incarnation());
                if let Some(incarnation) = incarnation {
                    self.tell_suspect(&id, incarnation, plan);
                    plan.timers.push((
                        self.resuspect_interval(),
                        Timer(TimerKind::Resuspect(id, incarnation, SUSPECT_NOTICES - 1)),
                    ));
                }
            }
            _ => {}
        }
    }

    /// Keeps the retransmission count in line with the cluster size.
    pub(super) fn resize(&mut self) {
        let want = max_transmissions(self.cfg.timing.retransmit_mult, self.table.len() + 1);
        if want != self.max_tx {
            self.max_tx = want;
            let _ = self.foca.set_config(Self::foca_config(&self.cfg, want));
        }
    }

    pub(super) fn reap(&mut self, now: Instant, plan: &mut Plan) {
        let t = &self.cfg.timing;
        let expired: Vec<String> = self
            .table
            .iter()
            .filter(|(_, e)| match e.status {
                MemberStatus::Failed => {
                    now.saturating_duration_since(e.since) >= t.reconnect_timeout
                }
                MemberStatus::Left => now.saturating_duration_since(e.since) >= t.tombstone_timeout,
                _ => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for name in expired {
            if let Some(e) = self.table.remove(&name) {
                plan.events
                    .push(MemberEvent::Reap(Member::from_id(&e.id, e.status)));
            }
        }
        if !plan.events.is_empty() {
            self.resize();
        }
    }
}
