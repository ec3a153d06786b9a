//! The sequential specification: one key of Consul's KV store with its lock holder, over
//! interned values so a state is two integers and cheap to memoise.

use std::collections::HashMap;

use crate::history::{Entry, Op, Outcome};

/// Interned string id; 0 means "none" (key absent, or no holder).
pub(crate) type Id = u32;

/// The state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct KeyState {
    /// 0: the key does not exist.
    pub value: Id,
    /// 0: no session holds the key.
    pub holder: Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MOp {
    Read,
    Write(Id),
    Cas { expect: Id, value: Id },
    Acquire { session: Id, value: Id },
    Release { session: Id, value: Id },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MOut {
    Read(KeyState),
    Bool(bool),
    Unknown,
}

/// One operation in the model's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MEntry {
    pub op: MOp,
    pub out: MOut,
    pub call: u64,
    pub ret: u64,
}

impl MEntry {
    pub fn definite(&self) -> bool {
        self.out != MOut::Unknown
    }
}

/// The one id of every value that no read returns and no CAS expects: such values are
/// indistinguishable to the rest of the history, so they share a state.
pub(crate) const UNSEEN: Id = Id::MAX;

/// Interns the strings of one key's history.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashMap<String, Id>,
    /// Values some read returned or some CAS expected.
    seen: std::collections::HashSet<String>,
}

impl Interner {
    /// An interner for `entries`, knowing which values they mention.
    pub fn for_history(entries: &[Entry]) -> Interner {
        let mut i = Interner::default();
        for e in entries {
            if let Outcome::Read(Some(o)) = &e.outcome {
                i.seen.insert(o.value.clone());
            }
            if let Op::Cas {
                expect: Some(x), ..
            } = &e.op
            {
                i.seen.insert(x.clone());
            }
        }
        i
    }

    fn id(&mut self, s: &str) -> Id {
        let next = self.ids.len() as Id + 1;
        *self.ids.entry(s.to_string()).or_insert(next)
    }

    /// A written value's id ([`UNSEEN`] if nothing mentions it).
    fn value(&mut self, s: &str) -> Id {
        if self.seen.contains(s) {
            self.id(s)
        } else {
            UNSEEN
        }
    }

    pub fn entry(&mut self, e: &Entry) -> MEntry {
        let op = match &e.op {
            Op::Read => MOp::Read,
            Op::Write { value } => MOp::Write(self.value(value)),
            Op::Cas { expect, value } => MOp::Cas {
                expect: expect.as_deref().map_or(0, |x| self.id(x)),
                value: self.value(value),
            },
            Op::Acquire { session, value } => MOp::Acquire {
                session: self.id(session),
                value: self.value(value),
            },
            Op::Release { session, value } => MOp::Release {
                session: self.id(session),
                value: self.value(value),
            },
        };
        let out = match &e.outcome {
            Outcome::Read(None) => MOut::Read(KeyState::default()),
            Outcome::Read(Some(o)) => MOut::Read(KeyState {
                value: self.id(&o.value),
                holder: o.holder.as_deref().map_or(0, |h| self.id(h)),
            }),
            Outcome::Bool(b) => MOut::Bool(*b),
            Outcome::Unknown => MOut::Unknown,
        };
        MEntry {
            op,
            out,
            call: e.call,
            ret: e.ret,
        }
    }
}

/// Applies `op` with outcome `out` to `s`: the next state, or `None` if this outcome is
/// impossible in state `s`. An unknown outcome is "took effect now" (not taking effect
/// at all is the search never placing it).
pub(crate) fn step(s: KeyState, op: MOp, out: MOut) -> Option<KeyState> {
    // (condition, state if applied) of the conditional writes.
    let conditional = |cond: bool, applied: KeyState| match out {
        MOut::Bool(true) => cond.then_some(applied),
        MOut::Bool(false) => (!cond).then_some(s),
        MOut::Unknown => Some(if cond { applied } else { s }),
        MOut::Read(_) => None,
    };
    match op {
        MOp::Read => match out {
            MOut::Read(seen) => (seen == s).then_some(s),
            _ => None,
        },
        MOp::Write(v) => match out {
            MOut::Bool(true) | MOut::Unknown => Some(KeyState {
                value: v,
                holder: if s.value == 0 { 0 } else { s.holder },
            }),
            _ => None,
        },
        MOp::Cas { expect, value } => conditional(
            s.value == expect,
            KeyState {
                value,
                holder: if s.value == 0 { 0 } else { s.holder },
            },
        ),
        MOp::Acquire { session, value } => conditional(
            s.holder == 0 || s.holder == session,
            KeyState {
                value,
                holder: session,
            },
        ),
        MOp::Release { session, value } => conditional(
            s.value != 0 && s.holder == session,
            KeyState { value, holder: 0 },
        ),
    }
}
