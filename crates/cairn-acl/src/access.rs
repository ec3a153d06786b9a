//! Access levels (`read`, `list`, `write`, `deny`) and the default policy.
//!
//! Two facts of Consul's model live here so that every other module uses them the same way:
//! which level wins when two rules name the same resource (deny, then write, then list, then
//! read), and which requested permissions a granted level covers (write covers everything,
//! list covers read).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The level a rule grants, or the permission a check asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    /// Explicit denial: nothing is granted and no shorter prefix is consulted.
    Deny,
    /// Read the resource.
    Read,
    /// List keys under a prefix (key rules only); implies read.
    List,
    /// Create, change and delete; implies read and list.
    Write,
}

impl AccessLevel {
    /// The level's name as written in rules and in Consul's error text.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Deny => "deny",
            AccessLevel::Read => "read",
            AccessLevel::List => "list",
            AccessLevel::Write => "write",
        }
    }

    /// Parses a level name; `list` only where `allow_list` (key rules).
    pub fn parse(text: &str, allow_list: bool) -> Option<AccessLevel> {
        match text {
            "deny" => Some(AccessLevel::Deny),
            "read" => Some(AccessLevel::Read),
            "write" => Some(AccessLevel::Write),
            "list" if allow_list => Some(AccessLevel::List),
            _ => None,
        }
    }

    /// Whether a rule granting `self` allows a check asking for `wanted`.
    pub fn grants(self, wanted: AccessLevel) -> bool {
        match self {
            AccessLevel::Write => true,
            AccessLevel::List => matches!(wanted, AccessLevel::Read | AccessLevel::List),
            AccessLevel::Read => wanted == AccessLevel::Read,
            AccessLevel::Deny => false,
        }
    }

    /// The level that stands when two rules for the same resource meet (within one policy
    /// or across a token's policies): deny beats write beats list beats read.
    pub fn merge(self, other: AccessLevel) -> AccessLevel {
        if self.rank() >= other.rank() {
            self
        } else {
            other
        }
    }

    fn rank(self) -> u8 {
        match self {
            AccessLevel::Read => 0,
            AccessLevel::List => 1,
            AccessLevel::Write => 2,
            AccessLevel::Deny => 3,
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens when no rule matches (Consul's `acl.default_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Unmatched checks are allowed, except ACL management (`acl:read`/`acl:write`).
    Allow,
    /// Unmatched checks are denied.
    Deny,
}

impl DefaultPolicy {
    /// Parses `allow` or `deny`.
    pub fn parse(text: &str) -> Option<DefaultPolicy> {
        match text {
            "allow" => Some(DefaultPolicy::Allow),
            "deny" => Some(DefaultPolicy::Deny),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        }
    }

    pub(crate) fn allows(self) -> bool {
        self == DefaultPolicy::Allow
    }
}
