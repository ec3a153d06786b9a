//! Autopilot: server health and the cleanup of dead servers, as Consul's.
//!
//! * [`health`] (pure) judges each Raft member from the leader's facts (last contact,
//!   log index, term), the LAN pool (serf status, name, ID, version) and the settings in
//!   the replicated state: Consul's `/v1/operator/autopilot/health`.
//! * [`cleanup_plan`] (pure) picks the servers that have been failed in the pool for
//!   longer than `ServerStabilizationTime` and may be removed without risking quorum.
//! * [`run`] is the leader duty that carries the plan out, one removal at a time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use cairn_gossip::MemberStatus;
use cairn_raft::ClusterFacts;
use cairn_state::AutopilotConfig;
use parking_lot::Mutex;
use serde::Serialize;

use crate::bootstrap::{servers_in, ServerMember};
use crate::leader::Duties;

/// Consul's duration text: "200ms", "10s", "1m30s".
pub fn duration_text(ms: u64) -> String {
    cairn_types::duration::format_duration(Duration::from_millis(ms))
}

/// One server in `/v1/operator/autopilot/health` (Consul's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerHealth {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub voter: bool,
    /// RFC 3339 time since which the server has been continuously healthy or unhealthy.
    pub stable_since: String,
}

/// The whole health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterHealth {
    pub healthy: bool,
    pub failure_tolerance: u64,
    pub servers: Vec<ServerHealth>,
}

/// What the pool says about a server (looked up by Raft ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    pub name: String,
    pub node_id: String,
    pub status: MemberStatus,
    pub version: String,
}

fn serf_status(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::Alive => "alive",
        MemberStatus::Left => "left",
        MemberStatus::Failed => "failed",
        _ => "none",
    }
}

/// Pure: the health of every member. `stable_since(id, healthy)` gives the time (wall
/// ms) since which a member has been in its current health.
pub fn health(
    facts: &ClusterFacts,
    pool: &BTreeMap<u64, PoolView>,
    config: &AutopilotConfig,
    mut stable_since: impl FnMut(u64, bool) -> u64,
) -> ClusterHealth {
    // A follower's contact is up to a heartbeat interval old even when all is well.
    let threshold = config.last_contact_threshold_ms + facts.heartbeat_interval_ms;
    let mut servers = Vec::new();
    for m in &facts.members {
        let seen = pool.get(&m.id);
        let status = seen.map_or(MemberStatus::Failed, |p| p.status);
        let contact_ok = m.last_contact_ms.is_some_and(|c| c <= threshold);
        let trailing = facts.last_index.saturating_sub(m.last_index);
        let healthy = status == MemberStatus::Alive
            && (m.leader || (contact_ok && trailing <= config.max_trailing_logs));
        let since = stable_since(m.id, healthy);
        servers.push(ServerHealth {
            id: seen.map(|p| p.node_id.clone()).unwrap_or_default(),
            name: seen.map(|p| p.name.clone()).unwrap_or_default(),
            address: m.addr.clone(),
            serf_status: serf_status(status).into(),
            version: seen.map(|p| p.version.clone()).unwrap_or_default(),
            leader: m.leader,
            last_contact: match m.last_contact_ms {
                Some(ms) => duration_text(ms),
                None => "-1ns".into(),
            },
            last_term: facts.term,
            last_index: m.last_index,
            healthy,
            voter: m.voter,
            stable_since: rfc3339(since),
        });
    }
    let voters = servers.iter().filter(|s| s.voter).count() as u64;
    let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count() as u64;
    let quorum = voters / 2 + 1;
    ClusterHealth {
        healthy: servers.iter().all(|s| s.healthy),
        failure_tolerance: healthy_voters.saturating_sub(quorum),
        servers,
    }
}

/// Remembers since when each member has been healthy (or not), for `StableSince`.
#[derive(Default)]
pub struct StableTracker(Mutex<HashMap<u64, (bool, u64)>>);

impl StableTracker {
    /// The time since which `id` has had health `healthy`, given that it has it at `now`.
    pub fn since(&self, id: u64, healthy: bool, now_ms: u64) -> u64 {
        let mut m = self.0.lock();
        let e = m.entry(id).or_insert((healthy, now_ms));
        if e.0 != healthy {
            *e = (healthy, now_ms);
        }
        e.1
    }
}

/// Wall-clock ms as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A Raft member as the cleanup sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub name: String,
    pub voter: bool,
    /// How long the pool has shown it failed (`None`: not failed, or not in the pool).
    pub failed_for: Option<Duration>,
}

/// One removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub id: u64,
    pub name: String,
}

