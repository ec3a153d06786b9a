//! Server RPC over TLS with real processes: three servers with `verify_incoming`,
//! `verify_outgoing` and `verify_server_hostname` elect a leader and replicate a write
//! (Raft and forwarded writes both cross TLS); and a client agent that checks server names
//! refuses a "server" whose certificate names a client (one that checks only the CA
//! accepts it).
//!
//! The agents run on their own loopback aliases (127.0.0.41-43, 127.0.0.51-53) with the
//! default serf and RPC ports there (servers find each other at 8301), so they do not meet
//! the other multi-process tests' agents on 127.0.0.1-5.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::servers::*;
use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `cairn ARGS` in `dir`, asserting success.
fn cairn_in(dir: &Path, args: &[&str]) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run cairn");
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `tls { }` block of an agent presenting `cert` (file prefix in `dir`) and checking
/// everything (the server's name only with `check_name`).
fn tls_hcl(dir: &Path, cert: &str, check_name: bool) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    format!(
        "tls {{\n defaults {{\n ca_file = \"{}\"\n cert_file = \"{}\"\n key_file = \"{}\"\n verify_incoming = true\n verify_outgoing = true\n }}\n internal_rpc {{\n verify_server_hostname = {check_name}\n }}\n}}",
        p("consul-agent-ca.pem"),
        p(&format!("{cert}.pem")),
        p(&format!("{cert}-key.pem")),
    )
}

fn usable(ips: &[u8]) -> bool {
    let ok = ips.iter().all(|i| {
        let ip = format!("127.0.0.{i}");
        std::net::TcpListener::bind(format!("{ip}:8300")).is_ok()
            && std::net::UdpSocket::bind(format!("{ip}:8301")).is_ok()
    });
    if !ok {
        eprintln!("SKIP: 127.0.0.{ips:?} cannot be bound or ports 8300/8301 are taken there");
    }
    ok
}

fn server_args(i: u8, join: u8, expect: u32, data: &Path, tls: &str) -> Vec<String> {
    vec![
        "agent".into(),
        "-server".into(),
        format!("-bootstrap-expect={expect}"),
        format!("-data-dir={}", data.display()),
        format!("-node=s{i}"),
        format!("-bind=127.0.0.{i}"),
        format!("-client=127.0.0.{i}"),
        "-http-port=0".into(),
        "-dns-port=-1".into(),
        "-serf-lan-port=8301".into(),
        "-server-port=8300".into(),
        format!("-retry-join=127.0.0.{join}"),
        "-retry-interval=500ms".into(),
        "-hcl".into(),
        "performance { raft_multiplier = 1 }".into(),
        "-hcl".into(),
        tls.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_tls_servers_elect_a_leader_and_replicate() {
    if !usable(&[41, 42, 43]) {
        return;
    }
    let (_tmp, root) = tempdir();
    cairn_in(&root, &["tls", "ca", "create"]);
    cairn_in(&root, &["tls", "cert", "create", "-server"]);
    let tls = tls_hcl(&root, "dc1-server-consul-0", true);
    // Started together: a server of a cluster still forming prints its banner only after
    // its first catalog write gave up waiting for a leader (7 s), unless the others come.
    let starts: Vec<_> = [41u8, 42, 43]
        .into_iter()
        .map(|i| {
            let args = server_args(i, 41, 3, &root.join(format!("s{i}")), &tls);
            tokio::spawn(async move { Agent::start_unready(&strs(&args)).await })
        })
        .collect();
    let mut servers = Vec::new();
    for s in starts {
        servers.push(s.await.expect("server started"));
    }
    let leader = eventually(WAIT, "the three TLS servers agree on a leader", || async {
        agreed_leader(&servers.iter().collect::<Vec<_>>()).await
    })
    .await;
    println!("TLS cluster formed with leader {leader}");
    // Written through each server in turn (followers forward to the leader over TLS).
    for (n, s) in servers.iter().enumerate() {
        s.kv_put(&format!("w/{n}"), "v").await;
    }
    for s in &servers {
        eventually(WAIT, "every write is read back ?consistent", || async {
            (consistent_keys(s).await? == [0, 1, 2].into_iter().collect()).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_a_server_certificate_is_refused() {
    if !usable(&[51, 52, 53]) {
        return;
    }
    let (_tmp, root) = tempdir();
    cairn_in(&root, &["tls", "ca", "create"]);
    cairn_in(&root, &["tls", "cert", "create", "-client"]);
    cairn_in(&root, &["tls", "cert", "create", "-client"]);
    // The "server" presents a client certificate (client.dc1.consul), signed by the CA.
    let server_tls = tls_hcl(&root, "dc1-client-consul-0", true);
    let args = server_args(51, 51, 1, &root.join("s51"), &server_tls);
    let server = Agent::start(&strs(&args)).await;
    assert!(!server
        .get("/v1/status/leader")
        .await
        .json()
        .as_str()
        .unwrap_or("")
        .is_empty());

    let client = Agent::start_unready(&strs(&client_args(
        52,
        &tls_hcl(&root, "dc1-client-consul-1", true),
    )))
    .await;
    eventually(WAIT, "the client sees the server in the pool", || {
        members_alive(&client, 2)
    })
    .await;
    // Its catalog calls to that server fail on the server's name, never reaching it: a
    // write is refused with the reason.
    let why = eventually(
        WAIT,
        "the client refuses the server's certificate",
        || async {
            let r = client
                .try_request(reqwest::Method::PUT, "/v1/kv/x", Some(b"v".to_vec()))
                .await
                .ok()?;
            let text = r.text();
            (r.status >= 500 && text.contains("certificate not valid for name")).then_some(text)
        },
    )
    .await;
    println!("refused: {why}");
    assert!(why.contains("server.dc1.consul"), "{why}");
    // The server never saw the write.
    assert!(server.kv_entry("x").await.is_none());

    // Without verify_server_hostname the same server is trusted (its certificate chains to
    // the CA), as in Consul.
    let lax = Agent::start_unready(&strs(&client_args(
        53,
        &tls_hcl(&root, "dc1-client-consul-1", false),
    )))
    .await;
    eventually(
        WAIT,
        "a client that does not check names writes",
        || async {
            let r = lax
                .try_request(reqwest::Method::PUT, "/v1/kv/y", Some(b"v".to_vec()))
                .await
                .ok()?;
            (r.status == 200).then_some(())
        },
    )
    .await;
    assert!(server.kv_entry("y").await.is_some());
}

/// A client agent `c{i}` on 127.0.0.{i} joining the server on 127.0.0.51.
fn client_args(i: u8, tls: &str) -> Vec<String> {
    vec![
        "agent".into(),
        format!("-node=c{i}"),
        format!("-bind=127.0.0.{i}"),
        format!("-client=127.0.0.{i}"),
        "-http-port=0".into(),
        "-dns-port=-1".into(),
        "-serf-lan-port=8301".into(),
        "-server-port=8300".into(),
        "-retry-join=127.0.0.51".into(),
        "-retry-interval=500ms".into(),
        "-hcl".into(),
        tls.into(),
    ]
}
