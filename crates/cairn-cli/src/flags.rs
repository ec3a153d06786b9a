//! A tiny Go-`flag`-style parser, because Consul users type `-http-addr=x`, `-http-addr x`,
//! `--http-addr x`, `-recurse` and `-tag a -tag b`, which no mainstream Rust parser accepts
//! as-is. As in Go, parsing stops at the first non-flag argument (or `--`), so values such as
//! `-` (stdin) or `-5` after the key are positional.

use std::collections::BTreeMap;

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-x`, `-x=true|false`.
    Bool,
    /// `-x=v` or `-x v`; the last occurrence wins.
    Value,
    /// Like `Value`, but every occurrence is kept (`-tag a -tag b`).
    Multi,
}

/// One accepted flag.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

/// Shorthand constructor for [`Spec`].
pub const fn spec(name: &'static str, kind: Kind, help: &'static str) -> Spec {
    Spec { name, kind, help }
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `-h`, `-help` or `--help` was given.
    Help,
    /// The arguments are malformed; the message says how.
    Invalid(String),
}

/// The result of parsing: flag values by name and the remaining positional arguments.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
}

/// Parses `args` against `specs`.
pub fn parse(specs: &[Spec], args: &[String]) -> Result<Flags, FlagError> {
    let mut flags = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if a == "-" || !a.starts_with('-') {
            break;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name.is_empty() || name.starts_with('-') {
            return Err(FlagError::Invalid(format!("bad flag syntax: {a}")));
        }
        if name == "h" || name == "help" {
            return Err(FlagError::Help);
        }
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            return Err(FlagError::Invalid(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = match (spec.kind, inline) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) => match parse_bool(&v) {
                Some(b) => b.to_string(),
                None => {
                    return Err(FlagError::Invalid(format!(
                        "invalid boolean value {v:?} for -{name}"
                    )))
                }
            },
            (_, Some(v)) => v,
            (_, None) => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(FlagError::Invalid(format!(
                            "flag needs an argument: -{name}"
                        )))
                    }
                }
            }
        };
        let slot = flags.values.entry(spec.name).or_default();
        if spec.kind != Kind::Multi {
            slot.clear();
        }
        slot.push(value);
        i += 1;
    }
    flags.args = args[i..].to_vec();
    Ok(flags)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Flags {
    /// Whether the flag appeared at all.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A boolean flag's value (false when absent).
    pub fn bool(&self, name: &str) -> bool {
        self.str(name) == Some("true")
    }

    /// A value flag's last value.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A value flag parsed as an unsigned integer.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, FlagError> {
        match self.str(name) {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                FlagError::Invalid(format!("invalid value {s:?} for flag -{name}: parse error"))
            }),
        }
    }
}

/// Renders a command's help: the synopsis/description followed by its flags.
pub fn usage(text: &str, specs: &[Spec]) -> String {
    let mut out = text.trim_end().to_string();
    if !specs.is_empty() {
        out.push_str("\n\nOptions:\n");
        for s in specs {
            let arg = match s.kind {
                Kind::Bool => String::new(),
                Kind::Value | Kind::Multi => "=<value>".to_string(),
            };
            out.push_str(&format!("\n  -{}{}\n     {}\n", s.name, arg, s.help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        spec("http-addr", Kind::Value, ""),
        spec("recurse", Kind::Bool, ""),
        spec("tag", Kind::Multi, ""),
        spec("flags", Kind::Value, ""),
    ];

    fn p(args: &[&str]) -> Result<Flags, FlagError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(SPECS, &args)
    }

    #[test]
    fn go_style_forms() {
        for form in [
            &["-http-addr=h:1", "k"][..],
            &["-http-addr", "h:1", "k"][..],
            &["--http-addr", "h:1", "k"][..],
            &["--http-addr=h:1", "k"][..],
        ] {
            let f = p(form).unwrap();
            assert_eq!(f.str("http-addr"), Some("h:1"), "{form:?}");
            assert_eq!(f.args, vec!["k"]);
        }
    }

    #[test]
    fn bools_and_repeats() {
        let f = p(&["-recurse", "-tag", "a", "-tag=b", "x", "y"]).unwrap();
        assert!(f.bool("recurse"));
        assert_eq!(f.all("tag"), ["a", "b"]);
        assert_eq!(f.args, vec!["x", "y"]);
        let f = p(&["-recurse=false"]).unwrap();
        assert!(!f.bool("recurse"));
        assert!(f.is_set("recurse"));
        assert!(matches!(p(&["-recurse=maybe"]), Err(FlagError::Invalid(_))));
    }

    #[test]
    fn stops_at_first_positional_and_dashes() {
        let f = p(&["key", "-recurse"]).unwrap();
        assert!(!f.bool("recurse"));
        assert_eq!(f.args, vec!["key", "-recurse"]);
        let f = p(&["-", "x"]).unwrap();
        assert_eq!(f.args, vec!["-", "x"]);
        let f = p(&["-recurse", "--", "-5"]).unwrap();
        assert_eq!(f.args, vec!["-5"]);
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["-h"]).unwrap_err(), FlagError::Help);
        assert_eq!(p(&["--help"]).unwrap_err(), FlagError::Help);
        assert!(matches!(p(&["-nope"]), Err(FlagError::Invalid(m)) if m.contains("-nope")));
        assert!(matches!(p(&["-http-addr"]), Err(FlagError::Invalid(_))));
        assert!(matches!(p(&["---x"]), Err(FlagError::Invalid(_))));
        assert!(matches!(p(&["-=x"]), Err(FlagError::Invalid(_))));
        let f = p(&["-flags=abc"]).unwrap();
        assert!(f.u64("flags").is_err());
        let f = p(&["-flags=42"]).unwrap();
        assert_eq!(f.u64("flags"), Ok(Some(42)));
    }

    #[test]
    fn usage_lists_flags() {
        let u = usage("Usage: cairn x", SPECS);
        assert!(u.contains("-http-addr=<value>"));
        assert!(u.contains("\n  -recurse\n"));
    }
}
