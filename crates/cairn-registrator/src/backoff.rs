//! Exponential backoff with full jitter, pure: the caller passes the attempt number and a
//! random value, so tests can check the bounds without sleeping.

use std::time::Duration;

/// Delays between retries: `base * 2^attempt`, capped at `max`, jittered into
/// `[delay/2, delay]` by `unit` (a random value in `[0, 1)`).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let capped = exp.min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        capped.mul_f64(0.5 + unit / 2.0)
    }
}

/// A cheap random value in `[0, 1)` from the clock (jitter only; not for anything else).
pub fn jitter_unit() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(n % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(250));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(125));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(5));
        for a in 0..40 {
            let d = b.delay(a, jitter_unit());
            assert!(d <= b.max && d >= Duration::from_millis(125), "{a}: {d:?}");
        }
    }
}
