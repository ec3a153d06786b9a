//! The agent's timed duties over its local checks: a TTL check that is not renewed in
//! time turns critical, and a service whose check has been critical for longer than its
//! `DeregisterCriticalServiceAfter` is deregistered. The functions here decide what is
//! due at an instant from the checks alone (and only look at the few checks that carry a
//! TTL or a reap timeout); [`ttl_loop`] sleeps until the next deadline and carries out
//! what they return through the agent.
//!
//! Consul reaps on a 30 s cycle with a one-minute minimum; Cairn looks every 250 ms and
//! honours any positive value, so short timeouts (useful for ephemeral containers) work
//! as written.

use std::time::Duration;

use cairn_types::CRITICAL;
use tokio::time::Instant;

use super::Checks;
use crate::node::Agent;

/// How often reaping is looked at, whatever the deadlines.
const REAP_EVERY: Duration = Duration::from_millis(250);
/// The longest the loop sleeps without looking again.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The services to deregister at `now`, each with the check that has been critical for
/// longer than its `DeregisterCriticalServiceAfter` (one entry per service).
fn to_reap(checks: &Checks, now: Instant) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in checks.timed() {
        let (Some(since), Some(after)) = (c.critical_since, c.reap_after()) else {
            continue;
        };
        if now.duration_since(since) >= after
            && !c.check.service_id.is_empty()
            && !out.iter().any(|(s, _)| *s == c.check.service_id)
        {
            out.push((c.check.service_id.clone(), c.check.check_id.clone()));
        }
    }
    out
}

/// The TTL checks whose deadline has passed at `now`, with their TTL (for the output
/// they get). Their deadlines are cleared, so each expiry is reported once; an update
/// through the API sets a new one.
fn take_expired(checks: &mut Checks, now: Instant) -> Vec<(String, Duration)> {
    let mut expired = Vec::new();
    checks.for_each_timed(|c| {
        if let (Some(d), Some(ttl)) = (c.deadline, c.ttl) {
            if d <= now {
                c.deadline = None;
                expired.push((c.check.check_id.clone(), ttl));
            }
        }
    });
    expired
}

/// When the loop must look again at the latest, from `now`: the nearest TTL deadline,
/// but never later than [`MAX_SLEEP`].
fn next_wake(checks: &Checks, now: Instant) -> Instant {
    let far = now + MAX_SLEEP;
    checks
        .timed()
        .filter_map(|c| c.deadline)
        .min()
        .map_or(far, |d| d.min(far))
}

/// The output of a TTL check that expired.
fn expired_output(ttl: Duration) -> String {
    format!(
        "TTL expired (no update for {})",
        cairn_types::duration::format_duration(ttl)
    )
}

/// Expires TTL checks at their deadline (woken early when a deadline moves) and reaps
/// services critical past `DeregisterCriticalServiceAfter`.
pub(crate) async fn ttl_loop(agent: Agent) {
    let mut reap = tokio::time::interval(REAP_EVERY);
    loop {
        let wake = next_wake(&agent.inner.local.lock().checks, Instant::now());
        tokio::select! {
            _ = reap.tick() => {}
            _ = agent.inner.ttl_changed.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        let reap_now = to_reap(&agent.inner.local.lock().checks, Instant::now());
        for (service, check) in reap_now {
            tracing::info!(%service, %check, "check critical for longer than DeregisterCriticalServiceAfter; deregistering the service");
            if let Err(e) = agent.do_deregister_service(service.clone()).await {
                tracing::warn!(%service, "could not reap service: {e}");
            }
        }
        // After the reaping: the checks of a reaped service are gone and not expired.
        let expired = take_expired(&mut agent.inner.local.lock().checks, Instant::now());
        for (id, ttl) in expired {
            let _guard = agent.inner.local_lock.lock().await;
            if let Err(e) = agent
                .set_check_status(&id, CRITICAL, expired_output(ttl), false)
                .await
            {
                tracing::warn!(check = %id, "could not mark TTL check critical: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_service_is_reaped_once_its_check_was_critical_long_enough() {
        let t0 = Instant::now();
        let mut checks = Checks::default();
        let mut web = check("web-check", "web", None, "90s");
        web.critical_since = Some(t0);
        checks.insert("web-check".into(), web);
        // A second critical check of the same service: still one entry for it.
        let mut web2 = check("web-check-2", "web", None, "30s");
        web2.critical_since = Some(t0);
        checks.insert("web-check-2".into(), web2);
        // Critical, but without a reap timeout: never reaped.
        let mut db = check("db-check", "db", None, "");
        db.critical_since = Some(t0);
        checks.insert("db-check".into(), db);
        // A reap timeout, but passing: not reaped.
        checks.insert("api-check".into(), check("api-check", "api", None, "1s"));

        assert_eq!(
            to_reap(&checks, t0 + 29 * S),
            Vec::<(String, String)>::new()
        );
        assert_eq!(
            to_reap(&checks, t0 + 30 * S),
            [("web".to_string(), "web-check-2".to_string())]
        );
        assert_eq!(
            to_reap(&checks, t0 + 300 * S),
            [("web".to_string(), "web-check".to_string())],
            "one entry for the service, however many of its checks are due"
        );
    }

    #[test]
    fn a_ttl_check_expires_once_at_its_deadline() {
        let t0 = Instant::now();
        let mut checks = Checks::default();
        let mut ttl = check("ttl", "", Some(10), "");
        ttl.deadline = Some(t0 + 10 * S);
        checks.insert("ttl".into(), ttl);
        // A TTL check whose deadline was taken (it expired before) does not expire
        // again until an update sets a new one.
        checks.insert("spent".into(), check("spent", "", Some(5), ""));

        assert_eq!(next_wake(&checks, t0), t0 + S, "at most a second's sleep");
        assert_eq!(next_wake(&checks, t0 + 9_500 * S / 1000), t0 + 10 * S);
        assert!(take_expired(&mut checks, t0 + 9 * S).is_empty());
        assert_eq!(
            take_expired(&mut checks, t0 + 10 * S),
            [("ttl".to_string(), 10 * S)]
        );
        assert!(
            take_expired(&mut checks, t0 + 11 * S).is_empty(),
            "reported once"
        );
        assert_eq!(next_wake(&checks, t0 + 11 * S), t0 + 12 * S);
        assert_eq!(expired_output(10 * S), "TTL expired (no update for 10s)");
    }
}
