//! The in-process transport: servers register under a socket address in a [`Network`], clients
//! created from the same network call them directly (no sockets), with the same codec, size
//! limits, deadlines, cancellation and errors as TCP, plus seeded fault injection
//! ([`faults`]) for cluster tests: partitions, message loss and delay.

mod client;
pub mod faults;
mod stream;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use client::LocalClient;
use faults::Faults;

use crate::config::{ClientConfig, ServerConfig};
use crate::protocol::Protocol;
use crate::routes::Routes;

/// A set of in-process servers and the links between them, for any number of protocols.
/// Cheap to clone (clones share).
#[derive(Clone)]
pub struct Network {
    inner: Arc<NetInner>,
}

pub(crate) struct NetInner {
    servers: parking_lot::Mutex<HashMap<SocketAddr, Host>>,
    pub(crate) faults: parking_lot::Mutex<Faults>,
    /// Bumped whenever a link is cut: calls and streams in flight re-check their link.
    pub(crate) cuts: watch::Sender<u64>,
    generations: AtomicU64,
}

/// What a client finds at an address.
#[derive(Clone)]
pub(crate) struct Host {
    pub(crate) routes: Arc<Routes>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) generation: u64,
}

impl NetInner {
    pub(crate) fn lookup(&self, addr: SocketAddr) -> Option<Host> {
        self.servers.lock().get(&addr).cloned()
    }
}

impl Network {
    /// An empty network whose faults draw from `seed` (print it in tests; replay with it).
    pub fn new(seed: u64) -> Self {
        Network {
            inner: Arc::new(NetInner {
                servers: parking_lot::Mutex::new(HashMap::new()),
                faults: parking_lot::Mutex::new(Faults::new(seed)),
                cuts: watch::channel(0).0,
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// Registers a server answering `routes` at `addr`. Fails with `AddrInUse` if a server is
    /// already there. The returned handle unregisters it (and cancels its calls in flight) on
    /// [`LocalServer::shutdown`] or drop.
    pub fn serve(
        &self,
        addr: SocketAddr,
        routes: Routes,
        config: ServerConfig,
    ) -> io::Result<LocalServer> {
        let mut servers = self.inner.servers.lock();
        if servers.contains_key(&addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a server is already registered at {addr}"),
            ));
        }
        let (stop, stopped) = watch::channel(false);
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        servers.insert(
            addr,
            Host {
                routes: Arc::new(routes),
                config: Arc::new(config),
                stopped,
                generation,
            },
        );
        Ok(LocalServer {
            net: self.inner.clone(),
            addr,
            generation,
            stop,
        })
    }

    /// A client of protocol `P` whose calls come from `local` (the address partitions are
    /// keyed on).
    pub fn client<P: Protocol>(&self, local: SocketAddr, config: ClientConfig) -> LocalClient<P> {
        LocalClient::new(self.inner.clone(), local, config)
    }

    /// Cuts the link between `a` and `b` (both directions): new calls fail with
    /// `Unreachable`; calls and streams in flight fail at once with `ConnectionLost`, and their
    /// handlers are dropped (as a TCP server does when keepalive finds the peer gone).
    pub fn partition(&self, a: SocketAddr, b: SocketAddr) {
        self.inner.faults.lock().partition(a, b);
        self.inner.cuts.send_modify(|n| *n += 1);
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&self, a: SocketAddr, b: SocketAddr) {
        self.inner.faults.lock().heal(a, b);
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        self.inner.faults.lock().heal_all();
    }

    /// Loses each call with probability `p` (see [`Faults::set_drop_probability`]); a lost
    /// call fails with `ConnectionLost` (delivery unknown, as on a real network).
    pub fn set_drop_probability(&self, p: f64) {
        self.inner.faults.lock().set_drop_probability(p);
    }

    /// Delays each message by `base` plus up to `jitter`.
    pub fn set_delay(&self, base: Duration, jitter: Duration) {
        self.inner.faults.lock().set_delay(base, jitter);
    }

    /// Streamed items arrive `delay` after they were sent instead of the base delay
    /// (`None`: the base delay again).
    pub fn set_stream_delay(&self, delay: Option<Duration>) {
        self.inner.faults.lock().set_stream_delay(delay);
    }

    /// How many calls the node at `ip` has made (partitioned ones not counted).
    pub fn calls_from(&self, ip: std::net::IpAddr) -> u64 {
        self.inner.faults.lock().calls_from(ip)
    }

    /// The seed faults draw from.
    pub fn seed(&self) -> u64 {
        self.inner.faults.lock().seed()
    }
}

/// A registration in a [`Network`]; dropping it is the same as [`LocalServer::shutdown`].
pub struct LocalServer {
    net: Arc<NetInner>,
    addr: SocketAddr,
    generation: u64,
    stop: watch::Sender<bool>,
}

impl LocalServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Unregisters the server and cancels its calls in flight (their callers get
    /// `ConnectionLost`; new calls get `Unreachable`).
    pub fn shutdown(self) {}
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let mut servers = self.net.servers.lock();
        if servers.get(&self.addr).map(|r| r.generation) == Some(self.generation) {
            servers.remove(&self.addr);
        }
        let _ = self.stop.send(true);
    }
}
