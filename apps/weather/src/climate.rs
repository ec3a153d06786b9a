//! Modelled temperatures: a pure function of (latitude, longitude, time,
//! city), plausible rather than observed. Annual mean falls with latitude,
//! the season swings more the farther from the equator (opposite in the two
//! hemispheres), the day peaks at 15:00 local solar time, and a small
//! per-city, per-day deviation keeps cities and days apart.

use std::f64::consts::TAU;

const SECONDS_PER_YEAR: f64 = 365.2425 * 86_400.0;
/// Fraction of the year, from 1 January, of the northern summer's peak (~20 July).
const SUMMER_PEAK: f64 = 0.55;

/// Where and when a temperature is modelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
    /// The time, Unix seconds.
    pub unix_seconds: i64,
    /// A stable per-city key (its name and country) seeding the deviation.
    pub key: &'a str,
}

fn hash(bytes: &[u8], day: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes.iter().chain(day.to_le_bytes().iter()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The modelled temperature in degrees Celsius, rounded to 0.1.
pub fn celsius(s: Sample<'_>) -> f64 {
    let lat = s.lat.clamp(-90.0, 90.0);
    let t = s.unix_seconds as f64;
    let year_fraction = (t / SECONDS_PER_YEAR).rem_euclid(1.0);
    let annual_mean = 28.0 - 0.0068 * lat * lat;
    let season_amplitude = (0.2 * lat.abs()).min(18.0);
    let season = season_amplitude * lat.signum() * (TAU * (year_fraction - SUMMER_PEAK)).cos();
    let solar_hour = ((t.rem_euclid(86_400.0)) / 3_600.0 + s.lon / 15.0).rem_euclid(24.0);
    let diurnal = 4.0 * (TAU * (solar_hour - 15.0) / 24.0).cos();
    let day = s.unix_seconds.div_euclid(86_400);
    let deviation = 3.0 * ((hash(s.key.as_bytes(), day) >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
    round1(annual_mean + season + diurnal + deviation)
}

/// Celsius to Fahrenheit, rounded to 0.1.
pub fn to_fahrenheit(c: f64) -> f64 {
    round1(c * 9.0 / 5.0 + 32.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    // 2025-01-15 12:00 UTC and 2025-07-15 12:00 UTC.
    const JAN: i64 = 1_736_942_400;
    const JUL: i64 = 1_752_580_800;

    fn at(lat: f64, lon: f64, t: i64) -> f64 {
        celsius(Sample {
            lat,
            lon,
            unix_seconds: t,
            key: "X|XX",
        })
    }

    #[test]
    fn same_inputs_same_temperature() {
        assert_eq!(at(51.5, -0.1, JAN), at(51.5, -0.1, JAN));
    }

    #[test]
    fn equator_is_warmer_than_the_poles_and_seasons_flip_by_hemisphere() {
        assert!(at(1.3, 103.8, JAN) > at(60.0, 25.0, JAN) + 15.0);
        assert!(at(51.5, 0.0, JUL) > at(51.5, 0.0, JAN) + 10.0);
        assert!(at(-33.9, 151.2, JAN) > at(-33.9, 151.2, JUL) + 5.0);
    }

    #[test]
    fn afternoon_is_warmer_than_before_dawn() {
        // At longitude 0 local solar time is UTC.
        let day0 = JUL - 12 * 3_600;
        assert!(at(40.0, 0.0, day0 + 15 * 3_600) > at(40.0, 0.0, day0 + 4 * 3_600) + 4.0);
    }

    #[test]
    fn stays_within_earthly_bounds() {
        for lat in (-90..=90).step_by(5) {
            for k in 0..48 {
                let c = at(
                    lat as f64,
                    (k * 15 - 180) as f64 / 2.0,
                    JAN + k * 7 * DAY + k * 3_600,
                );
                assert!((-60.0..=50.0).contains(&c), "lat {lat} k {k}: {c}");
            }
        }
    }

    #[test]
    fn fahrenheit_conversion() {
        assert_eq!(to_fahrenheit(0.0), 32.0);
        assert_eq!(to_fahrenheit(100.0), 212.0);
        assert_eq!(to_fahrenheit(-40.0), -40.0);
        assert_eq!(to_fahrenheit(21.3), 70.3);
    }
}
