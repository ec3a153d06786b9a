//! The agent's own services and checks through a real agent: service registration with
//! TTL checks driven by pass/warn/fail/update and by TTL expiry; node and service
//! maintenance as critical checks; checks registered for a service and carrying its name
//! and tags; Consul's key spellings; anti-entropy repairing a catalog deregistration of a
//! local service; and registering a service again, which keeps its checks' health and
//! removes the checks it no longer lists only with `?replace-existing-checks`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, Agent};
use serde_json::{json, Value};

/// IDs of the `x` instances that `/v1/health/service/x?passing` returns.
async fn passing_count(a: &Agent, svc: &str) -> usize {
    a.get(&format!("/v1/health/service/{svc}?passing"))
        .await
        .expect(200)
        .json()
        .as_array()
        .unwrap()
        .len()
}

/// Status of `check` as seen in the catalog health of `svc`.
async fn catalog_check_status(a: &Agent, svc: &str, check: &str) -> Option<(String, String)> {
    let v = a
        .get(&format!("/v1/health/checks/{svc}"))
        .await
        .expect(200)
        .json();
    v.as_array()?
        .iter()
        .find(|c| c["CheckID"] == check)
        .map(|c| {
            (
                c["Status"].as_str().unwrap_or("").to_string(),
                c["Output"].as_str().unwrap_or("").to_string(),
            )
        })
}

async fn wait_status(a: &Agent, svc: &str, check: &str, status: &str) -> String {
    let what = format!("{check} of {svc} becomes {status}");
    eventually(Duration::from_secs(5), &what, || async {
        catalog_check_status(a, svc, check)
            .await
            .filter(|(s, _)| s == status)
            .map(|(_, o)| o)
    })
    .await
}

#[tokio::test]
async fn agent_ttl_check_drives_health() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "x", "Tags": ["t"], "Port": 9000, "Check": {"TTL": "10m"}}),
    )
    .await
    .expect(200);
    let svcs = a.get("/v1/agent/services").await.expect(200).json();
    assert_eq!(svcs["x"]["Service"], "x");
    assert_eq!(svcs["x"]["Port"], 9000);
    // The inline check gets Consul's default ID and starts critical.
    let checks = a.get("/v1/agent/checks").await.expect(200).json();
    assert_eq!(checks["service:x"]["Status"], "critical", "{checks}");
    assert_eq!(checks["service:x"]["ServiceID"], "x");
    wait_status(&a, "x", "service:x", "critical").await;
    assert_eq!(passing_count(&a, "x").await, 0);

    a.put_empty("/v1/agent/check/pass/service:x?note=hello")
        .await
        .expect(200);
    let out = wait_status(&a, "x", "service:x", "passing").await;
    assert_eq!(out, "hello", "note becomes Output");
    assert_eq!(passing_count(&a, "x").await, 1);

    a.put_empty("/v1/agent/check/warn/service:x")
        .await
        .expect(200);
    wait_status(&a, "x", "service:x", "warning").await;
    assert_eq!(passing_count(&a, "x").await, 0, "?passing excludes warning");
    assert_eq!(
        a.get("/v1/health/service/x")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    a.put_empty("/v1/agent/check/fail/service:x")
        .await
        .expect(200);
    wait_status(&a, "x", "service:x", "critical").await;
    assert_eq!(passing_count(&a, "x").await, 0);

    a.put_json(
        "/v1/agent/check/update/service:x",
        &json!({"Status": "passing", "Output": "all good"}),
    )
    .await
    .expect(200);
    let out = wait_status(&a, "x", "service:x", "passing").await;
    assert_eq!(out, "all good");
    assert_eq!(passing_count(&a, "x").await, 1);
    assert_eq!(
        a.get("/v1/agent/checks").await.json()["service:x"]["Status"],
        "passing"
    );

    // Local health endpoint mirrors it.
    a.get("/v1/agent/health/service/name/x").await.expect(200);

    // Deregistering the service removes it and its check from the catalog.
    a.put_empty("/v1/agent/service/deregister/x")
        .await
        .expect(200);
    eventually(
        Duration::from_secs(5),
        "x gone from the catalog",
        || async {
            let v = a.get("/v1/catalog/service/x").await.json();
            (v == json!([])).then_some(())
        },
    )
    .await;
    assert_eq!(a.get("/v1/health/checks/x").await.json(), json!([]));
    assert!(a
        .get("/v1/agent/checks")
        .await
        .json()
        .get("service:x")
        .is_none());
}

