//! Which server a client agent talks to: the [`Servers`] seam, fed by the LAN pool on a
//! real agent ([`PoolServers`]: live members tagged `role=consul` in this datacenter) and
//! by a fixed list in tests ([`FixedServers`]).
//!
//! A client sticks to one server while it answers (its replica stream and its writes go
//! to the same place); when a call to it is not delivered, [`Servers::failed`] moves the
//! client to another one and hints the pool that the server may be down, which starts a
//! probe at once instead of waiting for its turn in the probe round.

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_gossip::Gossip;
use parking_lot::Mutex;
use rand::seq::IndexedRandom;

use crate::catalog::BoxFut;

/// A server: its node name and RPC address.
pub(crate) type Server = (String, SocketAddr);

/// Where a client agent finds servers.
pub(crate) trait Servers: Send + Sync + 'static {
    /// The server to use now (the same one while it works), or `None` if none is known.
    fn pick(&self) -> Option<Server>;

    /// A call to `server` was not delivered: use another one from now on.
    fn failed(&self, server: &Server);

    /// Resolves when the set of known servers may have changed.
    fn changed(&self) -> BoxFut<'_, ()>;
}

/// Chooses among `known` (sticky to `current` while it is known), avoiding `avoid`
/// when there is a choice.
fn choose(known: &[Server], current: &Option<Server>, avoid: &Option<Server>) -> Option<Server> {
    if let Some(c) = current {
        if known.contains(c) {
            return Some(c.clone());
        }
    }
    let others: Vec<&Server> = known
        .iter()
        .filter(|s| Some(*s) != avoid.as_ref())
        .collect();
    others
        .choose(&mut rand::rng())
        .map(|s| (*s).clone())
        .or_else(|| known.first().cloned())
}

impl Choice {
    /// Picks from `known`, remembering the choice.
    fn pick(&mut self, known: &[Server]) -> Option<Server> {
        let chosen = choose(known, &self.current, &self.avoid);
        self.current = chosen.clone();
        chosen
    }

    /// Moves away from `server`.
    fn failed(&mut self, server: &Server) {
        if self.current.as_ref() == Some(server) {
            self.current = None;
        }
        self.avoid = Some(server.clone());
    }
}

#[derive(Default)]
struct Choice {
    current: Option<Server>,
    avoid: Option<Server>,
    /// The last server announced in the log.
    announced: Option<Server>,
}

/// Servers from the LAN pool.
pub(crate) struct PoolServers {
    gossip: Arc<Gossip>,
    dc: String,
    choice: Mutex<Choice>,
}

impl PoolServers {
    pub(crate) fn new(gossip: Arc<Gossip>, dc: String) -> Self {
        Self {
            gossip,
            dc,
            choice: Mutex::new(Choice::default()),
        }
    }

    fn known(&self) -> Vec<Server> {
        self.gossip
            .members()
            .iter()
            .filter_map(|m| crate::lan::server_addr(m, &self.dc).map(|a| (m.name.clone(), a)))
            .collect()
    }
}

impl Servers for PoolServers {
    fn pick(&self) -> Option<Server> {
        let known = self.known();
        let mut c = self.choice.lock();
        let chosen = c.pick(&known);
        if chosen.is_some() && chosen != c.announced {
            if let Some((name, addr)) = &chosen {
                tracing::info!(server = %name, %addr, "using server");
            }
            c.announced = chosen.clone();
        }
        chosen
    }

    fn failed(&self, server: &Server) {
        self.choice.lock().failed(server);
        let gossip = self.gossip.clone();
        let name = server.0.clone();
        tokio::spawn(async move {
            let _ = gossip.hint_suspect(&name).await;
        });
    }

    fn changed(&self) -> BoxFut<'_, ()> {
        let mut rx = self.gossip.subscribe();
        Box::pin(async move {
            let _ = rx.recv().await;
        })
    }
}

/// A fixed list of servers (tests).
#[cfg(test)]
pub(crate) struct FixedServers {
    list: Vec<Server>,
    choice: Mutex<Choice>,
}

#[cfg(test)]
impl FixedServers {
    pub(crate) fn new(list: Vec<Server>) -> Self {
        Self {
            list,
            choice: Mutex::new(Choice::default()),
        }
    }
}

#[cfg(test)]
impl Servers for FixedServers {
    fn pick(&self) -> Option<Server> {
        self.choice.lock().pick(&self.list)
    }

    fn failed(&self, server: &Server) {
        self.choice.lock().failed(server);
    }

    fn changed(&self) -> BoxFut<'_, ()> {
        Box::pin(std::future::pending())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str, port: u16) -> Server {
        (n.to_string(), SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn sticks_to_a_working_server_and_moves_away_from_a_failed_one() {
        let f = FixedServers::new(vec![s("a", 1), s("b", 2), s("c", 3)]);
        let first = f.pick().unwrap();
        for _ in 0..20 {
            assert_eq!(f.pick().unwrap(), first);
        }
        f.failed(&first);
        for _ in 0..20 {
            let next = f.pick().unwrap();
            assert_ne!(next, first);
            f.failed(&next);
            f.failed(&first);
        }
    }

    #[test]
    fn a_lone_server_is_retried_after_failing() {
        let f = FixedServers::new(vec![s("a", 1)]);
        let a = f.pick().unwrap();
        f.failed(&a);
        assert_eq!(f.pick(), Some(a));
        assert_eq!(FixedServers::new(vec![]).pick(), None);
    }
}
