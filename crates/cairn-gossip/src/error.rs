//! Typed errors of the gossip layer: decoding (a packet's bytes), packets
//! (encryption and framing), configuration and keys, and the runtime's
//! commands. Each says what went wrong in words an operator can act on.

use std::net::SocketAddr;

/// A packet's payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet truncated")]
    Truncated,
    #[error("invalid UTF-8 in a string field")]
    Utf8,
    #[error("unknown {0} tag {1}")]
    BadTag(&'static str, u8),
    #[error("{0} over its size limit")]
    TooLarge(&'static str),
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("rejected: empty packet")]
    Empty,
    #[error("rejected: {0} bytes is over the size limit")]
    TooLarge(usize),
    #[error("rejected: unknown packet version {0} (not a Cairn gossip packet?)")]
    UnknownVersion(u8),
    #[error("rejected: it is encrypted but no encryption key is configured here")]
    UnexpectedEncryption,
    #[error(
        "rejected: it is not encrypted but encryption is enabled here (missing key on the sender?)"
    )]
    MissingEncryption,
    #[error("failed to decrypt: wrong or missing encryption key")]
    Decrypt,
    #[error("failed to decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("rejected by the membership protocol: {0}")]
    Protocol(String),
}

/// An encryption key or keyring operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("encryption key is not valid base64")]
    Base64,
    #[error("encryption key must be 32 bytes (AES-256), got {0}")]
    Length(usize),
    #[error("key is not installed in the keyring")]
    NotInstalled,
    #[error("the primary key cannot be removed; make another key primary first")]
    RemovePrimary,
    #[error("the keyring already holds {0} keys, the most allowed; remove one first")]
    TooMany(usize),
    #[error("gossip encryption is not enabled on this agent (no encrypt key): there is no keyring to manage")]
    NotEnabled,
}

/// The configuration or a value given to a command is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node name must be 1-{max} bytes, got {len}")]
    NodeName { len: usize, max: usize },
    #[error("tags are {size} bytes encoded with the node identity, over the limit of {max}")]
    TagsTooLarge { size: usize, max: usize },
    #[error("tag key or value longer than {max} bytes: {key:?}")]
    TagTooLong { key: String, max: usize },
    #[error("max packet size {0} is outside 512..=65000")]
    PacketSize(usize),
    #[error("{0}")]
    Timing(&'static str),
    #[error("advertise address {0} must be a concrete IP and port (set it when binding 0.0.0.0)")]
    Advertise(SocketAddr),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A runtime command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    #[error("no node answered the join request: tried {0:?}")]
    JoinFailed(Vec<SocketAddr>),
    #[error("node name {name:?} is already used by a live member at {existing}: refused by {refused_by}")]
    NameConflict {
        name: String,
        existing: SocketAddr,
        refused_by: SocketAddr,
    },
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    #[error("member {0:?} is alive: only a failed or left member can be forced to leave")]
    MemberAlive(String),
    #[error("this node has left the cluster")]
    Left,
    #[error("relay factor {0} is over the limit of 5")]
    RelayFactor(u8),
    #[error("too many keyring operations in flight on this agent; retry when they finish")]
    Busy,
    #[error("gossip runtime stopped")]
    Stopped,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("transport: {0}")]
    Io(String),
}
