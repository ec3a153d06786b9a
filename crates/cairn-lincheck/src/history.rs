//! The history a test records: operations on keys with their invocation and completion
//! times on a logical clock, and a thread-safe recorder that ticks that clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// An operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Read,
    /// Sets the value (a lock holder, if any, keeps the key).
    Write {
        value: String,
    },
    /// Sets the value if the current one is `expect` (`None`: the key is absent). Tests
    /// turn Consul's `?cas=<ModifyIndex>` into this by writing unique values, so a
    /// ModifyIndex names exactly one value.
    Cas {
        expect: Option<String>,
        value: String,
    },
    /// `?acquire=<session>`: sets the value and the holder if the key is free or already
    /// held by `session`.
    Acquire {
        session: String,
        value: String,
    },
    /// `?release=<session>`: sets the value and frees the key if `session` holds it.
    Release {
        session: String,
        value: String,
    },
}

/// What a read saw: the value and the lock holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub value: String,
    pub holder: Option<String>,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A read's answer (`None`: the key does not exist).
    Read(Option<Observed>),
    /// A write's answer (`true` for a plain write that succeeded).
    Bool(bool),
    /// Timed out or failed without a definite answer: it may have taken effect once,
    /// at any time after its invocation, or never.
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub client: usize,
    /// Where the operation went, for the reader of a violation (node, read mode, ...).
    pub via: String,
    pub key: String,
    pub op: Op,
    /// Logical time of the invocation.
    pub call: u64,
    /// Logical time of the completion (ignored when the outcome is unknown).
    pub ret: u64,
    pub outcome: Outcome,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Read => write!(f, "read"),
            Op::Write { value } => write!(f, "write {value:?}"),
            Op::Cas { expect, value } => match expect {
                Some(e) => write!(f, "cas {e:?} -> {value:?}"),
                None => write!(f, "cas absent -> {value:?}"),
            },
            Op::Acquire { session, value } => write!(f, "acquire by {session} ({value:?})"),
            Op::Release { session, value } => write!(f, "release by {session} ({value:?})"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Read(None) => write!(f, "absent"),
            Outcome::Read(Some(o)) => match &o.holder {
                Some(h) => write!(f, "{:?} held by {h}", o.value),
                None => write!(f, "{:?}", o.value),
            },
            Outcome::Bool(b) => write!(f, "{b}"),
            Outcome::Unknown => write!(f, "unknown (indeterminate)"),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ret = if self.outcome == Outcome::Unknown {
            "...".to_string()
        } else {
            self.ret.to_string()
        };
        let client = if self.client == usize::MAX {
            "final".to_string()
        } else {
            format!("client {}", self.client)
        };
        write!(
            f,
            "[{:>6} .. {:>6}] {client} via {}: {} => {}",
            self.call, ret, self.via, self.op, self.outcome
        )
    }
}

/// An operation invoked and not completed yet.
#[derive(Debug)]
#[must_use = "complete the operation, or its invocation is lost"]
pub struct Pending {
    client: usize,
    via: String,
    key: String,
    op: Op,
    call: u64,
}

/// Records a history from concurrent clients; the clock is a counter ticked on every
/// invocation and completion, so times order events without reading any clock.
#[derive(Debug, Default)]
pub struct History {
    clock: AtomicU64,
    entries: Mutex<Vec<Entry>>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Call just before sending the request (`via`: where it goes, shown in violations).
    pub fn invoke(&self, client: usize, via: &str, key: &str, op: Op) -> Pending {
        Pending {
            client,
            via: via.to_string(),
            key: key.to_string(),
            op,
            call: self.tick(),
        }
    }

    /// Call as soon as the answer (or the timeout) is in.
    pub fn complete(&self, p: Pending, outcome: Outcome) {
        let ret = self.tick();
        let e = Entry {
            client: p.client,
            via: p.via,
            key: p.key,
            op: p.op,
            call: p.call,
            ret,
            outcome,
        };
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(e);
    }

    /// The entries recorded so far, by invocation time.
    pub fn entries(&self) -> Vec<Entry> {
        let mut v = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        v.sort_by_key(|e| e.call);
        v
    }
}
