//! The crate's two error types: rule text that cannot be accepted, and a denied check.
//!
//! `RuleError` says where the text went wrong (line and column for syntax, the path of the
//! offending rule for meaning) so an operator can fix a policy from the message alone.
//! `PermissionDenied` renders exactly Consul's text, which clients and tools match on.

use crate::decision::Permission;
use crate::identity::ANONYMOUS_TOKEN_ID;
use std::fmt;

/// Why rule text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The text is larger than [`crate::MAX_RULES_BYTES`].
    #[error("rules are {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the text.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text holds more rules than [`crate::MAX_RULES`].
    #[error("rules hold more than {limit} rules (at {path})")]
    TooManyRules {
        /// The limit.
        limit: usize,
        /// The first rule over the limit.
        path: String,
    },
    /// Brackets nest deeper than [`crate::MAX_NESTING`].
    #[error("rules nest deeper than {limit} levels at line {line}, column {column}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line of the bracket over the limit.
        line: usize,
        /// 1-based column (in characters) of that bracket.
        column: usize,
    },
    /// HCL syntax error (the parser's message carries the line and column).
    #[error("invalid HCL rules: {0}")]
    Hcl(String),
    /// JSON syntax error.
    #[error("invalid JSON rules at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// Well-formed text that is not a valid rule (unknown resource, bad level, bad shape).
    #[error("invalid rule at {path}: {message}")]
    Invalid {
        /// Where, e.g. `key_prefix "app/".policy`.
        path: String,
        /// What was found and what was expected.
        message: String,
    },
}

impl RuleError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> RuleError {
        RuleError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A check that was denied, rendered as Consul renders it:
/// `Permission denied: token with AccessorID '<id>' lacks permission 'key:read' on "a/b"`.
///
/// For the anonymous token Consul says `anonymous token` instead of the accessor and adds a
/// sentence explaining that the anonymous token is used when a request carries none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionDenied {
    /// The token's AccessorID (or [`ANONYMOUS_TOKEN_ID`]).
    pub accessor_id: String,
    /// The permission that was lacking.
    pub permission: Permission,
    /// The resource's name, for named resources (keys, services, nodes, ...).
    pub resource: Option<String>,
}

impl fmt::Display for PermissionDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let anonymous = self.accessor_id == ANONYMOUS_TOKEN_ID;
        f.write_str("Permission denied")?;
        if anonymous {
            f.write_str(": anonymous token")?;
        } else {
            write!(f, ": token with AccessorID '{}'", self.accessor_id)?;
        }
        write!(f, " lacks permission '{}'", self.permission)?;
        if let Some(name) = self.resource.as_deref().filter(|n| !n.is_empty()) {
            write!(f, " on \"{name}\"")?;
        }
        if anonymous {
            f.write_str(
                ". The anonymous token is used implicitly when a request does not specify a token.",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PermissionDenied {}
