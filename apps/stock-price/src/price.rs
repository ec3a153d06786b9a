//! Simulated prices: a pure function of (symbol, day), so every instance of
//! the service answers the same price for a symbol all day long, and the
//! price moves from one day to the next. These are NOT market data.

/// A UTC calendar day, as whole days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub i64);

impl Day {
    /// The UTC day holding `unix_seconds`.
    pub fn from_unix(unix_seconds: i64) -> Self {
        Day(unix_seconds.div_euclid(86_400))
    }
}

/// FNV-1a (64 bit) then a splitmix64 finaliser: stable across platforms and
/// releases, unlike std's `DefaultHasher`.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The simulated price of `symbol` on `day`, in cents (always >= 1).
///
/// Each symbol has a base price, log-uniform between $15 and $600, a slow
/// cycle (period 60..240 days, amplitude up to 20%) and a daily move of at
/// most +-3%.
pub fn simulated_cents(symbol: &str, day: Day) -> u64 {
    let s = symbol.as_bytes();
    let base = 15.0 * (unit(hash(&[s, b"base"])) * (600.0f64 / 15.0).ln()).exp();
    let period = 60.0 + 180.0 * unit(hash(&[s, b"period"]));
    let amplitude = 0.2 * unit(hash(&[s, b"amplitude"]));
    let phase = std::f64::consts::TAU * unit(hash(&[s, b"phase"]));
    let cycle = 1.0 + amplitude * (std::f64::consts::TAU * day.0 as f64 / period + phase).sin();
    let daily = 1.0 + 0.06 * (unit(hash(&[s, &day.0.to_le_bytes()])) - 0.5);
    ((base * cycle * daily * 100.0).round() as u64).max(1)
}

/// Cents as the wire's price string: two decimals, e.g. `"1234.50"`.
pub fn format_cents(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_symbol_and_day_give_the_same_price() {
        for day in [0, 19_000, 20_500] {
            assert_eq!(
                simulated_cents("AMZN", Day(day)),
                simulated_cents("AMZN", Day(day))
            );
        }
    }

    #[test]
    fn prices_move_between_days_and_differ_between_symbols() {
        let days: Vec<u64> = (20_000..20_030)
            .map(|d| simulated_cents("AMZN", Day(d)))
            .collect();
        let distinct: std::collections::HashSet<_> = days.iter().collect();
        assert!(distinct.len() > 20, "{days:?}");
        assert_ne!(
            simulated_cents("AMZN", Day(20_000)),
            simulated_cents("AAPL", Day(20_000))
        );
    }

    #[test]
    fn prices_stay_in_a_plausible_range() {
        for sym in ["A", "AMZN", "AAPL", "MSFT", "ZZZ", "BRK.B"] {
            for d in (0..3650).step_by(7) {
                let c = simulated_cents(sym, Day(d));
                assert!((1_100..=75_000).contains(&c), "{sym} {d}: {c}");
            }
        }
    }

    #[test]
    fn known_value_is_stable_across_releases() {
        // Pins the algorithm: a change here changes every published price.
        assert_eq!(format_cents(simulated_cents("AMZN", Day(20_000))), PINNED);
    }
    const PINNED: &str = "259.78";

    #[test]
    fn format_has_two_decimals() {
        assert_eq!(format_cents(1), "0.01");
        assert_eq!(format_cents(123_450), "1234.50");
        assert_eq!(format_cents(100), "1.00");
    }

    #[test]
    fn day_from_unix_is_utc_and_floors() {
        assert_eq!(Day::from_unix(0), Day(0));
        assert_eq!(Day::from_unix(86_399), Day(0));
        assert_eq!(Day::from_unix(86_400), Day(1));
        assert_eq!(Day::from_unix(-1), Day(-1));
    }
}
