//! Keyring operations over the whole pool (Consul's `keyring` command): the
//! operation asked of every member, each member's answer (its keys, primary
//! first, and whether the operation succeeded there), their wire encoding,
//! and the requester's bookkeeping that turns answers into one report.
//!
//! The requester applies the operation to itself, then sends a request to
//! every alive member by unicast (sealed with its primary key, which every
//! member holds during a correct rotation), retries the silent ones, and
//! reports when all have answered or the deadline passes. Members remember
//! recent answers, so a retried request is answered again without being
//! applied twice (a repeated `remove` would otherwise fail). With a relay
//! factor, members also send their answer through that many other members,
//! as serf does, so an answer survives one lossy path.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::crypto::{decode_key, encode_key, MAX_KEYS};
use crate::error::{DecodeError, KeyError};
use crate::wire::{Reader, Writer};

/// Largest relay factor accepted (Consul's limit).
pub const MAX_RELAY_FACTOR: u8 = 5;

/// Answers a member remembers for retried requests.
const ANSWER_CACHE: usize = 64;

/// Keyring queries one node may have in flight.
pub(crate) const MAX_PENDING_QUERIES: usize = 16;

/// A keyring operation, with keys in base64 as operators type them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// Report the keys of every member.
    List,
    /// Add a key for decryption everywhere.
    Install(String),
    /// Make an installed key the encrypting one everywhere.
    Use(String),
    /// Remove a (non-primary) key everywhere.
    Remove(String),
}

impl KeyOp {
    pub(crate) fn action(&self) -> Result<KeyAction, KeyError> {
        Ok(match self {
            KeyOp::List => KeyAction::List,
            KeyOp::Install(k) => KeyAction::Install(decode_key(k)?),
            KeyOp::Use(k) => KeyAction::Use(decode_key(k)?),
            KeyOp::Remove(k) => KeyAction::Remove(decode_key(k)?),
        })
    }
}

/// The decoded operation carried by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAction {
    List,
    Install([u8; 32]),
    Use([u8; 32]),
    Remove([u8; 32]),
}

impl KeyAction {
    pub(crate) fn changes_keys(&self) -> bool {
        !matches!(self, KeyAction::List)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let (tag, key) = match self {
            KeyAction::List => (0, [0u8; 32]),
            KeyAction::Install(k) => (1, *k),
            KeyAction::Use(k) => (2, *k),
            KeyAction::Remove(k) => (3, *k),
        };
        out.wr_u8(tag);
        out.wr(&key);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        let key = read_key(r)?;
        Ok(match tag {
            0 => KeyAction::List,
            1 => KeyAction::Install(key),
            2 => KeyAction::Use(key),
            3 => KeyAction::Remove(key),
            other => return Err(DecodeError::BadTag("keyring operation", other)),
        })
    }
}

fn read_key(r: &mut Reader<'_>) -> Result<[u8; 32], DecodeError> {
    let mut key = [0u8; 32];
    key.copy_from_slice(r.bytes(32)?);
    Ok(key)
}

/// One member's answer to a keyring request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyAnswer {
    /// The member's name.
    pub node: String,
    /// Why the operation failed there (`None`: it succeeded).
    pub error: Option<String>,
    /// The member's keys after the operation, primary first.
    pub keys: Vec<[u8; 32]>,
}

impl KeyAnswer {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.wr_str8(&self.node);
        match &self.error {
            None => out.wr_u8(0),
            Some(e) => {
                out.wr_u8(1);
                out.wr_str8(truncate(e, 255));
            }
        }
        let n = self.keys.len().min(MAX_KEYS);
        out.wr_u8(n as u8);
        for k in &self.keys[..n] {
            out.wr(k);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let node = r.str8()?.to_owned();
        if node.is_empty() {
            return Err(DecodeError::Invalid("empty node name"));
        }
        let error = match r.u8()? {
            0 => None,
            1 => Some(r.str8()?.to_owned()),
            other => return Err(DecodeError::BadTag("keyring result", other)),
        };
        let n = usize::from(r.u8()?);
        if n > MAX_KEYS {
            return Err(DecodeError::TooLarge("keyring key count"));
        }
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(read_key(r)?);
        }
        Ok(Self { node, error, keys })
    }
}

/// The longest prefix of `s` within `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The outcome of a keyring operation over the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyringReport {
    /// Members asked, this node included (the alive members at the start).
    pub num_nodes: usize,
    /// Each key (base64) and how many members that answered hold it.
    pub keys: BTreeMap<String, usize>,
    /// Each key and how many members that answered use it as primary.
    pub primary_keys: BTreeMap<String, usize>,
    /// Members where the operation failed, with the reason.
    pub failed: BTreeMap<String, String>,
    /// Members that did not answer before the deadline, by name.
    pub no_answer: Vec<String>,
}

