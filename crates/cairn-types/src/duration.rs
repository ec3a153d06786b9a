//! Go-style durations ("1m30s", "250ms", "1.5h"), as Consul users write them in
//! query strings (`wait=`), bodies (`TTL`, `LockDelay`, `Interval`) and config files.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses Go's `time.ParseDuration` grammar: a sequence of decimal numbers with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `"1h2m3.5s"`. `"0"` is allowed alone.
/// Negative durations are rejected: nothing in Consul's API takes one.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: s.to_string(),
        reason,
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err("empty"));
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    let mut total: f64 = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        total += num * nanos_per;
    }
    if !total.is_finite() || total > 1e19 {
        return Err(err("out of range"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Parses either a Go duration string or a bare integer of nanoseconds (Consul's
/// JSON accepts both for fields such as `LockDelay`).
pub fn parse_duration_or_nanos(v: &serde_json::Value) -> Result<Duration, DurationError> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_nanos).ok_or(DurationError {
            input: n.to_string(),
            reason: "must be a non-negative integer of nanoseconds",
        }),
        serde_json::Value::String(s) => match s.parse::<u64>() {
            Ok(n) if s != "0" => Ok(Duration::from_nanos(n)),
            _ => parse_duration(s),
        },
        other => Err(DurationError {
            input: other.to_string(),
            reason: "must be a string or an integer",
        }),
    }
}

/// Formats like Go's `Duration.String()`: `"0s"`, `"15s"`, `"1m30s"`, `"1h0m0s"`, `"250ms"`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (v, unit) = if nanos < 1_000 {
            (nanos as f64, "ns")
        } else if nanos < 1_000_000 {
            (nanos as f64 / 1e3, "µs")
        } else {
            (nanos as f64 / 1e6, "ms")
        };
        return format!("{}{}", trim_float(v), unit);
    }
    let total_secs = d.as_secs();
    let frac = d.subsec_nanos();
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let s = total_secs % 60;
    let secs = if frac == 0 {
        s.to_string()
    } else {
        trim_float(s as f64 + frac as f64 / 1e9)
    };
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "-1s", "10", "s", "1x", "abc", "1..2s", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn round_trips() {
        for s in ["15s", "1m30s", "2h0m5s", "250ms", "86400s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn nanos_or_string() {
        let v = serde_json::json!(15000000000u64);
        assert_eq!(
            parse_duration_or_nanos(&v).unwrap(),
            Duration::from_secs(15)
        );
        let v = serde_json::json!("15s");
        assert_eq!(
            parse_duration_or_nanos(&v).unwrap(),
            Duration::from_secs(15)
        );
        assert!(parse_duration_or_nanos(&serde_json::json!(-1)).is_err());
    }
}
