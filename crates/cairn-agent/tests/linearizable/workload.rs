//! The clients of the linearizability test: each is a task with its own seeded RNG that
//! issues KV reads (default and `?consistent`; never `?stale`), writes, check-and-sets
//! (`?cas=<ModifyIndex>` from a read just before) and session lock acquires and releases
//! against random running nodes (servers and client agents) through the in-process HTTP
//! API, recording each operation's invocation and completion on the history's logical
//! clock.
//!
//! Every value written is unique (`w<client>-<n>`), so a ModifyIndex names exactly one
//! value and `?cas=<index>` is recorded as "CAS expecting the value read with that index".
//! A write that times out or fails without `true`/`false` is indeterminate; a read that
//! fails is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use cairn_lincheck::{History, Observed, Op, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::harness::{Api, Cluster};

/// Keys written by plain writes and CAS.
pub const REGISTERS: [&str; 3] = ["lin/r0", "lin/r1", "lin/r2"];
/// The key clients lock with their sessions.
pub const LOCK: &str = "lin/lock";

/// How long a client waits for an answer before the operation is indeterminate.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Counts of what the clients did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub ops: usize,
    pub failed_reads: usize,
    pub indeterminate: usize,
    /// Time spent waiting for answers, summed over the operations.
    pub busy: Duration,
}

/// One client: its number, RNG, session, and the shared history and cluster.
pub struct Client {
    pub id: usize,
    pub rng: StdRng,
    pub session: String,
    pub history: Arc<History>,
    pub cluster: Arc<RwLock<Cluster>>,
    /// Where default reads go, if set (the planted-bug test points them at a deposed
    /// leader); otherwise a random running node.
    pub reads_on: Option<Arc<parking_lot::Mutex<Option<String>>>>,
    n: u64,
    pub tally: Tally,
}

