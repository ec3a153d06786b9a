//! The HCL front end: `key "a/b" { policy = "read" }` blocks and `operator = "read"` attributes.
//!
//! Syntax errors come from the HCL parser with their line and column; everything else is
//! reported by path (`key "a/b".policy`) through the shared [`Builder`].

use crate::error::RuleError;
use crate::parse::{rule_path, Builder, Found, Top};
use hcl::{Block, Body, Expression, Structure};

pub(crate) fn parse(text: &str, builder: &mut Builder) -> Result<(), RuleError> {
    let body = hcl::parse(text).map_err(|e| RuleError::Hcl(e.to_string()))?;
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