impl KeyringReport {
    /// Whether every member answered and the operation succeeded on all.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.no_answer.is_empty()
    }

    /// Per-node messages in Consul's `Messages` shape (node -> text).
    pub fn messages(&self) -> BTreeMap<String, String> {
        let mut m = self.failed.clone();
        for n in &self.no_answer {
            m.insert(n.clone(), "no answer before the deadline".to_string());
        }
        m
    }

    /// A one-line error naming the members that failed or stayed silent,
    /// or `None` when [`KeyringReport::ok`].
    pub fn error(&self) -> Option<String> {
        if self.ok() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect();
            parts.push(format!(
                "{} of {} nodes reported an error ({})",
                self.failed.len(),
                self.num_nodes,
                list.join("; ")
            ));
        }
        if !self.no_answer.is_empty() {
            parts.push(format!(
                "{} of {} nodes did not answer in time ({})",
                self.no_answer.len(),
                self.num_nodes,
                self.no_answer.join(", ")
            ));
        }
        Some(parts.join("; "))
    }
}

/// A query this node started and is waiting on.
pub(crate) struct PendingQuery {
    pub action: KeyAction,
    pub relay: u8,
    /// Members not heard from yet, with where to ask them.
    pub silent: BTreeMap<String, SocketAddr>,
    pub answers: BTreeMap<String, KeyAnswer>,
    pub deadline: Instant,
    /// How often the silent members are asked again.
    pub retry: Duration,
}

impl PendingQuery {
    /// Records an answer from a member that was asked (others are ignored:
    /// a stale or forged name must not count). Returns whether it was new.
    pub(crate) fn record(&mut self, answer: KeyAnswer) -> bool {
        if self.silent.remove(&answer.node).is_none() {
            return false;
        }
        self.answers.insert(answer.node.clone(), answer);
        true
    }

    pub(crate) fn done(&self) -> bool {
        self.silent.is_empty()
    }

    pub(crate) fn report(self) -> KeyringReport {
        let mut r = KeyringReport {
            num_nodes: self.answers.len() + self.silent.len(),
            no_answer: self.silent.into_keys().collect(),
            ..KeyringReport::default()
        };
        for (node, a) in self.answers {
            for (i, k) in a.keys.iter().enumerate() {
                let k = encode_key(k);
                if i == 0 {
                    *r.primary_keys.entry(k.clone()).or_default() += 1;
                }
                *r.keys.entry(k).or_default() += 1;
            }
            if let Some(e) = a.error {
                r.failed.insert(node, e);
            }
        }
        r
    }
}

/// Answers this node gave recently, by (requester, query id).
#[derive(Default)]
pub(crate) struct AnswerCache {
    entries: VecDeque<((SocketAddr, u64), KeyAnswer)>,
}

impl AnswerCache {
    pub(crate) fn get(&self, from: SocketAddr, id: u64) -> Option<&KeyAnswer> {
        self.entries
            .iter()
            .find(|(k, _)| *k == (from, id))
            .map(|(_, a)| a)
    }

    pub(crate) fn put(&mut self, from: SocketAddr, id: u64, answer: KeyAnswer) {
        if self.entries.len() >= ANSWER_CACHE {
            self.entries.pop_front();
        }
        self.entries.push_back(((from, id), answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_round_trip_and_bounds() {
        let a = KeyAnswer {
            node: "n1".into(),
            error: Some("é".repeat(200)),
            keys: vec![[1; 32], [2; 32]],
        };
        let mut buf = Vec::new();
        a.encode(&mut buf);
        let b = KeyAnswer::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(b.node, "n1");
        assert_eq!(b.keys, a.keys);
        // The error was cut to 255 bytes on a character boundary.
        assert_eq!(b.error.unwrap().len(), 254);
        // A key count over the limit is refused before any allocation.
        let mut bad = Vec::new();
        bad.wr_str8("n");
        bad.wr_u8(0);
        bad.wr_u8(200);
        assert_eq!(
            KeyAnswer::decode(&mut Reader::new(&bad)),
            Err(DecodeError::TooLarge("keyring key count"))
        );
    }

    #[test]
    fn report_counts_keys_and_names_the_silent() {
        let mut q = PendingQuery {
            action: KeyAction::List,
            relay: 0,
            silent: [("a", 1), ("b", 2), ("c", 3)]
                .into_iter()
                .map(|(n, p)| (n.to_string(), SocketAddr::from(([10, 0, 0, 1], p))))
                .collect(),
            answers: BTreeMap::new(),
            deadline: Instant::now(),
            retry: Duration::from_secs(1),
        };
        let ans = |n: &str, keys: Vec<[u8; 32]>, error: Option<&str>| KeyAnswer {
            node: n.into(),
            error: error.map(str::to_string),
            keys,
        };
        assert!(q.record(ans("a", vec![[1; 32], [2; 32]], None)));
        assert!(!q.record(ans("a", vec![], None)), "a duplicate is ignored");
        assert!(!q.record(ans("zz", vec![], None)), "not asked: ignored");
        assert!(q.record(ans("b", vec![[2; 32]], Some("boom"))));
        assert!(!q.done());
        let r = q.report();
        assert_eq!(r.num_nodes, 3);
        assert_eq!(r.keys[&encode_key(&[2; 32])], 2);
        assert_eq!(r.keys[&encode_key(&[1; 32])], 1);
        assert_eq!(r.primary_keys[&encode_key(&[1; 32])], 1);
        assert_eq!(r.no_answer, vec!["c".to_string()]);
        let e = r.error().unwrap();
        assert!(e.contains("b: boom") && e.contains("(c)"), "{e}");
        assert_eq!(r.messages().len(), 2);
    }
}
