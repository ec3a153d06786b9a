//! Configuration: the node's identity inputs, timing (Consul's LAN
//! defaults, tunable) and encryption keys, validated once before start.

use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::{decode_key, OVERHEAD};
use crate::error::ConfigError;
use crate::identity::Tags;

/// Protocol timing. Defaults follow memberlist's `DefaultLANConfig` except
/// the probe interval and timeout (halved, for detection within about 3 s)
/// and the suspicion timeout (short, because a suspect is told directly
/// and refutes at once); see `docs/gossip.md` and `docs/PERFORMANCE.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// How often each node probes one member (Consul: 1 s; Cairn: 500 ms).
    pub probe_interval: Duration,
    /// How long a direct probe waits for an ack before asking others to
    /// probe indirectly (Consul: 500 ms; Cairn: 250 ms).
    pub probe_timeout: Duration,
    /// Members asked to probe indirectly (Consul: 3).
    pub indirect_checks: usize,
    /// How often queued updates are gossiped (Consul: 200 ms).
    pub gossip_interval: Duration,
    /// Members each gossip round is sent to (Consul: 3).
    pub gossip_nodes: usize,
    /// How long a suspect has to refute before it is declared failed.
    pub suspicion_timeout: Duration,
    /// Each update is retransmitted `retransmit_mult * ceil(log10(n + 1))`
    /// times (Consul: 4).
    pub retransmit_mult: u32,
    /// Full state exchange with one random member (Consul: 30 s, scaled up
    /// above 32 members as memberlist does).
    pub push_pull_interval: Duration,
    /// How often a failed member is sent an announce so a healed partition
    /// merges back (serf's reconnect interval: 30 s).
    pub reconnect_interval: Duration,
    /// How long a failed member stays listed before it is reaped
    /// (Consul's `reconnect_timeout`: 72 h).
    pub reconnect_timeout: Duration,
    /// How long a left member stays listed before it is reaped (serf's
    /// tombstone timeout: 24 h).
    pub tombstone_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self::lan()
    }
}

impl Timing {
    /// Cairn's LAN defaults (Consul's, with the probe and suspicion changes
    /// described on [`Timing`]).
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_millis(250),
            indirect_checks: 3,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            suspicion_timeout: Duration::from_secs(1),
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
        }
    }

    /// Ten times faster than [`Timing::lan`] (reap timeouts excepted), for
    /// tests on loopback.
    pub fn fast() -> Self {
        let lan = Self::lan();
        Self {
            probe_interval: lan.probe_interval / 10,
            probe_timeout: lan.probe_timeout / 10,
            gossip_interval: lan.gossip_interval / 10,
            suspicion_timeout: lan.suspicion_timeout / 10,
            push_pull_interval: lan.push_pull_interval / 10,
            reconnect_interval: lan.reconnect_interval / 10,
            ..lan
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.probe_interval.is_zero() || self.gossip_interval.is_zero() {
            return Err(ConfigError::Timing("intervals must be positive"));
        }
        if self.probe_timeout.is_zero() || self.probe_timeout >= self.probe_interval {
            return Err(ConfigError::Timing(
                "probe_timeout must be positive and shorter than probe_interval",
            ));
        }
        if self.indirect_checks == 0 || self.gossip_nodes == 0 || self.retransmit_mult == 0 {
            return Err(ConfigError::Timing(
                "indirect_checks, gossip_nodes and retransmit_mult must be at least 1",
            ));
        }
        if self.suspicion_timeout.is_zero()
            || self.push_pull_interval.is_zero()
            || self.reconnect_interval.is_zero()
        {
            return Err(ConfigError::Timing(
                "suspicion, push/pull and reconnect intervals must be positive",
            ));
        }
        Ok(())
    }
}

/// Everything the sans-IO core needs.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// Node name (unique in the pool).
    pub name: String,
    /// Address other members send to.
    pub advertise: SocketAddr,
    /// Initial tags.
    pub tags: Tags,
    /// Encryption keys in base64 (Consul's `encrypt`), primary first; empty
    /// means no encryption.
    pub keys: Vec<String>,
    /// Protocol timing.
    pub timing: Timing,
    /// Largest datagram sent or accepted, headers and encryption included.
    pub max_packet_size: usize,
    /// Distinguishes this start of the node from earlier ones (a restart
    /// must use a larger value: the runtime uses the wall clock in ms).
    pub generation: u64,
    /// Seed of the protocol's randomness (member selection).
    pub seed: u64,
}

impl MembershipConfig {
    /// A config with LAN defaults.
    pub fn new(name: impl Into<String>, advertise: SocketAddr) -> Self {
        Self {
            name: name.into(),
            advertise,
            tags: Tags::new(),
            keys: Vec::new(),
            timing: Timing::lan(),
            max_packet_size: 1400,
            generation: 0,
            seed: 0,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.timing.validate()?;
        if !(512..=65000).contains(&self.max_packet_size) {
            return Err(ConfigError::PacketSize(self.max_packet_size));
        }
        for k in &self.keys {
            decode_key(k)?;
        }
        Ok(())
    }

    /// Room left for foca's message inside one datagram.
    pub(crate) fn foca_packet_size(&self) -> usize {
        // Encryption overhead plus the envelope kind byte.
        self.max_packet_size - OVERHEAD - 1
    }
}
