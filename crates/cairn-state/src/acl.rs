//! ACL tokens, policies and roles: the replicated tables behind `/v1/acl/*` and every
//! permission check.
//!
//! The state machine stores and validates; it does not invent. AccessorIDs, SecretIDs,
//! policy and role IDs, hashes and timestamps are chosen by the proposer (the HTTP layer,
//! the leader for `initial_management`) before the command enters the log, so every replica
//! applies the same entry to the same result. What is decided here is what must be decided
//! against the committed state: that names and secrets are unique, that links point at
//! policies and roles that exist, that bootstrap happens once, and which built-ins exist.
//!
//! A policy or role that is in use may be deleted, as in Consul: the tokens and roles
//! linking to it keep the dangling link, and every read ([`State::acl_token`],
//! [`State::acl_resolve`]) leaves it out.

use std::collections::{BTreeMap, BTreeSet};

use cairn_acl::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID, GLOBAL_MANAGEMENT_POLICY_NAME};
use serde::{Deserialize, Serialize};

use crate::index::at_least_one;
use crate::{ApplyError, Outcome, State};

/// SecretID of the anonymous token.
pub const ANONYMOUS_SECRET: &str = "anonymous";

/// Rule text of the built-in `global-management` policy (as Consul shows it; the
/// authorizer grants everything to this policy's ID whatever the text says).
pub const GLOBAL_MANAGEMENT_RULES: &str = r#"acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"#;

/// A token's or role's link to a policy or role: by ID once stored (the name is filled
/// in from the linked object on every read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLink {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// A service identity: the rules of `Rules::service_identity` for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    pub service_name: String,
    #[serde(default)]
    pub datacenters: Vec<String>,
}

/// A node identity: the rules of `Rules::node_identity` for one node of one datacenter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// An ACL token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclToken {
    pub accessor_id: String,
    pub secret_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub policies: Vec<AclLink>,
    #[serde(default)]
    pub roles: Vec<AclLink>,
    #[serde(default)]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(default)]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(default)]
    pub local: bool,
    /// Wall-clock ms after which the token no longer works (`None`: never expires).
    #[serde(default)]
    pub expiration_ms: Option<u64>,
    /// Wall-clock ms of creation (stamped by the proposer).
    #[serde(default)]
    pub create_time_ms: u64,
    /// Opaque content hash (computed by the proposer).
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl AclToken {
    /// Whether the token has expired at wall-clock `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expiration_ms.is_some_and(|t| t <= now_ms)
    }
}

/// An ACL policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicy {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: String,
    #[serde(default)]
    pub datacenters: Vec<String>,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// An ACL role: a named bundle of policies and identities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRole {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub policies: Vec<AclLink>,
    #[serde(default)]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(default)]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// Body of [`crate::Command::AclBootstrap`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclBootstrap {
    /// The management token to create (its policy link is filled in here).
    pub token: AclToken,
    /// `acl.tokens.initial_management`: a no-op when a token with this secret exists, and
    /// allowed after bootstrap (it then only adds the token).
    pub initial: bool,
}

/// The ACL tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclTables {
    pub(crate) tokens: BTreeMap<String, AclToken>,
    /// SecretID -> AccessorID (derived from `tokens`, kept in step by every write).
    pub(crate) secrets: BTreeMap<String, String>,
    pub(crate) policies: BTreeMap<String, AclPolicy>,
    pub(crate) roles: BTreeMap<String, AclRole>,
    /// Index at which the ACL system was bootstrapped (Consul's reset index).
    pub(crate) bootstrap_index: Option<u64>,
}

/// What a token grants, gathered for the authorizer: its own policies, its roles'
/// policies and every identity, with dangling links left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedToken {
    pub accessor_id: String,
    /// The token's ModifyIndex (cache key, together with [`State::acl_index`]).
    pub modify_index: u64,
    pub expiration_ms: Option<u64>,
    /// Distinct policies, in link order.
    pub policies: Vec<AclPolicy>,
    pub service_identities: Vec<ServiceIdentity>,
    pub node_identities: Vec<NodeIdentity>,
}

