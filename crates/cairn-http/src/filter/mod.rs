//! Consul's `?filter=` expression language, evaluated over JSON.
//!
//! # Why this module exists
//!
//! Consul's list endpoints (`/v1/catalog/services`, `/v1/health/service/:name`,
//! `/v1/agent/services`, ...) accept a `?filter=<expr>` query parameter written
//! in HashiCorp's [go-bexpr] language, e.g.
//!
//! ```text
//! Service.Meta.version == "2" and Checks.Status == passing
//! "primary" in ServiceTags and not (NodeMeta.env == prod or ServicePort < 1024)
//! ```
//!
//! go-bexpr evaluates expressions against Go structs via reflection. Cairn
//! instead filters the *JSON form* of each result element (exactly what the
//! client sees), so selectors use Consul's JSON field names and this module
//! needs no per-endpoint type information.
//!
//! # Supported subset of go-bexpr
//!
//! * Boolean operators `and`, `or`, `not` (lowercase, as in go-bexpr) and
//!   parentheses. `not` binds tightest, then `and`, then `or`.
//! * Match expressions:
//!   * `Sel == V`, `Sel != V`
//!   * `V in Sel`, `V not in Sel`, `Sel contains V`, `Sel not contains V`
//!   * `Sel is empty`, `Sel is not empty`
//!   * `Sel matches V`, `Sel not matches V` (`V` is a regular expression in
//!     RE2-like syntax, unanchored, compiled once at parse time)
//! * Extension (not in go-bexpr): numeric ordering `Sel < N`, `<=`, `>`, `>=`.
//! * Values: `"double quoted"` strings with Go escapes (`\" \\ \n \t \r \a \b
//!   \f \v \/ \xHH \uHHHH \UHHHHHHHH`), `` `raw` `` strings, or bare words and
//!   numbers (`passing`, `8080`, `-1.5`, `true`, `v1.2.3`). Bare `and`, `or`
//!   and `not` are rejected as values; quote them if you mean the word.
//! * Selectors: dotted identifiers `A.B.C` (`[A-Za-z_][A-Za-z0-9_]*` per
//!   segment) plus go-bexpr's index form for arbitrary map keys:
//!   `Meta["my-key"]`, ``Meta[`my-key`]``. `Meta.my-key` is an error.
//!
//! # Evaluation over JSON
//!
//! * Identifier segments match object keys exactly, falling back to an ASCII
//!   case-insensitive match; bracketed keys match exactly only (Consul map keys
//!   are case-sensitive).
//! * A selector that walks through an array fans out over its elements:
//!   `Checks.Status` on `[{"Status":"passing"},{"Status":"critical"}]` yields
//!   both statuses. `==`, `contains`/`in`, `matches` and the ordering
//!   operators are true if **any** yielded value satisfies them; `is empty` is
//!   true if **every** yielded value is empty (vacuously so for none). The
//!   negated forms (`!=`, `not in`, `not contains`, `not matches`,
//!   `is not empty`) are exactly the negation of the positive form, as in
//!   go-bexpr.
//! * `==` compares scalars only: strings exactly, numbers numerically (or by
//!   their text), booleans via Go's `strconv.ParseBool` spellings
//!   (`true`, `True`, `TRUE`, `t`, `1`, ...). An array or object never equals a
//!   value; use `contains`/`in` for membership.
//! * `contains`/`in`: arrays test membership (scalar `==` per element), strings
//!   test for a substring, objects test for a key (exact).
//! * `is empty`: missing, `null`, `""`, `[]` and `{}` are empty.
//! * Missing paths: `==` is false, `!=` is true, `is empty` is true.
//!
//! Input is bounded: expressions longer than [`MAX_EXPRESSION_LEN`] bytes or
//! nested (parentheses and `not`) deeper than [`MAX_NESTING_DEPTH`] are
//! rejected, and parsing never panics on any input.
//!
//! [go-bexpr]: https://github.com/hashicorp/go-bexpr

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde_json::Value;

mod eval;
mod parse;

#[cfg(test)]
mod tests;

/// Maximum accepted expression length in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Maximum nesting depth of parentheses and `not` operators.
pub const MAX_NESTING_DEPTH: usize = 32;

/// A parse error, with the (0-based, in characters) position it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    message: String,
    position: usize,
}

impl FilterError {
    /// Human-readable description, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 0-based character offset into the expression where the problem was found.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid filter expression at position {}: {}",
            self.position, self.message
        )
    }
}

impl std::error::Error for FilterError {}

/// A parsed `?filter=` expression. Parse once, then call [`Filter::matches`]
/// for every result element.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses a go-bexpr expression. Fails (never panics) on malformed input.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        parse::parse(expr).map(|expr| Filter { expr })
    }

    /// Evaluates the expression against one result element.
    pub fn matches(&self, item: &Value) -> bool {
        self.expr.eval(item)
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Expression tree: built in `parse`, walked in `eval`
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Match(MatchExpr),
}

#[derive(Debug, Clone)]
struct MatchExpr {
    selector: Vec<Segment>,
    kind: MatchKind,
    /// The operator is the negated form (`!=`, `not in`, `is not empty`, ...).
    negate: bool,
}

#[derive(Debug, Clone)]
struct Segment {
    key: String,
    /// Bracketed keys (`Meta["k"]`) match exactly; identifiers fall back to a
    /// case-insensitive match.
    exact: bool,
}

#[derive(Debug, Clone)]
enum MatchKind {
    Equal(String),
    Contains(String),
    Empty,
    Regex(Regex),
    Compare(CmpOp, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}
