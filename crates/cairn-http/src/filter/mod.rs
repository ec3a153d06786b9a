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

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

/// Maximum accepted expression length in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Maximum nesting depth of parentheses and `not` operators.
pub const MAX_NESTING_DEPTH: usize = 32;
/// Upper bound on the compiled size of a `matches` regular expression.
const MAX_REGEX_SIZE: usize = 1 << 20;

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
        if expr.len() > MAX_EXPRESSION_LEN {
            return Err(FilterError {
                message: format!(
                    "expression is {} bytes long; the maximum is {MAX_EXPRESSION_LEN}",
                    expr.len()
                ),
                position: 0,
            });
        }
        if expr.trim().is_empty() {
            return Err(FilterError {
                message: "empty filter expression".to_string(),
                position: 0,
            });
        }
        let mut p = Parser {
            src: expr,
            pos: 0,
            depth: 0,
        };
        let parsed = p.parse_or()?;
        p.skip_ws();
        match p.peek() {
            None => Ok(Filter { expr: parsed }),
            Some(')') => Err(p.err(p.pos, "unmatched ')'")),
            Some(_) => Err(p.err(
                p.pos,
                "expected 'and', 'or' or the end of the expression".to_string(),
            )),
        }
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
// AST and evaluation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Match(MatchExpr),
}

impl Expr {
    fn eval(&self, item: &Value) -> bool {
        match self {
            Expr::And(all) => all.iter().all(|e| e.eval(item)),
            Expr::Or(any) => any.iter().any(|e| e.eval(item)),
            Expr::Not(inner) => !inner.eval(item),
            Expr::Match(m) => m.eval(item),
        }
    }
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

impl MatchExpr {
    fn eval(&self, item: &Value) -> bool {
        let found = resolve(item, &self.selector);
        let positive = match &self.kind {
            MatchKind::Equal(want) => found.iter().any(|v| scalar_eq(v, want)),
            MatchKind::Contains(want) => found.iter().any(|v| contains(v, want)),
            MatchKind::Empty => found.iter().all(|v| is_empty(v)),
            MatchKind::Regex(re) => found
                .iter()
                .any(|v| scalar_text(v).is_some_and(|t| re.is_match(&t))),
            MatchKind::Compare(op, rhs) => found
                .iter()
                .any(|v| numeric(v).is_some_and(|lhs| compare(*op, lhs, *rhs))),
        };
        positive != self.negate
    }
}

/// Walks `path` from `root`, fanning out over arrays. Missing keys yield
/// nothing.
fn resolve<'a>(root: &'a Value, path: &[Segment]) -> Vec<&'a Value> {
    let mut current = vec![root];
    for seg in path {
        let mut next = Vec::new();
        for v in current {
            step(v, seg, &mut next);
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

fn step<'a>(v: &'a Value, seg: &Segment, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            if let Some(found) = lookup(map, seg) {
                out.push(found);
            }
        }
        Value::Array(items) => {
            for item in items {
                step(item, seg, out);
            }
        }
        _ => {}
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, seg: &Segment) -> Option<&'a Value> {
    match map.get(&seg.key) {
        Some(v) => Some(v),
        None if seg.exact => None,
        None => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&seg.key))
            .map(|(_, v)| v),
    }
}