/// Pure: the dead servers to remove now, in order. A server counts as dead once it has
/// been failed for `ServerStabilizationTime`. Non-voters go freely. Dead voters go only
/// while the voters that are not failed are a majority of the current configuration
/// (otherwise nothing can commit, and removing would only hide the outage), and never
/// below `MinQuorum` voters (nor below one). The leader (`me`) is never removed.
pub fn cleanup_plan(peers: &[Peer], config: &AutopilotConfig, me: u64) -> Vec<Removal> {
    if !config.cleanup_dead_servers {
        return Vec::new();
    }
    let stable = Duration::from_millis(config.server_stabilization_time_ms);
    let dead = |p: &&Peer| p.id != me && p.failed_for.is_some_and(|f| f >= stable);
    let removal = |p: &Peer| Removal {
        id: p.id,
        name: p.name.clone(),
    };
    let mut out: Vec<Removal> = peers
        .iter()
        .filter(|p| !p.voter)
        .filter(dead)
        .map(removal)
        .collect();
    let voters = peers.iter().filter(|p| p.voter).count() as u64;
    let not_failed = peers
        .iter()
        .filter(|p| p.voter && p.failed_for.is_none())
        .count() as u64;
    if not_failed <= voters / 2 {
        return out;
    }
    let floor = config.min_quorum.max(1);
    let mut remaining = voters;
    let mut dead_voters: Vec<&Peer> = peers.iter().filter(|p| p.voter).filter(dead).collect();
    dead_voters.sort_by(|a, b| b.failed_for.cmp(&a.failed_for).then(a.id.cmp(&b.id)));
    for p in dead_voters {
        if remaining <= floor {
            break;
        }
        remaining -= 1;
        out.push(removal(p));
    }
    out
}

/// How often the duty looks at the pool.
const TICK: Duration = Duration::from_secs(1);

