//! The outcome of one check, and the permission names Consul uses in its error text.
//!
//! A denial carries what was lacking (`key:read`) and on which resource, so the caller can
//! build Consul's 403 text without repeating the check's details.

use crate::access::AccessLevel;
use crate::error::PermissionDenied;
use std::fmt;

/// The resource part of a permission name (`key` in `key:read`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// KV keys.
    Key,
    /// Services.
    Service,
    /// Intentions (decided by service rules' `intentions`).
    Intention,
    /// Catalog nodes.
    Node,
    /// Sessions.
    Session,
    /// Agent endpoints.
    Agent,
    /// User events.
    Event,
    /// Prepared queries.
    Query,
    /// Operator endpoints.
    Operator,
    /// ACL management.
    Acl,
    /// Gossip keyring.
    Keyring,
    /// Mesh configuration.
    Mesh,
    /// Cluster peering.
    Peering,
}

impl Resource {
    /// The name used in permission strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Key => "key",
            Resource::Service => "service",
            Resource::Intention => "intention",
            Resource::Node => "node",
            Resource::Session => "session",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Query => "query",
            Resource::Operator => "operator",
            Resource::Acl => "acl",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Peering => "peering",
        }
    }
}

/// A permission as Consul names it: `key:read`, `service:write`, `acl:read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    /// What kind of resource.
    pub resource: Resource,
    /// Which level was asked for.
    pub level: AccessLevel,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.level.as_str())
    }
}

/// What a denied check lacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The permission asked for.
    pub permission: Permission,
    /// The resource's name, for named resources; `None` for operator, acl, keyring, ...
    pub resource: Option<String>,
}

/// The outcome of one check.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The token may do this.
    Allow,
    /// The token may not; the details name the permission for the error text.
    Deny(Denied),
}

impl Decision {
    pub(crate) fn from_bool(
        allowed: bool,
        resource: Resource,
        level: AccessLevel,
        name: Option<&str>,
    ) -> Decision {
        if allowed {
            Decision::Allow
        } else {
            Decision::Deny(Denied {
                permission: Permission { resource, level },
                resource: name.map(str::to_string),
            })
        }
    }

    /// Whether the check passed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// `Ok(())` when allowed, else Consul's permission-denied error for `accessor_id`.
    pub fn check(self, accessor_id: &str) -> Result<(), PermissionDenied> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(denied) => Err(PermissionDenied {
                accessor_id: accessor_id.to_string(),
                permission: denied.permission,
                resource: denied.resource,
            }),
        }
    }
}
