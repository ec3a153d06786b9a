//! Proves the catalog, health, status, metrics and txn endpoints of a real agent: catalog
//! register/deregister and its reads with `tag` (AND), `node-meta` and `filter`; health
//! reads with `?passing` and by state; an unchanged re-registration that bumps no index;
//! agent self/members/metrics; status leader/peers; and txn atomicity (200, 409 with
//! OpIndex, 413 over 128 ops). The agent's own services and checks are in `api_agent.rs`.

mod common;

use std::collections::BTreeSet;

use common::{b64, Agent};
use serde_json::{json, Value};

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn field_set(v: &Value, field: &str) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|e| {
            e[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {e}"))
                .to_string()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// n1 (env=prod): web1 [a,b] :80 passing; n2 (env=dev): web2 [b,c] :8080 critical;
/// n3: db [primary] :5432.
async fn seed_catalog(a: &Agent) {
    let regs = [
        json!({
            "Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"env": "prod"},
            "Service": {"ID": "web1", "Service": "web", "Tags": ["a", "b"], "Port": 80},
            "Check": {"CheckID": "web1-check", "Name": "web1 alive", "ServiceID": "web1", "Status": "passing"}
        }),
        json!({
            "Node": "n2", "Address": "10.0.0.2", "NodeMeta": {"env": "dev"},
            "Service": {"ID": "web2", "Service": "web", "Tags": ["b", "c"], "Port": 8080},
            "Check": {"CheckID": "web2-check", "Name": "web2 alive", "ServiceID": "web2", "Status": "critical"}
        }),
        json!({
            "Node": "n3", "Address": "10.0.0.3",
            "Service": {"Service": "db", "Tags": ["primary"], "Port": 5432}
        }),
    ];
    for r in &regs {
        let resp = a.put_json("/v1/catalog/register", r).await.expect(200);
        assert_eq!(resp.json(), json!(true));
    }
}

#[tokio::test]
async fn catalog_reads_with_tags_meta_and_filter() {
    let a = Agent::dev().await;
    seed_catalog(&a).await;

    let r = a.get("/v1/catalog/services").await.expect(200);
    assert!(r.index() >= 1);
    let svcs = r.json();
    assert_eq!(
        strings(&svcs["web"]),
        set(&["a", "b", "c"]),
        "tags union: {svcs}"
    );
    assert_eq!(strings(&svcs["db"]), set(&["primary"]));

    let web = a.get("/v1/catalog/service/web").await.expect(200).json();
    assert_eq!(field_set(&web, "ServiceID"), set(&["web1", "web2"]));
    let w1 = web
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ServiceID"] == "web1")
        .unwrap();
    assert_eq!(w1["ServiceName"], "web");
    assert_eq!(w1["Node"], "n1");
    assert_eq!(w1["Address"], "10.0.0.1");
    assert_eq!(w1["ServicePort"], 80);
    assert_eq!(w1["NodeMeta"]["env"], "prod");
    assert_eq!(w1["Datacenter"], "dc1");
    assert!(w1["ModifyIndex"].as_u64().unwrap() >= 1);

    let q = |p: &'static str| {
        let a = &a;
        async move { field_set(&a.get(p).await.expect(200).json(), "ServiceID") }
    };
    assert_eq!(
        q("/v1/catalog/service/web?tag=b").await,
        set(&["web1", "web2"])
    );
    assert_eq!(q("/v1/catalog/service/web?tag=a").await, set(&["web1"]));
    assert_eq!(
        q("/v1/catalog/service/web?tag=a&tag=b").await,
        set(&["web1"]),
        "repeated tag is AND"
    );
    assert_eq!(q("/v1/catalog/service/web?tag=a&tag=c").await, set(&[]));
    assert_eq!(
        q("/v1/catalog/service/web?node-meta=env:prod").await,
        set(&["web1"])
    );
    assert_eq!(
        q("/v1/catalog/service/web?node-meta=env:nope").await,
        set(&[])
    );
    assert_eq!(
        q("/v1/catalog/service/web?filter=ServiceTags%20contains%20%22c%22").await,
        set(&["web2"])
    );
    assert_eq!(
        q("/v1/catalog/service/web?filter=ServicePort%20%3D%3D%2080").await,
        set(&["web1"])
    );
    assert_eq!(
        q("/v1/catalog/service/web?filter=NodeMeta.env%20%3D%3D%20%22prod%22").await,
        set(&["web1"])
    );
    assert_eq!(q("/v1/catalog/service/nosuch").await, set(&[]));

    let nodes = a.get("/v1/catalog/nodes").await.expect(200).json();
    let names = field_set(&nodes, "Node");
    assert!(names.is_superset(&set(&["n1", "n2", "n3"])), "{names:?}");
    assert!(
        names.contains(&a.node_name().await),
        "the agent's own node is listed"
    );
    let prod = a
        .get("/v1/catalog/nodes?node-meta=env:prod")
        .await
        .expect(200)
        .json();
    assert_eq!(field_set(&prod, "Node"), set(&["n1"]));

    let n1 = a.get("/v1/catalog/node/n1").await.expect(200).json();
    assert_eq!(n1["Node"]["Node"], "n1");
    assert_eq!(n1["Node"]["Address"], "10.0.0.1");
    assert_eq!(n1["Services"]["web1"]["Service"], "web");
    assert_eq!(n1["Services"]["web1"]["Port"], 80);

    assert_eq!(
        a.get("/v1/catalog/datacenters").await.expect(200).json(),
        json!(["dc1"])
    );
}

#[tokio::test]
async fn catalog_deregister_service_check_and_node() {
    let a = Agent::dev().await;
    seed_catalog(&a).await;

    a.put_json(
        "/v1/catalog/deregister",
        &json!({"Node": "n2", "CheckID": "web2-check"}),
    )
    .await
    .expect(200);
    assert_eq!(
        a.get("/v1/health/node/n2").await.expect(200).json(),
        json!([])
    );
    assert_eq!(
        field_set(&a.get("/v1/catalog/service/web").await.json(), "ServiceID"),
        set(&["web1", "web2"])
    );

    a.put_json(
        "/v1/catalog/deregister",
        &json!({"Node": "n2", "ServiceID": "web2"}),
    )
    .await
    .expect(200);
    assert_eq!(
        field_set(&a.get("/v1/catalog/service/web").await.json(), "ServiceID"),
        set(&["web1"])
    );
    let svcs = a.get("/v1/catalog/services").await.json();
    assert_eq!(
        strings(&svcs["web"]),
        set(&["a", "b"]),
        "tags of the removed instance are gone"
    );
    assert!(
        field_set(&a.get("/v1/catalog/nodes").await.json(), "Node").contains("n2"),
        "node stays"
    );

    a.put_json("/v1/catalog/deregister", &json!({"Node": "n3"}))
        .await
        .expect(200);
    assert!(!field_set(&a.get("/v1/catalog/nodes").await.json(), "Node").contains("n3"));
    let svcs = a.get("/v1/catalog/services").await.json();
    assert!(svcs.get("db").is_none(), "db went with its node: {svcs}");
    assert_eq!(
        a.get("/v1/catalog/service/db").await.expect(200).json(),
        json!([])
    );
}

#[tokio::test]
async fn health_reads_and_states() {
    let a = Agent::dev().await;
    seed_catalog(&a).await;

    let all = a.get("/v1/health/service/web").await.expect(200).json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    for e in all.as_array().unwrap() {
        assert!(
            e["Node"]["Node"].is_string() && e["Service"]["ID"].is_string(),
            "{e}"
        );
        assert!(e["Checks"].is_array());
    }
    let passing = a
        .get("/v1/health/service/web?passing")
        .await
        .expect(200)
        .json();
    let ids: BTreeSet<String> = passing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        set(&["web1"]),
        "?passing excludes the critical instance"
    );
    let tagged = a
        .get("/v1/health/service/web?tag=c")
        .await
        .expect(200)
        .json();
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    assert_eq!(tagged[0]["Service"]["ID"], "web2");

    let checks = a.get("/v1/health/checks/web").await.expect(200).json();
    assert_eq!(
        field_set(&checks, "CheckID"),
        set(&["web1-check", "web2-check"])
    );
    let node = a.get("/v1/health/node/n2").await.expect(200).json();
    assert_eq!(field_set(&node, "CheckID"), set(&["web2-check"]));
    assert_eq!(node[0]["Status"], "critical");
    assert_eq!(node[0]["ServiceID"], "web2");
    assert_eq!(node[0]["ServiceName"], "web");

    let crit = field_set(
        &a.get("/v1/health/state/critical").await.expect(200).json(),
        "CheckID",
    );
    assert!(
        crit.contains("web2-check") && !crit.contains("web1-check"),
        "{crit:?}"
    );
    let pass = field_set(
        &a.get("/v1/health/state/passing").await.expect(200).json(),
        "CheckID",
    );
    assert!(
        pass.contains("web1-check") && !pass.contains("web2-check"),
        "{pass:?}"
    );
    let any = field_set(
        &a.get("/v1/health/state/any").await.expect(200).json(),
        "CheckID",
    );
    assert!(any.contains("web1-check") && any.contains("web2-check"));
    // The agent's own node has its serfHealth check.
    assert!(any.contains("serfHealth"), "{any:?}");

    let r = a.get("/v1/health/state/bogus").await;
    assert_eq!(r.status, 400, "body: {}", r.text());
}

