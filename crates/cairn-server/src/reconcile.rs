//! Leader duty: keep the catalog's nodes in step with the LAN pool, as Consul's leader
//! does with its Serf members.
//!
//! Every member of this datacenter is a catalog node (`Address` = its advertised address)
//! with a `serfHealth` check: passing while it is alive, critical once it has failed (so
//! its services leave DNS and `?passing` at once). A member that left, or was reaped after
//! `reconnect_timeout`, is deregistered, and so is a catalog node that carries a
//! `serfHealth` check but is not a member, once this server's own list can be trusted
//! to be the pool's ([`cairn_gossip::Gossip::settled`]): a server just restarted knows
//! little more than itself, and reaping what it does not know yet would deregister live
//! nodes and destroy their sessions. Nodes registered through `/v1/catalog/register`
//! without a `serfHealth` check (external services) are left alone.
//!
//! [`plan`] is pure: members and state in, commands out. [`run`] carries plans out on
//! every membership event and once a minute, and only while this server leads
//! ([`crate::leader`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cairn_gossip::{Member, MemberStatus};
use cairn_state::{Command, Deregistration, Registration, State};
use cairn_types::{
    HealthCheck, Node, NodeService, CRITICAL, PASSING, SERF_CHECK_ID, SERF_CHECK_NAME,
};

use crate::leader::Duties;
use crate::now_ms;

/// Output of `serfHealth` while the member is alive.
pub const ALIVE_OUTPUT: &str = "Agent alive and reachable";
/// Output of `serfHealth` once the member has failed.
pub const FAILED_OUTPUT: &str = "Agent not live or unreachable";

/// A full reconciliation runs at least this often (Consul's `reconcile_interval`).
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// After a failed write (no quorum yet), the next attempt.
const RETRY_AFTER: Duration = Duration::from_millis(200);

fn serf_check(node: &str, status: &str) -> HealthCheck {
    HealthCheck {
        node: node.to_string(),
        check_id: SERF_CHECK_ID.into(),
        name: SERF_CHECK_NAME.into(),
        status: status.into(),
        output: if status == PASSING {
            ALIVE_OUTPUT
        } else {
            FAILED_OUTPUT
        }
        .into(),
        ..Default::default()
    }
}

fn catalog_node(m: &Member, dc: &str) -> Node {
    let ip = m.addr.ip().to_string();
    let tagged: BTreeMap<String, String> = ["lan", "lan_ipv4", "wan", "wan_ipv4"]
        .iter()
        .map(|k| (k.to_string(), ip.clone()))
        .collect();
    Node {
        id: m.tags.get("id").cloned().unwrap_or_default(),
        node: m.name.clone(),
        address: ip,
        datacenter: dc.to_string(),
        tagged_addresses: tagged,
        meta: [("consul-network-segment".to_string(), String::new())].into(),
        create_index: 0,
        modify_index: 0,
    }
}

/// The `consul` service a server member is registered with.
fn consul_service(m: &Member) -> Option<NodeService> {
    if m.tags.get("role").map(String::as_str) != Some("consul") {
        return None;
    }
    let port = m.tags.get("port")?.parse().ok()?;
    Some(NodeService {
        id: "consul".into(),
        service: "consul".into(),
        port,
        ..Default::default()
    })
}

