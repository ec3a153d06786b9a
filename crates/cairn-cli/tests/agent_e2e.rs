//! End-to-end behaviour of a whole agent: health checks against real targets drive DNS
//! answers and `?passing`; DeregisterCriticalServiceAfter reaps; config reload adds and
//! removes services without resetting check state; script checks are refused unless
//! enabled; `dig` against the agent's DNS port.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{dns, eventually, srv_ports, Agent};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP target whose status code the test sets.
async fn http_target(code: Arc<AtomicU16>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let code = code.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let c = code.load(Ordering::SeqCst);
                let resp =
                    format!("HTTP/1.1 {c} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

async fn dns_agent(extra: &[&str]) -> Agent {
    let mut args = vec![
        "agent",
        "-dev",
        "-http-port",
        "0",
        "-dns-port",
        "0",
        "-serf-lan-port",
        "0",
        "-server-port",
        "0",
    ];
    args.extend_from_slice(extra);
    Agent::start(&args).await
}

#[tokio::test]
async fn http_check_drives_dns_and_passing() {
    let a = dns_agent(&[]).await;
    let dns_addr = a.dns_addr().await;
    let code = Arc::new(AtomicU16::new(200));
    let target = http_target(code.clone()).await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "stock-price", "ID": "sp1", "Port": 8081,
                "Check": {"HTTP": format!("http://{target}/health"), "Interval": "1s", "Timeout": "1s"}}),
    )
    .await
    .expect(200);
    // The check starts critical, so DNS has nothing until the first run passes.
    eventually(
        Duration::from_secs(10),
        "SRV answer once the HTTP check passes",
        || async {
            let m = dns(dns_addr, "stock-price.service.consul.", RecordType::SRV).await;
            (srv_ports(&m) == vec![8081]).then_some(())
        },
    )
    .await;
    let m = dns(dns_addr, "stock-price.service.consul.", RecordType::SRV).await;
    assert!(
        m.additionals.iter().any(|r| matches!(r.data, RData::A(_))),
        "SRV targets resolve in the additional section: {m:?}"
    );
    // 429 -> warning: still in DNS (Consul keeps warning instances), not in ?passing.
    code.store(429, Ordering::SeqCst);
    eventually(
        Duration::from_secs(10),
        "warning leaves ?passing",
        || async {
            let v = a.get("/v1/health/service/stock-price?passing").await.json();
            (v.as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    assert_eq!(
        srv_ports(&dns(dns_addr, "stock-price.service.consul.", RecordType::SRV).await),
        vec![8081]
    );
    // 500 -> critical: gone from DNS (NXDOMAIN, SOA in authority).
    code.store(500, Ordering::SeqCst);
    eventually(
        Duration::from_secs(10),
        "critical instance leaves DNS",
        || async {
            let m = dns(dns_addr, "stock-price.service.consul.", RecordType::SRV).await;
            (m.metadata.response_code == ResponseCode::NXDomain && !m.authorities.is_empty())
                .then_some(())
        },
    )
    .await;
    code.store(200, Ordering::SeqCst);
    eventually(
        Duration::from_secs(10),
        "recovered instance returns to ?passing",
        || async {
            let v = a.get("/v1/health/service/stock-price?passing").await.json();
            (v.as_array()?.len() == 1).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn deregister_critical_service_after_reaps() {
    let a = Agent::dev().await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "ephemeral", "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "2s"}}),
    )
    .await
    .expect(200);
    // Keep a second, healthy service to prove only the critical one goes.
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "stays", "Check": {"TTL": "30s", "Status": "passing"}}),
    )
    .await
    .expect(200);
    let started = std::time::Instant::now();
    eventually(
        Duration::from_secs(10),
        "critical service reaped",
        || async {
            let v = a.get("/v1/agent/services").await.json();
            v.get("ephemeral").is_none().then_some(())
        },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "reaped too early: {:?}",
        started.elapsed()
    );
    assert_eq!(
        a.get("/v1/catalog/service/ephemeral").await.json(),
        json!([])
    );
    assert!(a
        .get("/v1/agent/services")
        .await
        .json()
        .get("stays")
        .is_some());
}

#[tokio::test]
async fn reload_applies_config_changes_without_resetting_checks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("services.json");
    let both = json!({"services": [
        {"name": "alpha", "port": 1, "check": {"id": "alpha-ttl", "ttl": "10m"}},
        {"name": "beta", "port": 2}
    ], "checks": [{"id": "node-ttl", "name": "node ttl", "ttl": "10m"}]});
    std::fs::write(&cfg, both.to_string()).unwrap();
    let cfg_arg = format!("-config-file={}", cfg.display());
    let a = Agent::dev_with(&[&cfg_arg]).await;
    let svcs = a.get("/v1/agent/services").await.json();
    assert!(
        svcs.get("alpha").is_some() && svcs.get("beta").is_some(),
        "{svcs}"
    );
    a.put_empty("/v1/agent/check/pass/alpha-ttl")
        .await
        .expect(200);
    // The service's own entry and its own check (node-level checks change on purpose).
    let modify = |v: serde_json::Value| {
        let check = v[0]["Checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["CheckID"] == "alpha-ttl"))
            .map(|c| c["ModifyIndex"].clone());
        (v[0]["Service"]["ModifyIndex"].clone(), check)
    };
    let before = modify(a.get("/v1/health/service/alpha").await.json());
    // Remove beta, keep alpha unchanged, add gamma.
    let next = json!({"services": [
        {"name": "alpha", "port": 1, "check": {"id": "alpha-ttl", "ttl": "10m"}},
        {"name": "gamma", "port": 3}
    ]});
    std::fs::write(&cfg, next.to_string()).unwrap();
    // Through the CLI, as an operator would.
    let (code, out, err) = common::run_cli(&["reload", "-http-addr", &a.addr], &[]);
    assert_eq!(code, 0, "cairn reload: {out} {err}");
    assert!(out.contains("reload"), "{out}");
    let svcs = a.get("/v1/agent/services").await.json();
    assert!(svcs.get("beta").is_none(), "removed from config: {svcs}");
    assert!(svcs.get("gamma").is_some(), "added by reload: {svcs}");
    assert_eq!(a.get("/v1/catalog/service/beta").await.json(), json!([]));
    let checks = a.get("/v1/agent/checks").await.json();
    assert_eq!(
        checks["alpha-ttl"]["Status"], "passing",
        "reload must not reset check state"
    );
    let after = modify(a.get("/v1/health/service/alpha").await.json());
    assert_eq!(
        after, before,
        "an unchanged service and its checks are not rewritten by reload"
    );
    // A broken file is refused and changes nothing.
    std::fs::write(&cfg, "{not json").unwrap();
    let r = a.put_empty("/v1/agent/reload").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(a
        .get("/v1/agent/services")
        .await
        .json()
        .get("gamma")
        .is_some());
}

/// Registering a script check over the HTTP API, alone or with a service, answers 400
/// with `why` in the message and registers nothing.
async fn api_refuses_script_checks(a: &Agent, why: &str) {
    let r = a
        .put_json(
            "/v1/agent/check/register",
            &json!({"Name": "s", "Args": ["/bin/true"], "Interval": "1s"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(why), "{}", r.text());
    let r = a
        .put_json(
            "/v1/agent/service/register",
            &json!({"Name": "web", "Check": {"Args": ["/bin/true"], "Interval": "1s"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(why), "{}", r.text());
    assert_eq!(a.get("/v1/agent/service/web").await.status, 404);
    assert!(a.get("/v1/agent/checks").await.json().get("s").is_none());
}

#[tokio::test]
async fn script_checks_are_refused_unless_enabled() {
    let a = Agent::dev().await;
    api_refuses_script_checks(&a, "enable_script_checks").await;
    assert_eq!(
        a.get("/v1/agent/services").await.json(),
        json!({}),
        "nothing registered"
    );
}

#[tokio::test]
async fn local_script_checks_run_only_from_config_files() {
    let (_dir, path) = common::tempdir();
    let cfg = path.join("cron.json");
    std::fs::write(
        &cfg,
        json!({"enable_local_script_checks": true,
               "service": {"name": "cron", "check": {"id": "cron-alive",
                           "args": ["/bin/sh", "-c", "echo fine"], "interval": "1s"}}})
        .to_string(),
    )
    .unwrap();
    let a = Agent::dev_with(&[&format!("-config-file={}", cfg.display())]).await;
    // The file's script check runs...
    common::eventually(Duration::from_secs(10), "cron-alive passing", || async {
        let checks = a.get("/v1/agent/checks").await.json();
        (checks["cron-alive"]["Status"] == "passing").then_some(())
    })
    .await;
    // ...but the HTTP API may not add one: that would let any API caller run commands.
    api_refuses_script_checks(&a, "from remote calls").await;
}

#[tokio::test]
async fn script_checks_registered_by_api_are_not_restored_once_disallowed() {
    let (_dir, data) = common::tempdir();
    let mut a = Agent::durable_with(&data, &["-enable-script-checks"]).await;
    a.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "job", "Check": {"CheckID": "job-script", "Args": ["/bin/true"], "Interval": "1s"}}),
    )
    .await
    .expect(200);
    a.put_json(
        "/v1/agent/check/register",
        &json!({"Name": "keep", "TTL": "10m"}),
    )
    .await
    .expect(200);
    a.kill9();
    // Restarted with scripts allowed from config files only: the API-registered script
    // check stays off (and leaves the catalog); everything else comes back.
    let a = Agent::durable_with(&data, &["-enable-local-script-checks"]).await;
    let checks = a.get("/v1/agent/checks").await.json();
    assert!(checks.get("job-script").is_none(), "{checks}");
    assert!(checks.get("keep").is_some(), "{checks}");
    assert!(a
        .get("/v1/agent/services")
        .await
        .json()
        .get("job")
        .is_some());
    common::eventually(
        Duration::from_secs(10),
        "job-script gone from the catalog",
        || async {
            let cat = a.get("/v1/health/node/test-node").await.json();
            (!cat
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["CheckID"] == "job-script"))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn dig_sees_what_the_agent_serves() {
    if std::process::Command::new("dig")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP dig_sees_what_the_agent_serves: dig is not installed (apt-get install dnsutils)"
        );
        return;
    }
    let a = dns_agent(&[]).await;
    let dns_addr = a.dns_addr().await;
    for (i, port) in [(1, 8081), (2, 8082)] {
        a.put_json(
            "/v1/agent/service/register",
            &json!({"Name": "weather", "ID": format!("w{i}"), "Port": port, "Address": format!("10.1.0.{i}"),
                    "Check": {"TTL": "10m", "Status": "passing"}}),
        )
        .await
        .expect(200);
    }
    let dig = |args: &[&str]| {
        let out = std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &dns_addr.port().to_string(),
                "+time=2",
                "+tries=1",
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let srv = dig(&["weather.service.consul", "SRV", "+short"]);
    let mut lines: Vec<&str> = srv.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "1 1 8081 0a010001.addr.dc1.consul.",
            "1 1 8082 0a010002.addr.dc1.consul."
        ],
        "{srv}"
    );
    let full = dig(&["weather.service.consul", "SRV"]);
    assert!(
        full.contains("ADDITIONAL SECTION") && full.contains("10.1.0.1"),
        "{full}"
    );
    let node = a.node_name().await;
    let a_rec = dig(&[&format!("{node}.node.consul"), "A", "+short"]);
    assert_eq!(a_rec.trim(), "127.0.0.1");
    let ptr = dig(&["-x", "127.0.0.1", "+short"]);
    assert_eq!(ptr.trim(), format!("{node}.node.dc1.consul."));
    let nx = dig(&["nosuch.service.consul", "A"]);
    assert!(
        nx.contains("NXDOMAIN") && nx.contains("AUTHORITY SECTION"),
        "{nx}"
    );
    let refused = dig(&["example.org", "A"]);
    assert!(refused.contains("REFUSED"), "{refused}");
}

/// A one-record DNS server standing in for an upstream resolver: answers every query
/// with `name A 203.0.113.7` (TTL 1234) and counts the queries it saw.
async fn test_recursor() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::Record;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            for query in &q.queries {
                m.add_query(query.clone());
                m.add_answer(Record::from_rdata(
                    query.name().clone(),
                    1234,
                    RData::A(A("203.0.113.7".parse().unwrap())),
                ));
            }
            let _ = sock.send_to(&m.to_vec().unwrap(), peer).await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn names_outside_the_domain_go_to_the_recursor_unchanged() {
    let (upstream, seen) = test_recursor().await;
    let recursor = upstream.to_string();
    let a = dns_agent(&["-recursor", &recursor]).await;
    let dns_addr = a.dns_addr().await;
    // What the upstream answers directly...
    let mut q = Message::new(4242, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii("example.org.").unwrap(),
        RecordType::A,
    ));
    let query = q.to_vec().unwrap();
    let ask = |server: SocketAddr| {
        let query = query.clone();
        async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.send_to(&query, server).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
                .await
                .expect("answer")
                .unwrap();
            buf.truncate(n);
            buf
        }
    };
    let direct = ask(upstream).await;
    // ...comes back byte for byte through the agent.
    let via_agent = ask(dns_addr).await;
    assert_eq!(via_agent, direct, "forwarded answer must be unchanged");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the agent asked the recursor once"
    );
    // Names inside the domain never reach the recursor.
    let m = dns(dns_addr, "nosuch.service.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
