//! Typed reads of the merged configuration (a JSON map after every source is folded in),
//! and the value parsers behind them: each error names the key it came from, so a
//! mistake anywhere in files, flags or fragments reads the same way.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{parse_duration, ConfigError, Port};

/// Typed access to the merged configuration, with errors naming the key.
pub(super) struct Reader<'a> {
    pub(super) root: &'a Map<String, Value>,
}

pub(super) fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl Reader<'_> {
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        let mut parts = key.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        (!cur.is_null()).then_some(cur)
    }

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
                _ => Err(bad(key, format!("expected a boolean, got {s:?}"))),
            },
            Some(v) => Err(bad(key, format!("expected a boolean, got {v}"))),
        }
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(bad(key, format!("expected an integer, got {n}"))),
            },
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad(key, format!("expected an integer, got {s:?}"))),
            Some(v) => Err(bad(key, format!("expected an integer, got {v}"))),
        }
    }

    pub(super) fn uint<T: TryFrom<i64>>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.int(key)? {
            None => Ok(default),
            Some(n) => {
                T::try_from(n).map_err(|_| bad(key, format!("{n} is negative or too large")))
            }
        }
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(v) => Err(bad(key, format!("expected a string, got {v}"))),
        }
    }

    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad(key, format!("expected a list of strings, got {other}"))),
                })
                .collect(),
            Some(v) => Err(bad(key, format!("expected a list of strings, got {v}"))),
        }
    }

    pub(super) fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::String(s)) => parse_duration(s).map_err(|e| bad(key, e.to_string())),
            Some(v) => Err(bad(
                key,
                format!("expected a duration string such as \"10s\", got {v}"),
            )),
        }
    }

    pub(super) fn port(&self, key: &str, default: Port) -> Result<Port, ConfigError> {
        match self.int(key)? {
            None => Ok(default),
            Some(n) => Port::from_i64(n).ok_or_else(|| {
                bad(
                    key,
                    format!("port {n} out of range (-1 disables, 0 picks a free port, max 65535)"),
                )
            }),
        }
    }

    pub(super) fn ip(&self, key: &str) -> Result<Option<IpAddr>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse_ip(key, &s).map(Some),
        }
    }

    /// A space-separated list of IP addresses (`client_addr`, `addresses.http`).
    pub(super) fn ips(&self, key: &str) -> Result<Vec<IpAddr>, ConfigError> {
        let mut out = Vec::new();
        for s in self.strings(key)? {
            for part in s.split_whitespace() {
                out.push(parse_ip(key, part)?);
            }
        }
        Ok(out)
    }
}

fn parse_ip(key: &str, s: &str) -> Result<IpAddr, ConfigError> {
    let trimmed = s.trim();
    if trimmed.contains("{{") {
        return Err(bad(key, "go-sockaddr templates are not supported"));
    }
    trimmed
        .parse()
        .map_err(|_| bad(key, format!("{s:?} is not an IP address")))
}

pub(super) fn parse_recursor(s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            bad(
                "recursors",
                format!("{s:?} is not an IP address or IP:port"),
            )
        })
}

pub(super) fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub(super) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Decoded length of standard base64 text, or `None` if it is not base64.
pub(super) fn base64_len(s: &str) -> Option<usize> {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    let ok = s.len() / 4 * 4 == s.len()
        && pad <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    ok.then(|| s.len() / 4 * 3 - pad)
}

pub(super) fn normalise_domain(key: &str, s: &str) -> Result<String, ConfigError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.split('.').any(|l| !is_dns_label(l)) {
        return Err(bad(key, format!("{s:?} is not a valid DNS domain")));
    }
    Ok(format!("{d}."))
}

/// A duration setting that must be greater than zero (a zero timeout would close every
/// connection at once).
pub(super) fn positive(r: &Reader, key: &str, default: Duration) -> Result<Duration, ConfigError> {
    let d = r.duration(key, default)?;
    if d.is_zero() {
        return Err(bad(key, "must be greater than 0"));
    }
    Ok(d)
}
