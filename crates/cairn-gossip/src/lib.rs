//! LAN membership for Cairn agents: SWIM failure detection and gossip
//! (the `foca` crate) behind a sans-IO core, with Consul/serf semantics
//! (alive, leaving, left, failed; tags; reconnect and tombstone reaping;
//! force-leave), AES-256-GCM packet encryption with a keyring, and a tokio
//! runtime over a [`Transport`] (UDP, or in-memory for tests).
//!
//! Entry points: [`Gossip::start`] / [`Gossip::start_udp`] for a running
//! member, [`Membership`] for the pure core, [`sim::Sim`] for deterministic
//! simulations. See `docs/gossip.md`.

mod codec;
mod config;
mod crypto;
mod envelope;
mod error;
mod identity;
pub mod keyfile;
mod keyquery;
mod member;
mod membership;
mod rng;
mod runtime;
pub mod sim;
pub mod transport;
mod wire;

pub use config::{MembershipConfig, Timing};
pub use crypto::{decode_key, keygen, Keyring};
pub use error::{ConfigError, DecodeError, GossipError, KeyError, PacketError};
pub use identity::{NodeId, Tags, MAX_IDENTITY_LEN, MAX_NAME_LEN, MAX_TAG_LEN};
pub use keyquery::{KeyOp, KeyringReport, MAX_RELAY_FACTOR};
pub use member::{Member, MemberEvent, MemberStatus};
pub use membership::{JoinReply, KeyringSave, Membership, NonceSource, Plan, Stats, Timer};
pub use rng::SeededRng;
pub use runtime::{Gossip, GossipConfig};
pub use transport::{
    LinkRules, MemoryNetwork, MemoryTransport, NetworkModel, Transport, UdpTransport,
};

/// Decodes one received packet the way the core does (framing, decryption,
/// payload decoding), without acting on it. For fuzzing and diagnostics.
pub fn decode_packet(keyring: &Keyring, packet: &[u8]) -> Result<String, PacketError> {
    let payload = keyring.open(packet)?;
    let env = envelope::Envelope::decode(&payload)?;
    if let envelope::Envelope::Foca(data) = &env {
        codec::decode_header_bytes(data)?;
    }
    Ok(format!("{env:?}"))
}
