//! `acl.down_policy` once every server is gone: a client with `down_policy = "deny"` and
//! `token_ttl = "3s"` turns its `?stale` reads with a good token into denials once it
//! has heard from no server for longer than the TTL (its agent recovery token still
//! works), while a client with the default `extend-cache` keeps serving them from its
//! replica. Default-mode reads fail on both, with an error that says why. DNS follows the
//! same policy with the agents' `dns` token: c67 stops answering, c64 goes on.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use reqwest::Method;

use crate::cluster::{args, Cluster, AGENT_TOKEN, WAIT};
use crate::common::{eventually, try_dns, Agent};

const RECOVERY: &str = "c67-recovery";

/// Starts `c67` with `down_policy = "deny"` (before the servers go).
pub async fn start_deny_client(c: &Cluster) -> Agent {
    let mut a = args(6, &c.root.join("c67"), AGENT_TOKEN);
    a.extend([
        "-hcl".to_string(),
        format!(
            "acl {{\n down_policy = \"deny\"\n token_ttl = \"3s\"\n tokens {{\n agent_recovery = \"{RECOVERY}\"\n }}\n}}"
        ),
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    Agent::start_unready(&a).await
}

/// `(status, body, filtered header)` of a GET with `token` on `agent`.
async fn get(c: &Cluster, agent: &Agent, path: &str, token: &str) -> Option<(u16, String, bool)> {
    let r = c
        .try_call(agent, Method::GET, path, Some(token), None)
        .await?;
    let filtered = r.header("x-consul-results-filtered-by-acls").as_deref() == Some("true");
    Some((r.status, r.text(), filtered))
}

/// How many SRV records `agent`'s DNS answers for the `web` service.
async fn web_srv(agent: &Agent) -> Option<usize> {
    let dns = agent.dns_addr().await;
    Some(
        try_dns(dns, "web.service.consul.", RecordType::SRV)
            .await?
            .answers
            .len(),
    )
}

pub async fn scenario(c: &mut Cluster, c67: &Agent, kv: &str, cat: &str) {
    let step = "down_policy";
    let kv_path = "/v1/kv/app/x?stale";
    let cat_path = "/v1/catalog/service/web?stale";
    eventually(
        WAIT,
        &format!("{step}: c67 serves the good token"),
        || async {
            let (s, _, _) = get(c, c67, kv_path, kv).await?;
            let (cs, body, _) = get(c, c67, cat_path, cat).await?;
            (s == 200 && cs == 200 && body.contains("\"web\"")).then_some(())
        },
    )
    .await;
    for agent in [c67, &c.agents[3]] {
        c.set_agent_token(agent, "dns", cat).await;
    }
    eventually(
        WAIT,
        &format!("{step}: c67 and c64 answer web on DNS with their dns token"),
        || async { (web_srv(c67).await? > 0 && web_srv(&c.agents[3]).await? > 0).then_some(()) },
    )
    .await;

    for s in &mut c.agents[..3] {
        s.kill9();
    }
    let killed = Instant::now();
    let c64 = &c.agents[3];
    let (status, body, _) = eventually(
        Duration::from_secs(20),
        &format!("{step}: c67's stale KV read is denied past the TTL"),
        || async {
            let r = get(c, c67, kv_path, kv).await?;
            (r.0 == 403).then_some(r)
        },
    )
    .await;
    assert!(
        killed.elapsed() >= Duration::from_millis(1500),
        "{step}: denied {:?} after the servers went, before the 3 s TTL could pass",
        killed.elapsed()
    );
    assert!(
        body.contains("Permission denied") && body.contains("'key:read'"),
        "{step}: c67's denial: {status} {body}"
    );
    let (status, body, filtered) = get(c, c67, cat_path, cat).await.expect("c67 answers");
    assert!(
        status == 200 && filtered && !body.contains("\"web\""),
        "{step}: c67's stale catalog read must be filtered to nothing: {status} {body}"
    );
    assert_eq!(
        web_srv(c67).await,
        Some(0),
        "{step}: c67 (down_policy deny) must answer nothing on DNS past the TTL"
    );
    let (status, body, _) = get(c, c67, "/v1/agent/self", RECOVERY)
        .await
        .expect("c67 answers");
    assert_eq!(
        status, 200,
        "{step}: the recovery token still works: {body}"
    );

    // The extend-cache client keeps serving from its replica.
    let (status, body, _) = get(c, c64, kv_path, kv).await.expect("c64 answers");
    assert_eq!(
        status, 200,
        "{step}: c64 (extend-cache) stale KV read: {body}"
    );
    assert!(
        web_srv(c64).await.is_some_and(|n| n > 0),
        "{step}: c64 (extend-cache) DNS must go on answering web from its replica"
    );
    let (status, body, _) = get(c, c64, cat_path, cat).await.expect("c64 answers");
    assert!(
        status == 200 && body.contains("\"web\""),
        "{step}: c64 (extend-cache) stale catalog read: {status} {body}"
    );
    // Default-mode reads need a leader: a clear error, not a hang or an empty answer.
    let (status, body, _) = get(c, c64, "/v1/kv/app/x", kv).await.expect("c64 answers");
    assert!(
        status == 500 && (body.contains("server") || body.contains("leader")),
        "{step}: c64 default-mode read without servers: {status} {body}"
    );
}
