//! Gossip key rotation in a live pool, as real processes on 127.0.0.1 with ephemeral
//! ports: one server and two clients share a key; `cairn keyring` installs a new key,
//! makes it primary and removes the old one, and after every step every member is alive
//! on every agent and a write through a client reaches the server. Then a new agent with
//! only the new key joins, one with only the old key cannot, and a client restarted with
//! the old `-encrypt` still joins because its keyring file kept the new key. Before that,
//! a member that cannot save its keyring file makes an install fail, naming it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const OLD: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const NEW: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
const THIRD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const WAIT: Duration = Duration::from_secs(30);

fn server_args(dir: &Path) -> Vec<String> {
    [
        "agent",
        "-server",
        "-bootstrap-expect=1",
        &format!("-data-dir={}", dir.display()),
        "-node=s1",
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        "-http-port=0",
        "-dns-port=-1",
        "-encrypt",
        OLD,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn client_args(name: &str, dir: &Path, join: Option<&str>, key: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "agent",
        &format!("-node={name}"),
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        "-http-port=0",
        "-dns-port=-1",
        &format!("-data-dir={}", dir.display()),
        "-retry-interval=200ms",
        "-encrypt",
        key,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(j) = join {
        v.push(format!("-retry-join={j}"));
    }
    v
}

async fn start(args: &[String]) -> Agent {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Agent::start(&a).await
}

/// `cairn keyring ARGS` against `agent` through CONSUL_HTTP_ADDR.
fn keyring(agent: &Agent, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["keyring"];
    all.extend_from_slice(args);
    run_cli(&all, &[("CONSUL_HTTP_ADDR", &agent.addr)])
}

/// Every agent sees exactly `n` members alive, and a KV write through `via` (a client)
/// is read back from the server.
async fn pool_together(agents: &[&Agent], n: usize, via: &Agent, server: &Agent, step: &str) {
    for (i, a) in agents.iter().enumerate() {
        eventually(WAIT, &format!("{step}: agent {i} sees {n} alive"), || {
            members_alive(a, n)
        })
        .await;
    }
    let key = format!("rotation/{}", step.replace(' ', "-"));
    via.kv_put(&key, step.as_bytes().to_vec()).await;
    let path = format!("/v1/kv/{key}");
    eventually(
        WAIT,
        &format!("{step}: the write reached the server"),
        || async {
            let r = server.try_get(&path).await.ok()?;
            (r.status == 200).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_the_gossip_key_with_the_cli_in_a_live_pool() {
    let (_tmp, root) = tempdir();
    let server = start(&server_args(&root.join("s1"))).await;
    let m = server.get("/v1/agent/members").await.json();
    let serf = format!("127.0.0.1:{}", m[0]["Port"].as_u64().unwrap());
    let c1_args = client_args("c1", &root.join("c1"), Some(&serf), OLD);
    let mut c1 = start(&c1_args).await;
    let c2 = start(&client_args("c2", &root.join("c2"), Some(&serf), OLD)).await;
    pool_together(&[&server, &c1, &c2], 3, &c1, &server, "start").await;

    let (code, out, err) = keyring(&c1, &["-list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("dc1 (LAN):"), "{out}");
    assert!(out.contains(&format!("  {OLD} [3/3]")), "{out}");

    // Install on c2, use through the server, remove through c1: all members follow.
    for (on, args, step) in [
        (&c2, ["-install", NEW], "installed"),
        (&server, ["-use", NEW], "used"),
        (&c1, ["-remove", OLD], "removed"),
    ] {
        let t = std::time::Instant::now();
        let (code, out, err) = keyring(on, &args);
        println!("cairn keyring {} took {:?}", args[0], t.elapsed());
        assert_eq!(code, 0, "{step}: {out}{err}");
        pool_together(&[&server, &c1, &c2], 3, &c2, &server, step).await;
    }
    let (code, out, _) = keyring(&c2, &["-list"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("  {NEW} [3/3]")), "{out}");
    assert!(!out.contains(OLD), "{out}");
    let (code, out, _) = keyring(&c2, &["-list-primary"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("  {NEW} [3/3]")), "{out}");

    // The primary key cannot be removed: exit 1, with the reason.
    let (code, _, err) = keyring(&server, &["-remove", NEW]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("primary"), "{err}");
    // Usage errors (exit 2): no operation, two, a relay factor out of range.
    assert_eq!(keyring(&server, &[]).0, 2);
    assert_eq!(keyring(&server, &["-list", "-use", NEW]).0, 2);
    assert_eq!(keyring(&server, &["-list", "-relay-factor=9"]).0, 2);

    // A newcomer with only the new key joins.
    let c3 = start(&client_args("c3", &root.join("c3"), Some(&serf), NEW)).await;
    pool_together(&[&server, &c1, &c2, &c3], 4, &c3, &server, "newcomer").await;

    // One with only the old key cannot.
    let stale_args = client_args("stale", &root.join("stale"), None, OLD);
    let stale_ref: Vec<&str> = stale_args.iter().map(String::as_str).collect();
    let stale = Agent::start_unready(&stale_ref).await;
    let (code, _, err) = run_cli(
        &["join", &serf],
        &[("CONSUL_HTTP_ADDR", stale.addr.as_str())],
    );
    assert_ne!(code, 0, "joining with the old key must fail: {err}");
    assert!(members_alive(&stale, 1).await.is_some());
    assert_eq!(member_status(&server, "stale").await, None);

    // c2 cannot write its keyring file (a directory where its temporary file goes, which
    // stops root too): the install is an error naming c2, not a success a restart
    // would undo. The key is installed in memory everywhere, so the pool holds.
    let blocker = root.join("c2").join("serf").join("local.keyring.tmp");
    std::fs::create_dir_all(&blocker).unwrap();
    let (code, out, err) = keyring(&c1, &["-install", THIRD]);
    assert_eq!(code, 1, "an unsaved change must fail: {out}{err}");
    assert!(
        err.contains("c2") && err.contains("not saved"),
        "the error names c2 and why: {err}"
    );
    std::fs::remove_dir(&blocker).unwrap();
    let (code, out, err) = keyring(&c2, &["-list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("  {THIRD} [4/4]")), "{out}");
    pool_together(&[&server, &c1, &c2, &c3], 4, &c2, &server, "unsaved").await;

    // c1 restarts with the old -encrypt in its flags; its keyring file kept the new key.
    let file = root.join("c1").join("serf").join("local.keyring");
    let saved = std::fs::read_to_string(&file).expect("c1's keyring file");
    assert_eq!(saved.trim(), format!("[\"{NEW}\",\"{THIRD}\"]"));
    c1.kill9();
    eventually(WAIT, "c1 seen failed by the server", || async {
        (member_status(&server, "c1").await? == 4).then_some(())
    })
    .await;
    drop(c1);
    let c1 = start(&c1_args).await;
    pool_together(&[&server, &c1, &c2, &c3], 4, &c1, &server, "restarted").await;
}
