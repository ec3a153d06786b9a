//! Restarting the Docker engine under a running registrator loses nothing: containers that
//! come back (`--restart=always`) are registered at their current host port, containers that
//! do not are deregistered, and containers started after the restart are picked up, without
//! the registrator exiting. Its own test binary, so no other Docker test runs meanwhile.
//! Runs only with `CAIRN_TEST_DOCKER=1`, against an engine started by scripts/docker-engine.sh
//! (it restarts that engine).

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn engine_pid() -> Option<i32> {
    std::fs::read_to_string("/var/run/docker.pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn restart_engine() {
    let pid = engine_pid().expect("/var/run/docker.pid: is dockerd running?");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let end = std::time::Instant::now() + T;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < end,
            "dockerd {pid} did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/docker-engine.sh"
    );
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_the_engine_mid_stream_loses_nothing() {
    // This test restarts the engine, so it never runs by accident: only under
    // CAIRN_TEST_DOCKER=1 (scripts/test-registrator.sh), where the engine must be one that
    // scripts/docker-engine.sh started (it is found through /var/run/docker.pid).
    if std::env::var("CAIRN_TEST_DOCKER").map_or(true, |v| v != "1") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "restarting_the_engine_mid_stream_loses_nothing: skipped: restarts the engine, runs only with CAIRN_TEST_DOCKER=1"
        );
        return;
    }
    assert!(docker_or_skip(
        "restarting_the_engine_mid_stream_loses_nothing"
    ));
    assert!(
        engine_pid().is_some(),
        "/var/run/docker.pid is missing: start the engine with scripts/docker-engine.sh"
    );
    let agent = Agent::start("node-restart").await;
    let mut reg = registrator(&agent, &[], &format!("unix://{DOCKER_SOCK}"));
    let (back, gone, after) = (unique("comes-back"), unique("stays-down"), unique("after"));
    let env = |n: &str| format!("SERVICE_NAME={n}");
    let c_back = DockerContainer::run(
        &unique("c"),
        &["-p", "4567", "--restart=always", "-e", &env(&back)],
        &[],
    );
    let _c_gone = DockerContainer::run(&unique("c"), &["-p", "4567", "-e", &env(&gone)], &[]);
    agent.wait_count(&back, 1, T).await;
    agent.wait_count(&gone, 1, T).await;

    restart_engine();
    let _c_after = DockerContainer::run(&unique("c"), &["-p", "4567", "-e", &env(&after)], &[]);

    agent.wait_count(&after, 1, T).await;
    agent.wait_count(&gone, 0, T).await;
    let port = c_back.host_port(4567);
    poll(
        "the restarted container at its current port",
        T,
        async || {
            let v = agent.named(&back).await;
            (v.len() == 1 && v[0]["Port"] == port).then_some(())
        },
    )
    .await;
    assert!(reg.is_running(), "{}", reg.text());
    assert!(
        reg.text().contains("event stream re-opened from"),
        "{}",
        reg.text()
    );
    reg.kill9();
}
