//! In-memory transport: endpoints attached to a shared [`MemoryNetwork`]
//! whose [`NetworkModel`] decides, with a seeded RNG, whether each datagram
//! is dropped (per-link loss, partitions) and how long it is delayed. The
//! same model drives the virtual-time simulator, so a test and a simulation
//! see the same network behaviour.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Transport;
use crate::rng::SeededRng;

/// Loss and delay of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkRules {
    /// Probability that a datagram is dropped (0.0-1.0).
    pub drop: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniformly random delay, 0..jitter.
    pub jitter: Duration,
}

impl Default for LinkRules {
    fn default() -> Self {
        Self {
            drop: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }
}

/// Decides the fate of each datagram. Deterministic for a given seed and
/// sequence of calls.
#[derive(Debug)]
pub struct NetworkModel {
    rng: SeededRng,
    default: LinkRules,
    links: HashMap<(SocketAddr, SocketAddr), LinkRules>,
    /// Node -> partition group; nodes in different groups cannot talk.
    groups: HashMap<SocketAddr, u32>,
    /// Nodes whose traffic is dropped both ways (crashed).
    isolated: HashSet<SocketAddr>,
}

impl NetworkModel {
    pub fn new(seed: u64, default: LinkRules) -> Self {
        Self {
            rng: SeededRng::new(seed),
            default,
            links: HashMap::new(),
            groups: HashMap::new(),
            isolated: HashSet::new(),
        }
    }

    /// Sets the default rules of every link.
    pub fn set_default(&mut self, rules: LinkRules) {
        self.default = rules;
    }

    /// Overrides the rules of one direction of one link.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, rules: LinkRules) {
        self.links.insert((from, to), rules);
    }

    /// Splits the network: each list is a group; nodes not listed are in
    /// group 0 with the first list.
    pub fn partition(&mut self, groups: &[&[SocketAddr]]) {
        self.groups.clear();
        for (i, g) in groups.iter().enumerate() {
            for a in g.iter() {
                self.groups.insert(*a, i as u32);
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.groups.clear();
    }

    /// Drops all traffic to and from `addr` (or restores it).
    pub fn isolate(&mut self, addr: SocketAddr, isolated: bool) {
        if isolated {
            self.isolated.insert(addr);
        } else {
            self.isolated.remove(&addr);
        }
    }

    /// `None` if the datagram is lost, else its delay.
    pub fn route(&mut self, from: SocketAddr, to: SocketAddr) -> Option<Duration> {
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return None;
        }
        let group = |a: &SocketAddr| self.groups.get(a).copied().unwrap_or(0);
        if group(&from) != group(&to) {
            return None;
        }
        let rules = self.links.get(&(from, to)).copied().unwrap_or(self.default);
        if self.rng.chance(rules.drop) {
            return None;
        }
        let jitter = if rules.jitter.is_zero() {
            Duration::ZERO
        } else {
            let nanos = rules.jitter.as_nanos().min(u128::from(u64::MAX)) as u64;
            Duration::from_nanos(self.rng.below(nanos))
        };
        Some(rules.delay + jitter)
    }
}

type Inbox = mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>;

struct Inner {
    model: NetworkModel,
    endpoints: HashMap<SocketAddr, Inbox>,
    next_port: u16,
}

/// A shared in-memory network (clone it to share).
#[derive(Clone)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryNetwork {
    /// A network with a seeded model and default link rules.
    pub fn new(seed: u64, default: LinkRules) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                model: NetworkModel::new(seed, default),
                endpoints: HashMap::new(),
                next_port: 10_000,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the model (loss, partitions...).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut NetworkModel) -> R) -> R {
        f(&mut self.lock().model)
    }

    /// Attaches an endpoint. Port 0 picks a free port; an address in use is
    /// an `AddrInUse` error.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<MemoryTransport> {
        let mut inner = self.lock();
        let mut addr = addr;
        if addr.port() == 0 {
            loop {
                let port = inner.next_port;
                inner.next_port = inner.next_port.checked_add(1).unwrap_or(10_000);
                let candidate = SocketAddr::new(addr.ip(), port);
                if !inner.endpoints.contains_key(&candidate) {
                    addr = candidate;
                    break;
                }
            }
        }
        if inner.endpoints.contains_key(&addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{addr} in use"),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        inner.endpoints.insert(addr, tx);
        Ok(MemoryTransport {
            net: self.clone(),
            local: addr,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    /// An endpoint on 127.0.0.1 with a free port.
    pub fn bind_any(&self) -> io::Result<MemoryTransport> {
        self.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    fn deliver(&self, from: SocketAddr, to: SocketAddr, packet: &[u8]) {
        let (delay, inbox) = {
            let mut inner = self.lock();
            let Some(delay) = inner.model.route(from, to) else {
                return;
            };
            let Some(inbox) = inner.endpoints.get(&to).cloned() else {
                return;
            };
            (delay, inbox)
        };
        let packet = packet.to_vec();
        if delay.is_zero() {
            let _ = inbox.send((from, packet));
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = inbox.send((from, packet));
            });
        }
    }
}

/// One endpoint of a [`MemoryNetwork`]; detached when dropped.
pub struct MemoryTransport {
    net: MemoryNetwork,
    local: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>>,
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.net.lock().endpoints.remove(&self.local);
    }
}

impl Transport for MemoryTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn send_to(&self, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
        if packet.len() > super::MAX_DATAGRAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "datagram too large",
            ));
        }
        self.net.deliver(self.local, to, packet);
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rx = self.rx.lock().await;
        let (from, packet) = rx
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "network dropped"))?;
        let n = packet.len().min(buf.len());
        buf[..n].copy_from_slice(&packet[..n]);
        Ok((n, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)
    }

    #[test]
    fn model_is_seeded_and_honours_partitions() {
        let rules = LinkRules {
            drop: 0.3,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
        };
        let run = |seed| {
            let mut m = NetworkModel::new(seed, rules);
            (0..200).map(|_| m.route(a(1), a(2))).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        let lost = run(5).iter().filter(|r| r.is_none()).count();
        assert!((30..90).contains(&lost), "lost {lost} of 200 at 30%");
        let mut m = NetworkModel::new(1, LinkRules::default());
        m.partition(&[&[a(1)], &[a(2)]]);
        assert_eq!(m.route(a(1), a(2)), None);
        m.heal();
        assert_eq!(m.route(a(1), a(2)), Some(Duration::ZERO));
        m.isolate(a(2), true);
        assert_eq!(m.route(a(1), a(2)), None);
    }
}
