//! Leader duties: the work only the Raft leader does, started when this server gains
//! leadership and stopped when it loses it (Consul's establish/revoke leadership).
//!
//! The duties are the session TTL timers, KV tombstone GC and the reconciliation of the
//! LAN pool's members into the catalog ([`crate::reconcile`]). Neither loop asks
//! `is_leader()` on each tick: each runs only while this server leads, and starts from
//! scratch on every new term of leadership (timers are not replicated, so a new leader
//! gives every session a full TTL, as Consul does).

use crate::node::Agent;

/// Starts the leader duties whenever this server becomes leader and stops them when it
/// steps down. Runs for the life of the agent.
pub(crate) async fn supervise(agent: Agent) {
    let catalog = agent.inner.catalog.clone();
    loop {
        catalog.leadership_is(true).await;
        tracing::info!("leadership established: starting leader duties");
        let duties = Duties(vec![
            tokio::spawn(crate::sessions::reaper_loop(agent.clone())),
            tokio::spawn(crate::tombstones::gc_loop(agent.clone())),
            tokio::spawn(crate::reconcile::run(agent.clone())),
        ]);
        catalog.leadership_is(false).await;
        drop(duties);
        tracing::info!("leadership lost: leader duties stopped");
    }
}

/// The running duties; dropping them (leadership lost, or the supervisor itself stopped
/// at shutdown) stops them.
struct Duties(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Duties {
    fn drop(&mut self) {
        for d in &self.0 {
            d.abort();
        }
    }
}
