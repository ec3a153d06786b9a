//! The HCL front end: `key "a/b" { policy = "read" }` blocks and `operator = "read"` attributes.
//!
//! Syntax errors come from the HCL parser with their line and column; everything else is
//! reported by path (`key "a/b".policy`) through the shared [`Builder`].
//!
//! Consul's parser (HCL 1) also takes several attributes on one line, as in its own
//! `service_prefix "" { policy = "write" intentions = "write" }`; HCL 2 wants a newline between
//! them. When the text fails to parse, it is retried once with each body split onto lines; if
//! that fails too, the error reported is the one for the text as written, so its line numbers
//! stay right. Text with comments, heredocs or templates is never rewritten, so a quote inside
//! a comment can never turn the rest of the comment into a rule.

use crate::error::RuleError;
use crate::parse::{rule_path, Builder, Found, Top};
use hcl::{Block, Body, Expression, Structure};

pub(crate) fn parse(text: &str, builder: &mut Builder) -> Result<(), RuleError> {
    let body = match hcl::parse(text) {
        Ok(body) => body,
        Err(err) => split_one_liners(text)
            .and_then(|fixed| hcl::parse(&fixed).ok())
            .ok_or_else(|| syntax_error(err))?,
    };
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => match Builder::classify(attr.key.as_str())? {
                Top::Scalar(kind) => builder.scalar(kind, found(&attr.expr))?,
                Top::Segment(kind, prefix) => {
                    let name = kind.rule_name(prefix);
                    return Err(RuleError::invalid(
                        name.clone(),
                        format!("expected a block like {name} \"<name>\" {{ policy = \"read\" }}"),
                    ));
                }
            },
            Structure::Block(block) => named_block(block, builder)?,
        }
    }
    Ok(())
}

fn named_block(block: &Block, builder: &mut Builder) -> Result<(), RuleError> {
    let ident = block.identifier.as_str();
    let (kind, prefix) = match Builder::classify(ident)? {
        Top::Segment(kind, prefix) => (kind, prefix),
        Top::Scalar(kind) => {
            return Err(RuleError::invalid(
                ident,
                format!(
                    "expected an attribute like {} = \"read\", found a block",
                    kind.as_str()
                ),
            ))
        }
    };
    let [label] = block.labels.as_slice() else {
        return Err(RuleError::invalid(
            ident,
            format!(
                "expected exactly one name label, as in {ident} \"<name>\" {{ ... }}, found {}",
                block.labels.len()
            ),
        ));
    };
    let name = label.as_str();
    let fields = rule_fields(&block.body, &rule_path(kind, prefix, name))?;
    builder.named(kind, prefix, name, fields)
}

fn rule_fields<'a>(body: &'a Body, path: &str) -> Result<Vec<(&'a str, Found<'a>)>, RuleError> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => Ok((attr.key.as_str(), found(&attr.expr))),
            Structure::Block(inner) => Err(RuleError::invalid(
                format!("{path}.{}", inner.identifier.as_str()),
                "unexpected nested block (expected policy = \"...\")",
            )),
        })
        .collect()
}

fn found(expr: &Expression) -> Found<'_> {
    match expr {
        Expression::String(s) => Found::Str(s),
        Expression::Null => Found::Other("null"),
        Expression::Bool(_) => Found::Other("a boolean"),
        Expression::Number(_) => Found::Other("a number"),
        Expression::Array(_) => Found::Other("a list"),
        Expression::Object(_) => Found::Other("an object"),
        Expression::TemplateExpr(_) => Found::Other("a template (interpolation is not allowed)"),
        _ => Found::Other("an expression"),
    }
}

fn syntax_error(err: hcl::Error) -> RuleError {
    match err {
        hcl::Error::Parse(e) => RuleError::Hcl(format!(
            "line {}, column {}: {}",
            e.location().line(),
            e.location().column(),
            e.message()
        )),
        other => RuleError::Hcl(other.to_string()),
    }
}

/// Rewrites HCL 1 one-line bodies for HCL 2: a newline after each `{`, before each `}`, and
/// in place of the blanks (and commas) between a string and a following `name =` or `}`.
/// `None` when there is nothing to change, or when the text has comments, heredocs or
/// templates (then it is parsed only as written).
fn split_one_liners(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let (mut in_string, mut escaped) = (false, false);
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => return None,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    let gap = bytes[i + 1..]
                        .iter()
                        .take_while(|c| matches!(c, b' ' | b'\t' | b','))
                        .count();
                    let rest = &bytes[i + 1 + gap..];
                    if gap > 0 && (starts_attribute(rest) || rest.starts_with(b"}")) {
                        out.push_str(&text[copied..=i]);
                        out.push('\n');
                        copied = i + 1 + gap;
                        i = copied;
                        continue;
                    }
                }
                _ => {}
            }
        } else {
            match b {
                // Comments, heredocs and templates could hide text the scanner would
                // misread (a quote in a comment); such text is never rewritten.
                b'#' => return None,
                b'/' if matches!(bytes.get(i + 1), Some(b'/' | b'*')) => return None,
                b'<' if bytes.get(i + 1) == Some(&b'<') => return None,
                b'"' => in_string = true,
                b'{' => {
                    out.push_str(&text[copied..=i]);
                    out.push('\n');
                    copied = i + 1;
                }
                b'}' => {
                    out.push_str(&text[copied..i]);
                    out.push('\n');
                    copied = i;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    (out != text).then_some(out)
}

/// Whether `rest` starts with `identifier =` (and not `==`).
fn starts_attribute(rest: &[u8]) -> bool {
    let ident = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        .count();
    if ident == 0 || !rest[0].is_ascii_alphabetic() && rest[0] != b'_' {
        return false;
    }
    let after = &rest[ident..];
    let spaces = after
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    after[spaces..].starts_with(b"=") && !after[spaces..].starts_with(b"==")
}