impl Client {
    pub fn new(
        id: usize,
        seed: u64,
        session: String,
        history: Arc<History>,
        cluster: Arc<RwLock<Cluster>>,
    ) -> Client {
        Client {
            id,
            rng: StdRng::seed_from_u64(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            session,
            history,
            cluster,
            reads_on: None,
            n: 0,
            tally: Tally::default(),
        }
    }

    /// Runs operations until `stop` is set.
    pub async fn run(mut self, stop: Arc<AtomicBool>) -> Tally {
        while !stop.load(Ordering::SeqCst) {
            self.one().await;
        }
        self.tally
    }

    fn value(&mut self) -> String {
        self.n += 1;
        format!("w{}-{}", self.id, self.n)
    }

    /// A random running node's API.
    async fn node(&mut self) -> Option<(String, Api)> {
        let c = self.cluster.read().await;
        let running = c.running();
        if running.is_empty() {
            return None;
        }
        let name = running[self.rng.random_range(0..running.len())].clone();
        c.api(&name).map(|a| (name, a))
    }

    async fn read_node(&mut self) -> Option<(String, Api)> {
        let target = self.reads_on.as_ref().and_then(|t| t.lock().clone());
        if let Some(name) = target {
            if self.rng.random_bool(0.5) {
                if let Some(api) = self.cluster.read().await.api(&name) {
                    return Some((name, api));
                }
            }
        }
        self.node().await
    }

    async fn one(&mut self) {
        let lock = self.rng.random_bool(0.3);
        let key = if lock {
            LOCK
        } else {
            REGISTERS[self.rng.random_range(0..REGISTERS.len())]
        };
        let roll = self.rng.random_range(0..10);
        match (lock, roll) {
            (_, 0..=3) => {
                let consistent = self.rng.random_bool(0.5);
                self.read(key, consistent).await;
            }
            (false, 4..=6) => {
                let v = self.value();
                let path = format!("/v1/kv/{key}");
                self.write(key, Op::Write { value: v.clone() }, &path, &v)
                    .await;
            }
            (false, _) => {
                // Check-and-set from what a read just saw.
                let consistent = self.rng.random_bool(0.5);
                let Some(seen) = self.read(key, consistent).await else {
                    return;
                };
                let (expect, index) = match seen {
                    Some((o, index)) => (Some(o.value), index),
                    None => (None, 0),
                };
                let v = self.value();
                let path = format!("/v1/kv/{key}?cas={index}");
                self.write(
                    key,
                    Op::Cas {
                        expect,
                        value: v.clone(),
                    },
                    &path,
                    &v,
                )
                .await;
            }
            (true, 4..=6) => {
                let v = self.value();
                let path = format!("/v1/kv/{key}?acquire={}", self.session);
                let op = Op::Acquire {
                    session: self.session.clone(),
                    value: v.clone(),
                };
                self.write(key, op, &path, &v).await;
            }
            (true, _) => {
                let v = self.value();
                let path = format!("/v1/kv/{key}?release={}", self.session);
                let op = Op::Release {
                    session: self.session.clone(),
                    value: v.clone(),
                };
                self.write(key, op, &path, &v).await;
            }
        }
    }

    /// A read; `Some(None)` is "absent", `Some(Some((seen, ModifyIndex)))` a value,
    /// `None` a failed read (not recorded).
    async fn read(&mut self, key: &str, consistent: bool) -> Option<Option<(Observed, u64)>> {
        let (node, api) = if consistent {
            self.node().await?
        } else {
            self.read_node().await?
        };
        let path = if consistent {
            format!("/v1/kv/{key}?consistent")
        } else {
            format!("/v1/kv/{key}")
        };
        self.tally.ops += 1;
        let mode = if consistent { "consistent" } else { "default" };
        let p = self
            .history
            .invoke(self.id, &format!("{node} {mode}"), key, Op::Read);
        let t = std::time::Instant::now();
        let answer = tokio::time::timeout(OP_TIMEOUT, api.call("GET", &path, ""))
            .await
            .ok()
            .flatten();
        self.tally.busy += t.elapsed();
        let seen = match answer {
            Some((200, body)) => parse_entry(&body),
            Some((404, _)) => Some(None),
            _ => None,
        };
        match &seen {
            Some(s) => self
                .history
                .complete(p, Outcome::Read(s.as_ref().map(|(o, _)| o.clone()))),
            None => {
                self.tally.failed_reads += 1;
                self.history.complete(p, Outcome::Unknown);
            }
        }
        seen
    }

    async fn write(&mut self, key: &str, op: Op, path: &str, body: &str) {
        let Some((node, api)) = self.node().await else {
            return;
        };
        self.tally.ops += 1;
        let p = self.history.invoke(self.id, &node, key, op);
        let t = std::time::Instant::now();
        let answer = tokio::time::timeout(OP_TIMEOUT, api.call("PUT", path, body))
            .await
            .ok()
            .flatten();
        self.tally.busy += t.elapsed();
        let outcome = match answer {
            Some((200, Value::Bool(b))) => Outcome::Bool(b),
            _ => {
                self.tally.indeterminate += 1;
                Outcome::Unknown
            }
        };
        self.history.complete(p, outcome);
    }
}

/// The value, lock holder and ModifyIndex of a `GET /v1/kv/<key>` answer.
pub fn parse_entry(body: &Value) -> Option<Option<(Observed, u64)>> {
    let e = body.as_array()?.first()?;
    let value = match &e["Value"] {
        Value::Null => String::new(),
        Value::String(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()?
        }
        _ => return None,
    };
    let holder = e["Session"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    let index = e["ModifyIndex"].as_u64()?;
    Some(Some((Observed { value, holder }, index)))
}

/// Creates a session for client `id` on `node` with no health checks (so only a
/// release ends its locks), retrying until it is acknowledged.
pub async fn create_session(cluster: &RwLock<Cluster>, node: &str, id: usize) -> String {
    let body = format!(r#"{{"Name": "lin-{id}", "NodeChecks": [], "LockDelay": "0s"}}"#);
    let deadline = tokio::time::Instant::now() + *crate::harness::WAIT;
    loop {
        let api = cluster.read().await.api(node);
        if let Some(api) = api {
            if let Some((200, v)) = api.call("PUT", "/v1/session/create", &body).await {
                if let Some(id) = v["ID"].as_str() {
                    return id.to_string();
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "could not create a session on {node}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
