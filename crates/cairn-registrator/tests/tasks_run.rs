//! `cairn tasks run` with the article's three task definitions (apps/ecs/*.json), the images
//! mapped to the `cairn-demo-http` test server: registration with the right names, tags and
//! passing checks, `--count`, restarts of essential containers, clean shutdown, recovery after
//! a crashed runner, and bad input.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn taskdef(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../apps/ecs")
        .join(format!("{name}.json"))
        .display()
        .to_string()
}

fn demo() -> &'static str {
    env!("CARGO_BIN_EXE_cairn-demo-http")
}

fn tasks_run(agent: &Agent, file: &str, extra: &[&str]) -> Proc {
    let images: Vec<String> = ["stock-price", "weather", "portal"]
        .iter()
        .map(|i| format!("{i}={}", demo()))
        .collect();
    let mut args = vec![
        "tasks",
        "run",
        file,
        "-http-addr",
        &agent.addr,
        "-dynamic-ports",
    ];
    for i in &images {
        args.push("-image");
        args.push(i);
    }
    args.extend_from_slice(extra);
    Proc::spawn(&format!("tasks run {file}"), &args, &[])
}

async fn http_get(port: u64, path: &str) -> Option<String> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    r.text().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_articles_three_task_definitions() {
    let agent = Agent::start("ecs-node").await;
    let mut runners = [
        tasks_run(&agent, &taskdef("stock-price"), &[]),
        tasks_run(&agent, &taskdef("weather"), &[]),
        tasks_run(&agent, &taskdef("portal"), &[]),
    ];
    for name in ["stock-price", "weather"] {
        let s = agent.wait_count(name, 1, T).await;
        assert_eq!(s[0]["ID"], format!("ecs-node:{name}-1-{name}:4567"));
        assert_eq!(s[0]["Tags"], serde_json::json!(["http"]));
        assert_eq!(
            s[0]["Meta"]["registrator-owner"],
            format!("ecs-node/tasks-{name}")
        );
        let port = s[0]["Port"].as_u64().unwrap();
        assert_eq!(http_get(port, "/health").await.as_deref(), Some("OK"));
        let p = agent.wait_passing(name, 1, T).await;
        let check = p[0]["Checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["ServiceID"] != "")
            .cloned()
            .unwrap();
        assert_eq!(check["Type"], "http");
    }
    // The portal has no SERVICE_* variables: registered under its image name, no check.
    let portal = agent.wait_count("portal", 1, T).await;
    let portal_port = portal[0]["Port"].as_u64().unwrap();
    assert_ne!(
        portal_port, 80,
        "-dynamic-ports replaces the fixed hostPort"
    );
    assert!(http_get(portal_port, "/")
        .await
        .unwrap()
        .contains("cairn-demo-http"));
    let h = get_json(&format!("http://{}/v1/health/service/portal", agent.addr))
        .await
        .unwrap();
    assert!(h[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ServiceID"] == ""));

    // SIGTERM/SIGINT: services deregistered, processes stopped.
    runners[0].signal("TERM");
    runners[2].signal("INT");
    assert_eq!(runners[0].wait_exit(T).await, Some(0));
    assert_eq!(runners[2].wait_exit(T).await, Some(0));
    agent.wait_count("stock-price", 0, T).await;
    agent.wait_count("portal", 0, T).await;
    poll("the portal process to stop", T, async || {
        http_get(portal_port, "/").await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        agent.named("weather").await.len(),
        1,
        "the other runner's service stays"
    );
    runners[1].signal("TERM");
    assert_eq!(runners[1].wait_exit(T).await, Some(0));
    agent.wait_count("weather", 0, T).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn count_restarts_and_recovery_after_a_crashed_runner() {
    let agent = Agent::start("ecs-count").await;
    let mut r = tasks_run(
        &agent,
        &taskdef("weather"),
        &["--count", "2", "-resync", "1"],
    );
    let s = agent.wait_count("weather", 2, T).await;
    let ports: Vec<u64> = s.iter().map(|s| s["Port"].as_u64().unwrap()).collect();
    assert_ne!(ports[0], ports[1]);

    // An essential container exits: restarted (with backoff) on the same port.
    let victim = ports[0];
    let _ = http_get(victim, "/exit").await;
    r.wait_for_line("exited with code 3", T).await;
    r.wait_for_line("essential; restarting in", T).await;
    poll("the restarted process", T, async || {
        (http_get(victim, "/health").await.as_deref() == Some("OK")).then_some(())
    })
    .await;
    agent.wait_count("weather", 2, T).await;
    assert_eq!(r.text().matches("started pid").count(), 3, "{}", r.text());

    // The runner dies hard: its children die with it, its registrations stay behind.
    r.kill9();
    poll("children to die with the runner", T, async || {
        let mut up = 0;
        for p in &ports {
            if http_get(*p, "/health").await.is_some() {
                up += 1;
            }
        }
        (up == 0).then_some(())
    })
    .await;
    assert_eq!(agent.named("weather").await.len(), 2);
    // The next run of the family on this node owns and removes the leftover.
    let mut r2 = tasks_run(&agent, &taskdef("weather"), &[]);
    let s = poll("one weather instance, from the new run", T, async || {
        let v = agent.named("weather").await;
        (v.len() == 1
            && v[0]["ID"] == "ecs-count:weather-1-weather:4567"
            && !ports.contains(&v[0]["Port"].as_u64().unwrap_or(0)))
        .then_some(v)
    })
    .await;
    assert_eq!(s.len(), 1);
    r2.signal("TERM");
    assert_eq!(r2.wait_exit(T).await, Some(0));
    agent.wait_count("weather", 0, T).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"family\": \"x\", \"containerDefinitions\": [").unwrap();
    let noimg = dir.path().join("noimg.json");
    std::fs::write(
        &noimg,
        r#"{"family": "x", "containerDefinitions": [{"name": "c", "image": "repo/no-such-program-here"}]}"#,
    )
    .unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec![bad.display().to_string()], 1, "not valid JSON"),
        (
            vec![noimg.display().to_string()],
            1,
            "-image no-such-program-here=COMMAND",
        ),
        (vec!["/nonexistent/task.json".into()], 1, "No such file"),
        (vec![], 2, "missing task definition"),
        (
            vec![taskdef("portal"), "--count".into(), "many".into()],
            2,
            "not a number",
        ),
        (
            vec![
                taskdef("portal"),
                "--count".into(),
                "0".into(),
                "-http-addr".into(),
                "127.0.0.1:1".into(),
            ],
            1,
            "--count must be",
        ),
    ];
    for (args, code, needle) in cases {
        let mut all = vec!["tasks".to_string(), "run".to_string()];
        all.extend(args.clone());
        let out = std::process::Command::new(cairn_bin())
            .args(&all)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_is_down_at_start_is_waited_for() {
    // Reserve a port, release it, and start the agent there only after the runner.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let images = format!("stock-price={}", demo());
    let mut r = Proc::spawn(
        "tasks run (agent down)",
        &[
            "tasks",
            "run",
            &taskdef("stock-price"),
            "-http-addr",
            &addr,
            "-image",
            &images,
        ],
        &[],
    );
    r.wait_for_line("retrying in", T).await;
    assert!(r.is_running());
    let agent = Agent::start_on("late-agent", port).await;
    agent.wait_count("stock-price", 1, T).await;
    r.signal("TERM");
    assert_eq!(r.wait_exit(T).await, Some(0));
    agent.wait_count("stock-price", 0, T).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_accepts_but_never_answers_is_timed_out_and_retried() {
    // A black hole: accepts connections, never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap().to_string();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in hole.incoming().flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let images = format!("stock-price={}", demo());
    let mut r = Proc::spawn(
        "tasks run (black-hole agent)",
        &[
            "tasks",
            "run",
            &taskdef("stock-price"),
            "-http-addr",
            &addr,
            "-image",
            &images,
        ],
        &[],
    );
    r.wait_for_line("did not answer within 10s; retrying in", T)
        .await;
    assert!(r.is_running());
    r.signal("TERM");
    assert_eq!(r.wait_exit(T).await, Some(0), "{}", r.text());
    assert!(
        r.text()
            .contains("container stock-price-1-stock-price: stopped"),
        "{}",
        r.text()
    );
}
