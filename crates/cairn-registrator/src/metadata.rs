//! Registrator's metadata convention: `SERVICE_<KEY>` and `SERVICE_<port>_<KEY>` from a
//! container's environment and labels, read exactly as gliderlabs/registrator reads them
//! (labels after the environment, the key lower-cased, a per-port key winning over the
//! generic one), with size limits because the values come from whoever started the container.

use std::collections::{BTreeMap, BTreeSet};

/// Longest value accepted; longer ones are dropped with a note.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most `SERVICE_*` entries read from one container.
pub const MAX_ENTRIES: usize = 256;

/// The metadata that applies to one exposed port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMeta {
    /// Lower-cased key (without `SERVICE_` / `SERVICE_<port>_`) to value.
    pub values: BTreeMap<String, String>,
    /// Keys whose value came from the per-port form.
    pub from_port: BTreeSet<String>,
}

impl PortMeta {
    /// The value of `key`, if set (and non-empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether `key` was set through `SERVICE_<port>_<KEY>`.
    pub fn is_from_port(&self, key: &str) -> bool {
        self.from_port.contains(key)
    }
}

/// Collects the metadata for exposed `port` from `env` (`KEY=VALUE` entries) then `labels`.
/// Problems (oversized values, too many entries) are appended to `notes`.
pub fn for_port(
    env: &[String],
    labels: &BTreeMap<String, String>,
    port: u16,
    notes: &mut Vec<String>,
) -> PortMeta {
    let mut meta = PortMeta::default();
    let port_str = port.to_string();
    let entries = env
        .iter()
        .filter_map(|e| e.split_once('='))
        .chain(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut seen = 0usize;
    for (key, value) in entries {
        let Some(rest) = key.strip_prefix("SERVICE_") else {
            continue;
        };
        if value.is_empty() || rest.is_empty() {
            continue;
        }
        seen += 1;
        if seen > MAX_ENTRIES {
            notes.push(format!(
                "more than {MAX_ENTRIES} SERVICE_* entries; the rest are ignored"
            ));
            break;
        }
        if value.len() > MAX_VALUE_LEN {
            notes.push(format!(
                "{key} is {} bytes long (limit {MAX_VALUE_LEN}); ignored",
                value.len()
            ));
            continue;
        }
        match rest.split_once('_') {
            Some((digits, k))
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                // Per-port form: only for this port (compared as numbers, so `SERVICE_04567_`
                // is not port 4567 in registrator either: it compares strings).
                if digits == port_str && !k.is_empty() {
                    let k = k.to_ascii_lowercase();
                    meta.values.insert(k.clone(), value.to_string());
                    meta.from_port.insert(k);
                }
            }
            _ => {
                let k = rest.to_ascii_lowercase();
                if !meta.from_port.contains(&k) {
                    meta.values.insert(k, value.to_string());
                }
            }
        }
    }
    meta
}

/// Splits a `SERVICE_TAGS` value on commas, where `\,` is a literal comma; trims blanks and
/// drops empty tags.
pub fn split_tags(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Parses registrator's boolean-ish values (`true`, `1`, `yes`, ...); `None` when unclear.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Some(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[&str]) -> Vec<String> {
        pairs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn article_env_for_port_4567() {
        let e = env(&[
            "SERVICE_4567_NAME=stock-price",
            "SERVICE_4567_CHECK_HTTP=/health",
            "SERVICE_4567_CHECK_INTERVAL=10s",
            "SERVICE_TAGS=http",
            "PATH=/usr/bin",
        ]);
        let mut notes = vec![];
        let m = for_port(&e, &BTreeMap::new(), 4567, &mut notes);
        assert_eq!(m.get("name"), Some("stock-price"));
        assert!(m.is_from_port("name"));
        assert_eq!(m.get("check_http"), Some("/health"));
        assert_eq!(m.get("check_interval"), Some("10s"));
        assert_eq!(m.get("tags"), Some("http"));
        assert!(!m.is_from_port("tags"));
        assert_eq!(m.values.len(), 4);
        assert!(notes.is_empty());
        // Another port sees only the generic keys.
        let m = for_port(&e, &BTreeMap::new(), 80, &mut notes);
        assert_eq!(m.get("name"), None);
        assert_eq!(m.get("tags"), Some("http"));
    }

    #[test]
    fn table() {
        struct Case {
            env: &'static [&'static str],
            labels: &'static [(&'static str, &'static str)],
            key: &'static str,
            want: Option<&'static str>,
        }
        let cases = [
            // per-port wins whatever the order
            Case {
                env: &["SERVICE_80_NAME=a", "SERVICE_NAME=b"],
                labels: &[],
                key: "name",
                want: Some("a"),
            },
            Case {
                env: &["SERVICE_NAME=b", "SERVICE_80_NAME=a"],
                labels: &[],
                key: "name",
                want: Some("a"),
            },
            // labels come after env at the same specificity
            Case {
                env: &["SERVICE_NAME=env"],
                labels: &[("SERVICE_NAME", "label")],
                key: "name",
                want: Some("label"),
            },
            Case {
                env: &["SERVICE_80_NAME=env"],
                labels: &[("SERVICE_NAME", "label")],
                key: "name",
                want: Some("env"),
            },
            // keys are lower-cased
            Case {
                env: &["SERVICE_REGION=us2"],
                labels: &[],
                key: "region",
                want: Some("us2"),
            },
            Case {
                env: &["SERVICE_CHECK_HTTP_METHOD=HEAD"],
                labels: &[],
                key: "check_http_method",
                want: Some("HEAD"),
            },
            // empty values are ignored, other ports are ignored
            Case {
                env: &["SERVICE_NAME="],
                labels: &[],
                key: "name",
                want: None,
            },
            Case {
                env: &["SERVICE_81_NAME=x"],
                labels: &[],
                key: "name",
                want: None,
            },
            // not the prefix, no '='
            Case {
                env: &["MY_SERVICE_NAME=x", "SERVICE_NAME"],
                labels: &[],
                key: "name",
                want: None,
            },
            // value may contain '='
            Case {
                env: &["SERVICE_CHECK_SCRIPT=a=b"],
                labels: &[],
                key: "check_script",
                want: Some("a=b"),
            },
            Case {
                env: &["SERVICE_ID=x", "SERVICE_80_IGNORE=1"],
                labels: &[],
                key: "ignore",
                want: Some("1"),
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let labels = c
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut notes = vec![];
            let m = for_port(&env(c.env), &labels, 80, &mut notes);
            assert_eq!(m.get(c.key), c.want, "case {i}");
        }
    }

    #[test]
    fn limits() {
        let big = format!("SERVICE_NAME={}", "x".repeat(MAX_VALUE_LEN + 1));
        let mut notes = vec![];
        let m = for_port(&[big], &BTreeMap::new(), 80, &mut notes);
        assert_eq!(m.get("name"), None);
        assert!(notes[0].contains("limit"), "{notes:?}");
        let many: Vec<String> = (0..MAX_ENTRIES + 10)
            .map(|i| format!("SERVICE_K{i}=v"))
            .collect();
        let mut notes = vec![];
        let m = for_port(&many, &BTreeMap::new(), 80, &mut notes);
        assert_eq!(m.values.len(), MAX_ENTRIES);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn tags() {
        assert_eq!(split_tags("a,b"), ["a", "b"]);
        assert_eq!(split_tags(" a , ,b "), ["a", "b"]);
        assert_eq!(split_tags(r"x\,y,z"), ["x,y", "z"]);
        assert_eq!(split_tags(""), Vec::<String>::new());
        assert_eq!(split_tags(r"a\b"), [r"a\b"]);
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
