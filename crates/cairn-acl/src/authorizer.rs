//! The authorizer: a token's compiled policies plus the default policy, answering checks.
//!
//! Built once per token (policies, roles' policies and identities flattened by the caller)
//! and then queried per request; every check is a few ordered-map look-ups.
//!
//! Semantics, as Consul's: an exact rule beats a prefix rule, the longest prefix wins, rules
//! for the same name and form merge across policies with deny winning, `write` implies `read`
//! and `list`, `list` implies `read`, and when no rule matches the default policy decides.
//! ACL management is the exception: with no `acl` rule it is denied even under a default
//! policy of `allow`. `mesh` and `peering` fall back to the `operator` rule when unset.

use crate::access::{AccessLevel, DefaultPolicy};
use crate::decision::{Decision, Resource};
use crate::rules::{Rules, ScalarKind, SegmentKind};
use crate::table::Table;

/// A token's permissions.
#[derive(Clone, Debug)]
pub struct Authorizer {
    tables: [Table; 7],
    intentions: Table,
    scalars: [Option<AccessLevel>; 5],
    default: DefaultPolicy,
}

impl Authorizer {
    /// Compiles the rules of every policy (and identity) a token carries.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Rules>, default: DefaultPolicy) -> Self {
        let mut authz = Authorizer {
            tables: Default::default(),
            intentions: Table::default(),
            scalars: [None; 5],
            default,
        };
        for rules in policies {
            authz.add(rules);
        }
        authz
    }

    /// An authorizer with no rules: every check falls to `default`.
    pub fn default_only(default: DefaultPolicy) -> Self {
        Authorizer::new([], default)
    }

    /// An authorizer holding only `global-management`: everything is allowed.
    pub fn management() -> Self {
        Authorizer::new([&Rules::global_management()], DefaultPolicy::Deny)
    }

    /// The default policy this authorizer falls back to.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default
    }

    fn add(&mut self, rules: &Rules) {
        for rule in rules.rules() {
            self.tables[rule.kind.index()].insert(&rule.name, rule.prefix, rule.access);
            if rule.kind == SegmentKind::Service {
                let intentions = rule.intentions.unwrap_or(match rule.access {
                    AccessLevel::Deny => AccessLevel::Deny,
                    _ => AccessLevel::Read,
                });
                self.intentions.insert(&rule.name, rule.prefix, intentions);
            }
        }
        for kind in ScalarKind::ALL {
            if let Some(access) = rules.scalar(kind) {
                let slot = &mut self.scalars[kind.index()];
                *slot = Some(slot.map_or(access, |old| old.merge(access)));
            }
        }
    }

    fn named(
        &self,
        kind: SegmentKind,
        resource: Resource,
        name: &str,
        want: AccessLevel,
    ) -> Decision {
        let allowed = match self.tables[kind.index()].lookup(name) {
            Some(access) => access.grants(want),
            None => self.default.allows(),
        };
        Decision::from_bool(allowed, resource, want, Some(name))
    }

    fn scalar(&self, kind: ScalarKind, resource: Resource, want: AccessLevel) -> Decision {
        let rule = match kind {
            ScalarKind::Mesh | ScalarKind::Peering => {
                self.scalars[kind.index()].or(self.scalars[ScalarKind::Operator.index()])
            }
            _ => self.scalars[kind.index()],
        };
        let allowed = match rule {
            Some(access) => access.grants(want),
            // Consul's static fallback grants ACL management only to management tokens.
            None => kind != ScalarKind::Acl && self.default.allows(),
        };
        Decision::from_bool(allowed, resource, want, None)
    }

    /// `key:read` on `key`.
    pub fn key_read(&self, key: &str) -> Decision {
        self.named(SegmentKind::Key, Resource::Key, key, AccessLevel::Read)
    }

    /// `key:list` on `prefix` (listing keys under it): needs `list` or `write`.
    pub fn key_list(&self, prefix: &str) -> Decision {
        self.named(SegmentKind::Key, Resource::Key, prefix, AccessLevel::List)
    }

    /// `key:write` on `key`.
    pub fn key_write(&self, key: &str) -> Decision {
        self.named(SegmentKind::Key, Resource::Key, key, AccessLevel::Write)
    }

    /// `key:write` on every key under `prefix` (recursive delete). Denied when the longest
    /// prefix rule covering `prefix` is not `write`, or when any rule (exact or prefix) at or
    /// under `prefix` is not `write`; allowed when the covering prefix rule is `write`;
    /// otherwise the default policy decides.
    pub fn key_write_prefix(&self, prefix: &str) -> Decision {
        let table = &self.tables[SegmentKind::Key.index()];
        let covering = table.longest_prefix(prefix);
        let allowed = if covering.is_some_and(|a| a != AccessLevel::Write)
            || table.any_under(prefix, |a| a != AccessLevel::Write)
        {
            false
        } else {
            covering.is_some() || self.default.allows()
        };
        Decision::from_bool(allowed, Resource::Key, AccessLevel::Write, Some(prefix))
    }

    /// `service:read` on `name`.
    pub fn service_read(&self, name: &str) -> Decision {
        self.named(
            SegmentKind::Service,
            Resource::Service,
            name,
            AccessLevel::Read,
        )
    }

    /// `service:write` on `name`.
    pub fn service_write(&self, name: &str) -> Decision {
        self.named(
            SegmentKind::Service,
            Resource::Service,
            name,
            AccessLevel::Write,
        )
    }

    /// `intention:read` for intentions whose destination is `service`; for the wildcard
    /// destination `*`, any service rule's intentions granting read suffices.
    pub fn intention_read(&self, service: &str) -> Decision {
        self.intention(service, AccessLevel::Read)
    }

    /// `intention:write` for intentions whose destination is `service`; for the wildcard
    /// destination `*`, every service rule's intentions must grant write.
    pub fn intention_write(&self, service: &str) -> Decision {
        self.intention(service, AccessLevel::Write)
    }

    fn intention(&self, service: &str, want: AccessLevel) -> Decision {
        let decided = match (service, want) {
            // The wildcard destination: reading needs some intentions rule that reads,
            // writing needs every intentions rule to write.
            ("*", AccessLevel::Read) => self.intentions.any_granted(want),
            ("*", _) => self.intentions.all_granted(want),
            _ => self
                .intentions
                .lookup(service)
                .map(|access| access.grants(want)),
        };
        let allowed = decided.unwrap_or(self.default.allows());
        Decision::from_bool(allowed, Resource::Intention, want, Some(service))
    }

    /// `service:read` on every service (unfiltered listings): denied if any service rule
    /// withholds read; allowed if none does and `service_prefix ""` grants it; otherwise the
    /// default policy decides.
    pub fn service_read_all(&self) -> Decision {
        let table = &self.tables[SegmentKind::Service.index()];
        let allowed = table
            .all_granted(AccessLevel::Read)
            .unwrap_or(self.default.allows());
        Decision::from_bool(allowed, Resource::Service, AccessLevel::Read, None)
    }

    /// `service:write` on at least one service (the token belongs to some workload):
    /// allowed if any service rule grants write; denied if none does and
    /// `service_prefix ""` exists; otherwise the default policy decides.
    pub fn service_write_any(&self) -> Decision {
        let table = &self.tables[SegmentKind::Service.index()];
        let allowed = table
            .any_granted(AccessLevel::Write)
            .unwrap_or(self.default.allows());
        Decision::from_bool(allowed, Resource::Service, AccessLevel::Write, None)
    }

    /// `node:read` on every node, decided as [`Authorizer::service_read_all`] is.
    pub fn node_read_all(&self) -> Decision {
        let table = &self.tables[SegmentKind::Node.index()];
        let allowed = table
            .all_granted(AccessLevel::Read)
            .unwrap_or(self.default.allows());
        Decision::from_bool(allowed, Resource::Node, AccessLevel::Read, None)
    }

    /// `node:read` on `name`.
    pub fn node_read(&self, name: &str) -> Decision {
        self.named(SegmentKind::Node, Resource::Node, name, AccessLevel::Read)
    }

    /// `node:write` on `name`.
    pub fn node_write(&self, name: &str) -> Decision {
        self.named(SegmentKind::Node, Resource::Node, name, AccessLevel::Write)
    }

    /// `session:read` for sessions on `node`.
    pub fn session_read(&self, node: &str) -> Decision {
        self.named(
            SegmentKind::Session,
            Resource::Session,
            node,
            AccessLevel::Read,
        )
    }

    /// `session:write` for sessions on `node`.
    pub fn session_write(&self, node: &str) -> Decision {
        self.named(
            SegmentKind::Session,
            Resource::Session,
            node,
            AccessLevel::Write,
        )
    }

    /// `agent:read` on the agent of `node`.
    pub fn agent_read(&self, node: &str) -> Decision {
        self.named(SegmentKind::Agent, Resource::Agent, node, AccessLevel::Read)
    }

    /// `agent:write` on the agent of `node`.
    pub fn agent_write(&self, node: &str) -> Decision {
        self.named(
            SegmentKind::Agent,
            Resource::Agent,
            node,
            AccessLevel::Write,
        )
    }

    /// `event:read` on user events named `name`.
    pub fn event_read(&self, name: &str) -> Decision {
        self.named(SegmentKind::Event, Resource::Event, name, AccessLevel::Read)
    }

    /// `event:write` (fire) on user events named `name`.
    pub fn event_write(&self, name: &str) -> Decision {
        self.named(
            SegmentKind::Event,
            Resource::Event,
            name,
            AccessLevel::Write,
        )
    }

    /// `query:read` on the prepared query named `name`.
    pub fn query_read(&self, name: &str) -> Decision {
        self.named(SegmentKind::Query, Resource::Query, name, AccessLevel::Read)
    }

    /// `query:write` on the prepared query named `name`.
    pub fn query_write(&self, name: &str) -> Decision {
        self.named(
            SegmentKind::Query,
            Resource::Query,
            name,
            AccessLevel::Write,
        )
    }

    /// `operator:read`.
    pub fn operator_read(&self) -> Decision {
        self.scalar(ScalarKind::Operator, Resource::Operator, AccessLevel::Read)
    }

    /// `operator:write`.
    pub fn operator_write(&self) -> Decision {
        self.scalar(ScalarKind::Operator, Resource::Operator, AccessLevel::Write)
    }

    /// `acl:read` (never granted by the default policy alone).
    pub fn acl_read(&self) -> Decision {
        self.scalar(ScalarKind::Acl, Resource::Acl, AccessLevel::Read)
    }

    /// `acl:write` (never granted by the default policy alone).
    pub fn acl_write(&self) -> Decision {
        self.scalar(ScalarKind::Acl, Resource::Acl, AccessLevel::Write)
    }

    /// Taking or restoring a snapshot: needs `acl = "write"`, as Consul (reported as
    /// `acl:write`; never granted by the default policy alone).
    pub fn snapshot(&self) -> Decision {
        self.acl_write()
    }

    /// `keyring:read`.
    pub fn keyring_read(&self) -> Decision {
        self.scalar(ScalarKind::Keyring, Resource::Keyring, AccessLevel::Read)
    }

    /// `keyring:write`.
    pub fn keyring_write(&self) -> Decision {
        self.scalar(ScalarKind::Keyring, Resource::Keyring, AccessLevel::Write)
    }

    /// `mesh:read` (the `operator` rule decides when no `mesh` rule is set).
    pub fn mesh_read(&self) -> Decision {
        self.scalar(ScalarKind::Mesh, Resource::Mesh, AccessLevel::Read)
    }

    /// `mesh:write` (the `operator` rule decides when no `mesh` rule is set).
    pub fn mesh_write(&self) -> Decision {
        self.scalar(ScalarKind::Mesh, Resource::Mesh, AccessLevel::Write)
    }

    /// `peering:read` (the `operator` rule decides when no `peering` rule is set).
    pub fn peering_read(&self) -> Decision {
        self.scalar(ScalarKind::Peering, Resource::Peering, AccessLevel::Read)
    }

    /// `peering:write` (the `operator` rule decides when no `peering` rule is set).
    pub fn peering_write(&self) -> Decision {
        self.scalar(ScalarKind::Peering, Resource::Peering, AccessLevel::Write)
    }
}
