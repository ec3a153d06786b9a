//! This agent's place in the LAN gossip pool: the gossip member started from the
//! configuration (bind and advertise addresses, tags, key, timing), joins (`-join` at
//! start, `-retry-join` in the background, `/v1/agent/join`), and the rendering of members
//! in Consul's `/v1/agent/members` JSON.
//!
//! Tags follow Consul's: `role` (`consul` for a server, `node` for a client), `dc`, `id`,
//! `build`, `vsn*`, and for servers the RPC `port`, `bootstrap` and `expect`. Client agents
//! find their servers from these tags ([`server_addr`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use cairn_gossip::{Gossip, GossipError, Member, MemberStatus, Tags, Timing};
use serde_json::{json, Value};

use crate::config::Config;

/// The serf LAN port a join address without one is given (Consul's default).
pub(crate) const DEFAULT_SERF_LAN_PORT: u16 = 8301;

/// The tags this agent gossips.
pub(crate) fn tags(cfg: &Config, node_id: &str, rpc_port: Option<u16>) -> Tags {
    let mut t = Tags::new();
    let mut put = |k: &str, v: String| {
        t.insert(k.to_string(), v);
    };
    put("role", if cfg.server { "consul" } else { "node" }.into());
    put("dc", cfg.datacenter.clone());
    put("id", node_id.to_string());
    put(
        "build",
        format!("{}:cairn-{}", crate::CONSUL_API_VERSION, crate::VERSION),
    );
    put("vsn", "2".into());
    put("vsn_min", "2".into());
    put("vsn_max", "3".into());
    put("segment", String::new());
    if let (true, Some(port)) = (cfg.server, rpc_port) {
        put("port", port.to_string());
        put("raft_vsn", "3".into());
        put("expect", cfg.bootstrap_expect.to_string());
        if cfg.bootstraps_alone() {
            put("bootstrap", "1".into());
        }
    }
    t
}

/// Gossip timing from the configuration.
pub(crate) fn timing(cfg: &Config) -> Timing {
    let g = &cfg.gossip_lan;
    Timing {
        probe_interval: g.probe_interval,
        probe_timeout: g.probe_timeout,
        gossip_interval: g.gossip_interval,
        gossip_nodes: g.gossip_nodes as usize,
        retransmit_mult: g.retransmit_mult,
        suspicion_timeout: g.suspicion_timeout,
        reconnect_timeout: cfg.reconnect_timeout,
        ..Timing::lan()
    }
}

/// Resolves a join address: `host` or `host:port` (IPv6 in brackets), the port
/// defaulting to 8301.
pub(crate) fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    let a = addr.trim();
    if a.is_empty() {
        return Err("empty join address".into());
    }
    let with_port = cairn_types::net::with_default_port(a, DEFAULT_SERF_LAN_PORT);
    let found: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve join address {a:?}: {e}"))?
        .collect();
    if found.is_empty() {
        return Err(format!("join address {a:?} resolves to nothing"));
    }
    Ok(found)
}

/// Joins through `addrs` (as written); returns how many members accepted.
pub(crate) async fn join(gossip: &Gossip, addrs: &[String]) -> Result<usize, String> {
    let mut resolved = Vec::new();
    for a in addrs {
        resolved.extend(resolve(a)?);
    }
    // Joining oneself is a no-op (every server can share one -retry-join list).
    let me = gossip.local_member().addr;
    let bound = gossip.local_addr();
    resolved.retain(|a| *a != me && *a != bound);
    if resolved.is_empty() {
        return Ok(0);
    }
    gossip.join(&resolved).await.map_err(|e| match e {
        GossipError::JoinFailed(_) => format!(
            "{e}; if the addresses are right, check that both sides use the same -encrypt key \
             (a node with a wrong or missing key gets no answer; the other side logs why)"
        ),
        other => other.to_string(),
    })
}