/// The commands that bring `st` in line with `members` (this datacenter's only).
/// Catalog nodes of the pool that `members` lacks are deregistered only if
/// `members_complete` (the list is known to be the pool's).
pub fn plan(
    members: &[Member],
    members_complete: bool,
    st: &State,
    dc: &str,
    now_ms: u64,
) -> Vec<Command> {
    let mut cmds = Vec::new();
    let mut present = BTreeSet::new();
    for m in members {
        if m.tags.get("dc").is_some_and(|d| d != dc) {
            continue;
        }
        present.insert(m.name.as_str());
        let rec = st.node(&m.name).0;
        let serf = rec.and_then(|r| r.checks.get(SERF_CHECK_ID));
        match m.status {
            MemberStatus::Alive | MemberStatus::Failed => {
                let status = if m.status == MemberStatus::Alive {
                    PASSING
                } else {
                    CRITICAL
                };
                let want = catalog_node(m, dc);
                let node_ok = rec.is_some_and(|r| r.node.address == want.address);
                let serf_ok = serf.is_some_and(|c| c.status == status);
                let service = consul_service(m)
                    .filter(|_| m.status == MemberStatus::Alive)
                    .filter(|_| rec.is_none_or(|r| !r.services.contains_key("consul")));
                if node_ok && serf_ok && service.is_none() {
                    continue;
                }
                cmds.push(Command::Register(Registration {
                    node: want,
                    service,
                    checks: vec![serf_check(&m.name, status)],
                    // Keep the node's own metadata (set by its anti-entropy) once it exists,
                    // unless the address moved.
                    skip_node_update: node_ok,
                    now_ms,
                }));
            }
            MemberStatus::Left => {
                if rec.is_some() {
                    cmds.push(deregister(&m.name, now_ms));
                }
            }
            // Still gossiping its leave: nothing to do until it is `Left`.
            MemberStatus::Leaving => {}
        }
    }
    // Reaped members: nodes the pool put in the catalog (they carry `serfHealth`) that
    // are no longer members.
    if !members_complete {
        return cmds;
    }
    for n in st.nodes().0 {
        if present.contains(n.node.as_str()) || n.datacenter != dc {
            continue;
        }
        let from_pool = st
            .node(&n.node)
            .0
            .is_some_and(|r| r.checks.contains_key(SERF_CHECK_ID));
        if from_pool {
            cmds.push(deregister(&n.node, now_ms));
        }
    }
    cmds
}

fn deregister(node: &str, now_ms: u64) -> Command {
    Command::Deregister(Deregistration {
        node: node.to_string(),
        service_id: None,
        check_id: None,
        now_ms,
    })
}

