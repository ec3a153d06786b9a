//! Consul's ACL rules and authorizer, as a pure core.
//!
//! Every endpoint and the DNS server will ask the same question: may this token do this to
//! that resource? This crate answers it without I/O, time or async code, so the HTTP layer,
//! the DNS layer and the state machine all share one set of semantics and one test suite.
//!
//! - [`Rules::parse`] reads a policy's rule text (HCL or JSON, as Consul accepts both).
//! - [`Authorizer::new`] compiles the rules of a token's policies (and its service and node
//!   identities) plus the cluster's default policy into lookup tables.
//! - Each check (`key_read`, `service_write`, ...) returns a [`Decision`]; a denial carries
//!   the permission and resource name, and [`Decision::check`] turns it into
//!   [`PermissionDenied`], whose text is Consul's.

mod access;
mod authorizer;
mod decision;
mod error;
mod identity;
mod parse;
mod parse_hcl;
mod parse_json;
mod rules;
mod table;

pub use access::{AccessLevel, DefaultPolicy};
pub use authorizer::Authorizer;
pub use decision::{Decision, Denied, Permission, Resource};
pub use error::{PermissionDenied, RuleError};
pub use identity::{
    builtin_policy_rules, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID,
    GLOBAL_MANAGEMENT_POLICY_NAME,
};
pub use parse::{MAX_NESTING, MAX_RULES, MAX_RULES_BYTES};
pub use rules::{Rule, Rules, ScalarKind, SegmentKind};
