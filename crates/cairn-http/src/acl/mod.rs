//! ACL enforcement: which token a request carries, what it may do, and the 403s.
//!
//! A request's token comes from `X-Consul-Token`, `Authorization: Bearer <token>` or
//! `?token=` (in that order); a request without one uses the agent's `default` token, and
//! without that the anonymous token. The token is resolved against this agent's own replica
//! of the state (clients follow a replica, so no request leaves the node to be authorized),
//! and the compiled [`Authorizer`] is cached per secret, valid while the token's
//! ModifyIndex and the policies and roles tables are unchanged.
//!
//! Handlers take an [`Authz`] argument and ask it (`authz.allow(authz.authorizer().key_read(k))?`).
//! With ACLs disabled the backend has no [`AclRuntime`], every `Authz` is management, and
//! nothing changes.
//!
//! `runtime.rs` holds the agent's settings, its own tokens and the resolution cache;
//! `request.rs` finds a request's token and resolves it (catching the replica up first
//! when the request must see the leader's state).

mod request;
mod runtime;

use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use cairn_acl::{Authorizer, Decision};

use crate::reply::HttpError;

pub use request::{request_token, resolve};
pub use runtime::{
    AclRuntime, AgentTokens, OnTokenChange, Persist, AGENT_RECOVERY_ACCESSOR, DEFAULT_TOKEN_TTL,
};

/// What a request learns from its token: who it is and what it may do. Shared, so that
/// a request whose token is cached costs one reference count, not a copy.
struct Resolved {
    accessor_id: String,
    secret: String,
    authorizer: Arc<Authorizer>,
}

/// What the request's token may do.
#[derive(Clone)]
pub struct Authz {
    resolved: Arc<Resolved>,
    enabled: bool,
    /// The replica caught up with the leader while this request's token was resolved,
    /// after the request arrived: its default-mode read needs no second catch-up.
    caught_up: bool,
}

/// Consul's 403 for a secret that names no token.
pub fn acl_not_found() -> HttpError {
    HttpError::new(StatusCode::FORBIDDEN, "ACL not found")
}

/// Consul's 401 for ACL endpoints on an agent without ACLs.
pub fn acl_disabled() -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, "ACL support disabled")
}

impl Authz {
    /// A token resolved to `authorizer`, with ACLs enforced.
    fn new(accessor_id: String, secret: &str, authorizer: Arc<Authorizer>) -> Authz {
        Authz {
            resolved: Arc::new(Resolved {
                accessor_id,
                secret: secret.to_string(),
                authorizer,
            }),
            enabled: true,
            caught_up: false,
        }
    }

    /// ACLs off: everything is allowed.
    pub fn disabled() -> Authz {
        static MANAGEMENT: OnceLock<Arc<Resolved>> = OnceLock::new();
        Authz {
            resolved: MANAGEMENT
                .get_or_init(|| {
                    Arc::new(Resolved {
                        accessor_id: String::new(),
                        secret: String::new(),
                        authorizer: Arc::new(Authorizer::management()),
                    })
                })
                .clone(),
            enabled: false,
            caught_up: false,
        }
    }

    /// The compiled permissions.
    pub fn authorizer(&self) -> &Authorizer {
        &self.resolved.authorizer
    }

    /// The token's AccessorID (empty with ACLs off).
    pub fn accessor_id(&self) -> &str {
        &self.resolved.accessor_id
    }

    /// The secret the request was resolved from.
    pub fn secret(&self) -> &str {
        &self.resolved.secret
    }

    /// Whether this node's replica caught up with the leader (as a default-mode read
    /// does) during this request, after it arrived.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Whether ACLs are enforced on this agent.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `Ok` when `decision` allows, else Consul's 403 "Permission denied: ...".
    pub fn allow(&self, decision: Decision) -> Result<(), HttpError> {
        decision
            .check(&self.resolved.accessor_id)
            .map_err(|e| HttpError::new(StatusCode::FORBIDDEN, e.to_string()))
    }

    /// Whether `decision` allows (for filtering lists).
    pub fn permits(&self, decision: Decision) -> bool {
        decision.is_allow()
    }

    /// The ACL endpoints answer 401 on an agent without ACLs.
    pub fn require_enabled(&self) -> Result<(), HttpError> {
        if self.enabled {
            Ok(())
        } else {
            Err(acl_disabled())
        }
    }
}

/// Whether `authz` may see one element of a catalog or health listing: `node:read` on
/// its node and `service:read` on its service, wherever the element's shape puts them
/// (`"Node": "n"` or `"Node": {"Node": "n"}`, `"ServiceName": "s"` or
/// `"Service": {"Service": "s"}`).
pub fn visible(authz: &Authz, v: &serde_json::Value) -> bool {
    let a = authz.authorizer();
    let node = match v.get("Node") {
        Some(serde_json::Value::String(n)) => Some(n.as_str()),
        Some(o) => o.get("Node").and_then(serde_json::Value::as_str),
        None => None,
    };
    let service = v
        .get("ServiceName")
        .and_then(serde_json::Value::as_str)
        .or_else(|| {
            v.get("Service")
                .and_then(|s| s.get("Service"))
                .and_then(serde_json::Value::as_str)
        })
        .filter(|s| !s.is_empty());
    node.is_none_or(|n| a.node_read(n).is_allow())
        && service.is_none_or(|s| a.service_read(s).is_allow())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_acl::DefaultPolicy;
    use cairn_state::{AclBootstrap, AclToken, Command, State};
    use serde_json::json;

    pub(super) fn state_with_root() -> State {
        let mut st = State::new();
        st.apply(
            1,
            &Command::AclBootstrap(AclBootstrap {
                token: AclToken {
                    accessor_id: "acc".into(),
                    secret_id: "root".into(),
                    ..Default::default()
                },
                initial: true,
            }),
        );
        st
    }

    #[test]
    fn listing_elements_are_visible_by_node_and_service() {
        let rt = AclRuntime::new(DefaultPolicy::Deny, "dc1", AgentTokens::default());
        let mut st = state_with_root();
        st.apply(
            2,
            &Command::AclPolicySet {
                policy: cairn_state::AclPolicy {
                    id: "p".into(),
                    name: "web".into(),
                    rules:
                        "service \"web\" { policy = \"read\" }\nnode \"n1\" { policy = \"read\" }"
                            .into(),
                    ..Default::default()
                },
                create: true,
            },
        );
        st.apply(
            3,
            &Command::AclTokenSet {
                token: AclToken {
                    accessor_id: "t".into(),
                    secret_id: "s".into(),
                    policies: vec![cairn_state::AclLink {
                        id: "p".into(),
                        name: String::new(),
                    }],
                    ..Default::default()
                },
                create: true,
            },
        );
        let a = rt.resolve_in(&st, "s", 0).unwrap();
        assert!(visible(&a, &json!({"Node": "n1", "ServiceName": "web"})));
        assert!(visible(&a, &json!({"Node": "n1", "ServiceName": ""})));
        assert!(!visible(&a, &json!({"Node": "n2", "ServiceName": "web"})));
        assert!(!visible(&a, &json!({"Node": "n1", "ServiceName": "db"})));
        assert!(visible(
            &a,
            &json!({"Node": {"Node": "n1"}, "Service": {"Service": "web"}})
        ));
        assert!(!visible(
            &a,
            &json!({"Node": {"Node": "n1"}, "Service": {"Service": "db"}})
        ));
    }
}
