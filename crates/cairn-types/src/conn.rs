//! Admission of incoming connections, shared by the HTTP and DNS-over-TCP listeners.
//!
//! Both listeners must survive a flood: a client that opens thousands of connections, or
//! a machine out of file descriptors. Two small pure pieces do that, with no I/O so they
//! are tested directly:
//!
//! - [`ConnLimiter`] admits a connection only while its client IP holds fewer than
//!   `per_client` connections (Consul's `limits.http_max_conns_per_client`) and the
//!   listener fewer than `total` (derived from the open-file limit, so the listener never
//!   takes the descriptors storage needs). Admission returns a guard that gives the slot
//!   back when the connection ends.
//! - [`AcceptBackoff`] turns a failed `accept()` into a growing pause, so running out of
//!   descriptors makes the loop wait for connections to close instead of spinning on an
//!   error the kernel will return again at once, and says when to log (not every time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client IP already holds `per_client` connections.
    PerClient,
    /// The listener already holds `total` connections.
    Total,
}

#[derive(Debug, Default)]
struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Per-client and total connection limits for one listener. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    per_client: usize,
    total: usize,
    counts: Arc<Mutex<Counts>>,
}

/// A held connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnSlot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnLimiter {
    /// `per_client` = 0 means no per-client limit; `total` is at least 1.
    pub fn new(per_client: usize, total: usize) -> Self {
        Self {
            per_client,
            total: total.max(1),
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnSlot, Refused> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.total {
            return Err(Refused::Total);
        }
        let n = c.per_ip.get(&ip).copied().unwrap_or(0);
        if self.per_client > 0 && n >= self.per_client {
            return Err(Refused::PerClient);
        }
        c.per_ip.insert(ip, n + 1);
        c.total += 1;
        Ok(ConnSlot {
            ip,
            counts: self.counts.clone(),
        })
    }

    /// Connections held now (all clients).
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Pauses after failed `accept()` calls: 5 ms doubling to 1 s, reset by a success.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

/// What to do after a failed accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// How long to wait before accepting again.
    pub wait: Duration,
    /// Whether to log this failure (the first of a run, then every 64th).
    pub log: bool,
}

impl AcceptBackoff {
    /// The smallest pause.
    pub const MIN: Duration = Duration::from_millis(5);
    /// The largest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// Records a failed accept; returns how long to pause and whether to log it.
    pub fn failed(&mut self) -> Pause {
        let shift = self.failures.min(8);
        self.failures = self.failures.saturating_add(1);
        let wait = (Self::MIN * (1u32 << shift)).min(Self::MAX);
        Pause {
            wait,
            log: self.failures == 1 || self.failures.is_multiple_of(64),
        }
    }

    /// Records a successful accept.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// What a listener does with the outcome of one `accept()`: the one decision the HTTP and
/// DNS-over-TCP accept loops share, so each loop only carries it out.
#[derive(Debug)]
pub enum Step<S, E> {
    /// Serve the connection; keep the slot for as long as it lives.
    Admit(S, ConnSlot),
    /// Refuse it (answer or close at once) for this reason.
    Refuse(S, Refused),
    /// `accept()` failed with this error: wait before accepting again (log it if
    /// `Pause::log`).
    Pause(Pause, E),
}

/// A listener's admission state: its [`ConnLimiter`] and [`AcceptBackoff`].
#[derive(Debug)]
pub struct Gate {
    limiter: ConnLimiter,
    backoff: AcceptBackoff,
}

impl Gate {
    /// A gate with the given per-client (0 = none) and total limits.
    pub fn new(per_client: usize, total: usize) -> Self {
        Self {
            limiter: ConnLimiter::new(per_client, total),
            backoff: AcceptBackoff::default(),
        }
    }

    /// Decides what to do with one `accept()` result.
    pub fn step<S, E>(&mut self, accepted: Result<(S, std::net::SocketAddr), E>) -> Step<S, E> {
        match accepted {
            Err(e) => Step::Pause(self.backoff.failed(), e),
            Ok((stream, peer)) => {
                self.backoff.succeeded();
                match self.limiter.admit(peer.ip()) {
                    Ok(slot) => Step::Admit(stream, slot),
                    Err(why) => Step::Refuse(stream, why),
                }
            }
        }
    }

    /// Failed accepts since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }
}

/// The connection budget of one listener from the process's open-file limit: `share`
/// parts in `of` of what is left after `reserve` descriptors (storage, sockets of checks,
/// the other listeners), and never below 16.
pub fn budget(nofile: u64, reserve: u64, share: u64, of: u64) -> usize {
    let free = nofile.saturating_sub(reserve);
    usize::try_from(free.saturating_mul(share) / of.max(1))
        .unwrap_or(usize::MAX)
        .max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_and_total_limits_and_release() {
        let l = ConnLimiter::new(2, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).unwrap_err(), Refused::PerClient);
        let _b1 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).unwrap_err(), Refused::Total);
        assert_eq!(l.open(), 3);
        drop(a1);
        assert_eq!(l.open(), 2);
        let _b2 = l.admit(b).unwrap();
        assert_eq!(l.admit(a).unwrap_err(), Refused::Total);
    }

    #[test]
    fn zero_per_client_means_unlimited() {
        let l = ConnLimiter::new(0, 1000);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| l.admit(a).unwrap()).collect();
        assert_eq!(l.admit(a).unwrap_err(), Refused::Total);
        drop(slots);
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn backoff_grows_caps_logs_sparsely_and_resets() {
        let mut b = AcceptBackoff::default();
        let first = b.failed();
        assert_eq!(first.wait, AcceptBackoff::MIN);
        assert!(first.log);
        let mut last = first.wait;
        let mut logs = 1;
        for _ in 1..200 {
            let p = b.failed();
            assert!(p.wait >= last && p.wait <= AcceptBackoff::MAX);
            last = p.wait;
            logs += usize::from(p.log);
        }
        assert_eq!(last, AcceptBackoff::MAX);
        assert!(logs <= 4, "{logs} log lines for 200 failures");
        b.succeeded();
        assert_eq!(b.failed().wait, AcceptBackoff::MIN);
    }

    #[test]
    fn gate_admits_refuses_and_pauses() {
        let mut g = Gate::new(1, 10);
        let peer: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let first = g.step::<u8, ()>(Ok((1, peer)));
        assert!(matches!(first, Step::Admit(1, _)));
        assert!(matches!(
            g.step::<u8, ()>(Ok((2, peer))),
            Step::Refuse(2, Refused::PerClient)
        ));
        assert!(matches!(g.step::<u8, ()>(Err(())), Step::Pause(p, ()) if p.log));
        assert_eq!(g.failures(), 1);
        drop(first);
        assert!(matches!(g.step::<u8, ()>(Ok((3, peer))), Step::Admit(3, _)));
        assert_eq!(g.failures(), 0);
    }

    #[test]
    fn budget_leaves_the_reserve() {
        assert_eq!(budget(20_000, 256, 3, 4), 14_808);
        assert_eq!(budget(300, 128, 3, 4), 129);
        assert_eq!(budget(100, 128, 3, 4), 16);
    }
}
