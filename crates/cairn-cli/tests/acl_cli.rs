//! Proves `cairn acl` against a real dev agent with ACLs on and `default_policy = "deny"`:
//! bootstrap prints a management token once and relays the agent's refusal the second
//! time; a policy read from an HCL rules file, granted through a token, lets that token
//! read its key prefix with `cairn kv get` and nothing else; tokens, policies and roles
//! round-trip through create, list, read, update and delete, in text and JSON.

mod common;

use std::time::Duration;

use common::{eventually, run_cli, tempdir, Agent, START_TIMEOUT};
use serde_json::Value;

/// A dev agent enforcing ACLs, ready once it has a leader (its catalog is not readable
/// without a token, so the usual readiness check does not apply).
async fn acl_agent() -> Agent {
    let a = Agent::start_unready(&[
        "agent",
        "-dev",
        "-http-port",
        "0",
        "-dns-port",
        "-1",
        "-hcl",
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}",
    ])
    .await;
    eventually(START_TIMEOUT, "the agent has a leader", || async {
        let r = a.try_get("/v1/status/leader").await.ok()?;
        (r.status == 200 && !r.json().as_str().unwrap_or("").is_empty()).then_some(())
    })
    .await;
    a
}

/// Runs `cairn ARGS` against `a` with `token` in `CONSUL_HTTP_TOKEN` (none if empty).
fn cli(a: &Agent, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut env = vec![("CONSUL_HTTP_ADDR", a.addr.as_str())];
    if !token.is_empty() {
        env.push(("CONSUL_HTTP_TOKEN", token));
    }
    run_cli(args, &env)
}

/// Runs a command that must succeed; returns its stdout.
fn ok(a: &Agent, token: &str, args: &[&str]) -> String {
    let (code, out, err) = cli(a, token, args);
    assert_eq!(code, 0, "cairn {args:?} failed: {err}");
    out
}

