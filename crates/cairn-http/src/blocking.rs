//! Blocking queries (`?index=N&wait=D`) and consistency modes for reads.
//!
//! Consistency: the default mode and `?consistent` are linearizable on every node (a
//! server that does not lead and a client agent both wait for a read index from the
//! leader before reading their replica); `?stale` and `?max_stale=` read the replica as
//! it is, `X-Consul-LastContact` saying how far behind it may be.
//!
//! A read with `index` waits until the index of what it reads exceeds `index`, or the
//! wait (default 5 min, at most 10 min, plus up to wait/16 of jitter) runs out. The
//! query is re-evaluated after each applied Raft batch, but because each read reports
//! its own fine-grained index (per key, per prefix, per service name), a watcher only
//! returns when *its* result moved, not on unrelated writes.

use std::time::Duration;

use cairn_state::State;
use rand::Rng;

use crate::acl::Authz;
use crate::query::Query;
use crate::reply::{Consistency, HttpError, ReadMeta};
use crate::App;

/// The mode a read is served in: the requested one, except that a stale read whose
/// `max_stale` this node cannot honour (no leader known, or no contact with it for
/// longer) is served in the default mode instead, as Consul re-runs it on the leader.
/// `raft` is asked only when that question arises (it is not free on a busy read path).
pub fn effective_mode(
    requested: Consistency,
    max_stale: Option<Duration>,
    raft: impl FnOnce() -> crate::LeaderContact,
) -> Consistency {
    match (requested, max_stale) {
        (Consistency::Stale, Some(max)) => {
            let raft = raft();
            let fresh = raft.known_leader && u128::from(raft.last_contact_ms) <= max.as_millis();
            if fresh {
                Consistency::Stale
            } else {
                Consistency::Leader
            }
        }
        (mode, _) => mode,
    }
}

/// The requested mode and staleness bound of a read, with the agent's
/// `discovery_max_stale` applied to service-discovery reads that ask for no mode.
fn requested_mode(app: &App, q: &Query) -> Result<(Consistency, Option<Duration>), HttpError> {
    let mode = q.consistency()?;
    let max_stale = q.duration("max_stale")?.filter(|d| !d.is_zero());
    let asked_leader = q.get("leader").is_some();
    match app.limits().discovery_max_stale {
        Some(d) if q.is_discovery() && mode == Consistency::Leader && !asked_leader => {
            Ok((Consistency::Stale, Some(d)))
        }
        _ => Ok((mode, max_stale)),
    }
}

/// Runs `read` against the state, blocking as the query asks. Default-mode and
/// `?consistent` reads first wait until this node's replica holds everything the leader
/// had committed (a barrier confirmed by the leader's lease or by a quorum), and again
/// before a blocking query returns; stale reads are served from the replica as it is.
/// A default-mode read whose token resolution already caught up (`authz`) does not
/// wait a second time: that catch-up came after the request arrived, which is all the
/// mode asks.
pub async fn read<T>(
    app: &App,
    q: &Query,
    authz: &Authz,
    read: impl Fn(&State) -> Result<(T, u64), HttpError>,
) -> Result<(T, ReadMeta), HttpError> {
    q.check_dc(app.datacenter())?;
    let (requested, max_stale) = requested_mode(app, q)?;
    let consistency = effective_mode(requested, max_stale, || app.leader_contact());
    if let Err(e) = app.read_ready() {
        // A `?stale` read asked for the replica as it is: a client that lost its servers
        // keeps serving it (`X-Consul-LastContact` says how old it is), once it ever held
        // a copy of the state.
        if consistency != Consistency::Stale || app.state().read().index == 0 {
            return Err(e);
        }
    }
    let min_index = q.u64("index")?.unwrap_or(0);
    let wait = q.duration("wait")?;
    let caught_up = consistency == Consistency::Leader && authz.caught_up();
    if consistency != Consistency::Stale && !caught_up {
        app.barrier(consistency).await?;
    }
    let limits = app.limits();
    let mut rx = app.subscribe();
    let meta = |index| {
        let mut contact = app.leader_contact();
        if consistency != Consistency::Stale {
            // Served as the leader has it: no staleness to report.
            contact.last_contact_ms = 0;
        }
        ReadMeta {
            index,
            contact,
            consistency,
        }
    };
    let (value, index) = read(&app.state().read())?;
    if min_index == 0 || index > min_index {
        return Ok((value, meta(index)));
    }
    let mut wait = wait
        .unwrap_or(limits.default_query_time)
        .min(limits.max_query_time);
    if wait.is_zero() {
        wait = limits.default_query_time;
    }
    let jitter_max = wait.as_millis() as u64 / 16;
    let jitter = if jitter_max > 0 {
        rand::rng().random_range(0..jitter_max)
    } else {
        0
    };
    let wait = (wait + Duration::from_millis(jitter)).min(limits.max_query_time);
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = (value, index);
    loop {
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Err(_) | Ok(Err(_)) => return Ok((last.0, meta(last.1))),
            Ok(Ok(())) => {
                let (value, index) = read(&app.state().read())?;
                if index > min_index {
                    if consistency != Consistency::Stale {
                        app.barrier(consistency).await?;
                    }
                    return Ok((value, meta(index)));
                }
                last = (value, index);
            }
        }
    }
}

