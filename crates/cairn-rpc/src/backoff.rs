//! Reconnect backoff as a pure state machine: time comes in as an argument, so the policy is
//! tested without clocks.

use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff between connection attempts to one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    /// `Ok` if an attempt may start at `now`; otherwise the error of the last attempt and how
    /// long until the next one is allowed.
    pub fn check(&self, now: Instant) -> Result<(), (String, Duration)> {
        match self.retry_at {
            Some(at) if now < at => Err((
                self.last_error.clone().unwrap_or_default(),
                at.saturating_duration_since(now),
            )),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt at `now`; returns the wait before the next one.
    pub fn failed(&mut self, now: Instant, error: String) -> Duration {
        let shift = self.failures.min(20);
        let wait = self.initial.saturating_mul(1u32 << shift).min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + wait);
        self.last_error = Some(error);
        wait
    }

    /// Records a success: the next failure starts from `initial` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_on_success() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
        assert!(b.check(t0).is_ok());
        assert_eq!(b.failed(t0, "refused".into()), Duration::from_millis(50));
        let (err, wait) = b.check(t0 + Duration::from_millis(10)).unwrap_err();
        assert_eq!(err, "refused");
        assert_eq!(wait, Duration::from_millis(40));
        assert!(b.check(t0 + Duration::from_millis(50)).is_ok());
        assert_eq!(b.failed(t0, "x".into()), Duration::from_millis(100));
        assert_eq!(b.failed(t0, "x".into()), Duration::from_millis(200));
        assert_eq!(b.failed(t0, "x".into()), Duration::from_millis(300));
        for _ in 0..100 {
            assert_eq!(b.failed(t0, "x".into()), Duration::from_millis(300));
        }
        b.succeeded();
        assert!(b.check(t0).is_ok());
        assert_eq!(b.failed(t0, "x".into()), Duration::from_millis(50));
    }
}
