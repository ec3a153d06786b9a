//! Go-style durations (`time.ParseDuration` / `time.Duration.String`).
//!
//! Consul writes every interval and timeout in Go's duration syntax (`"10s"`, `"1m30s"`,
//! `"87600h"`), in config files, on the command line and in the HTTP API (`?wait=5m`).
//! One implementation serves the HTTP layer, the agent's configuration and the CLI.

use std::fmt;
use std::time::Duration;

/// The largest duration Go can represent: `1<<63 - 1` nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl DurationError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_string(),
            reason,
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Nanoseconds per unit, for the unit suffixes Go accepts.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration string such as `"300ms"`, `"1.5h"` or `"2h45m"`.
///
/// The grammar is Go's: an optional `+`, then one or more `<decimal><unit>` pairs, where the
/// unit is one of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. A bare `"0"` is allowed.
/// Negative durations are rejected because `std::time::Duration` cannot hold them.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(DurationError::new(s, "negative durations are not allowed"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::new(s, "empty duration"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        // Optional fraction.
        let (frac_digits, after_frac) = match after_int.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(DurationError::new(s, "expected a number"));
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = after_frac
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_frac.len(), |(i, _)| i);
        let (unit, after_unit) = after_frac.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::new(s, "missing unit"));
        }
        let scale = unit_nanos(unit).ok_or_else(|| DurationError::new(s, "unknown unit"))?;

        let overflow = || DurationError::new(s, "duration out of range");
        let mut int_value: u128 = 0;
        for b in int_digits.bytes() {
            int_value = int_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .filter(|v| *v <= MAX_NANOS)
                .ok_or_else(overflow)?;
        }
        let mut nanos = int_value.checked_mul(scale).ok_or_else(overflow)?;
        // Fraction: keep at most enough digits to be exact at nanosecond resolution.
        let mut frac_value: u128 = 0;
        let mut frac_scale: u128 = 1;
        for b in frac_digits.bytes().take(20) {
            frac_value = frac_value * 10 + u128::from(b - b'0');
            frac_scale *= 10;
        }
        nanos = nanos
            .checked_add(frac_value * scale / frac_scale)
            .ok_or_else(overflow)?;
        total = total.checked_add(nanos).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
        rest = after_unit;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| DurationError::new(s, "duration out of range"))?;
    // The remainder is < 1e9, so it always fits in u32.
    let sub = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Writes `value / 10^digits` with trailing fractional zeros removed (Go's `fmtFrac`).
fn push_frac(out: &mut String, whole: u128, frac: u128, digits: u32) {
    out.push_str(&whole.to_string());
    if frac != 0 {
        let mut f = format!("{:0width$}", frac, width = digits as usize);
        while f.ends_with('0') {
            f.pop();
        }
        out.push('.');
        out.push_str(&f);
    }
}

/// Formats a duration like Go's `time.Duration.String`: `"1h0m0s"`, `"1m30s"`, `"15s"`,
/// `"1.5s"`, `"250ms"`, `"100µs"`, `"10ns"`, and `"0s"` for zero.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let mut out = String::new();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        out.push_str(&nanos.to_string());
        out.push_str("ns");
    } else if nanos < 1_000_000 {
        push_frac(&mut out, nanos / 1_000, nanos % 1_000, 3);
        out.push_str("\u{b5}s");
    } else if nanos < 1_000_000_000 {
        push_frac(&mut out, nanos / 1_000_000, nanos % 1_000_000, 6);
        out.push_str("ms");
    } else {
        let total_secs = nanos / 1_000_000_000;
        let frac = nanos % 1_000_000_000;
        let hours = total_secs / 3_600;
        let minutes = (total_secs / 60) % 60;
        let secs = total_secs % 60;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        push_frac(&mut out, secs, frac, 9);
        out.push('s');
    }
    out
}

/// Parses either a Go duration string or a bare integer of nanoseconds (Consul's
/// JSON accepts both for fields such as `LockDelay`).
pub fn parse_duration_or_nanos(v: &serde_json::Value) -> Result<Duration, DurationError> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_nanos).ok_or_else(|| {
            DurationError::new(
                &n.to_string(),
                "must be a non-negative integer of nanoseconds",
            )
        }),
        serde_json::Value::String(s) => match s.parse::<u64>() {
            Ok(n) if s != "0" => Ok(Duration::from_nanos(n)),
            _ => parse_duration(s),
        },
        other => Err(DurationError::new(
            &other.to_string(),
            "must be a string or an integer",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_examples() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), ms(250));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("100µs").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("100μs").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration(".5s").unwrap(), ms(500));
        assert_eq!(parse_duration("5.s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(
            parse_duration("87600h").unwrap(),
            Duration::from_secs(87600 * 3600)
        );
        assert_eq!(parse_duration("1.000000001s").unwrap(), Duration::new(1, 1));
        assert_eq!(parse_duration("1h1h").unwrap(), Duration::from_secs(7200));
    }

    #[test]
    fn rejects_garbage_and_negatives() {
        for bad in [
            "", "-1s", "-0", "s", "10", "1.5", ".s", ".", "1x", "1 s", "abc", "1s2", "++1s", "1sm",
            "1e3s", " 1s", "1s ",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        // Overflow beyond Go's range.
        assert!(parse_duration("9223372036854775808ns").is_err());
        assert!(parse_duration("3000000h").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
        let err = parse_duration("-1s").unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(Duration::from_micros(100)), "100µs");
        assert_eq!(format_duration(Duration::from_nanos(10)), "10ns");
        assert_eq!(format_duration(Duration::new(1, 1)), "1.000000001s");
        assert_eq!(
            format_duration(Duration::from_secs(87600 * 3600)),
            "87600h0m0s"
        );
    }

    #[test]
    fn round_trips() {
        for s in [
            "0s",
            "15s",
            "1m30s",
            "1h0m0s",
            "2h45m10.5s",
            "250ms",
            "1.5ms",
            "100µs",
            "10ns",
            "87600h0m0s",
            "1.000000001s",
        ] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        for n in [
            0u64,
            1,
            999,
            1_000,
            1_234_567,
            999_999_999,
            1_000_000_000,
            86_400_000_000_123,
        ] {
            let d = Duration::from_nanos(n);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{n}");
        }
    }

    #[test]
    fn parses_go_forms_basic() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage_basic() {
        for bad in ["", "-1s", "10", "s", "1x", "abc", "1..2s", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_like_go_basic() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn round_trips_basic() {
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
