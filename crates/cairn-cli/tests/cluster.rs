//! The article's topology as real processes: one server and four client agents on
//! 127.0.0.1-5 with Consul's default ports (HTTP 8500, DNS 8600, serf 8301, RPC 8300),
//! each client with its own service, all on one encrypted LAN pool.
//!
//! One scenario, step by step with named waits: every member sees every other alive;
//! every client answers HTTP and DNS for the others' services; `kill -9` of a client makes
//! it failed everywhere and its service leaves DNS on the others (the time is printed);
//! `cairn leave` makes a client left and deregistered; a restarted client rejoins; an
//! agent with the wrong key cannot join; a client survives its server restarting.
//!
//! The default ports are fixed, so these tests hold a file-wide lock (other test files
//! use ephemeral ports for everything).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

const KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const OTHER_KEY: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
const WAIT: Duration = Duration::from_secs(20);

struct Node {
    name: String,
    ip: String,
    dir: std::path::PathBuf,
    agent: Option<Agent>,
}

fn server_args(dir: &std::path::Path) -> Vec<String> {
    [
        "agent",
        "-server",
        "-bootstrap-expect=1",
        &format!("-data-dir={}", dir.display()),
        "-node=s1",
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        "-serf-lan-port=8301",
        "-server-port=8300",
        "-encrypt",
        KEY,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn client_args(name: &str, ip: &str, dir: &std::path::Path, key: &str) -> Vec<String> {
    let n: u16 = ip.rsplit('.').next().unwrap().parse().unwrap();
    [
        "agent",
        &format!("-node={name}"),
        &format!("-bind={ip}"),
        &format!("-client={ip}"),
        &format!("-data-dir={}", dir.display()),
        "-serf-lan-port=8301",
        "-server-port=8300",
        "-retry-join=127.0.0.1",
        "-retry-interval=1s",
        "-encrypt",
        key,
        "-hcl",
        &format!("service {{\n name = \"svc{n}\"\n port = {}\n}}", 9000 + n),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn start(args: &[String]) -> Agent {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Agent::start(&a).await
}

async fn srv_ports(dns: SocketAddr, service: &str) -> Option<Vec<u16>> {
    let name = format!("{service}.service.consul.");
    let reply = try_dns(dns, &name, RecordType::SRV).await?;
    Some(common::srv_ports(&reply))
}

fn client(nodes: &[Node], i: usize) -> &Agent {
    nodes[i].agent.as_ref().unwrap()
}

fn dns_of(ip: &str) -> SocketAddr {
    format!("{ip}:8600").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_four_clients_on_default_ports() {
    if !loopback_aliases(6) {
        eprintln!("SKIP: 127.0.0.2-6 cannot be bound on this machine");
        return;
    }
    if !default_ports_free(6) {
        panic!("the default ports (8300, 8301, 8500, 8600) are taken on 127.0.0.1-6: stop the agent using them");
    }
    let (_tmp, root) = tempdir();
    let sdir = root.join("s1");
    let mut server = start(&server_args(&sdir)).await;
    let mut nodes: Vec<Node> = (2..=5)
        .map(|i| Node {
            name: format!("c{i}"),
            ip: format!("127.0.0.{i}"),
            dir: root.join(format!("c{i}")),
            agent: None,
        })
        .collect();
    for n in nodes.iter_mut() {
        n.agent = Some(start(&client_args(&n.name, &n.ip, &n.dir, KEY)).await);
    }

    // Everyone sees everyone alive.
    for i in 0..4 {
        eventually(
            WAIT,
            &format!("{} sees 5 members alive", nodes[i].name),
            || members_alive(client(&nodes, i), 5),
        )
        .await;
    }
    eventually(WAIT, "the server sees 5 members alive", || {
        members_alive(&server, 5)
    })
    .await;
    // The member list is Consul's shape, with roles in the tags.
    let m = server.get("/v1/agent/members").await.json();
    let s1 = m
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "s1")
        .unwrap();
    assert_eq!(s1["Tags"]["role"], "consul");
    assert_eq!(s1["Tags"]["port"], "8300");
    assert_eq!(s1["Port"], 8301);
    let c2 = m
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "c2")
        .unwrap();
    assert_eq!(c2["Tags"]["role"], "node");
    assert_eq!(c2["Addr"], "127.0.0.2");

    // Every client answers HTTP and DNS for every other client's service.
    for i in 0..4 {
        for j in 0..4 {
            let svc = format!("svc{}", j + 2);
            let port = 9000 + j as u16 + 2;
            let a = client(&nodes, i);
            let path = format!("/v1/health/service/{svc}?passing");
            let path = &path;
            eventually(
                WAIT,
                &format!("{} serves {svc} over HTTP", nodes[i].name),
                || async move {
                    let r = a.try_get(path).await.ok()?;
                    let v = r.json();
                    let e = v.as_array()?.first()?.clone();
                    (e["Service"]["Port"] == port).then_some(())
                },
            )
            .await;
            let e = a.get(&format!("/v1/health/service/{svc}")).await.json();
            assert_eq!(e[0]["Node"]["Address"], nodes[j].ip, "{e}");
            let checks: Vec<&str> = e[0]["Checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["CheckID"].as_str().unwrap())
                .collect();
            assert!(checks.contains(&"serfHealth"), "{checks:?}");
            let dns = dns_of(&nodes[i].ip);
            let svc2 = svc.clone();
            eventually(
                WAIT,
                &format!("{} serves {svc} over DNS", nodes[i].name),
                || {
                    let svc2 = svc2.clone();
                    async move { (srv_ports(dns, &svc2).await? == vec![port]).then_some(()) }
                },
            )
            .await;
        }
    }

    // kill -9 of c5: failed everywhere, its service gone from the others' DNS.
    let killed_at = Instant::now();
    nodes[3].agent.as_mut().unwrap().kill9();
    eventually(WAIT, "svc5 leaves c2's DNS", || async {
        (srv_ports(dns_of("127.0.0.2"), "svc5").await?.is_empty()).then_some(())
    })
    .await;
    println!(
        "kill -9 of c5 to svc5 gone from c2's DNS: {:.2} s",
        killed_at.elapsed().as_secs_f64()
    );
    for i in 0..3 {
        eventually(WAIT, &format!("{} sees c5 failed", nodes[i].name), || {
            let a = client(&nodes, i);
            async move { (member_status(a, "c5").await? == 4).then_some(()) }
        })
        .await;
        let a = client(&nodes, i);
        eventually(
            Duration::from_secs(2),
            &format!("svc5 leaves ?passing on {}", nodes[i].name),
            || async move {
                let e = a.try_get("/v1/health/service/svc5?passing").await.ok()?;
                (e.json() == json!([])).then_some(())
            },
        )
        .await;
    }
    eventually(WAIT, "the server sees c5 failed", || async {
        (member_status(&server, "c5").await? == 4).then_some(())
    })
    .await;
    let serf = server.get("/v1/health/node/c5").await.json();
    let serf = serf
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(serf["Status"], "critical", "{serf}");

    // The restarted c5 rejoins, and its service comes back.
    let n5 = &nodes[3];
    let restarted = start(&client_args(&n5.name, &n5.ip, &n5.dir, KEY)).await;
    nodes[3].agent = Some(restarted);
    eventually(WAIT, "c5 is alive again on the server", || async {
        (member_status(&server, "c5").await? == 1).then_some(())
    })
    .await;
    eventually(WAIT, "svc5 is back in c2's DNS", || async {
        (srv_ports(dns_of("127.0.0.2"), "svc5").await? == vec![9005]).then_some(())
    })
    .await;

    // `cairn leave` on c4: left everywhere, deregistered, the process exits 0.
    let (code, out, err) = run_cli(&["leave", "-http-addr", "127.0.0.4:8500"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let exit = nodes[2]
        .agent
        .as_mut()
        .unwrap()
        .wait_exit(WAIT)
        .await
        .expect("c4 exits after leaving");
    assert!(exit.success(), "{exit:?}");
    eventually(WAIT, "the server sees c4 left", || async {
        (member_status(&server, "c4").await? == 3).then_some(())
    })
    .await;
    eventually(WAIT, "c4 is deregistered", || async {
        let r = server.try_get("/v1/catalog/node/c4").await.ok()?;
        (r.json().is_null()).then_some(())
    })
    .await;
    assert_eq!(srv_ports(dns_of("127.0.0.2"), "svc4").await, Some(vec![]));
    let (code, out, _) = run_cli(&["members", "-http-addr", "127.0.0.2:8500"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("c4") && out.contains("left"), "{out}");
    assert!(out.contains("s1") && out.contains("server"), "{out}");

    // A node with the wrong key cannot join: it gives up and says why; nobody lists it.
    let bad_dir = root.join("c6");
    let mut bad = client_args("c6", "127.0.0.6", &bad_dir, OTHER_KEY);
    bad.extend(["-retry-max=2".to_string()]);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let (code, err) = run_to_exit(&bad, Duration::from_secs(30));
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("retry-join gave up"), "{err}");
    assert!(
        err.contains("-encrypt"),
        "the error points at the key: {err}"
    );
    assert_eq!(member_status(&server, "c6").await, None);

    // The server restarts (kill -9): c2 keeps answering from its replica, follows the
    // server again, and writes through c2 reach the catalog.
    server.kill9();
    let dns2 = dns_of("127.0.0.2");
    assert_eq!(srv_ports(dns2, "svc3").await, Some(vec![9003]));
    server = start(&server_args(&sdir)).await;
    eventually(WAIT, "c2 sees the server alive again", || async {
        (member_status(client(&nodes, 0), "s1").await? == 1).then_some(())
    })
    .await;
    let c2 = client(&nodes, 0);
    eventually(
        WAIT,
        "a registration through c2 reaches the server",
        || async {
            let r = c2
                .try_request(
                    reqwest::Method::PUT,
                    "/v1/agent/service/register",
                    Some(br#"{"Name":"late","Port":7000}"#.to_vec()),
                )
                .await
                .ok()?;
            if r.status != 200 {
                return None;
            }
            let s = server.try_get("/v1/catalog/service/late").await.ok()?;
            (s.json()[0]["Node"] == "c2").then_some(())
        },
    )
    .await;
    eventually(WAIT, "c2's KV writes reach the server", || async {
        let r = c2
            .try_request(
                reqwest::Method::PUT,
                "/v1/kv/after-restart",
                Some(b"yes".to_vec()),
            )
            .await
            .ok()?;
        if r.status != 200 {
            return None;
        }
        server.kv_entry("after-restart").await.map(|_| ())
    })
    .await;
}
