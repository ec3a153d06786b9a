//! The ACL security matrix on real processes: three servers and two client agents with
//! `default_policy = "deny"`. Every endpoint family is called as three principals (no
//! token, a token whose rule names a neighbouring key/service/node, a token with exactly
//! the needed rule) on a client agent, a follower and the leader; then DNS with the
//! client's default token unset and set, the agent's own writes under its agent token
//! (`agent_token.rs`), an expiring token, a deleted token, a restart
//! of all five processes, and `down_policy` once the servers are gone (`down_policy.rs`). One scenario shares one cluster; every failure names its step.

#[path = "../common/mod.rs"]
mod common;

mod agent_token;
mod check;
mod cluster;
mod down_policy;
mod lifecycle;
mod rows;

use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use cluster::{Cluster, AGENT_TOKEN};

#[tokio::test(flavor = "multi_thread")]
async fn acl_matrix_on_three_servers_and_two_clients() {
    if let Err(why) = cluster::usable() {
        eprintln!("SKIP: {why}");
        return;
    }
    let t0 = Instant::now();
    let mut c = Cluster::start().await;
    // The agents' own token, with what an agent needs.
    c.admin(
        Method::PUT,
        "/v1/acl/policy",
        &json!({"Name": "agents", "Rules": "node_prefix \"\" {\n policy = \"write\"\n}\nservice_prefix \"\" {\n policy = \"read\"\n}"}),
    )
    .await;
    c.admin(
        Method::PUT,
        "/v1/acl/token",
        &json!({"SecretID": AGENT_TOKEN, "Policies": [{"Name": "agents"}]}),
    )
    .await;
    let tokens = rows::tokens(&c).await;
    rows::seed(&c).await;
    eprintln!("matrix: cluster and tokens ready after {:?}", t0.elapsed());

    let leader = c.leader().await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    for a in [3, follower, leader] {
        rows::run_all(&c, &tokens, a).await;
    }
    eprintln!("matrix: rows done after {:?}", t0.elapsed());

    agent_token::scenario(&c).await;
    eprintln!("matrix: agent token done after {:?}", t0.elapsed());

    lifecycle::dns(&c).await;
    let kept = lifecycle::expiry_and_delete(&c).await;
    eprintln!("matrix: expiry and delete done after {:?}", t0.elapsed());
    c.restart_all().await;
    lifecycle::after_restart(&c, &kept).await;
    eprintln!("matrix: restart done after {:?}", t0.elapsed());

    let c67 = down_policy::start_deny_client(&c).await;
    down_policy::scenario(&mut c, &c67, &tokens["kv_read"], &tokens["cat"]).await;
    eprintln!("matrix: all done after {:?}", t0.elapsed());
}
