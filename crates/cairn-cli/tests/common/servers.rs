//! What the multi-process server tests share: the arguments of a server and a client on
//! 127.0.0.x with Consul's default ports, and the leader and key views they poll.

use std::collections::BTreeSet;

use super::Agent;

/// A server `s{i}` on 127.0.0.{i} with `-bootstrap-expect=expect`, its log in `dir`,
/// joining through 127.0.0.1, with the fast Raft timing (`raft_multiplier = 1`).
pub fn server_args(expect: u32, i: u8, dir: &std::path::Path) -> Vec<String> {
    vec![
        "agent".to_string(),
        "-server".into(),
        format!("-bootstrap-expect={expect}"),
        format!("-data-dir={}", dir.display()),
        format!("-node=s{i}"),
        format!("-bind=127.0.0.{i}"),
        format!("-client=127.0.0.{i}"),
        "-serf-lan-port=8301".into(),
        "-server-port=8300".into(),
        "-retry-join=127.0.0.1".into(),
        "-retry-interval=500ms".into(),
        "-hcl".into(),
        "performance { raft_multiplier = 1 }".into(),
    ]
}

/// A client agent `c{i}` on 127.0.0.{i}, joining through 127.0.0.1.
pub fn client_args(i: u8) -> Vec<String> {
    vec![
        "agent".to_string(),
        format!("-node=c{i}"),
        format!("-bind=127.0.0.{i}"),
        format!("-client=127.0.0.{i}"),
        "-serf-lan-port=8301".into(),
        "-server-port=8300".into(),
        "-retry-join=127.0.0.1".into(),
        "-retry-interval=500ms".into(),
    ]
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The leader `agent` reports (`""` when none).
pub async fn leader_seen(agent: &Agent) -> Option<String> {
    let r = agent.try_get("/v1/status/leader").await.ok()?;
    r.json().as_str().map(str::to_string)
}

/// `Some(leader)` when every agent reports the same non-empty leader.
pub async fn agreed_leader(agents: &[&Agent]) -> Option<String> {
    let mut seen = None;
    for a in agents {
        let l = leader_seen(a).await?;
        if l.is_empty() || seen.as_ref().is_some_and(|s| *s != l) {
            return None;
        }
        seen = Some(l);
    }
    seen
}

/// The keys under `w/` that `agent` returns with `?consistent`.
pub async fn consistent_keys(agent: &Agent) -> Option<BTreeSet<u64>> {
    let r = agent.try_get("/v1/kv/w/?keys&consistent").await.ok()?;
    if r.status != 200 {
        return None;
    }
    Some(
        r.json()
            .as_array()?
            .iter()
            .filter_map(|k| k.as_str()?.strip_prefix("w/")?.parse().ok())
            .collect(),
    )
}

/// The servers of one scenario: their data directories (removed with `_tmp`) and
/// processes.
pub struct ServerSet {
    pub _tmp: tempfile::TempDir,
    pub dirs: Vec<std::path::PathBuf>,
    pub servers: Vec<Agent>,
}

/// Starts servers s1..s`n` (`-bootstrap-expect=expect`) on 127.0.0.1..`n`, once
/// 127.0.0.1..`hosts` can be bound and Consul's default ports are free there. `None`
/// (after a SKIP line) when the loopback aliases are missing.
pub async fn start_servers(hosts: u8, n: u8, expect: u32) -> Option<ServerSet> {
    if !super::loopback_aliases(hosts) {
        eprintln!("SKIP: 127.0.0.2-{hosts} cannot be bound on this machine");
        return None;
    }
    assert!(
        super::default_ports_free(hosts),
        "the default ports (8300, 8301, 8500, 8600) are taken on 127.0.0.1-{hosts}"
    );
    let (tmp, root) = super::tempdir();
    let dirs: Vec<_> = (1..=n).map(|i| root.join(format!("s{i}"))).collect();
    // Started together: a server of a cluster still forming prints its banner only after
    // its first catalog write gave up waiting for a leader (7 s), unless the others come.
    // Starting waits on the banner synchronously, so each start gets a blocking thread.
    let rt = tokio::runtime::Handle::current();
    let starts: Vec<_> = (1..=n)
        .zip(&dirs)
        .map(|(i, dir)| {
            let args = server_args(expect, i, dir);
            let rt = rt.clone();
            tokio::task::spawn_blocking(move || rt.block_on(Agent::start_unready(&strs(&args))))
        })
        .collect();
    let mut servers = Vec::new();
    for s in starts {
        servers.push(s.await.expect("server started"));
    }
    Some(ServerSet {
        _tmp: tmp,
        dirs,
        servers,
    })
}
