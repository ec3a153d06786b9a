//! The agent's ACL runtime: its settings (default and down policies, datacenter, node),
//! the tokens it holds itself (`acl.tokens` and `/v1/agent/token/*`, saved when
//! persistence is on), and the cache of compiled authorizers per secret, valid while the
//! token's ModifyIndex and the policies and roles tables are unchanged. Resolution here
//! is synchronous, against a given state; `request.rs` decides when to catch up first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_acl::{
    builtin_policy_rules, AccessLevel, Authorizer, DefaultPolicy, Rules, SegmentKind,
    ANONYMOUS_TOKEN_ID,
};
use cairn_state::{ResolvedToken, State};
use parking_lot::{Mutex, RwLock};

use super::{Authz, Resolved};
use crate::acl_down::{DownPolicy, WhenDown};

/// Most resolved tokens kept; the cache starts over when full.
const CACHE_LIMIT: usize = 4096;
/// The AccessorID denials name for the `agent_recovery` token (it is not a stored token).
pub const AGENT_RECOVERY_ACCESSOR: &str = "agent-recovery-token";

/// The agent's ACL settings, its configured tokens and the authorizer cache.
pub struct AclRuntime {
    default_policy: DefaultPolicy,
    datacenter: String,
    /// This agent's node name (what `agent_recovery` grants `agent:write` on).
    node: String,
    tokens: RwLock<AgentTokens>,
    cache: Mutex<HashMap<String, Cached>>,
    /// Saves the tokens after `/v1/agent/token/*` changed them (`enable_token_persistence`).
    persist: Option<Persist>,
    /// Shortest and longest `ExpirationTTL` a new token may have.
    ttl_bounds: (Duration, Duration),
    /// `acl.down_policy` and `acl.token_ttl` (see [`crate::acl_down`]).
    down_policy: DownPolicy,
    token_ttl: Duration,
    /// Called when `/v1/agent/token/*` changed a token (the agent re-syncs).
    on_change: Option<OnTokenChange>,
}

/// `acl.token_ttl` by default (Consul's).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30);

/// What the agent does when `/v1/agent/token/<kind>` changed a token (given the kind).
pub type OnTokenChange = Box<dyn Fn(&str) + Send + Sync>;

/// How the agent saves its tokens.
pub type Persist = Box<dyn Fn(&AgentTokens) -> Result<(), String> + Send + Sync>;

/// The tokens an agent holds (`acl.tokens` and `/v1/agent/token/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AgentTokens {
    /// Used for requests that carry no token.
    pub default: Option<String>,
    /// The agent's own token (its internal operations).
    pub agent: Option<String>,
    /// Recovery token for agent endpoints.
    pub agent_recovery: Option<String>,
    pub replication: Option<String>,
    pub config_file_service_registration: Option<String>,
    pub dns: Option<String>,
}

impl AgentTokens {
    /// The slot of `/v1/agent/token/<kind>` (legacy names included), or `None`.
    pub fn slot(&mut self, kind: &str) -> Option<&mut Option<String>> {
        Some(match kind {
            "default" | "acl_token" => &mut self.default,
            "agent" | "acl_agent_token" => &mut self.agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => {
                &mut self.agent_recovery
            }
            "replication" | "acl_replication_token" => &mut self.replication,
            "config_file_service_registration" => &mut self.config_file_service_registration,
            "dns" => &mut self.dns,
            _ => return None,
        })
    }
}

/// A cache entry: a token's resolution and the indexes it was last found valid against.
struct Cached {
    token_modify: u64,
    /// The tokens table's index when the entry was last found current.
    tokens_index: u64,
    policies_index: u64,
    roles_index: u64,
    expiration_ms: Option<u64>,
    resolved: Arc<Resolved>,
}

impl AclRuntime {
    /// ACLs enforced with `default_policy`, in `datacenter` (identities and policies
    /// scoped to other datacenters grant nothing here).
    pub fn new(default_policy: DefaultPolicy, datacenter: &str, tokens: AgentTokens) -> Self {
        AclRuntime {
            default_policy,
            datacenter: datacenter.to_string(),
            node: String::new(),
            tokens: RwLock::new(tokens),
            cache: Mutex::new(HashMap::new()),
            persist: None,
            ttl_bounds: (crate::acl_tokens::MIN_TTL, crate::acl_tokens::MAX_TTL),
            down_policy: DownPolicy::ExtendCache,
            token_ttl: DEFAULT_TOKEN_TTL,
            on_change: None,
        }
    }

