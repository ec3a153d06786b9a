//! Registering a service again through a real agent: its checks keep their health, and
//! `?replace-existing-checks` removes the checks the new definition no longer has, from
//! the agent and from the catalog, while without it they stay (Consul's behaviour).

mod common;

use std::collections::BTreeMap;

use common::Agent;
use serde_json::{json, Value};

fn web(checks: &[&str]) -> Value {
    let checks: Vec<Value> = checks
        .iter()
        .map(|id| json!({"CheckID": id, "Name": id, "TTL": "60s"}))
        .collect();
    json!({"Name": "web", "Port": 80, "Checks": checks})
}

/// The agent's checks of service `web`: ID -> status.
async fn agent_checks(a: &Agent) -> BTreeMap<String, String> {
    let v = a.get("/v1/agent/checks").await.expect(200).json();
    v.as_object()
        .unwrap()
        .values()
        .filter(|c| c["ServiceID"] == "web")
        .map(|c| {
            (
                c["CheckID"].as_str().unwrap().to_string(),
                c["Status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The catalog's checks of service `web` (`/v1/health/checks/web`): ID -> status.
async fn catalog_checks(a: &Agent) -> BTreeMap<String, String> {
    let v = a.get("/v1/health/checks/web").await.expect(200).json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["CheckID"].as_str().unwrap().to_string(),
                c["Status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn checks(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn re_registration_keeps_health_and_replaces_checks_only_when_asked() {
    let a = Agent::dev().await;
    a.put_json("/v1/agent/service/register", &web(&["a", "b"]))
        .await
        .expect(200);
    a.put_empty("/v1/agent/check/pass/a").await.expect(200);
    let both = checks(&[("a", "passing"), ("b", "critical")]);
    assert_eq!(agent_checks(&a).await, both);
    assert_eq!(catalog_checks(&a).await, both);

    // Without the flag, a check the definition no longer lists stays; health is kept.
    a.put_json("/v1/agent/service/register", &web(&["a"]))
        .await
        .expect(200);
    assert_eq!(agent_checks(&a).await, both);
    assert_eq!(catalog_checks(&a).await, both);

    // With it, the dropped check goes from the agent and from the catalog.
    a.put_json(
        "/v1/agent/service/register?replace-existing-checks",
        &web(&["a"]),
    )
    .await
    .expect(200);
    let only_a = checks(&[("a", "passing")]);
    assert_eq!(agent_checks(&a).await, only_a);
    assert_eq!(catalog_checks(&a).await, only_a);

    // The check that stayed still takes updates; the dropped one is unknown.
    a.put_empty("/v1/agent/check/fail/a").await.expect(200);
    assert_eq!(catalog_checks(&a).await, checks(&[("a", "critical")]));
    a.put_empty("/v1/agent/check/pass/b").await.expect(404);
}
