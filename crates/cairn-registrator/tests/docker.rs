//! The registrator against a real Docker engine (scripts/docker-engine.sh starts one; with
//! `CAIRN_TEST_DOCKER=1` these tests fail without it, otherwise they say they are skipped).
//! Containers use a `FROM scratch` image with a static busybox httpd serving `/health`.
//! Tests run one at a time (a registrator sees every container on the engine).

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());
const T: Duration = Duration::from_secs(30);

fn article_env(name: &str) -> Vec<String> {
    vec![
        format!("SERVICE_4567_NAME={name}"),
        "SERVICE_4567_CHECK_HTTP=/health".into(),
        "SERVICE_4567_CHECK_INTERVAL=10s".into(),
        "SERVICE_TAGS=http".into(),
    ]
}

fn run_with_env(cname: &str, env: &[String], extra: &[&str]) -> DockerContainer {
    let mut args: Vec<&str> = vec!["-p", "4567"];
    for e in env {
        args.push("-e");
        args.push(e);
    }
    args.extend_from_slice(extra);
    DockerContainer::run(cname, &args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn article_container_appears_with_its_check_and_leaves_on_stop() {
    if !docker_or_skip("article_container_appears_with_its_check_and_leaves_on_stop") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-article").await;
    let reg = registrator(&agent, &[], &format!("unix://{DOCKER_SOCK}"));
    reg.wait_for_line("watching containers", T).await;
    let name = unique("stock-price");
    let cname = unique("stock");
    let c = run_with_env(&cname, &article_env(&name), &[]);
    let host_port = c.host_port(4567);

    let s = agent.wait_count(&name, 1, T).await;
    let s = &s[0];
    assert_eq!(s["ID"], format!("node-article:{cname}:4567"));
    assert_eq!(s["Port"], host_port);
    assert_eq!(
        s["Address"], "127.0.0.1",
        "the dev agent's advertise address"
    );
    assert_eq!(s["Tags"], serde_json::json!(["http"]));
    assert_eq!(s["Meta"]["registrator-owner"], "node-article");
    let passing = agent.wait_passing(&name, 1, T).await;
    let checks = passing[0]["Checks"].as_array().unwrap();
    let http = checks.iter().find(|c| c["ServiceID"] != "").unwrap();
    assert_eq!(http["Status"], "passing");
    assert_eq!(http["Type"], "http");
    assert!(
        reg.text()
            .contains("address from the agent's advertise address"),
        "the log says where the address came from:\n{}",
        reg.text()
    );

    c.stop();
    agent.wait_count(&name, 0, T).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_registrator_removes_what_stopped_while_it_was_dead() {
    if !docker_or_skip("a_restarted_registrator_removes_what_stopped_while_it_was_dead") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-crash").await;
    let sock = format!("unix://{DOCKER_SOCK}");
    let mut reg = registrator(&agent, &[], &sock);
    let (gone, stays, late) = (unique("gone"), unique("stays"), unique("late"));
    let c_gone = run_with_env(&unique("c"), &article_env(&gone), &[]);
    let _c_stays = run_with_env(&unique("c"), &article_env(&stays), &[]);
    agent.wait_count(&gone, 1, T).await;
    agent.wait_count(&stays, 1, T).await;

    reg.kill9();
    c_gone.stop();
    let _c_late = run_with_env(&unique("c"), &article_env(&late), &[]);
    // Nobody is watching: the leftover is still there.
    assert_eq!(agent.named(&gone).await.len(), 1);

    let reg2 = registrator(&agent, &[], &sock);
    agent.wait_count(&gone, 0, T).await;
    agent.wait_count(&late, 1, T).await;
    let stays_now = agent.wait_count(&stays, 1, T).await;
    reg2.wait_for_line("start: ", T).await;
    assert!(
        reg2.text().contains("no longer running"),
        "the log explains the deregistration:\n{}",
        reg2.text()
    );
    assert_eq!(stays_now[0]["Meta"]["registrator-owner"], "node-crash");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_registrators_on_two_agents_do_not_collide() {
    if !docker_or_skip("two_registrators_on_two_agents_do_not_collide") {
        return;
    }
    let _g = SERIAL.lock().await;
    let a = Agent::start("host-a").await;
    let b = Agent::start("host-b").await;
    let sock = format!("unix://{DOCKER_SOCK}");
    let _ra = registrator(&a, &["-resync", "1"], &sock);
    let _rb = registrator(&b, &["-resync", "1", "-ip", "10.99.0.2"], &sock);
    let name = unique("shared");
    let cname = unique("web");
    // A registration of the same shape owned by another node, on agent A: never touched.
    let foreign_id = format!("host-a:{cname}-other:4567");
    let client = reqwest::Client::new();
    let r = client
        .put(format!("http://{}/v1/agent/service/register", a.addr))
        .json(
            &serde_json::json!({"ID": foreign_id, "Name": name, "Port": 1,
            "Meta": {"registrator-owner": "host-z", "registrator-container": "x"}}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let c = run_with_env(&cname, &article_env(&name), &[]);
    let on_a = a.wait_count(&name, 2, T).await;
    let on_b = b.wait_count(&name, 1, T).await;
    let ids_a: Vec<&Value> = on_a.iter().map(|s| &s["ID"]).collect();
    assert!(
        ids_a.contains(&&Value::from(format!("host-a:{cname}:4567"))),
        "{ids_a:?}"
    );
    assert_eq!(on_b[0]["ID"], format!("host-b:{cname}:4567"));
    assert_eq!(on_b[0]["Address"], "10.99.0.2");
    assert_eq!(on_b[0]["Meta"]["registrator-owner"], "host-b");

    c.stop();
    a.wait_count(&name, 1, T).await;
    b.wait_count(&name, 0, T).await;
    // Two resyncs later the foreign registration is still there.
    let n = _ra.text().matches("resync: ").count();
    poll("two more resyncs", T, async || {
        (_ra.text().matches("resync: ").count() >= n + 2).then_some(())
    })
    .await;
    let left = a.named(&name).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["ID"], foreign_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_metadata_is_reported_and_the_service_still_registers() {
    if !docker_or_skip("malformed_metadata_is_reported_and_the_service_still_registers") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-bad").await;
    let reg = registrator(&agent, &[], &format!("unix://{DOCKER_SOCK}"));
    let (name, ignored) = (unique("badmeta"), unique("ignored"));
    let env = vec![
        format!("SERVICE_NAME={name}"),
        "SERVICE_CHECK_HTTP=/health".into(),
        "SERVICE_CHECK_INTERVAL=every-now-and-then".into(),
        "SERVICE_CHECK_TIMEOUT=soon".into(),
        "SERVICE_REGION=eu1".into(),
    ];
    let _c = run_with_env(&unique("c"), &env, &["--label", "SERVICE_odd.key=1"]);
    let _i = run_with_env(
        &unique("c"),
        &[
            format!("SERVICE_NAME={ignored}"),
            "SERVICE_IGNORE=true".into(),
        ],
        &[],
    );
    let s = agent.wait_count(&name, 1, T).await;
    assert_eq!(s[0]["Meta"]["region"], "eu1");
    assert!(s[0]["Meta"].get("odd.key").is_none());
    let text = reg.wait_for_line("SERVICE_CHECK_INTERVAL", T).await;
    assert!(
        text.contains("registered without its interval-based checks"),
        "{text}"
    );
    assert!(text.contains("SERVICE_CHECK_TIMEOUT"), "{text}");
    assert!(text.contains("SERVICE_ODD.KEY"), "{text}");
    // No check was registered for it: its health entry has only the node's serfHealth.
    let h = get_json(&format!("http://{}/v1/health/service/{name}", agent.addr))
        .await
        .unwrap();
    let checks = h[0]["Checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ServiceID"] == ""), "{checks:?}");
    assert!(agent.named(&ignored).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_then_closing_docker_socket_is_retried_and_loses_nothing() {
    if !docker_or_skip("a_missing_then_closing_docker_socket_is_retried_and_loses_nothing") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-sock").await;
    let dir = tempfile::tempdir().unwrap();
    let proxy_path = dir.path().join("docker.sock");
    let host = format!("unix://{}", proxy_path.display());
    let mut reg = registrator(&agent, &[], &host);
    // No socket yet: clear errors, retries, nothing registered, still running.
    reg.wait_for_line("retrying in", T).await;
    reg.wait_for_line(&format!("container engine at {host}"), T)
        .await;
    assert!(reg.is_running());

    let (first, second) = (unique("via-proxy"), unique("while-closed"));
    let c1 = run_with_env(&unique("c"), &article_env(&first), &[]);
    let proxy = SocketProxy::start(&proxy_path, DOCKER_SOCK);
    agent.wait_count(&first, 1, T).await;

    // The socket closes (engine restart, socket proxy dies): the stream breaks.
    // The break shows up as "reconnecting" when the stream read fails, or as a failed
    // round when a request in flight is cut first; either is fine.
    let seen = reg.text().len();
    drop(proxy);
    poll(
        "the registrator to notice the closed socket",
        T,
        async || {
            let t = reg.text();
            let after = &t[seen..];
            (after.contains("reconnecting") || after.contains("round failed")).then_some(())
        },
    )
    .await;
    c1.stop();
    let _c2 = run_with_env(&unique("c"), &article_env(&second), &[]);
    assert_eq!(
        agent.named(&first).await.len(),
        1,
        "nobody could see the stop yet"
    );
    let _proxy = SocketProxy::start(&proxy_path, DOCKER_SOCK);
    agent.wait_count(&first, 0, T).await;
    agent.wait_count(&second, 1, T).await;
    assert!(reg.is_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_goes_down_is_retried_and_nothing_is_registered_twice() {
    if !docker_or_skip("an_agent_that_goes_down_is_retried_and_nothing_is_registered_twice") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-flaky").await;
    let port: u16 = agent.addr.rsplit(':').next().unwrap().parse().unwrap();
    let sock = format!("unix://{DOCKER_SOCK}");
    let reg = registrator(&agent, &["-resync", "1"], &sock);
    let name = unique("flaky");
    let cname = unique("c");
    let _c = run_with_env(&cname, &article_env(&name), &[]);
    agent.wait_count(&name, 1, T).await;

    // The dev agent dies (and forgets everything); the registrator keeps retrying.
    drop(agent);
    reg.wait_for_line("round failed", T).await;
    let agent = Agent::start_on("node-flaky", port).await;
    let s = agent.wait_count(&name, 1, T).await;
    assert_eq!(s[0]["ID"], format!("node-flaky:{cname}:4567"));
    reg.wait_for_line("recovered after", T).await;
    // Steady state: further resyncs write nothing.
    let before = reg.text().matches("registered ").count();
    let n = reg.text().matches("resync: ").count();
    poll("two more resyncs", T, async || {
        (reg.text().matches("resync: ").count() >= n + 2).then_some(())
    })
    .await;
    assert_eq!(
        reg.text().matches("registered ").count(),
        before,
        "{}",
        reg.text()
    );
    assert_eq!(agent.named(&name).await.len(), 1);
}

/// A unix-socket proxy to the engine that can be closed, like an engine restart.
struct SocketProxy {
    task: tokio::task::JoinHandle<()>,
    path: std::path::PathBuf,
}

impl SocketProxy {
    fn start(path: &std::path::Path, target: &'static str) -> SocketProxy {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::UnixStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        SocketProxy {
            task,
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops the JoinSet, which aborts every connection.
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_unpause_internal_and_health_status() {
    if !docker_or_skip("pause_unpause_internal_and_health_status") {
        return;
    }
    let _g = SERIAL.lock().await;
    let agent = Agent::start("node-pause").await;
    let reg = registrator(&agent, &["-internal"], &format!("unix://{DOCKER_SOCK}"));
    reg.wait_for_line("watching containers", T).await;
    let name = unique("pausable");
    let c = run_with_env(&unique("c"), &article_env(&name), &[]);
    let ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &c.id]);
    let s = agent.wait_count(&name, 1, T).await;
    assert_eq!(
        s[0]["Address"],
        ip.as_str(),
        "-internal registers the container IP"
    );
    assert_eq!(s[0]["Port"], 4567, "-internal registers the exposed port");
    agent.wait_passing(&name, 1, T).await;

    docker(&["pause", &c.id]);
    agent.wait_count(&name, 0, T).await;
    docker(&["unpause", &c.id]);
    agent.wait_count(&name, 1, T).await;

    // A Docker HEALTHCHECK that fails: the container leaves the catalog when the engine
    // reports it unhealthy (health_status event), and comes back when it recovers.
    let sick = unique("sick");
    let h = run_with_env(
        &unique("c"),
        &[format!("SERVICE_NAME={sick}")],
        &[
            "--health-cmd",
            "test -f /www/health",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    agent.wait_count(&sick, 1, T).await;
    docker(&["exec", &h.id, "/busybox", "rm", "/www/health"]);
    agent.wait_count(&sick, 0, T).await;
    docker(&["exec", &h.id, "/busybox", "touch", "/www/health"]);
    agent.wait_count(&sick, 1, T).await;
}
