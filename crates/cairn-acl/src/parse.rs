//! Rule text to [`Rules`]: limits, format choice, and the checks both syntaxes share.
//!
//! HCL and JSON differ only in syntax; each front end walks its tree and hands this module
//! the same calls (a scalar rule, or a named rule with its fields), so the meaning of a rule
//! and the wording of errors are decided once. Limits are checked before any parsing so hostile
//! input costs little.

use crate::access::AccessLevel;
use crate::error::RuleError;
use crate::rules::{Rule, Rules, ScalarKind, SegmentKind};

/// Largest rule text accepted, in bytes.
pub const MAX_RULES_BYTES: usize = 128 * 1024;
/// Most rules (named plus scalar) one text may hold.
pub const MAX_RULES: usize = 2048;
/// Deepest bracket nesting (`{`, `[`, `(`, counted anywhere in the text) accepted.
pub const MAX_NESTING: usize = 32;

pub(crate) fn parse(text: &str) -> Result<Rules, RuleError> {
    if text.len() > MAX_RULES_BYTES {
        return Err(RuleError::TooLarge {
            size: text.len(),
            limit: MAX_RULES_BYTES,
        });
    }
    check_nesting(text)?;
    let mut builder = Builder::default();
    if text.trim_start().starts_with('{') {
        crate::parse_json::parse(text, &mut builder)?;
    } else {
        crate::parse_hcl::parse(text, &mut builder)?;
    }
    Ok(builder.rules)
}

/// Rejects deep nesting before a recursive parser sees it. Brackets inside strings and
/// comments count too: that can only reject more, and real policies nest three levels.
fn check_nesting(text: &str) -> Result<(), RuleError> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    for ch in text.chars() {
        column += 1;
        match ch {
            '\n' => {
                line += 1;
                column = 0;
            }
            '{' | '[' | '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(RuleError::TooDeep {
                        limit: MAX_NESTING,
                        line,
                        column,
                    });
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A value found in the text: a string, or a description of what else it was.
pub(crate) enum Found<'a> {
    Str(&'a str),
    Other(&'static str),
}

/// What a top-level name denotes.
pub(crate) enum Top {
    Scalar(ScalarKind),
    Segment(SegmentKind, bool),
}

/// `key_prefix "app/"`: how errors name a named rule.
pub(crate) fn rule_path(kind: SegmentKind, prefix: bool, name: &str) -> String {
    format!("{} {:?}", kind.rule_name(prefix), name)
}

#[derive(Default)]
pub(crate) struct Builder {
    rules: Rules,
    count: usize,
}

impl Builder {
    /// Classifies a top-level name, or says which names are valid.
    pub(crate) fn classify(name: &str) -> Result<Top, RuleError> {
        if let Some(kind) = ScalarKind::from_rule_name(name) {
            return Ok(Top::Scalar(kind));
        }
        if let Some((kind, prefix)) = SegmentKind::from_rule_name(name) {
            return Ok(Top::Segment(kind, prefix));
        }
        let mut known: Vec<String> = SegmentKind::ALL
            .iter()
            .flat_map(|k| [k.rule_name(false), k.rule_name(true)])
            .collect();
        known.extend(ScalarKind::ALL.iter().map(|k| k.as_str().to_string()));
        Err(RuleError::invalid(
            name,
            format!(
                "unknown resource {name:?} (expected one of {})",
                known.join(", ")
            ),
        ))
    }

    fn count(&mut self, path: &str) -> Result<(), RuleError> {
        self.count += 1;
        if self.count > MAX_RULES {
            return Err(RuleError::TooManyRules {
                limit: MAX_RULES,
                path: path.to_string(),
            });
        }
        Ok(())
    }

    /// `operator = "read"`.
    pub(crate) fn scalar(&mut self, kind: ScalarKind, value: Found<'_>) -> Result<(), RuleError> {
        let path = kind.as_str();
        self.count(path)?;
        let access = level(value, false, path)?;
        self.rules.set_scalar(kind, access);
        Ok(())
    }

    /// `key "a/b" { policy = "read" }`, its fields given as (name, value) pairs.
    pub(crate) fn named<'a>(
        &mut self,
        kind: SegmentKind,
        prefix: bool,
        name: &str,
        fields: impl IntoIterator<Item = (&'a str, Found<'a>)>,
    ) -> Result<(), RuleError> {
        let path = rule_path(kind, prefix, name);
        self.count(&path)?;
        let (mut policy, mut intentions) = (None, None);
        for (field, value) in fields {
            let field_path = format!("{path}.{field}");
            match field {
                "policy" => policy = Some(level(value, kind.allows_list(), &field_path)?),
                "intentions" if kind == SegmentKind::Service => {
                    intentions = Some(level(value, false, &field_path)?)
                }
                other => {
                    let expected = if kind == SegmentKind::Service {
                        "\"policy\" or \"intentions\""
                    } else {
                        "\"policy\""
                    };
                    return Err(RuleError::invalid(
                        field_path,
                        format!("unknown field {other:?} (expected {expected})"),
                    ));
                }
            }
        }
        let Some(access) = policy else {
            return Err(RuleError::invalid(
                path,
                "missing \"policy\" (expected policy = \"read\", \"write\" or \"deny\")",
            ));
        };
        self.rules.push(Rule {
            kind,
            name: name.to_string(),
            prefix,
            access,
            intentions,
        });
        Ok(())
    }
}

fn level(value: Found<'_>, allow_list: bool, path: &str) -> Result<AccessLevel, RuleError> {
    let expected = if allow_list {
        "\"read\", \"list\", \"write\" or \"deny\""
    } else {
        "\"read\", \"write\" or \"deny\""
    };
    match value {
        Found::Str(text) => AccessLevel::parse(text, allow_list).ok_or_else(|| {
            RuleError::invalid(
                path,
                format!("invalid access level {text:?} (expected {expected})"),
            )
        }),
        Found::Other(what) => Err(RuleError::invalid(
            path,
            format!("expected a string ({expected}), found {what}"),
        )),
    }
}
