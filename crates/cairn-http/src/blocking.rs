//! Blocking queries (`?index=N&wait=D`) and consistency modes for reads.
//!
//! A read with `index` waits until the index of what it reads exceeds `index`, or the
//! wait (default 5 min, at most 10 min, plus up to wait/16 of jitter) runs out. The
//! query is re-evaluated after each applied Raft batch, but because each read reports
//! its own fine-grained index (per key, per prefix, per service name), a watcher only
//! returns when *its* result moved, not on unrelated writes.

use std::time::Duration;

use cairn_state::State;
use rand::Rng;

use crate::query::Query;
use crate::reply::{Consistency, HttpError, ReadMeta};
use crate::App;

/// Runs `read` against the state, blocking as the query asks.
pub async fn read<T>(
    app: &App,
    q: &Query,
    read: impl Fn(&State) -> Result<(T, u64), HttpError>,
) -> Result<(T, ReadMeta), HttpError> {
    q.check_dc(app.datacenter())?;
    app.read_ready()?;
    let consistency = q.consistency()?;
    let min_index = q.u64("index")?.unwrap_or(0);
    let wait = q.duration("wait")?;
    if consistency == Consistency::Consistent {
        app.barrier().await?;
    }
    let limits = app.limits();
    let mut rx = app.subscribe();
    let meta = |index| ReadMeta {
        index,
        raft: app.raft_info(),
        consistency,
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
                    if consistency == Consistency::Consistent {
                        app.barrier().await?;
                    }
                    return Ok((value, meta(index)));
                }
                last = (value, index);
            }
        }
    }
}

/// The common shape of list reads: parse the query, validate `?filter=`, run `read` as a
/// blocking query, keep the elements the filter matches, answer JSON with the headers.
pub async fn json_list(
    app: &App,
    q: &Query,
    read_list: impl Fn(&State) -> (Vec<serde_json::Value>, u64),
) -> Result<axum::response::Response, HttpError> {
    let filter = q.filter()?;
    let (v, meta) = read(app, q, |st| {
        let (items, i) = read_list(st);
        let items = match &filter {
            Some(f) => items.into_iter().filter(|v| f.matches(v)).collect(),
            None => items,
        };
        Ok((items, i))
    })
    .await?;
    Ok(crate::reply::json_read(&v, q.pretty(), &meta))
}
