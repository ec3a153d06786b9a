//! The go-bexpr grammar: turns `?filter=` text into the expression tree, and
//! reports malformed input as a `FilterError` that points at the character
//! where parsing went wrong. Scannerless recursive descent; recursion is
//! bounded by `MAX_NESTING_DEPTH`, and no input makes it panic.

use regex::RegexBuilder;

use super::{
    CmpOp, Expr, FilterError, MatchExpr, MatchKind, Segment, MAX_EXPRESSION_LEN, MAX_NESTING_DEPTH,
};

/// Upper bound on the compiled size of a `matches` regular expression.
const MAX_REGEX_SIZE: usize = 1 << 20;

/// Parses a whole expression: the size and emptiness checks, the grammar,
/// then a check that no input is left over.
pub(super) fn parse(expr: &str) -> Result<Expr, FilterError> {
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
        None => Ok(parsed),
        Some(')') => Err(p.err(p.pos, "unmatched ')'")),
        Some(_) => Err(p.err(p.pos, "expected 'and', 'or' or the end of the expression")),
    }
}

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
