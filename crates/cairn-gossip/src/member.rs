//! What the rest of Cairn sees of the membership: a member's full info, its
//! Consul/serf status and the events emitted when it changes.

use std::net::SocketAddr;

use crate::identity::{NodeId, Tags};

/// A member's status, with Consul's numeric codes (`/v1/agent/members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberStatus {
    Alive = 1,
    Leaving = 2,
    Left = 3,
    Failed = 4,
}

impl MemberStatus {
    /// Consul's numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Consul's name (`alive`, `leaving`, `left`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member of the LAN pool, as known by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name (unique in the pool).
    pub name: String,
    /// Advertised gossip address.
    pub addr: SocketAddr,
    /// Tags (`role`, `dc`, `port`, `id`, `build`, `vsn`, ...).
    pub tags: Tags,
    /// Consul/serf status.
    pub status: MemberStatus,
    /// Changes on every restart of the node: a restarted node replaces its
    /// previous incarnation.
    pub generation: u64,
    /// Changes on every tag update within one generation.
    pub version: u32,
}

impl Member {
    pub(crate) fn from_id(id: &NodeId, status: MemberStatus) -> Self {
        Self {
            name: id.name().to_owned(),
            addr: id.addr(),
            tags: id.tags().clone(),
            status,
            generation: id.generation(),
            version: id.version(),
        }
    }
}

/// A change in the membership, carrying the member's full info after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member became alive (new, restarted or back from failed/left).
    Join(Member),
    /// A live member's tags, address or generation changed.
    Update(Member),
    /// A member stopped answering and was declared failed.
    Failed(Member),
    /// A member left gracefully (or was forced to leave).
    Left(Member),
    /// A failed or left member was removed from the member list.
    Reap(Member),
}

impl MemberEvent {
    /// The member the event is about.
    pub fn member(&self) -> &Member {
        match self {
            MemberEvent::Join(m)
            | MemberEvent::Update(m)
            | MemberEvent::Failed(m)
            | MemberEvent::Left(m)
            | MemberEvent::Reap(m) => m,
        }
    }
}
