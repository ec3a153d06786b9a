//! The JSON front end: `{"key": {"a/b": {"policy": "read"}}, "operator": "read"}`.
//!
//! Consul also accepts each level as a list of such objects (the shape older HCL tooling
//! wrote), so both are taken. Syntax errors carry serde_json's line and column; the rest is
//! reported by path through the shared [`Builder`].

use crate::error::RuleError;
use crate::parse::{rule_path, Builder, Found, Top};
use serde_json::{Map, Value};

pub(crate) fn parse(text: &str, builder: &mut Builder) -> Result<(), RuleError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        RuleError::Json {
            line: e.line(),
            column: e.column(),
            message: full.strip_suffix(&position).unwrap_or(&full).to_string(),
        }
    })?;
    let Value::Object(top) = value else {
        return Err(RuleError::invalid("(top level)", "expected a JSON object"));
    };
    for (key, value) in &top {
        match Builder::classify(key)? {
            Top::Scalar(kind) => builder.scalar(kind, found(value))?,
            Top::Segment(kind, prefix) => {
                let rule_kind = kind.rule_name(prefix);
                for_each_object(
                    value,
                    &rule_kind,
                    "{\"<name>\": {\"policy\": \"read\"}}",
                    |names| {
                        for (name, body) in names {
                            let path = rule_path(kind, prefix, name);
                            let mut fields = Vec::new();
                            for_each_object(body, &path, "{\"policy\": \"read\"}", |obj| {
                                fields.extend(obj.iter().map(|(f, v)| (f.as_str(), found(v))));
                                Ok(())
                            })?;
                            builder.named(kind, prefix, name, fields)?;
                        }
                        Ok(())
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Calls `f` on `value` when it is an object, or on each element of a list of objects.
fn for_each_object<'a>(
    value: &'a Value,
    path: &str,
    example: &str,
    mut f: impl FnMut(&'a Map<String, Value>) -> Result<(), RuleError>,
) -> Result<(), RuleError> {
    match value {
        Value::Object(obj) => f(obj),
        Value::Array(items) => items.iter().try_for_each(|item| match item {
            Value::Object(obj) => f(obj),
            other => Err(wrong_shape(path, example, other)),
        }),
        other => Err(wrong_shape(path, example, other)),
    }
}

fn wrong_shape(path: &str, example: &str, found_value: &Value) -> RuleError {
    RuleError::invalid(
        path,
        format!(
            "expected an object like {example}, found {}",
            describe(found_value)
        ),
    )
}

fn found(value: &Value) -> Found<'_> {
    match value {
        Value::String(s) => Found::Str(s),
        other => Found::Other(describe(other)),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