#[tokio::test]
async fn ttl_expiry_turns_the_check_critical() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "beat", "Check": {"CheckID": "beat-ttl", "TTL": "1s"}}),
    )
    .await
    .expect(200);
    a.put_empty("/v1/agent/check/pass/beat-ttl")
        .await
        .expect(200);
    wait_status(&a, "beat", "beat-ttl", "passing").await;
    // Not renewed: it must go critical on its own, and ?passing must drop it.
    eventually(
        Duration::from_secs(6),
        "beat-ttl expires to critical",
        || async {
            catalog_check_status(&a, "beat", "beat-ttl")
                .await
                .filter(|(s, _)| s == "critical")
        },
    )
    .await;
    assert_eq!(passing_count(&a, "beat").await, 0);
    assert_eq!(
        a.get("/v1/agent/checks").await.json()["beat-ttl"]["Status"],
        "critical"
    );
}

#[tokio::test]
async fn node_and_service_maintenance() {
    let a = Agent::dev().await;
    let node = a.node_name().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "m", "ID": "m1", "Port": 1}),
    )
    .await
    .expect(200);
    eventually(Duration::from_secs(5), "m1 passing", || async {
        (passing_count(&a, "m").await == 1).then_some(())
    })
    .await;

    // Service maintenance.
    a.put_empty("/v1/agent/service/maintenance/m1?enable=true&reason=deploy")
        .await
        .expect(200);
    let c = eventually(
        Duration::from_secs(5),
        "service maintenance check",
        || async {
            let v = a.get("/v1/health/checks/m").await.json();
            v.as_array()?
                .iter()
                .find(|c| c["CheckID"] == "_service_maintenance:m1")
                .cloned()
        },
    )
    .await;
    assert_eq!(c["Status"], "critical");
    assert_eq!(c["ServiceID"], "m1");
    assert!(
        c["Notes"].as_str().unwrap_or("").contains("deploy")
            || c["Output"].as_str().unwrap_or("").contains("deploy"),
        "reason recorded: {c}"
    );
    assert_eq!(passing_count(&a, "m").await, 0);
    assert!(a
        .get("/v1/agent/checks")
        .await
        .json()
        .get("_service_maintenance:m1")
        .is_some());

    a.put_empty("/v1/agent/service/maintenance/m1?enable=false")
        .await
        .expect(200);
    eventually(
        Duration::from_secs(5),
        "service maintenance check removed",
        || async {
            let v = a.get("/v1/health/checks/m").await.json();
            (!v.as_array()?
                .iter()
                .any(|c| c["CheckID"] == "_service_maintenance:m1"))
            .then_some(())
        },
    )
    .await;
    assert_eq!(passing_count(&a, "m").await, 1);

    // Node maintenance.
    a.put_empty("/v1/agent/maintenance?enable=true&reason=patching")
        .await
        .expect(200);
    let c = eventually(Duration::from_secs(5), "node maintenance check", || async {
        let v = a.get(&format!("/v1/health/node/{node}")).await.json();
        v.as_array()?
            .iter()
            .find(|c| c["CheckID"] == "_node_maintenance")
            .cloned()
    })
    .await;
    assert_eq!(c["Status"], "critical");
    assert_eq!(c["ServiceID"], "");
    assert_eq!(
        passing_count(&a, "m").await,
        0,
        "node maintenance makes every service unhealthy"
    );
    a.put_empty("/v1/agent/maintenance?enable=false")
        .await
        .expect(200);
    eventually(
        Duration::from_secs(5),
        "node maintenance check removed",
        || async {
            let v = a.get(&format!("/v1/health/node/{node}")).await.json();
            (!v.as_array()?
                .iter()
                .any(|c| c["CheckID"] == "_node_maintenance"))
            .then_some(())
        },
    )
    .await;
    assert_eq!(passing_count(&a, "m").await, 1);

    // enable is required.
    assert_eq!(a.put_empty("/v1/agent/maintenance").await.status, 400);
}