fn invalid(msg: impl Into<String>) -> Outcome {
    Outcome::Error(ApplyError::Invalid(msg.into()))
}

impl State {
    // ---- writes --------------------------------------------------------------

    /// Creates the built-in policy and the anonymous token if missing.
    fn acl_ensure_builtins(&mut self, idx: u64) {
        if !self.acl.policies.contains_key(GLOBAL_MANAGEMENT_POLICY_ID) {
            self.acl.policies.insert(
                GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
                AclPolicy {
                    id: GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
                    name: GLOBAL_MANAGEMENT_POLICY_NAME.to_string(),
                    description: "Builtin Policy that grants unlimited access".to_string(),
                    rules: GLOBAL_MANAGEMENT_RULES.to_string(),
                    datacenters: Vec::new(),
                    hash: String::new(),
                    create_index: idx,
                    modify_index: idx,
                },
            );
            self.tables.acl_policies = idx;
        }
        if !self.acl.tokens.contains_key(ANONYMOUS_TOKEN_ID)
            && !self.acl.secrets.contains_key(ANONYMOUS_SECRET)
        {
            self.acl_put_token(
                idx,
                AclToken {
                    accessor_id: ANONYMOUS_TOKEN_ID.to_string(),
                    secret_id: ANONYMOUS_SECRET.to_string(),
                    description: "Anonymous Token".to_string(),
                    create_index: idx,
                    ..Default::default()
                },
            );
        }
    }

    fn acl_put_token(&mut self, idx: u64, mut token: AclToken) -> AclToken {
        token.modify_index = idx;
        if token.create_index == 0 {
            token.create_index = idx;
        }
        if let Some(old) = self.acl.tokens.get(&token.accessor_id) {
            self.acl.secrets.remove(&old.secret_id);
        }
        self.acl
            .secrets
            .insert(token.secret_id.clone(), token.accessor_id.clone());
        self.acl
            .tokens
            .insert(token.accessor_id.clone(), token.clone());
        self.tables.acl_tokens = idx;
        token
    }

    pub(crate) fn acl_bootstrap(&mut self, idx: u64, b: &AclBootstrap) -> Outcome {
        if b.initial {
            if let Some(acc) = self.acl.secrets.get(&b.token.secret_id) {
                let t = self.acl.tokens[acc].clone();
                self.acl_ensure_builtins(idx);
                return Outcome::AclToken(Box::new(self.acl_token_view(&t)));
            }
        } else if let Some(reset) = self.acl.bootstrap_index {
            return Outcome::Error(ApplyError::AclBootstrapDone(reset));
        }
        if b.token.accessor_id.is_empty() || b.token.secret_id.is_empty() {
            return invalid("bootstrap token needs an AccessorID and a SecretID");
        }
        if self.acl.tokens.contains_key(&b.token.accessor_id) {
            return invalid(format!(
                "Token with AccessorID {:?} already exists",
                b.token.accessor_id
            ));
        }
        self.acl_ensure_builtins(idx);
        let mut token = b.token.clone();
        token.policies = vec![AclLink {
            id: GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
            name: GLOBAL_MANAGEMENT_POLICY_NAME.to_string(),
        }];
        token.create_index = 0;
        let stored = self.acl_put_token(idx, token);
        self.acl.bootstrap_index.get_or_insert(idx);
        Outcome::AclToken(Box::new(self.acl_token_view(&stored)))
    }