#[tokio::test]
async fn agent_self_members_metrics_status() {
    let a = Agent::dev().await;
    let s = a.get("/v1/agent/self").await.expect(200).json();
    assert!(
        !s["Config"]["Version"].as_str().unwrap_or("").is_empty(),
        "{s}"
    );
    assert!(!s["Config"]["NodeName"].as_str().unwrap_or("").is_empty());
    assert_eq!(s["Config"]["Datacenter"], "dc1");

    let m = a.get("/v1/agent/members").await.expect(200).json();
    let m = m.as_array().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["Status"], 1, "alive");
    assert_eq!(m[0]["Name"], s["Config"]["NodeName"]);

    let r = a.get("/v1/agent/metrics").await.expect(200);
    let j = r.json();
    assert!(j["Gauges"].is_array(), "Gauges: {j}");
    assert!(!j["Gauges"].as_array().unwrap().is_empty());
    let r = a
        .get("/v1/agent/metrics?format=prometheus")
        .await
        .expect(200);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = r.text();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "prometheus output is not JSON"
    );
    assert!(text.lines().any(|l| l.starts_with("# TYPE ")), "{text}");

    let leader = a.get("/v1/status/leader").await.expect(200).json();
    let leader = leader
        .as_str()
        .expect("leader is a JSON string")
        .to_string();
    assert!(!leader.is_empty());
    let peers = a.get("/v1/status/peers").await.expect(200).json();
    assert!(
        strings(&peers).contains(&leader),
        "peers {peers} contain the leader {leader}"
    );
}

