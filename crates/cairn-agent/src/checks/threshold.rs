//! Flap damping: Consul's `SuccessBeforePassing`, `FailuresBeforeWarning` and
//! `FailuresBeforeCritical` counters (its `StatusHandler`, agent/checks/check.go).
//!
//! A passing or warning result counts as a success and resets the failure counter; it
//! is reported once `SuccessBeforePassing` consecutive successes were seen. A critical
//! result counts as a failure and resets the success counter; it is reported as
//! critical once `FailuresBeforeCritical` consecutive failures were seen, as warning once
//! `FailuresBeforeWarning` were (which defaults to `FailuresBeforeCritical`), and not at
//! all before that: the check keeps its previous status, output included.

use cairn_types::{CRITICAL, PASSING, WARNING};

/// The counters of one check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Thresholds {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// Counters for a check definition's thresholds (0 = report at once).
    pub(crate) fn new(
        success_before_passing: u32,
        failures_before_warning: u32,
        failures_before_critical: u32,
    ) -> Self {
        let failures_before_warning = if failures_before_warning == 0 {
            failures_before_critical
        } else {
            failures_before_warning
        };
        Thresholds {
            success_before_passing,
            failures_before_warning,
            failures_before_critical,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one result; returns the status to report, or `None` to keep the current one.
    pub(crate) fn observe(&mut self, status: &str) -> Option<&'static str> {
        if status == PASSING || status == WARNING {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.successes >= self.success_before_passing {
                return Some(if status == PASSING { PASSING } else { WARNING });
            }
            None
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= self.failures_before_critical {
                Some(CRITICAL)
            } else if self.failures >= self.failures_before_warning {
                Some(WARNING)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut Thresholds, seq: &[&str]) -> Vec<Option<&'static str>> {
        seq.iter().map(|s| t.observe(s)).collect()
    }

    #[test]
    fn no_thresholds_reports_everything_at_once() {
        let mut t = Thresholds::new(0, 0, 0);
        assert_eq!(
            run(&mut t, &[PASSING, CRITICAL, WARNING, CRITICAL]),
            vec![Some(PASSING), Some(CRITICAL), Some(WARNING), Some(CRITICAL)]
        );
    }

    #[test]
    fn success_before_passing_needs_consecutive_successes() {
        let mut t = Thresholds::new(3, 0, 0);
        assert_eq!(
            run(
                &mut t,
                &[PASSING, PASSING, CRITICAL, PASSING, PASSING, PASSING, PASSING]
            ),
            vec![
                None,
                None,
                Some(CRITICAL),
                None,
                None,
                Some(PASSING),
                Some(PASSING)
            ]
        );
    }

    #[test]
    fn warning_counts_as_a_success() {
        let mut t = Thresholds::new(2, 0, 0);
        assert_eq!(run(&mut t, &[WARNING, PASSING]), vec![None, Some(PASSING)]);
        let mut t = Thresholds::new(2, 0, 0);
        assert_eq!(run(&mut t, &[PASSING, WARNING]), vec![None, Some(WARNING)]);
    }

    #[test]
    fn failures_before_critical_alone_also_delays_warning() {
        // FailuresBeforeWarning defaults to FailuresBeforeCritical: no warning step.
        let mut t = Thresholds::new(0, 0, 3);
        assert_eq!(
            run(&mut t, &[CRITICAL, CRITICAL, CRITICAL, CRITICAL]),
            vec![None, None, Some(CRITICAL), Some(CRITICAL)]
        );
    }

    #[test]
    fn warning_then_critical() {
        let mut t = Thresholds::new(0, 1, 3);
        assert_eq!(
            run(&mut t, &[CRITICAL, CRITICAL, CRITICAL]),
            vec![Some(WARNING), Some(WARNING), Some(CRITICAL)]
        );
    }

    #[test]
    fn a_success_resets_the_failure_counter() {
        let mut t = Thresholds::new(0, 2, 3);
        assert_eq!(
            run(
                &mut t,
                &[CRITICAL, CRITICAL, PASSING, CRITICAL, CRITICAL, CRITICAL]
            ),
            vec![
                None,
                Some(WARNING),
                Some(PASSING),
                None,
                Some(WARNING),
                Some(CRITICAL)
            ]
        );
    }

    #[test]
    fn unknown_status_counts_as_a_failure() {
        let mut t = Thresholds::new(0, 0, 0);
        assert_eq!(t.observe("bogus"), Some(CRITICAL));
    }
}