fn scalar_eq(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Number(n) => number_eq(n, want),
        Value::Bool(b) => parse_bool(want) == Some(*b),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

fn number_eq(n: &Number, want: &str) -> bool {
    if n.to_string() == want {
        return true;
    }
    if let (Some(a), Ok(b)) = (n.as_i64(), want.parse::<i64>()) {
        return a == b;
    }
    if let (Some(a), Ok(b)) = (n.as_u64(), want.parse::<u64>()) {
        return a == b;
    }
    match (n.as_f64(), want.parse::<f64>()) {
        (Some(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "True" | "TRUE" => Some(true),
        "0" | "f" | "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn contains(v: &Value, want: &str) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|e| scalar_eq(e, want)),
        Value::String(s) => s.contains(want),
        Value::Object(map) => map.contains_key(want),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Numbers, and strings holding a number (Consul `Meta` values are strings).
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn compare(op: CmpOp, lhs: f64, rhs: f64) -> bool {
    match op {
        CmpOp::Lt => lhs < rhs,
        CmpOp::Le => lhs <= rhs,
        CmpOp::Gt => lhs > rhs,
        CmpOp::Ge => lhs >= rhs,
    }
}

// ---------------------------------------------------------------------------
// Parser (scannerless recursive descent; recursion bounded by `depth`)
// ---------------------------------------------------------------------------

/// Boolean keywords that can never be a bare value or a selector.
const RESERVED: [&str; 3] = ["and", "or", "not"];

/// Characters allowed in a bare (unquoted) value.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '+' | '@')
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset; always on a char boundary.
    pos: usize,
    depth: usize,
}

/// A literal value and whether it was quoted.
struct Literal {
    text: String,
    quoted: bool,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn err(&self, at: usize, message: impl Into<String>) -> FilterError {
        let at = at.min(self.src.len());
        FilterError {
            message: message.into(),
            position: self.src[..at].chars().count(),
        }
    }

    /// True if the input continues with `kw` as a whole word.
    fn at_keyword(&self, kw: &str) -> bool {
        let rest = self.rest();
        rest.starts_with(kw) && !rest[kw.len()..].chars().next().is_some_and(is_word_char)
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(self.err(
                at,
                format!("expression is nested too deeply (maximum depth {MAX_NESTING_DEPTH})"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_and()?];
        loop {
            self.skip_ws();
            if !self.eat_keyword("or") {
                break;
            }
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_not()?];
        loop {
            self.skip_ws();
            if !self.eat_keyword("and") {
                break;
            }
            items.push(self.parse_not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_not(&mut self) -> Result<Expr, FilterError> {
        self.skip_ws();
        let start = self.pos;
        if self.eat_keyword("not") {
            self.enter(start)?;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.err(
                self.pos,
                "unexpected end of expression; expected a match expression",
            )),
            Some('(') => {
                let open = self.pos;
                self.bump();
                self.enter(open)?;
                let inner = self.parse_or()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    let open_pos = self.src[..open].chars().count();
                    return Err(self.err(
                        self.pos,
                        format!("expected ')' to close the '(' at position {open_pos}"),
                    ));
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            Some(')') => Err(self.err(self.pos, "expected a match expression, found ')'")),
            Some(_) => self.parse_match().map(Expr::Match),
        }
    }

    fn parse_match(&mut self) -> Result<MatchExpr, FilterError> {
        let start = self.pos;

        // Value-first form: `V in Sel` / `V not in Sel`.
        if let Some(value) = self.parse_literal()? {
            self.skip_ws();
            if let Some(negate) = self.eat_in_operator() {
                self.skip_ws();
                let selector = self.parse_selector("after 'in'")?;
                return Ok(MatchExpr {
                    selector,
                    kind: MatchKind::Contains(value.text),
                    negate,
                });
            }
            if value.quoted {
                return Err(self.err(
                    self.pos,
                    "expected 'in' or 'not in' after a quoted value \
                     (selectors are never quoted: use Sel == \"value\")",
                ));
            }
        }

        // Selector-first forms.
        self.pos = start;
        let selector = self.parse_selector("")?;
        self.skip_ws();
        let op_pos = self.pos;
        let (kind, negate) = if self.eat("==") {
            (MatchKind::Equal(self.parse_value("after '=='")?), false)
        } else if self.eat("!=") {
            (MatchKind::Equal(self.parse_value("after '!='")?), true)
        } else if self.eat("<=") {
            (self.parse_compare(CmpOp::Le, "<=")?, false)
        } else if self.eat(">=") {
            (self.parse_compare(CmpOp::Ge, ">=")?, false)
        } else if self.eat("<") {
            (self.parse_compare(CmpOp::Lt, "<")?, false)
        } else if self.eat(">") {
            (self.parse_compare(CmpOp::Gt, ">")?, false)
        } else if self.eat_keyword("is") {
            self.skip_ws();
            let negate = self.eat_keyword("not");
            self.skip_ws();
            if !self.eat_keyword("empty") {
                let what = if negate { "'is not'" } else { "'is'" };
                return Err(self.err(self.pos, format!("expected 'empty' after {what}")));
            }
            (MatchKind::Empty, negate)
        } else if self.eat_keyword("contains") {
            (
                MatchKind::Contains(self.parse_value("after 'contains'")?),
                false,
            )
        } else if self.eat_keyword("matches") {
            (self.parse_regex("after 'matches'")?, false)
        } else if self.eat_keyword("not") {
            self.skip_ws();
            if self.eat_keyword("contains") {
                (
                    MatchKind::Contains(self.parse_value("after 'not contains'")?),
                    true,
                )
            } else if self.eat_keyword("matches") {
                (self.parse_regex("after 'not matches'")?, true)
            } else if self.at_keyword("in") {
                return Err(self.err(
                    op_pos,
                    "'not in' takes the value on the left: \"value\" not in Selector \
                     (or use Selector not contains \"value\")",
                ));
            } else {
                return Err(self.err(self.pos, "expected 'contains' or 'matches' after 'not'"));
            }
        } else if self.at_keyword("in") {
            return Err(self.err(
                op_pos,
                "'in' takes the value on the left: \"value\" in Selector \
                 (or use Selector contains \"value\")",
            ));
        } else {
            return Err(self.unknown_operator(op_pos));
        };
        Ok(MatchExpr {
            selector,
            kind,
            negate,
        })
    }

    fn unknown_operator(&self, at: usize) -> FilterError {
        const EXPECTED: &str =
            "expected an operator (==, !=, <, <=, >, >=, contains, in, is empty, matches)";
        let rest = self.rest();
        let symbol: String = rest
            .chars()
            .take_while(|c| "=!<>~&|^%*".contains(*c))
            .collect();
        let word: String = rest.chars().take_while(|c| is_word_char(*c)).collect();
        if !symbol.is_empty() {
            self.err(at, format!("unknown operator '{symbol}'; {EXPECTED}"))
        } else if !word.is_empty() {
            self.err(at, format!("unknown operator '{word}'; {EXPECTED}"))
        } else if let Some(c) = rest.chars().next() {
            self.err(at, format!("unexpected '{c}'; {EXPECTED}"))
        } else {
            self.err(at, format!("unexpected end of expression; {EXPECTED}"))
        }
    }

    /// `in` → `Some(false)`, `not in` → `Some(true)`; otherwise consumes nothing.
    fn eat_in_operator(&mut self) -> Option<bool> {
        if self.eat_keyword("in") {
            return Some(false);
        }
        let save = self.pos;
        if self.eat_keyword("not") {
            self.skip_ws();
            if self.eat_keyword("in") {
                return Some(true);
            }
        }
        self.pos = save;
        None
    }

    fn parse_compare(&mut self, op: CmpOp, name: &str) -> Result<MatchKind, FilterError> {
        self.skip_ws();
        let at = self.pos;
        let text = self.parse_value(&format!("after '{name}'"))?;
        match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(MatchKind::Compare(op, n)),
            _ => Err(self.err(
                at,
                format!("operator '{name}' requires a numeric value, found {text:?}"),
            )),
        }
    }

    fn parse_regex(&mut self, context: &str) -> Result<MatchKind, FilterError> {
        self.skip_ws();
        let at = self.pos;
        let pattern = self.parse_value(context)?;
        RegexBuilder::new(&pattern)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map(MatchKind::Regex)
            .map_err(|e| {
                let detail = e.to_string().replace('\n', " ");
                self.err(
                    at,
                    format!("invalid regular expression {pattern:?}: {detail}"),
                )
            })
    }

    /// A value that must be present.
    fn parse_value(&mut self, context: &str) -> Result<String, FilterError> {
        self.skip_ws();
        let at = self.pos;
        match self.parse_literal()? {
            Some(lit) if !lit.quoted && RESERVED.contains(&lit.text.as_str()) => Err(self.err(
                at,
                format!(
                    "expected a value {context}, found keyword '{}' (quote it to use it as a value)",
                    lit.text
                ),
            )),
            Some(lit) => Ok(lit.text),
            None => Err(self.err(at, format!("expected a value {context}"))),
        }
    }

    /// A quoted string or bare word; `None` (consuming nothing) if neither.
    fn parse_literal(&mut self) -> Result<Option<Literal>, FilterError> {
        match self.peek() {
            Some('"') => self.parse_quoted().map(Some),
            Some('`') => {
                let open = self.pos;
                self.bump();
                match self.rest().find('`') {
                    Some(end) => {
                        let text = self.rest()[..end].to_string();
                        self.pos += end + 1;
                        Ok(Some(Literal { text, quoted: true }))
                    }
                    None => Err(self.err(open, "unterminated raw string (missing closing '`')")),
                }
            }
            _ => {
                let len: usize = self
                    .rest()
                    .chars()
                    .take_while(|c| is_word_char(*c))
                    .map(char::len_utf8)
                    .sum();
                if len == 0 {
                    return Ok(None);
                }
                let text = self.rest()[..len].to_string();
                self.pos += len;
                Ok(Some(Literal {
                    text,
                    quoted: false,
                }))
            }
        }
    }

    fn parse_quoted(&mut self) -> Result<Literal, FilterError> {
        let open = self.pos;
        self.bump(); // opening quote
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(self.err(open, "unterminated string (missing closing '\"')")),
                Some('"') => {
                    return Ok(Literal {
                        text: out,
                        quoted: true,
                    })
                }
                Some('\\') => {
                    let c = match self.bump() {
                        None => {
                            return Err(self.err(open, "unterminated string (missing closing '\"')"))
                        }
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('a') => '\u{07}',
                        Some('b') => '\u{08}',
                        Some('f') => '\u{0C}',
                        Some('v') => '\u{0B}',
                        Some('x') => self.parse_hex_escape(at, 2)?,
                        Some('u') => self.parse_hex_escape(at, 4)?,
                        Some('U') => self.parse_hex_escape(at, 8)?,
                        Some(other) => {
                            return Err(self
                                .err(at, format!("invalid escape sequence '\\{other}' in string")))
                        }
                    };
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn parse_hex_escape(&mut self, at: usize, digits: usize) -> Result<char, FilterError> {
        let hex: String = self.rest().chars().take(digits).collect();
        if hex.len() != digits || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.err(
                at,
                format!("invalid escape sequence: expected {digits} hex digits"),
            ));
        }
        self.pos += digits;
        let code =
            u32::from_str_radix(&hex, 16).map_err(|_| self.err(at, "invalid escape sequence"))?;
        // `\xHH` is a raw byte in Go; only ASCII bytes make sense in a &str.
        if digits == 2 && code > 0x7F {
            return Err(self.err(at, format!("escape '\\x{hex}' is not valid UTF-8")));
        }
        char::from_u32(code).ok_or_else(|| {
            self.err(
                at,
                format!("escape '{hex}' is not a valid Unicode code point"),
            )
        })
    }

    fn parse_selector(&mut self, context: &str) -> Result<Vec<Segment>, FilterError> {
        let sep = if context.is_empty() { "" } else { " " };
        let start = self.pos;
        let Some(first) = self.parse_ident() else {
            return Err(self.err(start, format!("expected a selector{sep}{context}")));
        };
        if RESERVED.contains(&first.as_str()) {
            return Err(self.err(
                start,
                format!("expected a selector{sep}{context}, found keyword '{first}'"),
            ));
        }
        let mut segments = vec![Segment {
            key: first,
            exact: false,
        }];
        loop {
            match self.peek() {
                Some('.') => {
                    self.bump();
                    let at = self.pos;
                    let Some(key) = self.parse_ident() else {
                        return Err(self.err(
                            at,
                            "expected a field name after '.' \
                             (use Sel[\"key\"] for keys with special characters)",
                        ));
                    };
                    segments.push(Segment { key, exact: false });
                }
                Some('[') => {
                    let open = self.pos;
                    self.bump();
                    self.skip_ws();
                    let at = self.pos;
                    let key = match self.parse_literal()? {
                        Some(Literal { text, quoted: true }) => text,
                        _ => {
                            return Err(self.err(at, "expected a quoted string inside '[...]'"));
                        }
                    };
                    self.skip_ws();
                    if !self.eat("]") {
                        let open_pos = self.src[..open].chars().count();
                        return Err(self.err(
                            self.pos,
                            format!("expected ']' to close the '[' at position {open_pos}"),
                        ));
                    }
                    segments.push(Segment { key, exact: true });
                }
                _ => break,
            }
        }
        if let Some(c) = self.peek().filter(|c| is_word_char(*c)) {
            return Err(self.err(
                self.pos,
                format!(
                    "invalid character '{c}' in selector \
                     (use Sel[\"key\"] for keys with special characters)"
                ),
            ));
        }
        Ok(segments)
    }

    fn parse_ident(&mut self) -> Option<String> {
        let rest = self.rest();
        if !rest.chars().next().is_some_and(is_ident_start) {
            return None;
        }
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        self.pos += len;
        Some(rest[..len].to_string())
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `/v1/health/service/:name` element.
    fn health() -> Value {
        json!({
            "Node": {
                "Node": "node-1",
                "Address": "10.0.0.1",
                "Datacenter": "dc1",
                "Meta": {"env": "prod", "rack": "r1", "my-key": "dashed", "weight": "10"}
            },
            "Service": {
                "ID": "web-1",
                "Service": "web",
                "Tags": ["primary", "v2"],
                "Port": 8080,
                "Address": "",
                "Meta": {"version": "2"},
                "EnableTagOverride": false,
                "Weights": {"Passing": 10, "Warning": 1}
            },
            "Checks": [
                {"CheckID": "serfHealth", "Status": "passing", "Notes": "", "ServiceTags": []},
                {"CheckID": "service:web-1", "Status": "critical", "Notes": "", "ServiceTags": ["primary", "v2"]}
            ]
        })
    }

    /// A `/v1/catalog/service/:name` element.
    fn catalog() -> Value {
        json!({
            "Node": "node-2",
            "Address": "10.0.0.2",
            "NodeMeta": {"env": "staging"},
            "ServiceName": "web-api",
            "ServiceTags": ["primary", "canary"],
            "ServicePort": 8443,
            "ServiceAddress": "",
            "ServiceMeta": {},
            "ServiceEnableTagOverride": true,
            "ServiceWeights": {"Passing": 1.5},
            "CreateIndex": 18446744073709551615u64,
            "Nothing": null
        })
    }

    fn check(expr: &str, item: &Value) -> bool {
        Filter::parse(expr)
            .unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"))
            .matches(item)
    }

    fn assert_match(expr: &str, item: &Value, expected: bool) {
        assert_eq!(check(expr, item), expected, "filter {expr:?}");
    }

    fn parse_err(expr: &str) -> FilterError {
        match Filter::parse(expr) {
            Ok(f) => panic!("{expr:?} should not parse, got {f:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the error message contains `needle` and the position is `pos`.
    fn assert_err(expr: &str, needle: &str, pos: usize) {
        let e = parse_err(expr);
        assert!(
            e.message().contains(needle),
            "{expr:?}: message {:?} lacks {needle:?}",
            e.message()
        );
        assert_eq!(e.position(), pos, "{expr:?}: {e}");
    }

    #[test]
    fn equality_on_strings_with_all_value_forms() {
        let c = catalog();
        for expr in [
            r#"ServiceName == "web-api""#,
            "ServiceName == `web-api`",
            "ServiceName == web-api",
            "ServiceName==web-api",
            "  ServiceName   ==   \"web-api\"  ",
        ] {
            assert_match(expr, &c, true);
        }
        assert_match(r#"ServiceName == "web""#, &c, false);
        assert_match(r#"ServiceName != "web""#, &c, true);
        assert_match(r#"ServiceName != "web-api""#, &c, false);
        assert_match(r#"Node == "node-2""#, &c, true);
        assert_match(r#"Address == 10.0.0.2"#, &c, true);
    }

    #[test]
    fn string_escapes_and_raw_strings() {
        let item = json!({"S": "a\"b\\c\nd\t/é", "R": r"C:\dir\n"});
        assert_match(r#"S == "a\"b\\c\nd\t\/\u00e9""#, &item, true);
        assert_match(r#"S == "a\x22b\\c\nd\t/\U000000e9""#, &item, true);
        assert_match(r"R == `C:\dir\n`", &item, true);
        assert_match(r#"R == "C:\\dir\\n""#, &item, true);
        let bell = json!({"B": "\u{7}\u{8}\u{c}\u{b}\r"});
        assert_match(r#"B == "\a\b\f\v\r""#, &bell, true);
    }

    #[test]
    fn numbers_and_bools_compare_by_value() {
        let c = catalog();
        assert_match("ServicePort == 8443", &c, true);
        assert_match(r#"ServicePort == "8443""#, &c, true);
        assert_match("ServicePort == 8443.0", &c, true);
        assert_match("ServicePort == 8.443e3", &c, true);
        assert_match("ServicePort == 8080", &c, false);
        assert_match("ServicePort != 8080", &c, true);
        assert_match("ServiceWeights.Passing == 1.5", &c, true);
        assert_match("CreateIndex == 18446744073709551615", &c, true);
        assert_match("CreateIndex == 18446744073709551614", &c, false);
        for t in ["true", "True", "TRUE", "t", "1", "\"true\""] {
            assert_match(&format!("ServiceEnableTagOverride == {t}"), &c, true);
        }
        assert_match("ServiceEnableTagOverride == false", &c, false);
        assert_match("ServiceEnableTagOverride != false", &c, true);
        assert_match("ServiceEnableTagOverride == yes", &c, false);
        let h = health();
        assert_match("Service.EnableTagOverride == false", &h, true);
        assert_match("Service.Port == 8080", &h, true);
        let neg = json!({"N": -3, "F": -0.25});
        assert_match("N == -3", &neg, true);
        assert_match("F == -0.25", &neg, true);
        assert_match("F == -.25", &neg, true);
    }

    #[test]
    fn null_and_containers_never_equal_a_value() {
        let c = catalog();
        assert_match("Nothing == null", &c, false);
        assert_match("Nothing != null", &c, true);
        assert_match("ServiceTags == primary", &c, false);
        assert_match("ServiceMeta == x", &c, false);
    }

    #[test]
    fn ordering_operators() {
        let c = catalog();
        assert_match("ServicePort > 8000", &c, true);
        assert_match("ServicePort >= 8443", &c, true);
        assert_match("ServicePort > 8443", &c, false);
        assert_match("ServicePort < 9000", &c, true);
        assert_match("ServicePort <= 8442", &c, false);
        assert_match("ServicePort<=8443", &c, true);
        assert_match("ServiceWeights.Passing < 2", &c, true);
        // Numeric strings compare numerically; others never match.
        let h = health();
        assert_match("Node.Meta.weight > 9", &h, true);
        assert_match("Node.Meta.env > 0", &h, false);
        assert_match("Node.Meta.env < 0", &h, false);
        assert_match("Missing > 0", &h, false);
        // Fan-out: any check weight...
        let item = json!({"Xs": [{"N": 1}, {"N": 5}]});
        assert_match("Xs.N > 4", &item, true);
        assert_match("Xs.N > 5", &item, false);
    }

    #[test]
    fn contains_and_in_on_arrays_strings_and_objects() {
        let c = catalog();
        // Arrays: membership.
        assert_match("ServiceTags contains primary", &c, true);
        assert_match(r#""primary" in ServiceTags"#, &c, true);
        assert_match("primary in ServiceTags", &c, true);
        assert_match("`canary` in ServiceTags", &c, true);
        assert_match(r#""prim" in ServiceTags"#, &c, false);
        assert_match(r#""prim" not in ServiceTags"#, &c, true);
        assert_match(r#""primary" not in ServiceTags"#, &c, false);
        assert_match("ServiceTags not contains secondary", &c, true);
        assert_match("ServiceTags not contains canary", &c, false);
        // Strings: substring.
        assert_match(r#"ServiceName contains "b-a""#, &c, true);
        assert_match(r#""api" in ServiceName"#, &c, true);
        assert_match(r#"ServiceName contains "API""#, &c, false);
        // Objects: key present.
        assert_match("NodeMeta contains env", &c, true);
        assert_match("env in NodeMeta", &c, true);
        assert_match("staging in NodeMeta", &c, false);
        assert_match("NodeMeta not contains rack", &c, true);
        // Numbers in arrays compare by value; scalars other than strings never contain.
        let item = json!({"Ports": [80, 443], "N": 80});
        assert_match("443 in Ports", &item, true);
        assert_match("Ports contains 8080", &item, false);
        assert_match("N contains 80", &item, false);
        // Missing.
        assert_match("x in Missing", &c, false);
        assert_match("x not in Missing", &c, true);
        assert_match("Missing not contains x", &c, true);
        // Bare values with dots and dashes in value-first position.
        let tags = json!({"Tags": ["v1.2.3", "web-1"]});
        assert_match("v1.2.3 in Tags", &tags, true);
        assert_match("web-1 in Tags", &tags, true);
        assert_match("8443 in ServiceName", &c, false);
    }

    #[test]
    fn is_empty_and_is_not_empty() {
        let c = catalog();
        assert_match("ServiceMeta is empty", &c, true);
        assert_match("ServiceAddress is empty", &c, true);
        assert_match("Nothing is empty", &c, true);
        assert_match("Missing is empty", &c, true);
        assert_match("Missing.Deeper.Still is empty", &c, true);
        assert_match("ServiceTags is empty", &c, false);
        assert_match("NodeMeta is empty", &c, false);
        assert_match("ServicePort is empty", &c, false);
        assert_match("ServiceEnableTagOverride is empty", &c, false);
        assert_match("ServiceMeta is not empty", &c, false);
        assert_match("ServiceTags is not empty", &c, true);
        assert_match("Missing is not empty", &c, false);
        assert_match("ServiceTags   is   not   empty", &c, true);
        assert_match("Empty is empty", &json!({"Empty": []}), true);
        // Fan-out: empty only if every element is empty.
        let h = health();
        assert_match("Checks.Notes is empty", &h, true);
        assert_match("Checks.ServiceTags is empty", &h, false);
        assert_match("Checks.ServiceTags is not empty", &h, true);
        assert_match("Checks.Status is empty", &h, false);
    }

    #[test]
    fn matches_and_not_matches() {
        let c = catalog();
        assert_match(r#"ServiceName matches "^web-.*""#, &c, true);
        assert_match(r#"ServiceName matches "api""#, &c, true); // unanchored
        assert_match(r#"ServiceName matches "^api""#, &c, false);
        assert_match(r#"ServiceName not matches "^api""#, &c, true);
        assert_match(r#"ServiceName not matches "^web""#, &c, false);
        assert_match(r"ServiceName matches `^web-\w+$`", &c, true);
        assert_match(r#"ServiceName matches "^web-\\w+$""#, &c, true);
        assert_match(r#"ServicePort matches "^84""#, &c, true);
        assert_match("ServiceEnableTagOverride matches `^tr`", &c, true);
        assert_match("ServiceTags matches primary", &c, false); // not a scalar
        assert_match(r#"Missing matches ".*""#, &c, false);
        assert_match(r#"Missing not matches ".*""#, &c, true);
        let h = health();
        assert_match(r#"Checks.CheckID matches "^service:""#, &h, true);
        assert_match(r#"Checks.CheckID not matches "^service:""#, &h, false);
    }

    #[test]
    fn arrays_of_objects_fan_out_with_any_semantics() {
        let h = health();
        assert_match("Checks.Status == passing", &h, true);
        assert_match("Checks.Status == critical", &h, true);
        assert_match("Checks.Status == warning", &h, false);
        assert_match("Checks.Status != warning", &h, true);
        assert_match("Checks.Status != passing", &h, false);
        assert_match("Checks.ServiceTags contains v2", &h, true);
        assert_match("v3 in Checks.ServiceTags", &h, false);
        assert_match("Checks.Missing == x", &h, false);
        assert_match("Checks.Missing is empty", &h, true);
        // Nested arrays flatten.
        let nested = json!({"A": [[{"B": 1}], [{"B": 2}, {"C": 3}]], "E": []});
        assert_match("A.B == 2", &nested, true);
        assert_match("A.C == 3", &nested, true);
        assert_match("A.B == 3", &nested, false);
        assert_match("E.X == 1", &nested, false);
        assert_match("E.X is empty", &nested, true);
        // Applying a filter to a top-level array element list.
        let all = json!([{"Status": "passing"}, {"Status": "critical"}]);
        assert_match("Status == critical", &all, true);
    }

    #[test]
    fn maps_dotted_and_bracketed() {
        let h = health();
        assert_match(r#"Service.Meta.version == "2""#, &h, true);
        assert_match("Service.Meta.version == 2", &h, true);
        assert_match(r#"Node.Meta.env != "prod""#, &h, false);
        assert_match(r#"Node.Meta["my-key"] == dashed"#, &h, true);
        assert_match("Node.Meta[`my-key`] == dashed", &h, true);
        assert_match(r#"Node.Meta[ "my-key" ] == dashed"#, &h, true);
        assert_match(r#"Node["Meta"]["env"] == prod"#, &h, true);
        assert_match(r#"Node["Meta"].env == prod"#, &h, true);
        assert_match(r#"Node.Meta["missing"] is empty"#, &h, true);
        assert_match(r#""my-key" in Node.Meta"#, &h, true);
        assert_match(r#"Service.Weights.Passing == 10"#, &h, true);
    }

    #[test]
    fn case_insensitive_fallback_prefers_exact_key() {
        let h = health();
        assert_match("service.service == web", &h, true);
        assert_match("SERVICE.TAGS contains primary", &h, true);
        assert_match("checks.status == passing", &h, true);
        // Bracketed keys are exact.
        assert_match(r#"Node.Meta["ENV"] == prod"#, &h, false);
        assert_match(r#"Node.Meta.ENV == prod"#, &h, true);
        let both = json!({"name": "lower", "Name": "upper"});
        assert_match("Name == upper", &both, true);
        assert_match("name == lower", &both, true);
        assert_match("Name == lower", &both, false);
    }

    #[test]
    fn missing_fields() {
        let c = catalog();
        assert_match("Missing == x", &c, false);
        assert_match("Missing != x", &c, true);
        assert_match("Missing is empty", &c, true);
        assert_match("ServiceName.Deeper == x", &c, false);
        assert_match("ServiceName.Deeper != x", &c, true);
        assert_match("ServicePort.X is empty", &c, true);
        // Walking into a scalar root.
        assert_match("A == b", &json!("string"), false);
        assert_match("A is empty", &json!(null), true);
    }

    #[test]
    fn boolean_operators_and_precedence() {
        let c = catalog();
        let t = "ServicePort == 8443"; // true
        let f = "ServicePort == 1"; // false
        assert_match(&format!("{t} and {t}"), &c, true);
        assert_match(&format!("{t} and {f}"), &c, false);
        assert_match(&format!("{f} or {t}"), &c, true);
        assert_match(&format!("{f} or {f}"), &c, false);
        assert_match(&format!("not {f}"), &c, true);
        assert_match(&format!("not {t}"), &c, false);
        assert_match(&format!("not not {t}"), &c, true);
        // `and` binds tighter than `or`: t or (f and f) = true; (t or f) and f = false.
        assert_match(&format!("{t} or {f} and {f}"), &c, true);
        assert_match(&format!("{f} and {f} or {t}"), &c, true);
        assert_match(&format!("({t} or {f}) and {f}"), &c, false);
        // `not` binds tighter than `and`/`or`: (not t) or t = true; not (t or t) = false.
        assert_match(&format!("not {t} or {t}"), &c, true);
        assert_match(&format!("not ({t} or {t})"), &c, false);
        assert_match(&format!("not {f} and {t}"), &c, true);
        assert_match(&format!("not ({f} and {t})"), &c, true);
        assert_match(&format!("not ({t} and {t})"), &c, false);
        // Parentheses, whitespace, chains.
        assert_match(&format!("(({t}))"), &c, true);
        assert_match(&format!("({f})or({t})"), &c, true);
        assert_match(&format!("not({f})"), &c, true);
        assert_match(&format!("{t} and {t} and {t} and {f}"), &c, false);
        assert_match(&format!("{f} or {f} or {f} or {t}"), &c, true);
        // Realistic combination from the Consul docs.
        assert_match(
            r#"NodeMeta.env != "prod" and ServicePort > 8000 and "primary" in ServiceTags"#,
            &c,
            true,
        );
        assert_match(
            r#"not (ServiceName == "x" or ServiceAddress is not empty)"#,
            &c,
            true,
        );
        let h = health();
        assert_match(
            "Service.Service == web and (Checks.Status == critical or Service.Port < 1024)",
            &h,
            true,
        );
    }

    #[test]
    fn keywords_need_word_boundaries() {
        let item = json!({"notes": "x", "order": 1, "android": true, "isx": 1, "index": "a"});
        assert_match("notes == x", &item, true);
        assert_match("order == 1", &item, true);
        assert_match("android == true", &item, true);
        assert_match("index == a and isx == 1", &item, true);
        // Bare values may start with keywords.
        assert_match("notes != orange", &item, true);
        // A bare keyword is not a value, a quoted one is.
        assert!(Filter::parse("index == and").is_err());
        assert_match(r#"index == "and""#, &json!({"index": "and"}), true);
    }

    #[test]
    fn parse_is_reusable_and_fromstr_works() {
        let f: Filter = "ServiceTags contains primary".parse().unwrap();
        let items = [catalog(), json!({"ServiceTags": []}), json!({})];
        let kept: Vec<bool> = items.iter().map(|i| f.matches(i)).collect();
        assert_eq!(kept, [true, false, false]);
        let cloned = f.clone();
        assert!(cloned.matches(&catalog()));
    }

    #[test]
    fn error_cases_have_messages_and_positions() {
        assert_err("", "empty filter expression", 0);
        assert_err("   \t ", "empty filter expression", 0);
        // Parentheses.
        assert_err("(A == b", "expected ')' to close the '(' at position 0", 7);
        assert_err("A == b)", "unmatched ')'", 6);
        assert_err("()", "found ')'", 1);
        assert_err("((A == b)", "expected ')'", 9);
        // Missing value / selector / operator.
        assert_err("A ==", "expected a value after '=='", 4);
        assert_err("A == ", "expected a value after '=='", 5);
        assert_err("A != )", "expected a value after '!='", 5);
        assert_err("A == and B == c", "found keyword 'and'", 5);
        assert_err("A contains", "expected a value after 'contains'", 10);
        assert_err("A not contains", "after 'not contains'", 14);
        assert_err("== b", "expected a selector", 0);
        assert_err("A", "unexpected end of expression; expected an operator", 1);
        assert_err("A ==b and", "unexpected end of expression", 9);
        assert_err("A == b or", "unexpected end of expression", 9);
        assert_err("not", "unexpected end of expression", 3);
        assert_err("A == b c == d", "expected 'and', 'or'", 7);
        assert_err("A == b && c == d", "expected 'and', 'or'", 7);
        // Unknown operators.
        assert_err("A = b", "unknown operator '='", 2);
        assert_err("A =~ b", "unknown operator '=~'", 2);
        assert_err("A equals b", "unknown operator 'equals'", 2);
        assert_err(r#"Meta["x"] in B"#, "'in' takes the value on the left", 10);
        assert_err(
            r#"Meta["x"] not in B"#,
            "'not in' takes the value on the left",
            10,
        );
        assert_err(
            "A not equals b",
            "expected 'contains' or 'matches' after 'not'",
            6,
        );
        assert_err("A is", "expected 'empty' after 'is'", 4);
        assert_err("A is not", "expected 'empty' after 'is not'", 8);
        assert_err("A is full", "expected 'empty' after 'is'", 5);
        assert_err("A ? b", "unexpected '?'", 2);
        assert_err("A > x", "requires a numeric value", 4);
        assert_err("A > NaN", "requires a numeric value", 4);
        assert_err("A >= inf", "requires a numeric value", 5);
        // Selectors.
        assert_err(
            r#""A" == "b""#,
            "expected 'in' or 'not in' after a quoted value",
            4,
        );
        assert_err("x in", "expected a selector after 'in'", 4);
        assert_err("x in 5", "expected a selector after 'in'", 5);
        assert_err("x not in and", "found keyword 'and'", 9);
        assert_err("A. == b", "expected a field name after '.'", 2);
        assert_err(".A == b", "expected a selector", 0);
        assert_err("A..B == b", "expected a field name after '.'", 2);
        assert_err("Meta.my-key == x", "invalid character '-' in selector", 7);
        assert_err("Meta.1x == x", "expected a field name after '.'", 5);
        assert_err(
            "Meta[my] == x",
            "expected a quoted string inside '[...]'",
            5,
        );
        assert_err(
            r#"Meta["k" == x"#,
            "expected ']' to close the '[' at position 4",
            9,
        );
        assert_err("Meta[] == x", "expected a quoted string", 5);
        assert_err("and == x", "found keyword 'and'", 0);
        // Strings.
        assert_err(r#"A == "abc"#, "unterminated string", 5);
        assert_err(r#"A == "abc\"#, "unterminated string", 5);
        assert_err("A == `abc", "unterminated raw string", 5);
        assert_err(r#"A == "\q""#, r"invalid escape sequence '\q'", 6);
        assert_err(r#"A == "\u12""#, "expected 4 hex digits", 6);
        assert_err(r#"A == "\xZZ""#, "expected 2 hex digits", 6);
        assert_err(r#"A == "\xff""#, "not valid UTF-8", 6);
        assert_err(r#"A == "\ud800""#, "not a valid Unicode code point", 6);
        assert_err(r#"A == "\U00110000""#, "not a valid Unicode code point", 6);
        // Regex.
        assert_err(r#"A matches "(""#, "invalid regular expression", 10);
        assert_err(r#"A not matches "[z-a]""#, "invalid regular expression", 14);
        assert_err("A matches", "expected a value after 'matches'", 9);
        assert_err(
            r#"A matches "a{100000}{100000}""#,
            "invalid regular expression",
            10,
        );
        // Positions are in characters, not bytes.
        assert_err("é == x ==", "expected a selector", 0);
        assert_err("Ä == \"ö\" )", "expected a selector", 0);
        assert_err("A == \"ö\" )", "unmatched ')'", 9);
    }

    #[test]
    fn error_display_includes_position_and_message() {
        let e = parse_err("A == b)");
        assert_eq!(
            e.to_string(),
            "invalid filter expression at position 6: unmatched ')'"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("unmatched"));
    }

    #[test]
    fn length_limit() {
        let clause = "ServicePort == 8443 or ";
        let mut ok = String::new();
        while ok.len() + clause.len() < MAX_EXPRESSION_LEN - 32 {
            ok.push_str(clause);
        }
        ok.push_str("ServicePort == 1");
        let pad = MAX_EXPRESSION_LEN - ok.len();
        ok.push_str(&" ".repeat(pad));
        assert_eq!(ok.len(), MAX_EXPRESSION_LEN);
        assert_match(&ok, &catalog(), true);
        ok.push(' ');
        let e = parse_err(&ok);
        assert!(e.message().contains("maximum is 4096"), "{e}");
    }

    #[test]
    fn nesting_limit() {
        let nest = |n: usize| format!("{}A == b{}", "(".repeat(n), ")".repeat(n));
        assert!(Filter::parse(&nest(MAX_NESTING_DEPTH)).is_ok());
        let e = parse_err(&nest(MAX_NESTING_DEPTH + 1));
        assert!(e.message().contains("nested too deeply"), "{e}");
        assert_eq!(e.position(), MAX_NESTING_DEPTH);

        let nots = |n: usize| format!("{}A == b", "not ".repeat(n));
        let f = Filter::parse(&nots(MAX_NESTING_DEPTH)).unwrap();
        assert!(f.matches(&json!({"A": "b"}))); // even number of `not`s
        assert!(parse_err(&nots(MAX_NESTING_DEPTH + 1))
            .message()
            .contains("nested too deeply"));

        // Mixed: depth counts parentheses and `not`s together.
        let mixed = format!("{}A == b{}", "not (".repeat(16), ")".repeat(16));
        assert!(Filter::parse(&mixed).is_ok());
        let mixed = format!("{}A == b{}", "not (".repeat(17), ")".repeat(17));
        assert!(Filter::parse(&mixed).is_err());

        // Depth is released after each group: many sibling groups are fine.
        let siblings = vec!["((A == b))"; 100].join(" and ");
        assert!(Filter::parse(&siblings).is_ok());

        // Maximal-length inputs never overflow the stack.
        for unit in ["(", "not ", "((((not", "\"", "`", "[", "A.", "A == b and "] {
            let s = unit.repeat(MAX_EXPRESSION_LEN / unit.len());
            assert!(Filter::parse(&s).is_err(), "{unit:?}");
        }
    }

    /// xorshift64*: tiny deterministic PRNG so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        const SEED: u64 = 0x00C0_FFEE_CA11_2024;
        const ITERATIONS: usize = 30_000;
        println!("random_garbage_never_panics seed = {SEED:#x}");
        #[rustfmt::skip]
        const FRAGMENTS: &[&str] = &[
            "Service", "ServiceTags", "Checks", "Status", "Meta", "Node", ".", "[", "]", "\"",
            "`", "\\", "\\u", "\\x", "\\U", "(", ")", " ", "  ", "\t", "\n", "==", "!=", "=",
            "!", "<", "<=", ">", ">=", "~", "and", "or", "not", "in", "is", "empty", "contains",
            "matches", "passing", "x", "0", "8080", "-1", "1e9", "é", "😀", "\"a\"", "`b`",
            "Meta[\"k\"]", "*", "+", "?", "{", "}", "^", "$", "\\d", "|", "\u{0}", "-",
        ];
        // Valid expressions to mutate, so garbage also reaches the deeper
        // parser states (not just "expected a selector" at position 0).
        const SEEDS: &[&str] = &[
            r#"Service.Service == "web" and Checks.Status == passing"#,
            r#"not ("primary" in Service.Tags or Node.Meta["my-key"] is not empty)"#,
            r#"Service.Port > 8000 or Service.Meta.version matches "^2\\.\u00e9""#,
            "Checks.CheckID not matches `^serf` and x not in Service.Tags",
            r#"Service.Tags not contains "v2" or Node.Meta is empty"#,
        ];
        let items = [
            health(),
            catalog(),
            json!(null),
            json!([1, [2]]),
            json!("s"),
        ];
        let random_char = |rng: &mut Rng| {
            if rng.below(2) == 0 {
                char::from(rng.below(128) as u8)
            } else {
                char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{FFFD}')
            }
        };
        let mut rng = Rng(SEED);
        let mut parsed_ok = 0usize;
        for i in 0..ITERATIONS {
            let s = if i % 2 == 0 {
                // Concatenated fragments and arbitrary characters.
                let mut s = String::new();
                for _ in 0..1 + rng.below(24) {
                    if rng.below(4) == 0 {
                        s.push(random_char(&mut rng));
                    } else {
                        s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                        if rng.below(2) == 0 {
                            s.push(' ');
                        }
                    }
                }
                s
            } else {
                // A valid expression with a few random edits.
                let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(chars.len() + 1);
                    match rng.below(4) {
                        0 if at < chars.len() => {
                            chars.remove(at);
                        }
                        1 if at < chars.len() => chars[at] = random_char(&mut rng),
                        2 => chars.truncate(at),
                        _ => {
                            let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                            chars.splice(at..at, frag.chars());
                        }
                    }
                }
                chars.into_iter().collect()
            };
            match Filter::parse(&s) {
                Ok(f) => {
                    parsed_ok += 1;
                    for item in &items {
                        f.matches(item);
                    }
                }
                Err(e) => {
                    assert!(!e.message().is_empty());
                    assert!(e.position() <= s.chars().count(), "{s:?}: {e}");
                }
            }
        }
        println!("random_garbage_never_panics: {parsed_ok} of {ITERATIONS} inputs parsed");
    }

    #[test]
    fn random_valid_expressions_parse_and_evaluate() {
        const SEED: u64 = 0x05EE_D0FB_0015;
        println!("random_valid_expressions_parse_and_evaluate seed = {SEED:#x}");
        const SELECTORS: &[&str] = &[
            "Service.Service",
            "Service.Tags",
            "Checks.Status",
            "Node.Meta[\"my-key\"]",
            "Service.Port",
            "Missing.Field",
        ];
        const VALUES: &[&str] = &["web", "\"primary\"", "`passing`", "8080", "true", "-1.5"];
        fn gen(rng: &mut Rng, depth: usize) -> String {
            let sel = SELECTORS[rng.below(SELECTORS.len())];
            let val = VALUES[rng.below(VALUES.len())];
            match if depth == 0 { 0 } else { rng.below(6) } {
                0 => match rng.below(9) {
                    0 => format!("{sel} == {val}"),
                    1 => format!("{sel} != {val}"),
                    2 => format!("{val} in {sel}"),
                    3 => format!("{val} not in {sel}"),
                    4 => format!("{sel} contains {val}"),
                    5 => format!("{sel} is empty"),
                    6 => format!("{sel} is not empty"),
                    7 => format!("{sel} matches \"^w.*\""),
                    _ => format!("{sel} > 10"),
                },
                1 => format!("not {}", gen(rng, depth - 1)),
                2 => format!("({})", gen(rng, depth - 1)),
                3 => format!("{} or {}", gen(rng, depth - 1), gen(rng, depth - 1)),
                _ => format!("{} and {}", gen(rng, depth - 1), gen(rng, depth - 1)),
            }
        }
        let mut rng = Rng(SEED);
        let h = health();
        for _ in 0..2_000 {
            let expr = gen(&mut rng, 4);
            let f = Filter::parse(&expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
            // `not` is an exact complement.
            let negated = Filter::parse(&format!("not ({expr})")).unwrap();
            assert_ne!(f.matches(&h), negated.matches(&h), "{expr:?}");
        }
    }
}
