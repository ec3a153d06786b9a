//! ACL enforcement across a server and a client agent, in one process (see `harness`):
//! with `default_policy = "deny"` the anonymous token can do nothing; a token whose one
//! policy is `key_prefix "app/" { policy = "write" }` reads and writes under `app/` but
//! not under the neighbouring `apps/` or `other/`, on the server and on the client (which
//! authorizes from its own replica); once the token is deleted it stops working on both.
//! A cluster bootstrapped through the API bootstraps once, and catalog and health reads
//! show only what the token may read. A read on a client agent or a follower asks the
//! leader once, for its token and its data together. The seed is printed.

mod harness;

use harness::*;
use serde_json::Value;

const ROOT: &str = "3f0f2d9e-54b8-4c52-9a51-3c1b3c1c6a11";

const ACL: &str = r#"acl {
  enabled = true
  default_policy = "deny"
  tokens {
    initial_management = "3f0f2d9e-54b8-4c52-9a51-3c1b3c1c6a11"
  }
}"#;

const ACL_CLIENT: &str = r#"acl {
  enabled = true
  default_policy = "deny"
}"#;

/// `GET path?token=` on `node` answers `status`.
struct Answers {
    node: &'static str,
    path: String,
    status: u16,
}

impl Condition for Answers {
    async fn holds(&self, c: &Cluster) -> bool {
        c.http(self.node, "GET", &self.path, "").await.0 == self.status
    }
}

fn with_token(path: &str, token: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}token={token}")
}

