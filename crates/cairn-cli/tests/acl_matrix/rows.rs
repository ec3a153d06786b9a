//! The rows of the matrix: every endpoint family, with the token that has exactly the
//! needed rule and one whose rule names a neighbouring key, service or node.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::check::{has_key, lists, Deny, Req};
use crate::cluster::{Cluster, NAMES, ROOT};
use crate::common::Resp;

/// The policies of the matrix, by name: (rules of the good token, rules of its neighbour).
const RULES: &[(&str, &str)] = &[
    ("kv_read", "key_prefix \"app/\" {\n policy = \"read\"\n}"),
    ("kv_write", "key_prefix \"app/\" {\n policy = \"write\"\n}"),
    ("kv_near", "key_prefix \"apps/\" {\n policy = \"write\"\n}"),
    (
        "cat",
        "service \"web\" {\n policy = \"read\"\n}\nnode_prefix \"\" {\n policy = \"read\"\n}",
    ),
    (
        "cat_near",
        "service \"web2\" {\n policy = \"read\"\n}\nnode_prefix \"\" {\n policy = \"read\"\n}",
    ),
    (
        "node",
        "node \"c64\" {\n policy = \"read\"\n}\nservice_prefix \"\" {\n policy = \"read\"\n}",
    ),
    (
        "node_near",
        "node \"c6\" {\n policy = \"read\"\n}\nservice_prefix \"\" {\n policy = \"read\"\n}",
    ),
    (
        "reg",
        "node \"ext1\" {\n policy = \"write\"\n}\nservice \"web\" {\n policy = \"write\"\n}",
    ),
    (
        "reg_near",
        "node \"ext1\" {\n policy = \"write\"\n}\nservice \"web2\" {\n policy = \"write\"\n}",
    ),
    ("svc", "service \"web\" {\n policy = \"write\"\n}"),
    ("svc_near", "service \"web2\" {\n policy = \"write\"\n}"),
    ("op", "operator = \"read\""),
    ("op_near", "keyring = \"write\""),
    ("acl_read", "acl = \"read\""),
    ("acl_write", "acl = \"write\""),
    ("acl_near", "operator = \"write\""),
];

/// Rules naming each of the five nodes exactly, for `kind` at `level`.
fn per_node(kind: &str, level: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{kind} \"{n}\" {{\n policy = \"{level}\"\n}}\n"))
        .collect()
}

/// Creates every token of the matrix; their SecretIDs by name.
pub async fn tokens(c: &Cluster) -> HashMap<&'static str, String> {
    let near_names = ["s6", "c6"];
    let mut rules: Vec<(&'static str, String)> =
        RULES.iter().map(|(n, r)| (*n, r.to_string())).collect();
    rules.push((
        "agent",
        per_node("agent", "read", &NAMES) + &per_node("node", "read", &NAMES),
    ));
    rules.push((
        "agent_near",
        per_node("agent", "read", &near_names) + &per_node("node", "read", &near_names),
    ));
    rules.push(("sess", per_node("session", "write", &NAMES)));
    rules.push(("sess_near", per_node("session", "write", &near_names)));
    let mut out = HashMap::new();
    for (name, r) in rules {
        out.insert(name, c.token_with(name, &r).await);
    }
    out
}

/// Data the rows read: keys, and services `web` (on every agent) and `web2` (on c64).
pub async fn seed(c: &Cluster) {
    for k in ["app/x", "apps/x", "other/y"] {
        c.admin(Method::PUT, &format!("/v1/kv/{k}"), &json!("v"))
            .await;
    }
    for (i, a) in c.agents.iter().enumerate() {
        let body = json!({"Name": "web", "ID": format!("web-{}", NAMES[i]), "Port": 80});
        let r = c
            .call(
                a,
                Method::PUT,
                "/v1/agent/service/register",
                Some(ROOT),
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "seed: register web on {}: {}",
            NAMES[i],
            r.text()
        );
        let check = json!({"Name": "ttl", "CheckID": format!("chk-{}", NAMES[i]),
            "ServiceID": format!("web-{}", NAMES[i]), "TTL": "600s"});
        let r = c
            .call(
                a,
                Method::PUT,
                "/v1/agent/check/register",
                Some(ROOT),
                Some(serde_json::to_vec(&check).unwrap()),
            )
            .await;
        assert_eq!(r.status, 200, "seed: check on {}: {}", NAMES[i], r.text());
    }
    let body = json!({"Name": "web2", "ID": "web2", "Port": 81});
    let r = c
        .call(
            &c.agents[3],
            Method::PUT,
            "/v1/agent/service/register",
            Some(ROOT),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "seed: register web2: {}", r.text());
}

