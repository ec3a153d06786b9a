//! The agent's own writes under its agent token: a client `c66` whose `acl.tokens.agent`
//! names a neighbouring node and service cannot write its own node entry (its
//! `-node-meta`) nor its configured service, says so in its log with the missing
//! permission, yet a service registered over the API with its own token is written with
//! that token, and still is after c66 restarts (the token is kept with the service's
//! definition); once `PUT /v1/agent/token/agent` gives it a good token, anti-entropy
//! writes the rest.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::{args, Cluster, ROOT, WAIT};
use crate::common::{eventually, Agent};

const BAD_AGENT_TOKEN: &str = "a9e7c0de-0000-4000-8000-000000000066";

/// `c66`'s catalog entry as the management token sees it.
async fn c66_entry(c: &Cluster) -> Option<Value> {
    let r = c
        .try_call(
            &c.agents[3],
            Method::GET,
            "/v1/catalog/node/c66",
            Some(ROOT),
            None,
        )
        .await?;
    let v = r.json();
    (!v.is_null()).then_some(v)
}

fn has_meta(v: &Value) -> bool {
    v["Node"]["Meta"]["rack"] == "r66"
}

fn has_service(v: &Value, id: &str) -> bool {
    v["Services"].get(id).is_some()
}

pub async fn scenario(c: &Cluster) {
    let step = "agent token";
    c.admin(
        Method::PUT,
        "/v1/acl/policy",
        &json!({"Name": "c66-near", "Rules": "node \"c6\" {\n policy = \"write\"\n}\nservice \"cfg2\" {\n policy = \"write\"\n}"}),
    )
    .await;
    c.admin(
        Method::PUT,
        "/v1/acl/token",
        &json!({"SecretID": BAD_AGENT_TOKEN, "Policies": [{"Name": "c66-near"}]}),
    )
    .await;
    let good = c
        .token_with(
            "c66-agent",
            "node \"c66\" {\n policy = \"write\"\n}\nservice \"cfg\" {\n policy = \"write\"\n}",
        )
        .await;
    let own = c
        .token_with("tokd", "service \"tokd\" {\n policy = \"write\"\n}")
        .await;

    let mut a = args(5, &c.root.join("c66"), BAD_AGENT_TOKEN);
    a.extend([
        "-node-meta=rack:r66".to_string(),
        "-hcl".into(),
        "service {\n name = \"cfg\"\n port = 7000\n}".into(),
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut c66 = Agent::start_unready(&a).await;

    // The leader lists every member of the pool; what the agent writes itself is refused.
    eventually(
        WAIT,
        &format!("{step}: c66 logs its blocked node write"),
        || async {
            let log = c66.stderr();
            (log.contains("blocked by ACLs") && log.contains("'node:write' on \"c66\""))
                .then_some(())
        },
    )
    .await;
    eventually(
        WAIT,
        &format!("{step}: the pool put c66 in the catalog"),
        || c66_entry(c),
    )
    .await;
    let v = c66_entry(c).await.expect("c66 in the catalog");
    assert!(
        !has_meta(&v) && !has_service(&v, "cfg"),
        "{step}: c66's own entry must not be written with a token lacking node:write: {v}"
    );

    // A service registered with its own token is written with that token.
    let r = c
        .call(
            &c66,
            Method::PUT,
            "/v1/agent/service/register",
            Some(&own),
            Some(br#"{"Name": "tokd", "Port": 7001}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 200, "{step}: register tokd: {}", r.text());
    eventually(
        WAIT,
        &format!("{step}: tokd is written with its own token"),
        || async { has_service(&c66_entry(c).await?, "tokd").then_some(()) },
    )
    .await;

    // Denied syncs are retried on events, not in a loop.
    let warnings = c66.stderr().matches("blocked by ACLs").count();
    assert!(
        warnings < 20,
        "{step}: {warnings} blocked-write warnings: the agent must not retry in a loop"
    );

    // After a restart tokd is still written with its own token: taken out of the catalog
    // behind c66's back, anti-entropy puts it back (the agent token could not).
    c66.kill9();
    let c66 = Agent::start_unready(&a).await;
    eventually(
        WAIT,
        &format!("{step}: c66 is back after its restart"),
        || async {
            let r = c
                .try_call(
                    &c66,
                    Method::GET,
                    "/v1/agent/service/tokd",
                    Some(&own),
                    None,
                )
                .await?;
            (r.status == 200).then_some(())
        },
    )
    .await;
    c.admin(
        Method::PUT,
        "/v1/catalog/deregister",
        &json!({"Node": "c66", "ServiceID": "tokd"}),
    )
    .await;
    eventually(
        WAIT,
        &format!("{step}: after the restart anti-entropy rewrites tokd with its own token"),
        || async { has_service(&c66_entry(c).await?, "tokd").then_some(()) },
    )
    .await;

    c.set_agent_token(&c66, "agent", &good).await;
    eventually(
        WAIT,
        &format!("{step}: with a good agent token c66's meta and cfg reach the catalog"),
        || async {
            let v = c66_entry(c).await?;
            (has_meta(&v) && has_service(&v, "cfg")).then_some(())
        },
    )
    .await;
}