/// A server `s1` with ACLs and the management token `ROOT` in force, and a client `c1`.
async fn server_and_client(test: &str) -> Cluster {
    let mut c = Cluster::new(test);
    c.server_with("s1", ACL).await;
    c.client("c1", ACL_CLIENT).await;
    c.wait_until(
        "the management token works on the server",
        Answers {
            node: "s1",
            path: with_token("/v1/acl/token/self", ROOT),
            status: 200,
        },
    )
    .await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_prefix_token_reaches_its_prefix_only_until_deleted() {
    let c = server_and_client("a_key_prefix_token_reaches_its_prefix_only_until_deleted").await;

    // The anonymous token (no token at all) is denied reads and writes.
    let (s, body) = c.http("s1", "PUT", "/v1/kv/app/x", "v").await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.as_str().unwrap_or("").contains("Permission denied"),
        "{body}"
    );
    assert_eq!(c.http("s1", "GET", "/v1/kv/app/x", "").await.0, 403);
    // An unknown secret is not the anonymous token: 403 "ACL not found".
    let (s, body) = c
        .http("s1", "GET", &with_token("/v1/kv/app/x", "no-such"), "")
        .await;
    assert_eq!(s, 403);
    assert!(
        body.as_str().unwrap_or("").contains("ACL not found"),
        "{body}"
    );

    // The management token writes a neighbour key, a policy and a token.
    for key in ["other/y", "apps/y"] {
        let (s, body) = c
            .http(
                "s1",
                "PUT",
                &with_token(&format!("/v1/kv/{key}"), ROOT),
                "n",
            )
            .await;
        assert_eq!((s, &body), (200, &Value::Bool(true)), "{key}");
    }
    let (s, policy) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/acl/policy", ROOT),
            r#"{"Name": "app-rw", "Rules": "key_prefix \"app/\" { policy = \"write\" }"}"#,
        )
        .await;
    assert_eq!(s, 200, "{policy}");
    let (s, token) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/acl/token", ROOT),
            &format!(
                r#"{{"Policies": [{{"ID": "{}"}}]}}"#,
                policy["ID"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(s, 200, "{token}");
    assert_eq!(token["Policies"][0]["Name"], "app-rw");
    let secret = token["SecretID"].as_str().unwrap().to_string();
    let accessor = token["AccessorID"].as_str().unwrap().to_string();

    // Rules that do not parse are a 400 saying where.
    let (s, body) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/acl/policy", ROOT),
            r#"{"Name": "bad", "Rules": "key_prefix \"a/\" { policy = \"sideways\" }"}"#,
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.as_str().unwrap_or("").contains("key_prefix"), "{body}");

    for node in ["s1", "c1"] {
        // The client authorizes from its replica: wait until the token reached it.
        c.wait_until(
            &format!("the new token resolves on {node}"),
            Answers {
                node,
                path: with_token("/v1/acl/token/self", &secret),
                status: 200,
            },
        )
        .await;
        let (s, body) = c
            .http(node, "PUT", &with_token("/v1/kv/app/x", &secret), node)
            .await;
        assert_eq!(
            (s, &body),
            (200, &Value::Bool(true)),
            "write under app/ on {node}"
        );
        let (s, body) = c
            .http(node, "GET", &with_token("/v1/kv/app/x?raw", &secret), "")
            .await;
        assert_eq!(
            (s, body.as_str()),
            (200, Some(node)),
            "read under app/ on {node}"
        );
        for key in ["other/y", "apps/y"] {
            let (s, body) = c
                .http(
                    node,
                    "GET",
                    &with_token(&format!("/v1/kv/{key}"), &secret),
                    "",
                )
                .await;
            assert_eq!(s, 403, "read {key} on {node}: {body}");
            let (s, _) = c
                .http(
                    node,
                    "PUT",
                    &with_token(&format!("/v1/kv/{key}"), &secret),
                    "x",
                )
                .await;
            assert_eq!(s, 403, "write {key} on {node}");
        }
        // A recursive read of everything shows only what the token may read, and says so.
        let (s, headers, v) = c
            .request(node, "GET", &with_token("/v1/kv/?recurse", &secret), "")
            .await;
        assert_eq!(s, 200, "{v}");
        let keys: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["Key"].as_str())
            .collect();
        assert_eq!(keys, ["app/x"], "on {node}");
        assert_eq!(
            headers
                .get("x-consul-results-filtered-by-acls")
                .and_then(|h| h.to_str().ok()),
            Some("true")
        );
        // ACL management needs acl:write, which the token lacks.
        assert_eq!(
            c.http(node, "GET", &with_token("/v1/acl/tokens", &secret), "")
                .await
                .0,
            403
        );
    }

    // Deleted, the token stops working everywhere.
    let (s, body) = c
        .http(
            "s1",
            "DELETE",
            &with_token(&format!("/v1/acl/token/{accessor}"), ROOT),
            "",
        )
        .await;
    assert_eq!((s, &body), (200, &Value::Bool(true)));
    for node in ["s1", "c1"] {
        c.wait_until(
            &format!("the deleted token is refused on {node}"),
            Answers {
                node,
                path: with_token("/v1/kv/app/x", &secret),
                status: 403,
            },
        )
        .await;
        let (s, body) = c
            .http(node, "PUT", &with_token("/v1/kv/app/x", &secret), "again")
            .await;
        assert_eq!(s, 403, "{body}");
        assert!(
            body.as_str().unwrap_or("").contains("ACL not found"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_read_on_a_client_asks_the_leader_once_for_token_and_data() {
    let c = server_and_client("a_default_read_on_a_client_asks_the_leader_once_for_token_and_data")
        .await;
    reads_ask_the_leader_once(&c, "s1", "c1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_read_on_a_follower_asks_the_leader_once_for_token_and_data() {
    let mut c =
        Cluster::new("a_default_read_on_a_follower_asks_the_leader_once_for_token_and_data");
    // The harness's own waits ask without a token: the management token is every
    // server's default token here.
    let hcl = acl_managed_by(ROOT);
    for name in ["s1", "s2", "s3"] {
        c.cluster_server_with(name, 3, &hcl).await;
    }
    c.wait_until("three servers alive everywhere", members_alive(3))
        .await;
    c.wait_until("one leader agreed", LeaderAgreed(None)).await;
    let leader = c.leader_name("s1").await.expect("a leader");
    let follower = ["s1", "s2", "s3"]
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    c.wait_until(
        "the management token works on the follower",
        Answers {
            node: follower,
            path: with_token("/v1/acl/token/self", ROOT),
            status: 200,
        },
    )
    .await;
    reads_ask_the_leader_once(&c, &leader, follower).await;
}

/// Default-mode reads on `node` (a client agent or a follower) ask the leader once each:
/// the catch-up that resolves the token (after the request arrived) serves the read too.
/// `?consistent` asks a quorum on top; `?stale` asks nobody.
async fn reads_ask_the_leader_once(c: &Cluster, leader: &str, node: &'static str) {
    let key = with_token("/v1/kv/app/k", ROOT);
    let (s, body) = c.http(leader, "PUT", &key, "v").await;
    assert_eq!(s, 200, "{body}");
    c.wait_until(
        "the node reads the key with the management token",
        Answers {
            node,
            path: key.clone(),
            status: 200,
        },
    )
    .await;
    let reads = |path: String, n: usize| async move {
        let before = c.rpc_calls_from(node);
        for _ in 0..n {
            let (s, body) = c.http(node, "GET", &path, "").await;
            assert_eq!(s, 200, "{path}: {body}");
        }
        c.rpc_calls_from(node) - before
    };
    // A few calls of the agent's own (anti-entropy) may fall in between.
    let calls = reads(key.clone(), 20).await;
    assert!(
        (20..=28).contains(&calls),
        "20 default-mode reads on {node} made {calls} RPC calls, not one each"
    );
    let calls = reads(format!("{key}&consistent"), 5).await;
    assert!(
        calls >= 10,
        "5 consistent reads on {node} made only {calls} RPC calls"
    );
    let calls = reads(format!("{key}&stale"), 5).await;
    assert!(calls <= 3, "5 stale reads on {node} made {calls} RPC calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_once_then_catalog_reads_are_filtered() {
    let mut c = Cluster::new("bootstrap_once_then_catalog_reads_are_filtered");
    c.server_with("s1", ACL_CLIENT).await;
    // Not bootstrapped: no token but the anonymous one, and it may do nothing.
    assert_eq!(c.http("s1", "GET", "/v1/acl/tokens", "").await.0, 403);
    let (s, boot) = c.http("s1", "PUT", "/v1/acl/bootstrap", "").await;
    assert_eq!(s, 200, "{boot}");
    assert_eq!(boot["Policies"][0]["Name"], "global-management");
    let root = boot["SecretID"].as_str().unwrap().to_string();
    let index = boot["CreateIndex"].as_u64().unwrap();
    let (s, again) = c.http("s1", "PUT", "/v1/acl/bootstrap", "").await;
    assert_eq!(s, 403);
    assert_eq!(
        again.as_str().map(str::trim),
        Some(format!("ACL bootstrap no longer allowed (reset index: {index})").as_str())
    );

    for svc in ["web", "db"] {
        let (s, body) = c
            .http(
                "s1",
                "PUT",
                &with_token("/v1/catalog/register", &root),
                &format!(
                    r#"{{"Node": "n-{svc}", "Address": "10.1.0.1", "Service": {{"Service": "{svc}", "Port": 80}}}}"#
                ),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, policy) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/acl/policy", &root),
            r#"{"Name": "web-reader", "Rules": "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"}"#,
        )
        .await;
    assert_eq!(s, 200, "{policy}");
    // Linked by name; read back with its ID.
    let (s, token) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/acl/token", &root),
            r#"{"Description": "web only", "Policies": [{"Name": "web-reader"}]}"#,
        )
        .await;
    assert_eq!(s, 200, "{token}");
    assert_eq!(token["Policies"][0]["ID"], policy["ID"]);
    let secret = token["SecretID"].as_str().unwrap();

    let (s, headers, services) = c
        .request("s1", "GET", &with_token("/v1/catalog/services", secret), "")
        .await;
    assert_eq!(s, 200);
    let names: Vec<&String> = services.as_object().unwrap().keys().collect();
    assert_eq!(names, ["web"], "{services}");
    assert_eq!(
        headers
            .get("x-consul-results-filtered-by-acls")
            .and_then(|h| h.to_str().ok()),
        Some("true")
    );
    let (s, db) = c
        .http(
            "s1",
            "GET",
            &with_token("/v1/health/service/db", secret),
            "",
        )
        .await;
    assert_eq!((s, db), (200, serde_json::json!([])));
    let (s, web) = c
        .http(
            "s1",
            "GET",
            &with_token("/v1/health/service/web", secret),
            "",
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(web.as_array().map(Vec::len), Some(1), "{web}");
    // Writes need service:write.
    let (s, _) = c
        .http(
            "s1",
            "PUT",
            &with_token("/v1/catalog/register", secret),
            r#"{"Node": "n-web", "Address": "10.1.0.1", "SkipNodeUpdate": true, "Service": {"Service": "web", "Port": 81}}"#,
        )
        .await;
    assert_eq!(s, 403);
}