/// Reconciles on every membership event and every minute. A leader duty.
pub(crate) async fn run(duties: Duties) {
    let Some(gossip) = duties.gossip.clone() else {
        return;
    };
    let mut events = gossip.subscribe();
    let dc = duties.datacenter.clone();
    loop {
        let cmds = {
            let st = duties.state.read();
            plan(&gossip.members(), gossip.settled(), &st, &dc, now_ms())
        };
        let mut failed = false;
        for cmd in cmds {
            let what = match &cmd {
                Command::Register(r) => format!(
                    "member {} {}",
                    r.node.node,
                    r.checks.first().map(|c| c.status.as_str()).unwrap_or("")
                ),
                Command::Deregister(d) => format!("member {} gone: deregistering", d.node),
                _ => String::new(),
            };
            match duties.write(cmd).await {
                Ok(_) => tracing::info!("reconcile: {what}"),
                Err(e) => {
                    // A new leader refuses writes until a quorum acknowledged it: retry soon.
                    tracing::debug!("reconcile: {what} failed: {e}; retrying");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        }
        // Wait for a change (or the periodic pass); coalesce bursts of events.
        tokio::select! {
            r = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, ip: &str, status: MemberStatus, role: &str) -> Member {
        let mut tags: cairn_gossip::Tags = [
            ("role".to_string(), role.to_string()),
            ("dc".to_string(), "dc1".to_string()),
            ("id".to_string(), format!("id-{name}")),
        ]
        .into();
        if role == "consul" {
            tags.insert("port".into(), "8300".into());
        }
        Member {
            name: name.into(),
            addr: format!("{ip}:8301").parse().unwrap(),
            tags,
            status,
            generation: 1,
            version: 0,
        }
    }

    fn apply_all(st: &mut State, cmds: Vec<Command>) {
        for c in cmds {
            let i = st.index + 1;
            st.apply(i, &c);
        }
    }

    fn serf_status(st: &State, node: &str) -> Option<String> {
        st.node(node)
            .0
            .and_then(|r| r.checks.get(SERF_CHECK_ID))
            .map(|c| c.status.clone())
    }

    #[test]
    fn members_become_nodes_and_failures_turn_critical_then_left_ones_go() {
        let mut st = State::new();
        let mut ms = vec![
            member("s1", "127.0.0.1", MemberStatus::Alive, "consul"),
            member("c1", "127.0.0.2", MemberStatus::Alive, "node"),
        ];
        let cmds = plan(&ms, true, &st, "dc1", 1);
        apply_all(&mut st, cmds);
        assert_eq!(serf_status(&st, "c1").as_deref(), Some(PASSING));
        let s1 = st.node("s1").0.unwrap();
        assert_eq!(s1.node.address, "127.0.0.1");
        assert_eq!(s1.node.id, "id-s1");
        assert_eq!(s1.services["consul"].port, 8300);
        // Steady state: nothing more to write.
        assert!(plan(&ms, true, &st, "dc1", 2).is_empty());

        ms[1].status = MemberStatus::Failed;
        let cmds = plan(&ms, true, &st, "dc1", 3);
        assert_eq!(cmds.len(), 1);
        apply_all(&mut st, cmds);
        assert_eq!(serf_status(&st, "c1").as_deref(), Some(CRITICAL));
        assert!(plan(&ms, true, &st, "dc1", 4).is_empty());

        ms[1].status = MemberStatus::Alive;
        let cmds = plan(&ms, true, &st, "dc1", 5);
        apply_all(&mut st, cmds);
        assert_eq!(serf_status(&st, "c1").as_deref(), Some(PASSING));

        ms[1].status = MemberStatus::Left;
        let cmds = plan(&ms, true, &st, "dc1", 6);
        apply_all(&mut st, cmds);
        assert!(st.node("c1").0.is_none());
        assert!(plan(&ms, true, &st, "dc1", 7).is_empty());
    }

    /// A state holding server s1 and client c1, as the pool put them in; and the two.
    fn server_and_client() -> (State, Vec<Member>) {
        let mut st = State::new();
        let ms = vec![
            member("s1", "127.0.0.1", MemberStatus::Alive, "consul"),
            member("c1", "127.0.0.2", MemberStatus::Alive, "node"),
        ];
        let cmds = plan(&ms, true, &st, "dc1", 1);
        apply_all(&mut st, cmds);
        (st, ms)
    }

    #[test]
    fn a_list_not_yet_the_pools_reaps_nobody() {
        let (st, ms) = server_and_client();
        // s1 restarted and knows only itself so far: c1, alive and holding sessions
        // elsewhere in the pool, stays.
        let only_me = vec![ms[0].clone()];
        assert!(plan(&only_me, false, &st, "dc1", 2).is_empty());
        // What it does know is still acted on: a member it sees leave is deregistered.
        let left = vec![
            ms[0].clone(),
            member("c1", "127.0.0.2", MemberStatus::Left, "node"),
        ];
        let cmds = plan(&left, false, &st, "dc1", 3);
        assert!(
            matches!(&cmds[..], [Command::Deregister(d)] if d.node == "c1"),
            "{cmds:?}"
        );
        // Once its list is the pool's, a node missing from it is reaped.
        let cmds = plan(&only_me, true, &st, "dc1", 4);
        assert!(
            matches!(&cmds[..], [Command::Deregister(d)] if d.node == "c1"),
            "{cmds:?}"
        );
    }

    #[test]
    fn reaped_members_are_removed_and_external_nodes_kept() {
        let (mut st, ms) = server_and_client();
        // An external node, registered by hand, without serfHealth.
        let ext = Registration {
            node: Node {
                node: "ext".into(),
                address: "10.0.0.9".into(),
                datacenter: "dc1".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        apply_all(&mut st, vec![Command::Register(ext)]);
        // c1 is reaped from the pool.
        let ms = vec![ms[0].clone()];
        let cmds = plan(&ms, true, &st, "dc1", 2);
        apply_all(&mut st, cmds);
        assert!(st.node("c1").0.is_none());
        assert!(st.node("ext").0.is_some());
        assert!(st.node("s1").0.is_some());
    }

    #[test]
    fn other_datacenters_and_leaving_members_are_left_alone() {
        let st = State::new();
        let mut other = member("x", "127.0.0.9", MemberStatus::Alive, "node");
        other.tags.insert("dc".into(), "dc2".into());
        let leaving = member("l", "127.0.0.8", MemberStatus::Leaving, "node");
        assert!(plan(&[other, leaving], true, &st, "dc1", 1).is_empty());
    }

    #[test]
    fn a_moved_member_gets_its_new_address_and_keeps_its_meta() {
        let mut st = State::new();
        let mut ms = vec![member("c1", "127.0.0.2", MemberStatus::Alive, "node")];
        let cmds = plan(&ms, true, &st, "dc1", 1);
        apply_all(&mut st, cmds);
        ms[0].addr = "127.0.0.3:8301".parse().unwrap();
        let cmds = plan(&ms, true, &st, "dc1", 2);
        apply_all(&mut st, cmds);
        assert_eq!(st.node("c1").0.unwrap().node.address, "127.0.0.3");
        assert!(plan(&ms, true, &st, "dc1", 3).is_empty());
    }
}