/// Runs a command that must succeed with `-format=json`; returns the parsed JSON.
fn json(a: &Agent, token: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("-format=json");
    let out = ok(a, token, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed non-JSON ({e}): {out}"))
}

/// The value of a `Field:   value` line of pretty output.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn bootstrap_policy_token_and_kv_access() {
    let a = acl_agent().await;

    // Bootstrap: Consul's text layout with the management policy; only once.
    let out = ok(&a, "", &["acl", "bootstrap"]);
    for f in [
        "AccessorID",
        "SecretID",
        "Description",
        "Local",
        "Create Time",
    ] {
        field(&out, f);
    }
    assert!(
        out.contains("Policies:\n   00000000-0000-0000-0000-000000000001 - global-management"),
        "{out}"
    );
    let root = field(&out, "SecretID");
    let (code, _, err) = cli(&a, "", &["acl", "bootstrap"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Failed ACL bootstrapping") && err.contains("403"),
        "{err}"
    );
    assert!(err.contains("ACL bootstrap no longer allowed"), "{err}");
    // The management token works with -token as well as the environment.
    let me = json(
        &a,
        "",
        &["acl", "token", "read", "-self", "-token", root.as_str()],
    );
    assert_eq!(me["SecretID"], root.as_str());

    // A policy from an HCL rules file.
    let (_d, dir) = tempdir();
    let rules = dir.join("app.hcl");
    std::fs::write(&rules, "key_prefix \"app/\" {\n  policy = \"read\"\n}\n").unwrap();
    let at_file = format!("@{}", rules.display());
    let policy = json(
        &a,
        &root,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "app-read",
            "-description",
            "reads app/",
            "-rules",
            &at_file,
        ],
    );
    assert_eq!(policy["Name"], "app-read");
    assert!(policy["Rules"].as_str().unwrap().contains("key_prefix"));
    let policy_id = policy["ID"].as_str().unwrap().to_string();

    // Bad rules: the agent's 400 says where.
    let (code, _, err) = cli(
        &a,
        &root,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "bad",
            "-rules",
            "key_prefix \"x\" { policy = \"bogus\" }",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("bogus"), "{err}");

    // A token holding the policy, by name.
    let out = ok(
        &a,
        &root,
        &[
            "acl",
            "token",
            "create",
            "-description",
            "app reader",
            "-policy-name",
            "app-read",
        ],
    );
    assert!(out.contains(&format!("{policy_id} - app-read")), "{out}");
    let app_secret = field(&out, "SecretID");
    let app_accessor = field(&out, "AccessorID");

    // The token reads under app/ and is denied elsewhere.
    ok(&a, &root, &["kv", "put", "app/db", "postgres"]);
    ok(&a, &root, &["kv", "put", "secret/pw", "hunter2"]);
    assert_eq!(ok(&a, &app_secret, &["kv", "get", "app/db"]), "postgres\n");
    let (code, _, err) = cli(&a, &app_secret, &["kv", "get", "secret/pw"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("403") && err.contains("Permission denied"),
        "{err}"
    );
    // ... and may not manage ACLs.
    let (code, _, err) = cli(&a, &app_secret, &["acl", "token", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    let (code, _, err) = cli(
        &a,
        &app_secret,
        &["acl", "policy", "create", "-name", "x", "-rules", ""],
    );
    assert_eq!(code, 1);
    assert!(err.contains("Permission denied"), "{err}");

    // Read by a unique accessor prefix; the list has the token.
    let t = json(
        &a,
        &root,
        &["acl", "token", "read", "-id", &app_accessor[..8]],
    );
    assert_eq!(t["AccessorID"], app_accessor.as_str());
    assert_eq!(t["Policies"][0]["Name"], "app-read");
    let list = json(&a, &root, &["acl", "token", "list"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["AccessorID"] == app_accessor.as_str()));

    // Delete: the token stops working.
    let out = ok(&a, &root, &["acl", "token", "delete", "-id", &app_accessor]);
    assert!(out.contains("deleted successfully"), "{out}");
    let (code, _, _) = cli(&a, &root, &["acl", "token", "read", "-id", &app_accessor]);
    assert_eq!(code, 1);
    eventually(
        Duration::from_secs(10),
        "the deleted token is refused",
        || {
            let (code, _, _) = cli(&a, &app_secret, &["kv", "get", "app/db"]);
            std::future::ready((code == 1).then_some(()))
        },
    )
    .await;
}

#[tokio::test]
async fn tokens_policies_and_roles_round_trip() {
    let a = acl_agent().await;
    let boot = json(&a, "", &["acl", "bootstrap"]);
    let root = boot["SecretID"].as_str().unwrap().to_string();

    // Policy: create from stdin-free text, read by name and by ID, update, list.
    let p = json(
        &a,
        &root,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "svc-read",
            "-rules",
            "service_prefix \"\" { policy = \"read\" }",
        ],
    );
    let pid = p["ID"].as_str().unwrap().to_string();
    let out = ok(&a, &root, &["acl", "policy", "read", "-name", "svc-read"]);
    assert_eq!(field(&out, "ID"), pid);
    assert!(out.contains("Rules:\nservice_prefix"), "{out}");
    let p = json(
        &a,
        &root,
        &[
            "acl",
            "policy",
            "update",
            "-id",
            &pid,
            "-description",
            "now described",
        ],
    );
    assert_eq!(p["Description"], "now described");
    assert!(
        p["Rules"].as_str().unwrap().contains("service_prefix"),
        "{p}"
    );
    let names: Vec<String> = json(&a, &root, &["acl", "policy", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"svc-read".to_string()), "{names:?}");
    assert!(
        names.contains(&"global-management".to_string()),
        "{names:?}"
    );

    // Role: with the policy and a service identity; update adds a node identity.
    let r = json(
        &a,
        &root,
        &[
            "acl",
            "role",
            "create",
            "-name",
            "web",
            "-policy-id",
            &pid,
            "-service-identity",
            "web:dc1",
        ],
    );
    let rid = r["ID"].as_str().unwrap().to_string();
    let out = ok(
        &a,
        &root,
        &[
            "acl",
            "role",
            "update",
            "-name",
            "web",
            "-node-identity",
            "n1:dc1",
        ],
    );
    assert!(out.contains(&format!("{pid} - svc-read")), "{out}");
    assert!(out.contains("web (Datacenters: dc1)"), "{out}");
    assert!(out.contains("n1 (Datacenter: dc1)"), "{out}");
    let roles = json(&a, &root, &["acl", "role", "list"]);
    assert_eq!(roles.as_array().unwrap().len(), 1, "{roles}");

    // Token with the role, updated, cloned, deleted.
    let t = json(
        &a,
        &root,
        &[
            "acl",
            "token",
            "create",
            "-role-name",
            "web",
            "-description",
            "first",
        ],
    );
    let tid = t["AccessorID"].as_str().unwrap().to_string();
    assert_eq!(t["Roles"][0]["ID"], rid.as_str());
    let out = ok(
        &a,
        &root,
        &[
            "acl",
            "token",
            "update",
            "-id",
            &tid,
            "-description",
            "second",
            "-append-policy-name",
            "svc-read",
        ],
    );
    assert!(out.contains("Token updated successfully."), "{out}");
    assert_eq!(field(&out, "Description"), "second");
    assert!(out.contains(&format!("{rid} - web")), "{out}");
    assert!(out.contains(&format!("{pid} - svc-read")), "{out}");
    let out = ok(
        &a,
        &root,
        &["acl", "token", "clone", "-id", &tid, "-description", "copy"],
    );
    let copy = field(&out, "AccessorID");
    assert_ne!(copy, tid);
    assert_eq!(field(&out, "Description"), "copy");
    for id in [&tid, &copy] {
        ok(&a, &root, &["acl", "token", "delete", "-id", id]);
    }
    let left: Vec<Value> = json(&a, &root, &["acl", "token", "list"])
        .as_array()
        .unwrap()
        .clone();
    assert!(
        !left
            .iter()
            .any(|t| t["AccessorID"] == tid.as_str() || t["AccessorID"] == copy.as_str()),
        "{left:?}"
    );

    // Chosen IDs, an expiry, a service identity; the text shows them.
    let (acc, sec) = (
        "11111111-2222-3333-4444-555555555555",
        "66666666-7777-8888-9999-000000000000",
    );
    let out = ok(
        &a,
        &root,
        &[
            "acl",
            "token",
            "create",
            "-accessor",
            acc,
            "-secret",
            sec,
            "-expires-ttl",
            "1h",
            "-service-identity",
            "api",
            "-node-identity",
            "n2:dc1",
        ],
    );
    assert_eq!(field(&out, "AccessorID"), acc);
    assert_eq!(field(&out, "SecretID"), sec);
    assert!(
        field(&out, "Expiration Time").ends_with("+0000 UTC"),
        "{out}"
    );
    assert!(out.contains("api (Datacenters: all)"), "{out}");
    assert!(out.contains("n2 (Datacenter: dc1)"), "{out}");
    // Updating a token that expires keeps its expiration.
    let t = json(
        &a,
        &root,
        &[
            "acl",
            "token",
            "update",
            "-id",
            acc,
            "-description",
            "expiring",
        ],
    );
    assert_eq!(t["Description"], "expiring");
    assert!(t["ExpirationTime"].is_string(), "{t}");
    // The agent's own checks come back as errors: a TTL out of range is its 400.
    let (code, _, err) = cli(
        &a,
        &root,
        &["acl", "token", "create", "-expires-ttl", "10s"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("TTL"), "{err}");

    // Role and policy deletes, by name.
    let out = ok(&a, &root, &["acl", "role", "delete", "-name", "web"]);
    assert!(
        out.contains(&format!("Role \"{rid}\" deleted successfully")),
        "{out}"
    );
    let (code, _, err) = cli(&a, &root, &["acl", "role", "read", "-id", &rid]);
    assert_eq!(code, 1, "{err}");
    ok(&a, &root, &["acl", "policy", "delete", "-name", "svc-read"]);
    let (code, _, err) = cli(&a, &root, &["acl", "policy", "read", "-name", "svc-read"]);
    assert_eq!(code, 1);
    assert!(err.contains("Error reading policy"), "{err}");
}

#[test]
fn usage_and_flag_errors() {
    let (code, out, _) = run_cli(&["acl", "-h"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("bootstrap") && out.contains("token"), "{out}");
    for sub in [
        &["acl", "token", "create", "-h"][..],
        &["acl", "policy", "read", "-h"][..],
        &["acl", "role", "update", "-h"][..],
    ] {
        let (code, out, _) = run_cli(sub, &[]);
        assert_eq!(code, 0, "{sub:?}");
        assert!(out.starts_with("Usage: cairn acl"), "{out}");
    }
    let (code, _, err) = run_cli(&["acl", "token", "create", "-bogus"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("flag provided but not defined: -bogus"),
        "{err}"
    );
    let (code, _, err) = run_cli(&["acl", "policy", "create"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("-name"), "{err}");
    let (code, _, err) = run_cli(&["acl", "token", "read", "-format=yaml", "-self"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run_cli(&["acl", "frobnicate"], &[]);
    assert_eq!(code, 2);
}