#[tokio::test]
async fn anti_entropy_repairs_a_catalog_deregistration_of_a_local_service() {
    let a = Agent::dev().await;
    let node = a.node_name().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "local", "Port": 7}),
    )
    .await
    .expect(200);
    eventually(Duration::from_secs(5), "local in the catalog", || async {
        (a.get("/v1/catalog/service/local")
            .await
            .json()
            .as_array()?
            .len()
            == 1)
            .then_some(())
    })
    .await;
    a.put_json(
        "/v1/catalog/deregister",
        &json!({"Node": node, "ServiceID": "local"}),
    )
    .await
    .expect(200);
    // The agent's local state is the truth for its node: the service comes back.
    eventually(
        Duration::from_secs(5),
        "local re-registered by anti-entropy",
        || async {
            (a.get("/v1/catalog/service/local")
                .await
                .json()
                .as_array()?
                .len()
                == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(a.get("/v1/agent/services").await.json()["local"]["Port"], 7);
}

#[tokio::test]
async fn agent_check_register_with_service_id() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "api", "ID": "api-1", "Port": 81}),
    )
    .await
    .expect(200);
    a.put_json(
        "/v1/agent/check/register",
        &json!({"Name": "api ttl", "CheckID": "api-ttl", "ServiceID": "api-1", "TTL": "10m", "Status": "passing"}),
    )
    .await
    .expect(200);
    let c = a.get("/v1/agent/checks").await.expect(200).json()["api-ttl"].clone();
    assert_eq!(c["ServiceID"], "api-1");
    assert_eq!(
        c["Status"], "passing",
        "an explicit initial Status is honoured"
    );
    wait_status(&a, "api", "api-ttl", "passing").await;
    // A check for an unknown service is refused.
    let r = a
        .put_json(
            "/v1/agent/check/register",
            &json!({"Name": "x", "ServiceID": "nope", "TTL": "10s"}),
        )
        .await;
    assert!(r.status >= 400, "{} {}", r.status, r.text());
    // Deregistering the check removes it from the catalog.
    a.put_empty("/v1/agent/check/deregister/api-ttl")
        .await
        .expect(200);
    eventually(Duration::from_secs(5), "api-ttl gone", || async {
        (catalog_check_status(&a, "api", "api-ttl").await.is_none()).then_some(())
    })
    .await;
    // Updating an unknown check is an error, not a panic.
    let r = a.put_empty("/v1/agent/check/pass/api-ttl").await;
    assert!(r.status >= 400, "{} {}", r.status, r.text());
}

#[tokio::test]
async fn agent_checks_carry_service_name_and_tags() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "redis", "ID": "redis-1", "Tags": ["primary"], "Port": 6379, "Check": {"TTL": "10m"}}),
    )
    .await
    .expect(200);
    a.put_json(
        "/v1/agent/check/register",
        &json!({"Name": "extra", "CheckID": "extra", "ServiceID": "redis-1", "TTL": "10m"}),
    )
    .await
    .expect(200);
    let checks = a.get("/v1/agent/checks").await.expect(200).json();
    for id in ["service:redis-1", "extra"] {
        let c = &checks[id];
        assert_eq!(c["ServiceID"], "redis-1", "{id}: {c}");
        assert_eq!(
            c["ServiceName"], "redis",
            "{id}: ServiceName in /v1/agent/checks: {c}"
        );
        assert_eq!(
            c["ServiceTags"],
            json!(["primary"]),
            "{id}: ServiceTags in /v1/agent/checks: {c}"
        );
    }
    // The catalog view has them (denormalised), so the agent view disagrees with it.
    let cat = a.get("/v1/health/checks/redis").await.expect(200).json();
    assert!(cat
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ServiceName"] == "redis"));
}

#[tokio::test]
async fn agent_register_accepts_snake_case_and_any_key_case() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"name": "snake", "port": 99, "tags": ["a"], "enable_tag_override": true, "meta": {"k": "v"},
                "check": {"check_id": "snk", "ttl": "10m"}}),
    )
    .await
    .expect(200);
    a.put_json(
        "/v1/agent/service/register",
        &json!({"NAME": "upper", "PORT": 98}),
    )
    .await
    .expect(200);
    let svcs = a.get("/v1/agent/services").await.expect(200).json();
    assert_eq!(svcs["snake"]["Port"], 99);
    assert_eq!(svcs["snake"]["Tags"], json!(["a"]));
    assert_eq!(svcs["snake"]["EnableTagOverride"], true);
    assert_eq!(svcs["snake"]["Meta"]["k"], "v", "meta keys keep their case");
    assert_eq!(svcs["upper"]["Port"], 98);
    let checks = a.get("/v1/agent/checks").await.expect(200).json();
    assert_eq!(checks["snk"]["ServiceID"], "snake");
}

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
