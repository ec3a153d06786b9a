//! Built-in policies and the rules that service and node identities expand to.
//!
//! Consul gives these fixed meanings; building them here as values (not parsed text) means
//! the authorizer treats them exactly like any other policy, deny-wins merging included.

use crate::access::AccessLevel::{Read, Write};
use crate::rules::{Rule, Rules, ScalarKind, SegmentKind};

/// ID of the built-in `global-management` policy, which grants everything.
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
/// Name of the built-in `global-management` policy.
pub const GLOBAL_MANAGEMENT_POLICY_NAME: &str = "global-management";
/// AccessorID of the anonymous token (used when a request carries no token).
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";

/// The rules of a built-in policy, by policy ID (`None` for an ID that is not built in).
pub fn builtin_policy_rules(policy_id: &str) -> Option<Rules> {
    (policy_id == GLOBAL_MANAGEMENT_POLICY_ID).then(Rules::global_management)
}

impl Rules {
    /// The `global-management` policy: write on every resource kind (prefix `""`), intentions
    /// write, and write on every scalar resource (acl, operator, keyring, mesh, peering).
    pub fn global_management() -> Rules {
        let mut rules = Rules::new();
        for kind in SegmentKind::ALL {
            rules.push(Rule {
                kind,
                name: String::new(),
                prefix: true,
                access: Write,
                intentions: (kind == SegmentKind::Service).then_some(Write),
            });
        }
        for kind in ScalarKind::ALL {
            rules.set_scalar(kind, Write);
        }
        rules
    }

    /// A service identity: write on the service and its `-sidecar-proxy`, read on every
    /// service and every node (for discovery).
    pub fn service_identity(service: &str) -> Rules {
        Rules::new()
            .with(SegmentKind::Service, service, false, Write)
            .with(
                SegmentKind::Service,
                &format!("{service}-sidecar-proxy"),
                false,
                Write,
            )
            .with(SegmentKind::Service, "", true, Read)
            .with(SegmentKind::Node, "", true, Read)
    }

    /// A node identity: write on the node, read on every service.
    pub fn node_identity(node: &str) -> Rules {
        Rules::new()
            .with(SegmentKind::Node, node, false, Write)
            .with(SegmentKind::Service, "", true, Read)
    }
}