#[tokio::test]
async fn txn_commits_and_rolls_back() {
    let a = Agent::dev().await;
    let ok = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": b64(b"1")}},
        {"KV": {"Verb": "set", "Key": "t/b", "Value": b64(b"2")}},
    ]);
    let r = a.put_json("/v1/txn", &ok).await.expect(200);
    let v = r.json();
    let results = v["Results"].as_array().expect("Results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["KV"]["Key"], "t/a");
    assert_eq!(results[1]["KV"]["Key"], "t/b");
    assert!(v["Errors"].is_null() || v["Errors"] == json!([]));
    assert_eq!(a.get("/v1/kv/t/a?raw").await.expect(200).body, b"1");
    assert_eq!(a.get("/v1/kv/t/b?raw").await.expect(200).body, b"2");
    let idx = a.kv_entry("t/a").await.unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap();

    // A set followed by a failing cas: nothing is applied.
    let bad = json!([
        {"KV": {"Verb": "set", "Key": "t/c", "Value": b64(b"3")}},
        {"KV": {"Verb": "set", "Key": "t/a", "Value": b64(b"changed")}},
        {"KV": {"Verb": "cas", "Key": "t/b", "Value": b64(b"x"), "Index": idx + 1000}},
    ]);
    let r = a.put_json("/v1/txn", &bad).await;
    assert_eq!(r.status, 409, "body: {}", r.text());
    let v = r.json();
    let errors = v["Errors"].as_array().expect("Errors");
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["OpIndex"], 2);
    assert!(!errors[0]["What"].as_str().unwrap_or("").is_empty());
    assert!(
        a.kv_entry("t/c").await.is_none(),
        "rolled back: t/c not created"
    );
    assert_eq!(
        a.get("/v1/kv/t/a?raw").await.expect(200).body,
        b"1",
        "rolled back: t/a unchanged"
    );

    // Too many operations.
    let many: Vec<Value> = (0..129)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("m/{i}"), "Value": b64(b"v")}}))
        .collect();
    let r = a.put_json("/v1/txn", &Value::Array(many)).await;
    assert_eq!(r.status, 413, "body: {}", r.text());
    a.get("/v1/kv/m/?recurse").await.expect(404);
    // Exactly 128 is fine.
    let max: Vec<Value> = (0..128)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("m/{i}"), "Value": b64(b"v")}}))
        .collect();
    a.put_json("/v1/txn", &Value::Array(max)).await.expect(200);
    assert_eq!(
        a.get("/v1/kv/m/?keys")
            .await
            .expect(200)
            .json()
            .as_array()
            .unwrap()
            .len(),
        128
    );
}

#[tokio::test]
async fn identical_reregistration_does_not_bump_indexes() {
    let a = Agent::dev().await;
    seed_catalog(&a).await;
    let before = a.get("/v1/catalog/service/web").await.expect(200);
    let hbefore = a.get("/v1/health/service/web").await.expect(200).index();
    seed_catalog(&a).await;
    let after = a.get("/v1/catalog/service/web").await.expect(200);
    assert_eq!(
        after.index(),
        before.index(),
        "an unchanged re-registration is not a change"
    );
    assert_eq!(
        a.get("/v1/health/service/web").await.expect(200).index(),
        hbefore
    );
    assert_eq!(after.json(), before.json());
}