fn json_of(r: &Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn no_app_x(r: &Resp) -> bool {
    r.status == 404 || !r.text().contains("\"app/x\"")
}

fn no_web(r: &Resp) -> bool {
    !has_key(r, "web") && !lists(r, "ServiceName", "web")
}

fn empty_list(r: &Resp) -> bool {
    json_of(r).as_array().is_some_and(|a| a.is_empty())
}

fn no_c64(r: &Resp) -> bool {
    !lists(r, "Node", "c64") && !lists(r, "Name", "c64")
}

fn any(_: &Resp) -> bool {
    true
}

/// A row: its step name, the request, the good and neighbour tokens' names, how the
/// others are denied, and what the good token's answer must satisfy.
type Row<'a> = (
    &'a str,
    (Method, String, Option<Value>),
    &'a str,
    &'a str,
    Deny,
    fn(&Resp) -> bool,
);

/// Every row of the matrix on agent `a`.
pub async fn run_all(c: &Cluster, t: &HashMap<&'static str, String>, a: usize) {
    let node = NAMES[a];
    let tk = |n: &str| t[n].as_str();
    let get = |path: &str| (Method::GET, path.to_string(), None::<Value>);
    let rows: Vec<Row> = vec![
        // KV
        (
            "kv read",
            get("/v1/kv/app/x"),
            "kv_read",
            "kv_near",
            Deny::Forbidden(&["key:read"]),
            |r| lists(r, "Key", "app/x"),
        ),
        (
            "kv read of a neighbour key",
            get("/v1/kv/apps/x"),
            "kv_near",
            "kv_read",
            Deny::Forbidden(&["key:read"]),
            |r| lists(r, "Key", "apps/x"),
        ),
        (
            "kv recurse",
            get("/v1/kv/?recurse"),
            "kv_read",
            "kv_near",
            Deny::Filtered(no_app_x),
            |r| {
                lists(r, "Key", "app/x")
                    && !lists(r, "Key", "apps/x")
                    && !lists(r, "Key", "other/y")
            },
        ),
        (
            "kv keys",
            get("/v1/kv/?keys"),
            "kv_read",
            "kv_near",
            Deny::Filtered(no_app_x),
            |r| lists(r, "", "app/x") && !lists(r, "", "apps/x"),
        ),
        (
            "kv write",
            (Method::PUT, "/v1/kv/app/w".into(), Some(json!("w"))),
            "kv_write",
            "kv_near",
            Deny::Forbidden(&["key:write"]),
            |r| r.text().trim() == "true",
        ),
        (
            "kv delete",
            (Method::DELETE, "/v1/kv/app/w".into(), None),
            "kv_write",
            "kv_near",
            Deny::Forbidden(&["key:write"]),
            |r| r.text().trim() == "true",
        ),
        (
            "kv delete recurse",
            (Method::DELETE, "/v1/kv/app/gone/?recurse".into(), None),
            "kv_write",
            "kv_near",
            Deny::Forbidden(&["key:write"]),
            |r| r.text().trim() == "true",
        ),
        // Catalog
        (
            "catalog nodes",
            get("/v1/catalog/nodes"),
            "node",
            "node_near",
            Deny::Filtered(no_c64),
            |r| lists(r, "Node", "c64"),
        ),
        (
            "catalog services",
            get("/v1/catalog/services"),
            "cat",
            "cat_near",
            Deny::Filtered(no_web),
            |r| has_key(r, "web") && !has_key(r, "web2"),
        ),
        (
            "catalog service/web",
            get("/v1/catalog/service/web"),
            "cat",
            "cat_near",
            Deny::Filtered(empty_list),
            |r| lists(r, "ServiceName", "web"),
        ),
        (
            "catalog node/c64",
            get("/v1/catalog/node/c64"),
            "node",
            "node_near",
            Deny::Filtered(|r| json_of(r).is_null() || json_of(r)["Node"].is_null()),
            |r| json_of(r)["Node"]["Node"] == "c64",
        ),
        (
            "catalog register",
            (
                Method::PUT,
                "/v1/catalog/register".into(),
                Some(
                    json!({"Node": "ext1", "Address": "10.0.0.1", "Service": {"ID": "web-ext", "Service": "web", "Port": 80}}),
                ),
            ),
            "reg",
            "reg_near",
            Deny::Forbidden(&["node:write", "service:write"]),
            |r| r.text().trim() == "true",
        ),
        (
            "catalog deregister",
            (
                Method::PUT,
                "/v1/catalog/deregister".into(),
                Some(json!({"Node": "ext1", "ServiceID": "web-ext"})),
            ),
            "reg",
            "reg_near",
            Deny::Forbidden(&["node:write", "service:write"]),
            |r| r.text().trim() == "true",
        ),
        // Health
        (
            "health service",
            get("/v1/health/service/web"),
            "cat",
            "cat_near",
            Deny::Filtered(empty_list),
            |r| !empty_list(r),
        ),
        (
            "health checks",
            get("/v1/health/checks/web"),
            "cat",
            "cat_near",
            Deny::Filtered(empty_list),
            any,
        ),
        (
            "health node",
            get("/v1/health/node/c64"),
            "node",
            "node_near",
            Deny::Filtered(empty_list),
            |r| lists(r, "Node", "c64"),
        ),
        (
            "health state",
            get("/v1/health/state/any"),
            "node",
            "node_near",
            Deny::Filtered(no_c64),
            |r| lists(r, "Node", "c64"),
        ),
        // Agent
        (
            "agent self",
            get("/v1/agent/self"),
            "agent",
            "agent_near",
            Deny::Forbidden(&["agent:read"]),
            |r| json_of(r)["Config"]["NodeName"].is_string(),
        ),
        (
            "agent members",
            get("/v1/agent/members"),
            "agent",
            "agent_near",
            Deny::Filtered(|r| json_of(r).as_array().is_some_and(|a| a.is_empty())),
            |r| json_of(r).as_array().is_some_and(|a| a.len() == 5),
        ),
        (
            "agent services",
            get("/v1/agent/services"),
            "svc",
            "svc_near",
            Deny::Filtered(|r| !r.text().contains("\"web-")),
            |r| r.text().contains("\"web-"),
        ),
        (
            "agent service register",
            (
                Method::PUT,
                "/v1/agent/service/register".into(),
                Some(json!({"Name": "web", "ID": "web-tmp", "Port": 81})),
            ),
            "svc",
            "svc_near",
            Deny::Forbidden(&["service:write"]),
            any,
        ),
        (
            "agent service deregister",
            (
                Method::PUT,
                "/v1/agent/service/deregister/web-tmp".into(),
                None,
            ),
            "svc",
            "svc_near",
            Deny::Forbidden(&["service:write"]),
            any,
        ),
        (
            "agent check register",
            (
                Method::PUT,
                "/v1/agent/check/register".into(),
                Some(
                    json!({"Name": "ttl", "CheckID": format!("chk-{node}"), "ServiceID": format!("web-{node}"), "TTL": "600s"}),
                ),
            ),
            "svc",
            "svc_near",
            Deny::Forbidden(&["service:write"]),
            any,
        ),
        (
            "agent check pass",
            (
                Method::PUT,
                format!("/v1/agent/check/pass/chk-{node}"),
                None,
            ),
            "svc",
            "svc_near",
            Deny::Forbidden(&["service:write"]),
            any,
        ),
        // Transactions
        (
            "txn",
            (
                Method::PUT,
                "/v1/txn".into(),
                Some(json!([{"KV": {"Verb": "set", "Key": "app/t", "Value": "eA=="}}])),
            ),
            "kv_write",
            "kv_near",
            Deny::Conflict("key:write"),
            |r| json_of(r)["Errors"].is_null(),
        ),
        // Operator
        (
            "operator raft configuration",
            get("/v1/operator/raft/configuration"),
            "op",
            "op_near",
            Deny::Forbidden(&["operator:read"]),
            |r| {
                json_of(r)["Servers"]
                    .as_array()
                    .is_some_and(|s| s.len() == 3)
            },
        ),
        (
            "operator autopilot",
            get("/v1/operator/autopilot/configuration"),
            "op",
            "op_near",
            Deny::Forbidden(&["operator:read"]),
            any,
        ),
        // ACL
        (
            "acl token list",
            get("/v1/acl/tokens"),
            "acl_read",
            "acl_near",
            Deny::Forbidden(&["acl:read"]),
            |r| json_of(r).as_array().is_some_and(|a| !a.is_empty()),
        ),
        (
            "acl policy write",
            (
                Method::PUT,
                "/v1/acl/policy".into(),
                Some(json!({"Name": format!("made-on-{node}"), "Rules": ""})),
            ),
            "acl_write",
            "acl_read",
            Deny::Forbidden(&["acl:write"]),
            |r| json_of(r)["ID"].is_string(),
        ),
        // Snapshot
        (
            "snapshot save",
            get("/v1/snapshot"),
            "acl_write",
            "acl_near",
            Deny::Forbidden(&["acl:write"]),
            |r| !r.body.is_empty(),
        ),
    ];
    for (step, (method, path, body), good, near, deny, ok) in rows {
        c.cell(
            step,
            a,
            Req {
                method,
                path,
                body,
                good: tk(good),
                near: tk(near),
                deny,
                ok,
            },
        )
        .await;
    }
    token_read(c, t, a).await;
    sessions(c, t, a).await;
}

