//! `bootstrap_expect`: servers form their Raft cluster once, when the expected number of
//! servers has been seen in the LAN pool, as Consul's do.
//!
//! Every server of the datacenter gossips its node ID (tag `id`), RPC port (`port`) and
//! `expect`. A server whose Raft log is empty waits until it sees `expect` live servers;
//! then exactly one of them, the one whose node name sorts first, initializes the cluster
//! with all the servers it sees. The others never initialize: they learn the membership
//! from the leader that election produces. So there is one initial configuration, never
//! two clusters. A server that already holds a log (a restart) never bootstraps again.
//! Later servers are added by the leader ([`crate::raft_members`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_gossip::{Gossip, Member, MemberStatus};
use cairn_raft::{InitError, RaftNode};

/// A server as seen in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMember {
    pub name: String,
    pub raft_id: u64,
    /// Advertised RPC address, `ip:port`.
    pub rpc_addr: String,
    pub expect: Option<u32>,
    pub status: MemberStatus,
    /// The server already belongs to a Raft cluster (tag `raft_joined`).
    pub joined: bool,
}

/// The tag a server sets once it belongs to a Raft cluster: a fresh server that sees it
/// never forms a second cluster.
pub const JOINED_TAG: &str = "raft_joined";

/// The Raft node ID of a server: the first 64 bits of its node ID (a UUID), never 0.
pub fn raft_id(node_id: &str) -> u64 {
    let hex: String = node_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or(0).max(1)
}

/// The servers of `dc` among `members` (any status).
pub fn servers_in(members: &[Member], dc: &str) -> Vec<ServerMember> {
    members
        .iter()
        .filter(|m| {
            m.tags.get("role").map(String::as_str) == Some("consul")
                && m.tags.get("dc").map(String::as_str) == Some(dc)
        })
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(ServerMember {
                name: m.name.clone(),
                raft_id: raft_id(m.tags.get("id")?),
                rpc_addr: std::net::SocketAddr::new(m.addr.ip(), port).to_string(),
                expect: m.tags.get("expect").and_then(|e| e.parse().ok()),
                status: m.status,
                joined: m.tags.get(JOINED_TAG).is_some_and(|v| v == "1"),
            })
        })
        .collect()
}

/// What a server with an empty log does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not enough servers yet (or conflicting settings): wait, saying why.
    Wait(String),
    /// Form the cluster with these members (node id -> RPC address).
    Initialize(BTreeMap<u64, String>),
    /// Enough servers, but another one forms the cluster.
    Other(String),
}

/// Pure: the decision of server `me` expecting `expect` servers, seeing `servers`.
pub fn decide(me: &str, expect: u32, servers: &[ServerMember]) -> Decision {
    let alive: Vec<&ServerMember> = servers
        .iter()
        .filter(|s| s.status == MemberStatus::Alive)
        .collect();
    if let Some(s) = alive.iter().find(|s| s.joined) {
        return Decision::Other(format!(
            "server {} already belongs to a cluster; waiting for its leader to add this one",
            s.name
        ));
    }
    if expect < 2 {
        return Decision::Wait(
            "no -bootstrap-expect: waiting for a leader to add this server".into(),
        );
    }
    if let Some(s) = alive.iter().find(|s| s.expect.is_some_and(|e| e != expect)) {
        return Decision::Wait(format!(
            "server {} expects {} servers, this one {expect}: every server must use the same -bootstrap-expect",
            s.name,
            s.expect.unwrap_or(0)
        ));
    }
    if alive.len() < expect as usize {
        return Decision::Wait(format!(
            "waiting for {} more server(s) to bootstrap ({} of {expect} seen)",
            expect as usize - alive.len(),
            alive.len()
        ));
    }
    let first = alive.iter().map(|s| s.name.as_str()).min().unwrap_or(me);
    if first != me {
        return Decision::Other(first.to_string());
    }
    Decision::Initialize(
        alive
            .iter()
            .map(|s| (s.raft_id, s.rpc_addr.clone()))
            .collect(),
    )
}