    /// Bounds the `ExpirationTTL` of new tokens (`acl.token_min_expiration_ttl`,
    /// `acl.token_max_expiration_ttl`).
    pub fn with_expiration_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.ttl_bounds = (min, max);
        self
    }

    /// The bounds of `ExpirationTTL`.
    pub fn expiration_ttl_bounds(&self) -> (Duration, Duration) {
        self.ttl_bounds
    }

    /// What to do once no server was heard from for longer than `token_ttl`.
    pub fn with_down_policy(mut self, policy: DownPolicy, token_ttl: Duration) -> Self {
        self.down_policy = policy;
        self.token_ttl = token_ttl;
        self
    }

    /// Calls `f` with the kind of token after `/v1/agent/token/<kind>` changed it.
    pub fn on_token_change(mut self, f: OnTokenChange) -> Self {
        self.on_change = Some(f);
        self
    }

    /// The secret the agent's own operations use: its `agent` token, else its
    /// `default` token, else the anonymous token (as Consul's agent falls back).
    pub fn agent_secret(&self) -> String {
        let t = self.tokens.read();
        t.agent
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| t.default.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| cairn_state::acl::ANONYMOUS_SECRET.to_string())
    }

    /// Saves the tokens with `persist` whenever `/v1/agent/token/*` changes them.
    pub fn with_persistence(mut self, persist: Persist) -> Self {
        self.persist = Some(persist);
        self
    }

    /// Replaces one token (`kind` as in `/v1/agent/token/<kind>`), saving the tokens when
    /// persistence is on. `Ok(false)`: no such kind.
    pub fn set_token(&self, kind: &str, value: Option<String>) -> Result<bool, String> {
        let snapshot = {
            let mut tokens = self.tokens.write();
            let Some(slot) = tokens.slot(kind) else {
                return Ok(false);
            };
            *slot = value;
            tokens.clone()
        };
        if let Some(persist) = &self.persist {
            persist(&snapshot)?;
        }
        if let Some(f) = &self.on_change {
            f(kind);
        }
        Ok(true)
    }

    /// Names this agent's node: the `agent_recovery` token then grants `agent:write` on
    /// it and `node:read` on every node (Consul's recovery token), without any server.
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = node.to_string();
        self
    }

    /// The default policy (`X-Consul-Default-ACL-Policy`).
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default_policy
    }

    /// The agent's tokens.
    pub fn tokens(&self) -> &RwLock<AgentTokens> {
        &self.tokens
    }

    /// `acl.down_policy`.
    pub(super) fn down_policy(&self) -> DownPolicy {
        self.down_policy
    }

    /// How tokens resolve on an agent that last heard from the leader `last_contact_ms`
    /// ago (`down_policy` once that is longer than `token_ttl`).
    pub fn down_decision(&self, last_contact_ms: u64) -> WhenDown {
        crate::acl_down::decide(self.down_policy, last_contact_ms, self.token_ttl)
    }

    /// Resolves `secret` against `st` at wall-clock `now_ms`; `None` when no such (live)
    /// token exists.
    pub fn resolve_in(&self, st: &State, secret: &str, now_ms: u64) -> Option<Authz> {
        self.recovery(secret)
            .or_else(|| self.resolve_stored(st, secret, now_ms))
    }

    /// [`Self::resolve_in`] for a secret already known not to be the recovery token.
    pub(super) fn resolve_stored(&self, st: &State, secret: &str, now_ms: u64) -> Option<Authz> {
        let tables = st.table_indexes();
        let cached = |c: &Cached| {
            if c.expiration_ms.is_some_and(|t| t <= now_ms) {
                return None;
            }
            Some(Authz {
                resolved: c.resolved.clone(),
                enabled: true,
                caught_up: false,
            })
        };
        // No token, policy or role changed since the entry was last checked, and the
        // secret still names the same token (a client's replica can be replaced by a copy
        // from another history with the same indexes): it stands, without reading the
        // token.
        if let Some(c) = self.cache.lock().get(secret).filter(|c| {
            c.tokens_index == tables.acl_tokens
                && c.policies_index == tables.acl_policies
                && c.roles_index == tables.acl_roles
                && st.acl_accessor_by_secret(secret) == Some(c.resolved.accessor_id.as_str())
        }) {
            return cached(c);
        }
        let Some(token) = st.acl_token_by_secret(secret) else {
            // ACLs on but never bootstrapped: the anonymous token does not exist yet and
            // is the default policy alone.
            return (secret == cairn_state::acl::ANONYMOUS_SECRET).then(|| {
                Authz::new(
                    ANONYMOUS_TOKEN_ID.to_string(),
                    secret,
                    Arc::new(Authorizer::default_only(self.default_policy)),
                )
            });
        };
        if token.expired_at(now_ms) {
            return None;
        }
        // Other tokens changed, this one did not: still good, and checked as of now.
        if let Some(c) = self.cache.lock().get_mut(secret).filter(|c| {
            c.token_modify == token.modify_index
                && c.policies_index == tables.acl_policies
                && c.roles_index == tables.acl_roles
        }) {
            c.tokens_index = tables.acl_tokens;
            return cached(c);
        }
        let resolved = st.acl_resolve(secret)?;
        let authz = Authz::new(
            resolved.accessor_id.clone(),
            secret,
            Arc::new(self.compile(&resolved)),
        );
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            secret.to_string(),
            Cached {
                token_modify: resolved.modify_index,
                tokens_index: tables.acl_tokens,
                policies_index: tables.acl_policies,
                roles_index: tables.acl_roles,
                expiration_ms: resolved.expiration_ms,
                resolved: authz.resolved.clone(),
            },
        );
        Some(authz)
    }

    /// The `agent_recovery` token's permissions, when `secret` is it.
    pub(super) fn recovery(&self, secret: &str) -> Option<Authz> {
        if self.node.is_empty() || self.tokens.read().agent_recovery.as_deref() != Some(secret) {
            return None;
        }
        let rules = Rules::new()
            .with(SegmentKind::Agent, &self.node, false, AccessLevel::Write)
            .with(SegmentKind::Node, "", true, AccessLevel::Read);
        Some(Authz::new(
            AGENT_RECOVERY_ACCESSOR.to_string(),
            secret,
            Arc::new(Authorizer::new([&rules], DefaultPolicy::Deny)),
        ))
    }

    /// Resolution while the servers are out of reach (`down_policy` `allow` or `deny`):
    /// the same answer for every secret, named after its token when the replica has it.
    /// `None` for [`WhenDown::Replica`], without looking at the state.
    pub(super) fn when_down(
        &self,
        st: &RwLock<State>,
        secret: &str,
        decision: WhenDown,
    ) -> Option<Authz> {
        let default = match decision {
            WhenDown::Replica => return None,
            WhenDown::AllowAll => DefaultPolicy::Allow,
            WhenDown::DenyAll => DefaultPolicy::Deny,
        };
        let accessor_id = st
            .read()
            .acl_token_by_secret(secret)
            .map(|t| t.accessor_id.clone())
            .unwrap_or_else(|| ANONYMOUS_TOKEN_ID.to_string());
        Some(Authz::new(
            accessor_id,
            secret,
            Arc::new(Authorizer::default_only(default)),
        ))
    }

    /// Compiles a resolved token's policies and identities.
    fn compile(&self, t: &ResolvedToken) -> Authorizer {
        let dc = self.datacenter.as_str();
        let mut all: Vec<Rules> = Vec::new();
        for p in &t.policies {
            if !p.datacenters.is_empty() && !p.datacenters.iter().any(|d| d == dc) {
                continue;
            }
            match builtin_policy_rules(&p.id).map_or_else(|| Rules::parse(&p.rules), Ok) {
                Ok(rules) => all.push(rules),
                // Stored rules were parsed when written; an older build's text that this
                // one cannot read grants nothing rather than failing every request.
                Err(e) => tracing::warn!(policy = %p.name, error = %e, "ACL policy ignored"),
            }
        }
        for s in &t.service_identities {
            if s.datacenters.is_empty() || s.datacenters.iter().any(|d| d == dc) {
                all.push(Rules::service_identity(&s.service_name));
            }
        }
        for n in &t.node_identities {
            if n.datacenter == dc {
                all.push(Rules::node_identity(&n.node_name));
            }
        }
        Authorizer::new(all.iter(), self.default_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::state_with_root;
    use super::*;
    use cairn_state::{AclToken, Command};

    #[test]
    fn resolution_caches_until_the_token_changes_and_refuses_unknown_or_expired() {
        let rt = AclRuntime::new(DefaultPolicy::Deny, "dc1", AgentTokens::default());
        let mut st = state_with_root();
        let a = rt.resolve_in(&st, "root", 0).expect("management");
        assert!(a.authorizer().acl_write().is_allow());
        let again = rt.resolve_in(&st, "root", 0).unwrap();
        assert!(
            Arc::ptr_eq(&a.resolved, &again.resolved),
            "served from the cache, shared"
        );
        // Another token changes: this one's resolution still stands, shared.
        st.apply(
            2,
            &Command::AclTokenSet {
                token: AclToken {
                    accessor_id: "other".into(),
                    secret_id: "other-secret".into(),
                    ..Default::default()
                },
                create: true,
            },
        );
        let after_other = rt.resolve_in(&st, "root", 0).unwrap();
        assert!(Arc::ptr_eq(&a.resolved, &after_other.resolved));
        let anon = rt.resolve_in(&st, "anonymous", 0).unwrap();
        assert_eq!(anon.accessor_id(), ANONYMOUS_TOKEN_ID);
        assert!(!anon.authorizer().key_read("k").is_allow());
        assert!(rt.resolve_in(&st, "nope", 0).is_none());
        // The token loses its policy: the cached authorizer is not used.
        st.apply(
            3,
            &Command::AclTokenSet {
                token: AclToken {
                    accessor_id: "acc".into(),
                    expiration_ms: None,
                    ..Default::default()
                },
                create: false,
            },
        );
        let after = rt.resolve_in(&st, "root", 0).unwrap();
        assert!(!after.authorizer().acl_write().is_allow());
        // Expired tokens do not resolve.
        st.apply(
            4,
            &Command::AclTokenSet {
                token: AclToken {
                    accessor_id: "exp".into(),
                    secret_id: "short".into(),
                    expiration_ms: Some(1_000),
                    ..Default::default()
                },
                create: true,
            },
        );
        assert!(rt.resolve_in(&st, "short", 999).is_some());
        assert!(rt.resolve_in(&st, "short", 1_000).is_none());
    }

    #[test]
    fn while_down_allow_and_deny_answer_for_every_token() {
        let rt = AclRuntime::new(DefaultPolicy::Deny, "dc1", AgentTokens::default());
        let st = RwLock::new(state_with_root());
        assert!(rt.when_down(&st, "root", WhenDown::Replica).is_none());
        let deny = rt.when_down(&st, "root", WhenDown::DenyAll).unwrap();
        assert_eq!(deny.accessor_id(), "acc", "named after the token");
        assert!(!deny.authorizer().key_read("k").is_allow());
        assert!(!deny.authorizer().acl_read().is_allow());
        let allow = rt.when_down(&st, "nobody", WhenDown::AllowAll).unwrap();
        assert_eq!(allow.accessor_id(), ANONYMOUS_TOKEN_ID);
        assert!(allow.authorizer().key_write("k").is_allow());
        assert!(
            !allow.authorizer().acl_write().is_allow(),
            "ACL management is never granted by a default"
        );
    }

    #[test]
    fn the_agent_secret_falls_back_to_default_then_anonymous() {
        let rt = AclRuntime::new(DefaultPolicy::Deny, "dc1", AgentTokens::default());
        assert_eq!(rt.agent_secret(), cairn_state::acl::ANONYMOUS_SECRET);
        rt.set_token("default", Some("d".into())).unwrap();
        assert_eq!(rt.agent_secret(), "d");
        rt.set_token("agent", Some("a".into())).unwrap();
        assert_eq!(rt.agent_secret(), "a");
    }

    #[test]
    fn the_agent_recovery_token_grants_this_agent_only() {
        let tokens = AgentTokens {
            agent_recovery: Some("recover".into()),
            ..Default::default()
        };
        let st = State::new();
        let without_node = AclRuntime::new(DefaultPolicy::Deny, "dc1", tokens.clone());
        assert!(without_node.resolve_in(&st, "recover", 0).is_none());
        let rt = AclRuntime::new(DefaultPolicy::Deny, "dc1", tokens).with_node("n1");
        let a = rt.resolve_in(&st, "recover", 0).expect("recovery token");
        assert!(a.authorizer().agent_write("n1").is_allow());
        assert!(!a.authorizer().agent_write("n2").is_allow());
        assert!(a.authorizer().node_read("n2").is_allow());
        assert!(!a.authorizer().key_read("k").is_allow());
    }
}