/// The common shape of list reads: parse the query, validate `?filter=`, run `read` as a
/// blocking query, keep the elements the filter matches, answer JSON with the headers;
/// leaving out the catalog elements `authz` may not see (see
/// [`crate::acl::visible`]) and saying so in `X-Consul-Results-Filtered-By-ACLs`.
pub async fn json_list_acl(
    app: &App,
    q: &Query,
    authz: &Authz,
    read_list: impl Fn(&State) -> (Vec<serde_json::Value>, u64),
) -> Result<axum::response::Response, HttpError> {
    json_list_where(
        app,
        q,
        authz,
        |v| !authz.enabled() || crate::acl::visible(authz, v),
        read_list,
    )
    .await
}

/// [`json_list_acl`] with any test of visibility: keeps the elements `visible` allows,
/// saying in `X-Consul-Results-Filtered-By-ACLs` when it left some out.
pub async fn json_list_where(
    app: &App,
    q: &Query,
    authz: &Authz,
    visible: impl Fn(&serde_json::Value) -> bool,
    read_list: impl Fn(&State) -> (Vec<serde_json::Value>, u64),
) -> Result<axum::response::Response, HttpError> {
    let filter = q.filter()?;
    let ((v, filtered), meta) = read(app, q, authz, |st| {
        let (items, i) = read_list(st);
        let n = items.len();
        let items: Vec<serde_json::Value> = items.into_iter().filter(|v| visible(v)).collect();
        let filtered = items.len() < n;
        let items = match &filter {
            Some(f) => items.into_iter().filter(|v| f.matches(v)).collect(),
            None => items,
        };
        Ok(((items, filtered), i))
    })
    .await?;
    Ok(crate::kv::mark_filtered(
        crate::reply::json_read(&v, q.pretty(), &meta),
        filtered,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeaderContact;

    fn raft(leader: bool, contact_ms: u64) -> LeaderContact {
        LeaderContact {
            known_leader: leader,
            last_contact_ms: contact_ms,
        }
    }

    #[test]
    fn stale_reads_within_max_stale_stay_stale() {
        let ms = Some(Duration::from_millis(500));
        assert_eq!(
            effective_mode(Consistency::Stale, ms, || raft(true, 500)),
            Consistency::Stale
        );
        assert_eq!(
            effective_mode(Consistency::Stale, None, || raft(false, u64::MAX)),
            Consistency::Stale,
            "without max_stale, stale is stale whatever the contact"
        );
    }

    #[test]
    fn stale_reads_past_max_stale_or_without_leader_go_to_the_leader() {
        let ms = Some(Duration::from_millis(500));
        assert_eq!(
            effective_mode(Consistency::Stale, ms, || raft(true, 501)),
            Consistency::Leader
        );
        assert_eq!(
            effective_mode(Consistency::Stale, ms, || raft(false, 0)),
            Consistency::Leader
        );
    }

    #[test]
    fn other_modes_are_kept() {
        for mode in [Consistency::Leader, Consistency::Consistent] {
            let ms = Some(Duration::from_millis(1));
            assert_eq!(effective_mode(mode, ms, || raft(false, u64::MAX)), mode);
        }
    }
}