/// Waits until the cluster can be formed and forms it (if this server is the one), or
/// until this server's Raft has a membership (it was bootstrapped before, or the leader
/// added it).
pub async fn run(raft: RaftNode, gossip: Arc<Gossip>, me: String, dc: String, expect: u32) {
    let mut events = gossip.subscribe();
    let mut said = String::new();
    loop {
        if !raft.voter_ids().is_empty() {
            // Tell the pool, so that no fresh server forms a second cluster.
            let mut tags = gossip.local_member().tags;
            tags.insert(JOINED_TAG.to_string(), "1".to_string());
            if let Err(e) = gossip.set_tags(tags).await {
                tracing::warn!("could not tag this server as joined: {e}");
            }
            return;
        }
        let decision = decide(&me, expect, &servers_in(&gossip.members(), &dc));
        match decision {
            Decision::Initialize(members) => {
                tracing::info!(
                    ?members,
                    "bootstrap: {expect} servers seen; forming the cluster"
                );
                match raft.initialize(members).await {
                    Ok(()) | Err(InitError::AlreadyInitialized(_)) => return,
                    Err(e) => tracing::warn!("bootstrap failed: {e}; retrying"),
                }
            }
            Decision::Wait(why) | Decision::Other(why) => {
                if why != said {
                    tracing::info!("bootstrap: {why}");
                    said = why;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, id: u64, expect: u32) -> ServerMember {
        ServerMember {
            name: name.into(),
            raft_id: id,
            rpc_addr: format!("127.0.0.{id}:8300"),
            expect: Some(expect),
            status: MemberStatus::Alive,
            joined: false,
        }
    }

    #[test]
    fn a_fresh_server_never_forms_a_second_cluster() {
        let mut seen = [
            s("a-new", 9, 3),
            s("s1", 1, 3),
            s("s2", 2, 3),
            s("s3", 3, 3),
        ];
        for x in seen.iter_mut().skip(1) {
            x.joined = true;
        }
        assert!(matches!(decide("a-new", 3, &seen), Decision::Other(_)));
        // Without -bootstrap-expect a server only ever waits to be added.
        assert!(matches!(decide("a-new", 0, &seen[..1]), Decision::Wait(_)));
    }

    #[test]
    fn exactly_one_server_initializes_once_all_are_seen() {
        let two = [s("s1", 1, 3), s("s2", 2, 3)];
        assert!(matches!(decide("s1", 3, &two), Decision::Wait(_)));
        let three = [s("s2", 2, 3), s("s1", 1, 3), s("s3", 3, 3)];
        let inits: Vec<_> = ["s1", "s2", "s3"]
            .iter()
            .filter(|me| matches!(decide(me, 3, &three), Decision::Initialize(_)))
            .collect();
        assert_eq!(inits, vec![&"s1"]);
        let Decision::Initialize(m) = decide("s1", 3, &three) else {
            panic!()
        };
        assert_eq!(m.len(), 3);
        assert_eq!(m[&2], "127.0.0.2:8300");
    }

    #[test]
    fn mismatched_expect_and_failed_servers_wait() {
        let mixed = [s("s1", 1, 3), s("s2", 2, 5), s("s3", 3, 3)];
        assert!(matches!(decide("s1", 3, &mixed), Decision::Wait(w) if w.contains("same")));
        let mut failed = [s("s1", 1, 3), s("s2", 2, 3), s("s3", 3, 3)];
        failed[2].status = MemberStatus::Failed;
        assert!(matches!(decide("s1", 3, &failed), Decision::Wait(_)));
    }

    #[test]
    fn raft_ids_come_from_node_ids() {
        assert_eq!(
            raft_id("0123abcd-0000-0000-ffff-000000000000"),
            0x0123_abcd_0000_0000
        );
        assert_eq!(raft_id("00000000-0000-0000-0000-000000000000"), 1);
        assert_ne!(
            raft_id("9e4f4c8a-1111-2222-3333-444455556666"),
            raft_id("9e4f4c8b-1111-2222-3333-444455556666")
        );
    }
}