    /// Checks that every policy link names an existing policy.
    fn acl_check_policy_links(&self, links: &[AclLink]) -> Result<(), ApplyError> {
        for l in links {
            if !self.acl.policies.contains_key(&l.id) {
                return Err(ApplyError::Invalid(format!(
                    "No such ACL policy with ID {:?}",
                    l.id
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn acl_token_set(&mut self, idx: u64, token: &AclToken, create: bool) -> Outcome {
        if token.accessor_id.is_empty() {
            return invalid("token has no AccessorID");
        }
        if let Err(e) = self.acl_check_policy_links(&token.policies) {
            return Outcome::Error(e);
        }
        for l in &token.roles {
            if !self.acl.roles.contains_key(&l.id) {
                return invalid(format!("No such ACL role with ID {:?}", l.id));
            }
        }
        let existing = self.acl.tokens.get(&token.accessor_id).cloned();
        let mut token = token.clone();
        match (&existing, create) {
            (Some(_), true) => {
                return invalid(format!(
                    "Token with AccessorID {:?} already exists",
                    token.accessor_id
                ))
            }
            (None, false) => {
                return Outcome::Error(ApplyError::AclNotFound(format!(
                    "Cannot find token {:?}",
                    token.accessor_id
                )))
            }
            (None, true) => {
                if token.secret_id.is_empty() {
                    return invalid("token has no SecretID");
                }
                token.create_index = 0;
            }
            (Some(old), false) => {
                if !token.secret_id.is_empty() && token.secret_id != old.secret_id {
                    return invalid("Changing a token's SecretID is not permitted");
                }
                if token.local != old.local {
                    return invalid("Cannot toggle local mode of a token");
                }
                token.secret_id = old.secret_id.clone();
                token.create_index = old.create_index;
                token.create_time_ms = old.create_time_ms;
                token.expiration_ms = old.expiration_ms;
            }
        }
        if let Some(other) = self.acl.secrets.get(&token.secret_id) {
            if *other != token.accessor_id {
                return invalid("Token with the given SecretID already exists");
            }
        }
        let stored = self.acl_put_token(idx, token);
        Outcome::AclToken(Box::new(self.acl_token_view(&stored)))
    }

    pub(crate) fn acl_token_delete(&mut self, idx: u64, accessor_id: &str) -> Outcome {
        if accessor_id == ANONYMOUS_TOKEN_ID {
            return invalid("Delete operation not permitted on the anonymous token");
        }
        let Some(t) = self.acl.tokens.remove(accessor_id) else {
            return Outcome::Bool(false);
        };
        self.acl.secrets.remove(&t.secret_id);
        self.tables.acl_tokens = idx;
        Outcome::Bool(true)
    }

    /// Forgets every token expired at `now_ms`.
    pub(crate) fn acl_token_reap(&mut self, idx: u64, now_ms: u64) -> Outcome {
        let gone: Vec<String> = self
            .acl
            .tokens
            .values()
            .filter(|t| t.expired_at(now_ms))
            .map(|t| t.accessor_id.clone())
            .collect();
        for id in &gone {
            if let Some(t) = self.acl.tokens.remove(id) {
                self.acl.secrets.remove(&t.secret_id);
            }
        }
        if !gone.is_empty() {
            self.tables.acl_tokens = idx;
        }
        Outcome::Bool(!gone.is_empty())
    }

    pub(crate) fn acl_policy_set(&mut self, idx: u64, policy: &AclPolicy, create: bool) -> Outcome {
        if policy.id.is_empty() || policy.name.is_empty() {
            return invalid("policy needs an ID and a Name");
        }
        let lower = policy.name.to_lowercase();
        if let Some(other) = self
            .acl
            .policies
            .values()
            .find(|p| p.id != policy.id && p.name.to_lowercase() == lower)
        {
            return invalid(format!(
                "Invalid Policy: A Policy with Name {:?} already exists",
                other.name
            ));
        }
        let existing = self.acl.policies.get(&policy.id);
        let mut policy = policy.clone();
        match (existing, create) {
            (Some(_), true) => {
                return invalid(format!("Policy with ID {:?} already exists", policy.id))
            }
            (None, false) => {
                return Outcome::Error(ApplyError::AclNotFound(format!(
                    "Cannot find policy {:?}",
                    policy.id
                )))
            }
            (None, true) => policy.create_index = idx,
            (Some(old), false) => {
                if old.id == GLOBAL_MANAGEMENT_POLICY_ID {
                    if policy.rules != old.rules {
                        return invalid(
                            "Changing the Rules for the builtin global-management policy is not permitted",
                        );
                    }
                    if !policy.datacenters.is_empty() {
                        return invalid(
                            "Changing the Datacenters of the builtin global-management policy is not permitted",
                        );
                    }
                }
                policy.create_index = old.create_index;
            }
        }
        policy.modify_index = idx;
        self.acl.policies.insert(policy.id.clone(), policy.clone());
        self.tables.acl_policies = idx;
        Outcome::AclPolicy(Box::new(policy))
    }

    pub(crate) fn acl_policy_delete(&mut self, idx: u64, id: &str) -> Outcome {
        if id == GLOBAL_MANAGEMENT_POLICY_ID {
            return invalid(
                "Delete operation not permitted on the builtin global-management policy",
            );
        }
        if self.acl.policies.remove(id).is_none() {
            return Outcome::Bool(false);
        }
        self.tables.acl_policies = idx;
        Outcome::Bool(true)
    }

    pub(crate) fn acl_role_set(&mut self, idx: u64, role: &AclRole, create: bool) -> Outcome {
        if role.id.is_empty() || role.name.is_empty() {
            return invalid("role needs an ID and a Name");
        }
        if let Err(e) = self.acl_check_policy_links(&role.policies) {
            return Outcome::Error(e);
        }
        let lower = role.name.to_lowercase();
        if let Some(other) = self
            .acl
            .roles
            .values()
            .find(|r| r.id != role.id && r.name.to_lowercase() == lower)
        {
            return invalid(format!(
                "Invalid Role: A Role with Name {:?} already exists",
                other.name
            ));
        }
        let mut role = role.clone();
        match (self.acl.roles.get(&role.id), create) {
            (Some(_), true) => {
                return invalid(format!("Role with ID {:?} already exists", role.id))
            }
            (None, false) => {
                return Outcome::Error(ApplyError::AclNotFound(format!(
                    "Cannot find role {:?}",
                    role.id
                )))
            }
            (None, true) => role.create_index = idx,
            (Some(old), false) => role.create_index = old.create_index,
        }
        role.modify_index = idx;
        self.acl.roles.insert(role.id.clone(), role.clone());
        self.tables.acl_roles = idx;
        Outcome::AclRole(Box::new(self.acl_role_view(&role)))
    }

    pub(crate) fn acl_role_delete(&mut self, idx: u64, id: &str) -> Outcome {
        if self.acl.roles.remove(id).is_none() {
            return Outcome::Bool(false);
        }
        self.tables.acl_roles = idx;
        Outcome::Bool(true)
    }

    // ---- reads ---------------------------------------------------------------

    /// Policy links with current names, dangling ones left out.
    fn acl_policy_links(&self, links: &[AclLink]) -> Vec<AclLink> {
        links
            .iter()
            .filter_map(|l| {
                self.acl.policies.get(&l.id).map(|p| AclLink {
                    id: p.id.clone(),
                    name: p.name.clone(),
                })
            })
            .collect()
    }

    /// A token as reads show it: links carry current names, dangling ones are left out.
    pub fn acl_token_view(&self, t: &AclToken) -> AclToken {
        let mut t = t.clone();
        t.policies = self.acl_policy_links(&t.policies);
        t.roles = t
            .roles
            .iter()
            .filter_map(|l| {
                self.acl.roles.get(&l.id).map(|r| AclLink {
                    id: r.id.clone(),
                    name: r.name.clone(),
                })
            })
            .collect();
        t
    }

    /// A role as reads show it (policy links refreshed).
    pub fn acl_role_view(&self, r: &AclRole) -> AclRole {
        let mut r = r.clone();
        r.policies = self.acl_policy_links(&r.policies);
        r
    }

    /// The index at which ACLs were bootstrapped (`None`: not yet).
    pub fn acl_bootstrap_index(&self) -> Option<u64> {
        self.acl.bootstrap_index
    }

    /// Highest index of the three ACL tables: anything a resolved token depends on.
    pub fn acl_index(&self) -> u64 {
        let t = &self.tables;
        at_least_one(t.acl_tokens.max(t.acl_policies).max(t.acl_roles))
    }

    /// One token by AccessorID, and the tokens table index.
    pub fn acl_token(&self, accessor_id: &str) -> (Option<AclToken>, u64) {
        (
            self.acl
                .tokens
                .get(accessor_id)
                .map(|t| self.acl_token_view(t)),
            at_least_one(self.tables.acl_tokens),
        )
    }

    /// One token by SecretID (as stored).
    /// The AccessorID of the token with `secret`, found without reading the token.
    pub fn acl_accessor_by_secret(&self, secret: &str) -> Option<&str> {
        self.acl.secrets.get(secret).map(String::as_str)
    }

    pub fn acl_token_by_secret(&self, secret: &str) -> Option<&AclToken> {
        self.acl
            .secrets
            .get(secret)
            .and_then(|a| self.acl.tokens.get(a))
    }

    /// Every token (by AccessorID).
    pub fn acl_tokens(&self) -> (Vec<AclToken>, u64) {
        (
            self.acl
                .tokens
                .values()
                .map(|t| self.acl_token_view(t))
                .collect(),
            at_least_one(self.tables.acl_tokens),
        )
    }

    /// One policy by ID.
    pub fn acl_policy(&self, id: &str) -> (Option<&AclPolicy>, u64) {
        (
            self.acl.policies.get(id),
            at_least_one(self.tables.acl_policies),
        )
    }

    /// One policy by name (names are unique regardless of case).
    pub fn acl_policy_by_name(&self, name: &str) -> (Option<&AclPolicy>, u64) {
        let lower = name.to_lowercase();
        (
            self.acl
                .policies
                .values()
                .find(|p| p.name.to_lowercase() == lower),
            at_least_one(self.tables.acl_policies),
        )
    }

    /// Every policy (by ID).
    pub fn acl_policies(&self) -> (Vec<&AclPolicy>, u64) {
        (
            self.acl.policies.values().collect(),
            at_least_one(self.tables.acl_policies),
        )
    }

    /// One role by ID.
    pub fn acl_role(&self, id: &str) -> (Option<AclRole>, u64) {
        (
            self.acl.roles.get(id).map(|r| self.acl_role_view(r)),
            at_least_one(self.tables.acl_roles),
        )
    }

    /// One role by name (names are unique regardless of case).
    pub fn acl_role_by_name(&self, name: &str) -> (Option<AclRole>, u64) {
        let lower = name.to_lowercase();
        (
            self.acl
                .roles
                .values()
                .find(|r| r.name.to_lowercase() == lower)
                .map(|r| self.acl_role_view(r)),
            at_least_one(self.tables.acl_roles),
        )
    }

    /// Every role (by ID).
    pub fn acl_roles(&self) -> (Vec<AclRole>, u64) {
        (
            self.acl
                .roles
                .values()
                .map(|r| self.acl_role_view(r))
                .collect(),
            at_least_one(self.tables.acl_roles),
        )
    }

    /// What the token with `secret` grants (`None`: no such token).
    pub fn acl_resolve(&self, secret: &str) -> Option<ResolvedToken> {
        let t = self.acl_token_by_secret(secret)?;
        let mut seen = BTreeSet::new();
        let mut policies = Vec::new();
        let mut service_identities = t.service_identities.clone();
        let mut node_identities = t.node_identities.clone();
        let mut add = |links: &[AclLink], policies: &mut Vec<AclPolicy>| {
            for l in links {
                if let Some(p) = self.acl.policies.get(&l.id) {
                    if seen.insert(p.id.clone()) {
                        policies.push(p.clone());
                    }
                }
            }
        };
        add(&t.policies, &mut policies);
        for l in &t.roles {
            if let Some(r) = self.acl.roles.get(&l.id) {
                add(&r.policies, &mut policies);
                service_identities.extend(r.service_identities.iter().cloned());
                node_identities.extend(r.node_identities.iter().cloned());
            }
        }
        Some(ResolvedToken {
            accessor_id: t.accessor_id.clone(),
            modify_index: t.modify_index,
            expiration_ms: t.expiration_ms,
            policies,
            service_identities,
            node_identities,
        })
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
