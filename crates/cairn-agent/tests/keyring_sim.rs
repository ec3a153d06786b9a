//! Gossip key rotation over `/v1/operator/keyring` in one process (see `harness`): a
//! server and two clients rotate from one key to another (install, use, remove) through
//! different agents while the pool stays together; removing the primary key and bad
//! requests are refused; a client restarted with the old `encrypt` rejoins because its
//! keyring file kept the new key; with ACLs, listing needs `keyring:read` and changes
//! `keyring:write`. The seed is printed.

mod harness;

use harness::*;
use serde_json::Value;

const OLD: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const NEW: &str = "Gnn1oSu8rvHU66mNQpuaEfUZ7TSSmkrl3ZPFdNZSRIw=";

fn key_body(key: &str) -> String {
    format!(r#"{{"Key": "{key}"}}"#)
}

/// The LAN pool's entry of a keyring listing.
fn lan(v: &Value) -> &Value {
    let pools = v.as_array().expect("an array of pools");
    assert_eq!(pools.len(), 1, "{v}");
    &pools[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_through_the_api_keeps_the_pool_and_survives_a_restart() {
    let mut c = Cluster::new("rotation_through_the_api_keeps_the_pool_and_survives_a_restart");
    let dir = tempfile::tempdir().unwrap();
    let enc = format!("encrypt = \"{OLD}\"");
    c.server_with("s1", &enc).await;
    c.client(
        "c1",
        &format!("{enc}\ndata_dir = \"{}\"", dir.path().display()),
    )
    .await;
    c.client("c2", &enc).await;
    c.wait_until("three alive", members_alive(3)).await;

    let (s, v) = c.http("c1", "GET", "/v1/operator/keyring", "").await;
    assert_eq!(s, 200, "{v}");
    let pool = lan(&v);
    assert_eq!(pool["WAN"], false);
    assert_eq!(pool["Datacenter"], "dc1");
    assert_eq!(pool["Segment"], "");
    assert_eq!(pool["NumNodes"], 3);
    assert_eq!(pool["Keys"][OLD], 3);
    assert_eq!(pool["PrimaryKeys"][OLD], 3);
    assert_eq!(pool["Messages"], serde_json::json!({}));

    for (on, method, key) in [
        ("c1", "POST", NEW),
        ("s1", "PUT", NEW),
        ("c2", "DELETE", OLD),
    ] {
        let (s, v) = c
            .http(on, method, "/v1/operator/keyring", &key_body(key))
            .await;
        assert_eq!(s, 200, "{method} on {on}: {v}");
        c.wait_until("three alive after the step", members_alive(3))
            .await;
    }
    let (_, v) = c.http("s1", "GET", "/v1/operator/keyring", "").await;
    let pool = lan(&v);
    assert_eq!(pool["Keys"], serde_json::json!({ NEW: 3 }), "{v}");
    assert_eq!(pool["PrimaryKeys"], serde_json::json!({ NEW: 3 }), "{v}");

    // Refusals: the primary key, a malformed key, bad parameters, an empty body.
    let (s, v) = c
        .http("s1", "DELETE", "/v1/operator/keyring", &key_body(NEW))
        .await;
    assert_eq!(s, 500, "{v}");
    let text = v.as_str().unwrap_or("");
    assert!(
        text.contains("dc1 (LAN) error") && text.contains("primary"),
        "{text}"
    );
    let (s, v) = c
        .http("s1", "POST", "/v1/operator/keyring", &key_body("abc"))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        c.http("s1", "GET", "/v1/operator/keyring?relay-factor=6", "")
            .await
            .0,
        400
    );
    assert_eq!(
        c.http(
            "s1",
            "POST",
            "/v1/operator/keyring?local-only=true",
            &key_body(NEW)
        )
        .await
        .0,
        400
    );
    assert_eq!(c.http("s1", "PUT", "/v1/operator/keyring", "").await.0, 400);
    let (s, _) = c
        .http(
            "s1",
            "GET",
            "/v1/operator/keyring?relay-factor=2&local-only",
            "",
        )
        .await;
    assert_eq!(s, 200);

    // The keyring file kept the rotated key: c1 restarts with the old `encrypt` and rejoins.
    let file = dir.path().join("serf").join("local.keyring");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved.trim(), format!("[\"{NEW}\"]"));
    c.kill("c1").await;
    c.wait_until("c1 seen failed", status_everywhere("c1", 4))
        .await;
    c.restart("c1").await;
    c.wait_until("c1 back with the new key", members_alive(3))
        .await;
}

const ROOT: &str = "3f0f2d9e-54b8-4c52-9a51-3c1b3c1c6a11";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_needs_keyring_read_to_list_and_keyring_write_to_change() {
    let mut c = Cluster::new("keyring_needs_keyring_read_to_list_and_keyring_write_to_change");
    let hcl = format!(
        "encrypt = \"{OLD}\"\nacl {{\n enabled = true\n default_policy = \"deny\"\n tokens {{\n  initial_management = \"{ROOT}\"\n }}\n}}"
    );
    c.server_with("s1", &hcl).await;
    let root = format!("/v1/operator/keyring?token={ROOT}");
    let deadline = std::time::Instant::now() + *WAIT;
    while c.http("s1", "GET", &root, "").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "ACLs never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(c.http("s1", "GET", "/v1/operator/keyring", "").await.0, 403);
    let (s, policy) = c
        .http(
            "s1",
            "PUT",
            &format!("/v1/acl/policy?token={ROOT}"),
            r#"{"Name": "kr", "Rules": "keyring = \"read\""}"#,
        )
        .await;
    assert_eq!(s, 200, "{policy}");
    let (s, token) = c
        .http(
            "s1",
            "PUT",
            &format!("/v1/acl/token?token={ROOT}"),
            r#"{"Policies": [{"Name": "kr"}]}"#,
        )
        .await;
    assert_eq!(s, 200, "{token}");
    let secret = token["SecretID"].as_str().unwrap();
    let path = format!("/v1/operator/keyring?token={secret}");
    let deadline = std::time::Instant::now() + *WAIT;
    while c.http("s1", "GET", &path, "").await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the token never worked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(c.http("s1", "POST", &path, &key_body(NEW)).await.0, 403);
    assert_eq!(c.http("s1", "POST", &root, &key_body(NEW)).await.0, 200);
    let (_, v) = c.http("s1", "GET", &path, "").await;
    assert_eq!(lan(&v)["Keys"][NEW], 1, "{v}");
}
