//! The parsed form of a policy's rules: what a policy says, before it is compiled.
//!
//! Kept separate from the parser (which only produces it) and from the authorizer (which only
//! consumes it), so identities and built-in policies can be built directly as values.

use crate::access::AccessLevel;
use crate::error::RuleError;

/// Resource kinds whose rules name a resource (exactly, or by prefix with `<kind>_prefix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    /// KV keys (`key`, `key_prefix`); the only kind that accepts `list`.
    Key,
    /// Services (`service`, `service_prefix`), with optional `intentions`.
    Service,
    /// Catalog nodes (`node`, `node_prefix`).
    Node,
    /// Sessions, by node name (`session`, `session_prefix`).
    Session,
    /// Agent endpoints, by node name (`agent`, `agent_prefix`).
    Agent,
    /// User events, by event name (`event`, `event_prefix`).
    Event,
    /// Prepared queries, by query name (`query`, `query_prefix`).
    Query,
}

impl SegmentKind {
    /// Every segment kind, in a fixed order.
    pub const ALL: [SegmentKind; 7] = [
        SegmentKind::Key,
        SegmentKind::Service,
        SegmentKind::Node,
        SegmentKind::Session,
        SegmentKind::Agent,
        SegmentKind::Event,
        SegmentKind::Query,
    ];

    /// The exact-match rule name (`key`, `service`, ...); the prefix form adds `_prefix`.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Key => "key",
            SegmentKind::Service => "service",
            SegmentKind::Node => "node",
            SegmentKind::Session => "session",
            SegmentKind::Agent => "agent",
            SegmentKind::Event => "event",
            SegmentKind::Query => "query",
        }
    }

    /// The rule name with `_prefix` when `prefix`.
    pub fn rule_name(self, prefix: bool) -> String {
        if prefix {
            format!("{}_prefix", self.as_str())
        } else {
            self.as_str().to_string()
        }
    }

    /// Parses a rule name: `key` gives `(Key, false)`, `key_prefix` gives `(Key, true)`.
    pub fn from_rule_name(name: &str) -> Option<(SegmentKind, bool)> {
        let (base, prefix) = match name.strip_suffix("_prefix") {
            Some(base) => (base, true),
            None => (name, false),
        };
        let kind = SegmentKind::ALL.into_iter().find(|k| k.as_str() == base)?;
        Some((kind, prefix))
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether `list` is a valid level for this kind.
    pub fn allows_list(self) -> bool {
        self == SegmentKind::Key
    }
}

/// Resource kinds with a single, unnamed rule (`operator = "read"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarKind {
    /// Cluster operations (Raft, autopilot, ...).
    Operator,
    /// ACL management (tokens, policies, roles).
    Acl,
    /// Gossip keyring.
    Keyring,
    /// Mesh configuration; falls back to `operator` when absent.
    Mesh,
    /// Cluster peering; falls back to `operator` when absent.
    Peering,
}

impl ScalarKind {
    /// Every scalar kind, in a fixed order.
    pub const ALL: [ScalarKind; 5] = [
        ScalarKind::Operator,
        ScalarKind::Acl,
        ScalarKind::Keyring,
        ScalarKind::Mesh,
        ScalarKind::Peering,
    ];

    /// The rule name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarKind::Operator => "operator",
            ScalarKind::Acl => "acl",
            ScalarKind::Keyring => "keyring",
            ScalarKind::Mesh => "mesh",
            ScalarKind::Peering => "peering",
        }
    }

    /// Parses a rule name.
    pub fn from_rule_name(name: &str) -> Option<ScalarKind> {
        ScalarKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One named rule: `key_prefix "app/" { policy = "read" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The resource kind.
    pub kind: SegmentKind,
    /// The resource name, or the prefix when `prefix` (may be empty: matches everything).
    pub name: String,
    /// `<kind>_prefix` rather than an exact `<kind>` rule.
    pub prefix: bool,
    /// The granted level.
    pub access: AccessLevel,
    /// Service rules only: the level for intentions whose destination matches. When absent,
    /// a `read` or `write` service rule grants intentions `read`, a `deny` one denies them.
    pub intentions: Option<AccessLevel>,
}

/// The rules of one policy (or one identity), as parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
    scalars: [Option<AccessLevel>; 5],
}

impl Rules {
    /// No rules at all (everything falls to the default policy).
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Parses rule text in HCL or JSON (JSON when the first non-blank character is `{`).
    pub fn parse(text: &str) -> Result<Rules, RuleError> {
        crate::parse::parse(text)
    }

    /// Adds a named rule.
    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Builder form of [`Rules::push`] for a rule without `intentions`.
    pub fn with(
        mut self,
        kind: SegmentKind,
        name: &str,
        prefix: bool,
        access: AccessLevel,
    ) -> Rules {
        self.push(Rule {
            kind,
            name: name.to_string(),
            prefix,
            access,
            intentions: None,
        });
        self
    }

    /// Sets a scalar rule; a second setting merges with the first (deny wins).
    pub fn set_scalar(&mut self, kind: ScalarKind, access: AccessLevel) {
        let slot = &mut self.scalars[kind.index()];
        *slot = Some(match *slot {
            Some(old) => old.merge(access),
            None => access,
        });
    }

    /// Builder form of [`Rules::set_scalar`].
    pub fn with_scalar(mut self, kind: ScalarKind, access: AccessLevel) -> Rules {
        self.set_scalar(kind, access);
        self
    }

    /// The named rules, in the order written.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The scalar rule of `kind`, if the policy sets one.
    pub fn scalar(&self, kind: ScalarKind) -> Option<AccessLevel> {
        self.scalars[kind.index()]
    }

    /// Named rules plus scalar rules set.
    pub fn len(&self) -> usize {
        self.rules.len() + self.scalars.iter().filter(|s| s.is_some()).count()
    }

    /// Whether the policy has no rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