/// The leader duty: removes dead servers by [`cleanup_plan`] with the settings in the
/// replicated state. It remembers since when it has seen each server failed; a new
/// leader starts counting afresh (it waits a full stabilisation time before removing).
pub(crate) async fn run(duties: Duties) {
    let (Some(raft), Some(gossip)) = (duties.raft.clone(), duties.gossip.clone()) else {
        return;
    };
    let me = raft.node_id();
    let mut failed_since: HashMap<u64, Instant> = HashMap::new();
    let mut events = gossip.subscribe();
    loop {
        let servers: Vec<ServerMember> = servers_in(&gossip.members(), &duties.datacenter);
        let now = Instant::now();
        let failed: BTreeMap<u64, &ServerMember> = servers
            .iter()
            .filter(|s| s.status == MemberStatus::Failed)
            .map(|s| (s.raft_id, s))
            .collect();
        failed_since.retain(|id, _| failed.contains_key(id));
        for id in failed.keys() {
            failed_since.entry(*id).or_insert(now);
        }
        let voters = raft.voter_ids();
        let peers: Vec<Peer> = raft
            .members()
            .into_keys()
            .map(|id| Peer {
                id,
                name: servers
                    .iter()
                    .find(|s| s.raft_id == id)
                    .map_or_else(|| id.to_string(), |s| s.name.clone()),
                voter: voters.contains(&id),
                failed_for: failed_since.get(&id).map(|t| now - *t),
            })
            .collect();
        let config = duties.state.read().autopilot_config();
        for r in cleanup_plan(&peers, &config, me) {
            tracing::info!(server = %r.name, id = r.id, "autopilot: removing a dead server from the Raft configuration");
            if let Err(e) = raft.remove_member(r.id).await {
                tracing::warn!(server = %r.name, "autopilot: removing a dead server failed: {e}");
                break;
            }
        }
        // Wake on the next pool event or tick; a closed channel (gossip stopped) must
        // not turn this into a busy loop.
        if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) =
            tokio::time::timeout(TICK, events.recv()).await
        {
            tokio::time::sleep(TICK).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_raft::MemberFacts;

    fn peer(id: u64, voter: bool, failed_s: Option<u64>) -> Peer {
        Peer {
            id,
            name: format!("s{id}"),
            voter,
            failed_for: failed_s.map(Duration::from_secs),
        }
    }

    fn ids(p: Vec<Removal>) -> Vec<u64> {
        p.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_server_dead_past_the_stabilisation_time_is_removed() {
        let c = AutopilotConfig::default(); // 10 s
        let mut peers = vec![
            peer(1, true, None),
            peer(2, true, None),
            peer(3, true, Some(9)),
        ];
        assert!(
            cleanup_plan(&peers, &c, 1).is_empty(),
            "not dead long enough"
        );
        peers[2].failed_for = Some(Duration::from_secs(10));
        assert_eq!(ids(cleanup_plan(&peers, &c, 1)), vec![3]);
        let off = AutopilotConfig {
            cleanup_dead_servers: false,
            ..c.clone()
        };
        assert!(
            cleanup_plan(&peers, &off, 1).is_empty(),
            "cleanup turned off"
        );
        // The leader never removes itself.
        assert!(cleanup_plan(&[peer(1, true, Some(99)), peer(2, true, None)], &c, 1).is_empty());
    }

    #[test]
    fn nothing_is_removed_when_failed_voters_are_not_a_minority() {
        let c = AutopilotConfig::default();
        // 2 of 3 failed: the survivors are no majority.
        let peers = [
            peer(1, true, None),
            peer(2, true, Some(60)),
            peer(3, true, Some(60)),
        ];
        assert!(cleanup_plan(&peers, &c, 1).is_empty());
        // 2 of 4 failed: not a majority alive either.
        let peers = [
            peer(1, true, None),
            peer(2, true, None),
            peer(3, true, Some(60)),
            peer(4, true, Some(60)),
        ];
        assert!(cleanup_plan(&peers, &c, 1).is_empty());
        // 2 of 5 failed: both go, the longest-dead first; a failed learner goes too.
        let peers = [
            peer(1, true, None),
            peer(2, true, None),
            peer(3, true, None),
            peer(4, true, Some(30)),
            peer(5, true, Some(60)),
            peer(6, false, Some(11)),
        ];
        assert_eq!(ids(cleanup_plan(&peers, &c, 1)), vec![6, 5, 4]);
        // A server failed only briefly still counts against the majority.
        let peers = [
            peer(1, true, None),
            peer(2, true, Some(1)),
            peer(3, true, Some(60)),
        ];
        assert!(cleanup_plan(&peers, &c, 1).is_empty());
    }

    #[test]
    fn min_quorum_is_a_floor() {
        let c = AutopilotConfig {
            min_quorum: 4,
            ..AutopilotConfig::default()
        };
        let peers = [
            peer(1, true, None),
            peer(2, true, None),
            peer(3, true, None),
            peer(4, true, Some(60)),
            peer(5, true, Some(30)),
        ];
        assert_eq!(ids(cleanup_plan(&peers, &c, 1)), vec![4]);
        let c = AutopilotConfig { min_quorum: 5, ..c };
        assert!(cleanup_plan(&peers, &c, 1).is_empty());
    }

    fn facts() -> ClusterFacts {
        let m = |id, leader, last_index, contact| MemberFacts {
            id,
            addr: format!("127.0.0.{id}:8300"),
            voter: true,
            leader,
            last_index,
            last_contact_ms: contact,
        };
        ClusterFacts {
            term: 3,
            last_index: 1000,
            heartbeat_interval_ms: 50,
            members: vec![
                m(1, true, 1000, Some(0)),
                m(2, false, 990, Some(40)),
                m(3, false, 500, Some(40)),
            ],
        }
    }

    fn pool(status3: MemberStatus) -> BTreeMap<u64, PoolView> {
        (1..=3)
            .map(|id| {
                let status = if id == 3 {
                    status3
                } else {
                    MemberStatus::Alive
                };
                (
                    id,
                    PoolView {
                        name: format!("s{id}"),
                        node_id: format!("id-{id}"),
                        status,
                        version: "1.0.0".into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn health_judges_contact_trailing_logs_and_serf_status() {
        let c = AutopilotConfig::default();
        let h = health(&facts(), &pool(MemberStatus::Alive), &c, |_, _| 0);
        // Server 3 is 500 entries behind (> 250).
        let healthy: Vec<bool> = h.servers.iter().map(|s| s.healthy).collect();
        assert_eq!(healthy, vec![true, true, false]);
        assert!(!h.healthy);
        assert_eq!(h.failure_tolerance, 0);
        assert_eq!(h.servers[0].last_contact, "0s");
        assert_eq!(h.servers[1].last_contact, "40ms");
        assert_eq!(h.servers[1].stable_since, "1970-01-01T00:00:00Z");

        let mut f = facts();
        f.members[2].last_index = 1000;
        let h = health(&f, &pool(MemberStatus::Alive), &c, |_, _| 0);
        assert!(h.healthy);
        assert_eq!(h.failure_tolerance, 1);
        let h = health(&f, &pool(MemberStatus::Failed), &c, |_, _| 0);
        assert_eq!(h.servers[2].serf_status, "failed");
        assert!(!h.servers[2].healthy);
        f.members[1].last_contact_ms = Some(1000);
        let h = health(&f, &pool(MemberStatus::Alive), &c, |_, _| 0);
        assert!(!h.servers[1].healthy, "contact too old");
    }

    #[test]
    fn stable_since_moves_only_when_health_changes() {
        let t = StableTracker::default();
        assert_eq!(t.since(1, true, 100), 100);
        assert_eq!(t.since(1, true, 200), 100);
        assert_eq!(t.since(1, false, 300), 300);
        assert_eq!(t.since(1, false, 400), 300);
    }

    #[test]
    fn durations_and_times_read_as_consuls() {
        assert_eq!(duration_text(200), "200ms");
        assert_eq!(duration_text(10_000), "10s");
        assert_eq!(duration_text(90_000), "1m30s");
        assert_eq!(duration_text(1500), "1.5s");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }
}