/// `-retry-join`: tries every `interval` until a join succeeds; gives up (returning the
/// last error) after `max` attempts when `max > 0`.
pub(crate) async fn retry_join(
    gossip: Arc<Gossip>,
    addrs: Vec<String>,
    interval: Duration,
    max: u32,
) -> Result<usize, String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match join(&gossip, &addrs).await {
            Ok(n) => {
                tracing::info!(joined = n, "retry-join: joined the pool through {addrs:?}");
                return Ok(n);
            }
            Err(e) if max > 0 && attempt >= max => {
                return Err(format!("retry-join gave up after {attempt} attempts: {e}"))
            }
            Err(e) => {
                tracing::warn!("retry-join attempt {attempt} failed: {e}; retrying in {interval:?}")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// A client agent with no live server in view (its server restarted and no longer knows
/// it, a partition healed) re-joins through the servers it last saw and its configured
/// join addresses every `every`, instead of waiting for the pool's slower reconnect
/// round. Runs for the life of a client agent.
pub(crate) async fn keep_servers(
    gossip: Arc<Gossip>,
    dc: String,
    configured: Vec<String>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let members = gossip.members();
        if members.iter().any(|m| server_addr(m, &dc).is_some()) {
            continue;
        }
        let mut addrs: Vec<SocketAddr> = members
            .iter()
            .filter(|m| {
                m.status == MemberStatus::Failed
                    && m.tags.get("role").map(String::as_str) == Some("consul")
            })
            .map(|m| m.addr)
            .collect();
        for a in &configured {
            addrs.extend(resolve(a).unwrap_or_default());
        }
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            continue;
        }
        match gossip.join(&addrs).await {
            Ok(n) => tracing::info!(
                joined = n,
                "no live server was in view; re-joined through {addrs:?}"
            ),
            Err(e) => {
                tracing::debug!("no live server in view; re-join through {addrs:?} failed: {e}")
            }
        }
    }
}

/// The server RPC address a member advertises, if it is a live server of `dc`.
pub(crate) fn server_addr(m: &Member, dc: &str) -> Option<SocketAddr> {
    if m.status != MemberStatus::Alive
        || m.tags.get("role").map(String::as_str) != Some("consul")
        || m.tags.get("dc").map(String::as_str) != Some(dc)
    {
        return None;
    }
    let port = m.tags.get("port")?.parse::<u16>().ok()?;
    Some(SocketAddr::new(m.addr.ip(), port))
}

/// One member in Consul's `/v1/agent/members` shape.
pub(crate) fn member_json(m: &Member) -> Value {
    json!({
        "Name": m.name,
        "Addr": m.addr.ip().to_string(),
        "Port": m.addr.port(),
        "Tags": m.tags,
        "Status": m.status.code(),
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(tags: &[(&str, &str)], status: MemberStatus) -> Member {
        Member {
            name: "s1".into(),
            addr: "127.0.0.7:8301".parse().unwrap(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            status,
            generation: 1,
            version: 0,
        }
    }

    #[test]
    fn servers_are_found_by_role_dc_and_port() {
        let alive = MemberStatus::Alive;
        let s = member(
            &[("role", "consul"), ("dc", "dc1"), ("port", "9300")],
            alive,
        );
        assert_eq!(
            server_addr(&s, "dc1"),
            Some("127.0.0.7:9300".parse().unwrap())
        );
        assert_eq!(server_addr(&s, "dc2"), None);
        let c = member(&[("role", "node"), ("dc", "dc1")], alive);
        assert_eq!(server_addr(&c, "dc1"), None);
        let bad = member(&[("role", "consul"), ("dc", "dc1"), ("port", "x")], alive);
        assert_eq!(server_addr(&bad, "dc1"), None);
        let failed = member(
            &[("role", "consul"), ("dc", "dc1"), ("port", "9300")],
            MemberStatus::Failed,
        );
        assert_eq!(server_addr(&failed, "dc1"), None);
    }

    #[test]
    fn join_addresses_default_to_the_serf_port() {
        assert_eq!(
            resolve("127.0.0.2").unwrap(),
            vec!["127.0.0.2:8301".parse().unwrap()]
        );
        assert_eq!(
            resolve("127.0.0.2:9301").unwrap(),
            vec!["127.0.0.2:9301".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]").unwrap(),
            vec!["[::1]:8301".parse().unwrap()]
        );
        assert!(resolve("localhost")
            .unwrap()
            .iter()
            .all(|a| a.port() == 8301));
        assert!(resolve("").is_err());
        assert!(resolve("no-such-host.invalid").is_err());
    }

    #[test]
    fn members_render_with_consul_status_codes() {
        let m = member(&[("role", "node")], MemberStatus::Failed);
        let v = member_json(&m);
        assert_eq!(v["Status"], 4);
        assert_eq!(v["Addr"], "127.0.0.7");
        assert_eq!(v["Port"], 8301);
        assert_eq!(v["Tags"]["role"], "node");
    }
}
