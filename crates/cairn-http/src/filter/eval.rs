//! Matching a parsed filter against one result element. go-bexpr applies
//! filters to typed Go structs; Cairn applies them to the JSON form of each
//! element (what the client receives), so this file walks selectors through
//! objects and arrays and applies each operator to the values it reaches.
//! The matching rules are listed in the `filter` module docs.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::{CmpOp, Expr, MatchExpr, MatchKind, Segment};

impl Expr {
    pub(super) fn eval(&self, item: &Value) -> bool {
        match self {
            Expr::And(all) => all.iter().all(|e| e.eval(item)),
            Expr::Or(any) => any.iter().any(|e| e.eval(item)),
            Expr::Not(inner) => !inner.eval(item),
            Expr::Match(m) => m.eval(item),
        }
    }
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
