//! The identity a node gossips about itself: name, advertise address,
//! tags and a (generation, version) pair. foca treats two identities with
//! the same name as the same member and keeps the one that wins
//! [`foca::Identity::win_addr_conflict`]: a restarted node (new generation)
//! replaces its old incarnation, and a tag change (new version) replaces the
//! previous tags everywhere, because the identity itself is what foca
//! disseminates and sends in every message header.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{ConfigError, DecodeError};
use crate::wire::{Reader, Writer};

/// Tags (Consul's serf tags: `role`, `dc`, `port`, `id`, `build`, `vsn`, ...).
pub type Tags = BTreeMap<String, String>;

/// Longest node name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest tag key or value, in bytes.
pub const MAX_TAG_LEN: usize = 255;
/// Largest encoded identity (name, address, tags...). A foca header holds up
/// to three identities and must fit in one datagram, so this bounds tags.
pub const MAX_IDENTITY_LEN: usize = 400;

const FLAG_LEAVING: u8 = 1;

/// One node's identity as foca sees it. Cheap to clone (shared strings).
#[derive(Clone, PartialEq, Eq)]
pub struct NodeId {
    name: Arc<str>,
    addr: SocketAddr,
    generation: u64,
    version: u32,
    leaving: bool,
    tags: Arc<Tags>,
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}#{}.{}{}",
            self.name,
            self.addr,
            self.generation,
            self.version,
            if self.leaving { "(leaving)" } else { "" }
        )
    }
}

impl NodeId {
    /// Builds and validates an identity.
    pub fn new(
        name: &str,
        addr: SocketAddr,
        generation: u64,
        tags: Tags,
    ) -> Result<Self, ConfigError> {
        let id = Self {
            name: Arc::from(name),
            addr,
            generation,
            version: 0,
            leaving: false,
            tags: Arc::new(tags),
        };
        id.validate()?;
        Ok(id)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(ConfigError::NodeName {
                len: self.name.len(),
                max: MAX_NAME_LEN,
            });
        }
        for (k, v) in self.tags.iter() {
            if k.len() > MAX_TAG_LEN || v.len() > MAX_TAG_LEN {
                return Err(ConfigError::TagTooLong {
                    key: k.clone(),
                    max: MAX_TAG_LEN,
                });
            }
        }
        let size = self.encoded_len();
        if size > MAX_IDENTITY_LEN || self.tags.len() > 255 {
            return Err(ConfigError::TagsTooLarge {
                size,
                max: MAX_IDENTITY_LEN,
            });
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Changes on every start of the node (a restart replaces the old one).
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Changes on every tag update within one generation.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Set while the node is leaving gracefully.
    pub fn leaving(&self) -> bool {
        self.leaving
    }
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// The same node with new tags (a newer version).
    pub fn with_tags(&self, tags: Tags) -> Result<Self, ConfigError> {
        let id = Self {
            version: self.version.wrapping_add(1),
            tags: Arc::new(tags),
            ..self.clone()
        };
        id.validate()?;
        Ok(id)
    }

    /// The same node announcing that it is leaving (a newer version).
    pub fn as_leaving(&self) -> Self {
        Self {
            version: self.version.wrapping_add(1),
            leaving: true,
            ..self.clone()
        }
    }

    fn rank(&self) -> (u64, u32, bool) {
        (self.generation, self.version, self.leaving)
    }

    pub(crate) fn encoded_len(&self) -> usize {
        let mut v = Vec::with_capacity(128);
        self.encode(&mut v);
        v.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.wr_str8(&self.name);
        out.wr_socket_addr(self.addr);
        out.wr_u64(self.generation);
        out.wr_u32(self.version);
        out.wr_u8(if self.leaving { FLAG_LEAVING } else { 0 });
        out.wr_u8(u8::try_from(self.tags.len()).unwrap_or(u8::MAX));
        for (k, v) in self.tags.iter().take(255) {
            out.wr_str8(k);
            out.wr_str8(v);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.remaining();
        let name = r.str8()?;
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DecodeError::Invalid("node name length"));
        }
        let addr = r.socket_addr()?;
        let generation = r.u64()?;
        let version = r.u32()?;
        let flags = r.u8()?;
        if flags & !FLAG_LEAVING != 0 {
            return Err(DecodeError::BadTag("identity flags", flags));
        }
        let n = r.u8()?;
        let mut tags = Tags::new();
        for _ in 0..n {
            let k = r.str8()?;
            let v = r.str8()?;
            tags.insert(k.to_owned(), v.to_owned());
        }
        if start - r.remaining() > MAX_IDENTITY_LEN {
            return Err(DecodeError::TooLarge("identity"));
        }
        Ok(Self {
            name: Arc::from(name),
            addr,
            generation,
            version,
            leaving: flags & FLAG_LEAVING != 0,
            tags: Arc::new(tags),
        })
    }
}

impl foca::Identity for NodeId {
    /// Members are keyed by node name, as in Consul.
    type Addr = Arc<str>;

    fn renew(&self) -> Option<Self> {
        // Declared down while alive (a false positive or a partition):
        // come back with a newer version. Never after a graceful leave.
        (!self.leaving).then(|| Self {
            version: self.version.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> Arc<str> {
        self.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        match self.rank().cmp(&adversary.rank()) {
            std::cmp::Ordering::Equal => self.addr > adversary.addr,
            other => other.is_gt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn id(name: &str, generation: u64) -> NodeId {
        NodeId::new(
            name,
            "127.0.0.1:8301".parse().unwrap(),
            generation,
            Tags::new(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let mut tags = Tags::new();
        tags.insert("role".into(), "consul".into());
        tags.insert("dc".into(), "dc1".into());
        let a = NodeId::new("n1", "[::1]:9".parse().unwrap(), 7, tags).unwrap();
        let mut buf = Vec::new();
        a.as_leaving().encode(&mut buf);
        let b = NodeId::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(b, a.as_leaving());
        assert!(b.leaving());
    }

    #[test]
    fn newer_generation_and_version_win() {
        let old = id("n", 1);
        let restarted = id("n", 2);
        assert!(restarted.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&restarted));
        let retagged = old.with_tags(Tags::new()).unwrap();
        assert!(retagged.win_addr_conflict(&old));
        assert!(old.as_leaving().win_addr_conflict(&old));
        assert!(old.as_leaving().renew().is_none());
        assert!(old.renew().unwrap().win_addr_conflict(&old));
    }

    #[test]
    fn limits() {
        assert!(NodeId::new("", "127.0.0.1:1".parse().unwrap(), 0, Tags::new()).is_err());
        let mut tags = Tags::new();
        for i in 0..20 {
            tags.insert(format!("key{i}"), "v".repeat(30));
        }
        let err = NodeId::new("n", "127.0.0.1:1".parse().unwrap(), 0, tags).unwrap_err();
        assert!(matches!(err, ConfigError::TagsTooLarge { .. }), "{err}");
    }
}
