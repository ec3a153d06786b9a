//! Proves the `cairn` client commands against a real dev agent, addressed both with
//! `-http-addr` and with `CONSUL_HTTP_ADDR`: kv put/get/delete, members, catalog
//! services, services register/deregister — their output, their exit codes (a missing
//! key exits 1, usage errors 2), and that their effects are visible over HTTP.

mod common;

use common::{run_cli, Agent};
use serde_json::json;

/// Runs a client command against `a` with `-http-addr` after the subcommand words.
fn cli(a: &Agent, words: &[&str], rest: &[&str]) -> (i32, String, String) {
    let flag = format!("-http-addr={}", a.addr);
    let mut args: Vec<&str> = words.to_vec();
    args.push(&flag);
    args.extend_from_slice(rest);
    run_cli(&args, &[])
}

/// Runs a client command against `a` through `CONSUL_HTTP_ADDR`.
fn cli_env(a: &Agent, args: &[&str]) -> (i32, String, String) {
    run_cli(args, &[("CONSUL_HTTP_ADDR", &a.addr)])
}

#[tokio::test]
async fn kv_put_get_delete_with_http_addr_flag() {
    let a = Agent::dev().await;
    let (code, out, err) = cli(&a, &["kv", "put"], &["greeting", "hello world"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Success! Data written to: greeting"), "{out}");
    assert_eq!(
        a.get("/v1/kv/greeting?raw").await.expect(200).body,
        b"hello world"
    );

    let (code, out, err) = cli(&a, &["kv", "get"], &["greeting"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "hello world\n");

    let (code, out, err) = cli(&a, &["kv", "get"], &["missing"]);
    assert_eq!(code, 1, "missing key exits 1; stdout {out:?}");
    assert!(out.is_empty());
    assert!(err.contains("No key exists at: missing"), "{err}");

    let (code, out, err) = cli(&a, &["kv", "delete"], &["greeting"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Success! Deleted key: greeting"), "{out}");
    a.get("/v1/kv/greeting").await.expect(404);
    let (code, _, _) = cli(&a, &["kv", "get"], &["greeting"]);
    assert_eq!(code, 1);
}

#[tokio::test]
async fn kv_with_consul_http_addr_env() {
    let a = Agent::dev().await;
    let (code, out, err) = cli_env(&a, &["kv", "put", "env/k", "v1"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Success!"), "{out}");
    let (code, out, _) = cli_env(&a, &["kv", "get", "env/k"]);
    assert_eq!((code, out.as_str()), (0, "v1\n"));
    // http:// scheme in the env var works too.
    let (code, out, err) = run_cli(&["kv", "get", "env/k"], &[("CONSUL_HTTP_ADDR", &a.base)]);
    assert_eq!((code, out.as_str()), (0, "v1\n"), "stderr: {err}");
    // Value written over HTTP is read by the CLI, and recurse lists key:value.
    a.kv_put("env/j", "v2").await;
    let (code, out, _) = cli_env(&a, &["kv", "get", "-recurse", "env/"]);
    assert_eq!(code, 0);
    assert_eq!(out, "env/j:v2\nenv/k:v1\n");
    let (code, _, _) = cli_env(&a, &["kv", "delete", "env/k"]);
    assert_eq!(code, 0);
    let (code, _, err) = cli_env(&a, &["kv", "get", "env/k"]);
    assert_eq!(code, 1, "{err}");
    // The flag wins over the environment.
    let (code, out, err) = run_cli(
        &["kv", "get", &format!("-http-addr={}", a.addr), "env/j"],
        &[("CONSUL_HTTP_ADDR", "127.0.0.1:1")],
    );
    assert_eq!((code, out.as_str()), (0, "v2\n"), "stderr: {err}");
}

#[tokio::test]
async fn members_and_catalog_services() {
    let a = Agent::dev().await;
    let node = a.node_name().await;
    for (code, out, err) in [cli(&a, &["members"], &[]), cli_env(&a, &["members"])] {
        assert_eq!(code, 0, "stderr: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "header + one member: {out}");
        assert!(
            lines[0].starts_with("Node") && lines[0].contains("Status"),
            "{out}"
        );
        assert!(
            lines[1].starts_with(&node) && lines[1].contains("alive"),
            "{out}"
        );
    }

    a.put_json("/v1/catalog/register", &json!({"Node": "n9", "Address": "10.0.0.9", "Service": {"Service": "api", "Tags": ["v1"]}}))
        .await
        .expect(200);
    for (code, out, err) in [
        cli(&a, &["catalog", "services"], &[]),
        cli_env(&a, &["catalog", "services"]),
    ] {
        assert_eq!(code, 0, "stderr: {err}");
        let names: Vec<&str> = out.lines().map(str::trim).collect();
        assert!(names.contains(&"api"), "{out}");
    }
}

#[tokio::test]
async fn services_register_and_deregister() {
    let a = Agent::dev().await;
    let (code, out, err) = cli(
        &a,
        &["services", "register"],
        &["-name", "web", "-port", "80"],
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Registered service: web"), "{out}");
    let svcs = a.get("/v1/agent/services").await.expect(200).json();
    assert_eq!(svcs["web"]["Service"], "web");
    assert_eq!(svcs["web"]["Port"], 80);
    common::eventually(
        std::time::Duration::from_secs(5),
        "web in the catalog",
        || async {
            let v = a.get("/v1/catalog/service/web").await.json();
            (v.as_array()?.len() == 1).then_some(())
        },
    )
    .await;
    let (code, out, _) = cli_env(&a, &["catalog", "services"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.trim() == "web"), "{out}");

    let (code, out, err) = cli_env(&a, &["services", "deregister", "-id", "web"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Deregistered service: web"), "{out}");
    assert!(a
        .get("/v1/agent/services")
        .await
        .json()
        .get("web")
        .is_none());
    common::eventually(
        std::time::Duration::from_secs(5),
        "web gone from the catalog",
        || async { (a.get("/v1/catalog/service/web").await.json() == json!([])).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn exit_codes_for_usage_and_connection_errors() {
    let a = Agent::dev().await;
    // Usage error: missing KEY.
    let (code, _, err) = cli(&a, &["kv", "get"], &[]);
    assert_eq!(code, 2, "{err}");
    // Unknown flag.
    let (code, _, _) = cli(&a, &["kv", "get"], &["-bogus", "k"]);
    assert_eq!(code, 2);
    // Nobody listening.
    let (code, _, err) = run_cli(&["kv", "get", "-http-addr=127.0.0.1:1", "k"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.is_empty());
    let (code, _, _) = run_cli(&["members"], &[("CONSUL_HTTP_ADDR", "127.0.0.1:1")]);
    assert_eq!(code, 1);
}