/// `GET /v1/acl/token/:accessor`.
async fn token_read(c: &Cluster, t: &HashMap<&'static str, String>, a: usize) {
    let me = c
        .call(
            &c.agents[a],
            Method::GET,
            "/v1/acl/token/self",
            Some(&t["kv_read"]),
            None,
        )
        .await
        .json();
    let acc = me["AccessorID"].as_str().expect("AccessorID").to_string();
    c.cell(
        "acl token read",
        a,
        Req {
            method: Method::GET,
            path: format!("/v1/acl/token/{acc}"),
            body: None,
            good: &t["acl_read"],
            near: &t["acl_near"],
            deny: Deny::Forbidden(&["acl:read"]),
            ok: |r| r.json()["AccessorID"].is_string(),
        },
    )
    .await;
}

/// Sessions: create on this agent's node, then list, info, renew and destroy it.
async fn sessions(c: &Cluster, t: &HashMap<&'static str, String>, a: usize) {
    let agent = &c.agents[a];
    let (good, near) = (t["sess"].as_str(), t["sess_near"].as_str());
    c.cell(
        "session create",
        a,
        Req {
            method: Method::PUT,
            path: "/v1/session/create".into(),
            body: Some(json!({"TTL": "600s"})),
            good,
            near,
            deny: Deny::Forbidden(&["session:write"]),
            ok: |r| r.json()["ID"].is_string(),
        },
    )
    .await;
    let r = c
        .call(
            agent,
            Method::PUT,
            "/v1/session/create",
            Some(good),
            Some(b"{}".to_vec()),
        )
        .await;
    let id = r.json()["ID"].as_str().expect("session ID").to_string();
    let absent: fn(&Resp) -> bool = |r| json_of(r).as_array().is_none_or(|a| a.is_empty());
    for (step, path) in [
        ("session list", "/v1/session/list".to_string()),
        ("session info", format!("/v1/session/info/{id}")),
        ("session node", format!("/v1/session/node/{}", NAMES[a])),
    ] {
        c.cell(
            step,
            a,
            Req {
                method: Method::GET,
                path,
                body: None,
                good,
                near,
                deny: Deny::Filtered(absent),
                ok: |r| !json_of(r).as_array().is_none_or(|a| a.is_empty()),
            },
        )
        .await;
    }
    for (step, path) in [
        ("session renew", format!("/v1/session/renew/{id}")),
        ("session destroy", format!("/v1/session/destroy/{id}")),
    ] {
        c.cell(
            step,
            a,
            Req {
                method: Method::PUT,
                path,
                body: None,
                good,
                near,
                deny: Deny::Forbidden(&["session:write"]),
                ok: any,
            },
        )
        .await;
    }
}
