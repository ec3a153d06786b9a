//! Shared harness of the black-box tests: the `cairn` binary (agents, registrators, task
//! runners) as child processes on ephemeral ports, their stderr captured for assertions,
//! HTTP helpers against the agent, and Docker helpers (engine detection with the
//! `CAIRN_TEST_DOCKER` rule, a `FROM scratch` busybox image, containers removed on drop).
//! Waiting is always a poll against a deadline.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `cairn` binary: `CAIRN_BIN`, else `target/debug/cairn` of this workspace.
pub fn cairn_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CAIRN_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("debug/cairn");
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p cairn-cli` (scripts/test-registrator.sh does)",
        p.display()
    );
    p
}

/// Polls `f` every 50 ms until it returns `Some`, panicking with `what` after `deadline`.
pub async fn poll<T>(what: &str, deadline: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process whose stderr (and stdout) lines are kept.
pub struct Proc {
    pub child: Child,
    pub output: Arc<Mutex<String>>,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(cairn_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("CONSUL_HTTP_ADDR")
            .env_remove("CAIRN_HTTP_ADDR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn cairn");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    if o.len() < 4 << 20 {
                        o.push_str(&line);
                        o.push('\n');
                    }
                }
            });
        }
        Proc {
            child,
            output,
            name: name.to_string(),
        }
    }

    pub fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle` (returns the output).
    pub async fn wait_for_line(&self, needle: &str, deadline: Duration) -> String {
        let what = format!("{:?} in the output of {}", needle, self.name);
        let out = self.output.clone();
        let text = poll(&what, deadline, async || {
            let t = out.lock().unwrap().clone();
            t.contains(needle).then_some(t)
        })
        .await;
        text
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit (panics after `deadline`), returning its code.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                Instant::now() < end,
                "{} did not exit:\n{}",
                self.name,
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}", self.name, self.text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dev agent.
pub struct Agent {
    pub proc: Proc,
    pub addr: String,
    pub node: String,
}

impl Agent {
    pub async fn start(node: &str) -> Agent {
        Self::start_on(node, 0).await
    }

    pub async fn start_on(node: &str, port: u16) -> Agent {
        let port = port.to_string();
        let proc = Proc::spawn(
            &format!("agent {node}"),
            &[
                "agent",
                "-dev",
                "-serf-lan-port",
                "0",
                "-server-port",
                "0",
                "-http-port",
                &port,
                "-dns-port",
                "-1",
                "-node",
                node,
            ],
            &[],
        );
        let text = proc
            .wait_for_line("HTTP address: ", Duration::from_secs(20))
            .await;
        let addr = text
            .lines()
            .find_map(|l| l.split("HTTP address: ").nth(1))
            .unwrap()
            .trim()
            .to_string();
        let a = Agent {
            proc,
            addr,
            node: node.to_string(),
        };
        let url = format!("http://{}/v1/status/leader", a.addr);
        poll("a leader", Duration::from_secs(20), async || {
            let r = reqwest::get(&url).await.ok()?;
            let t = r.text().await.ok()?;
            (t.len() > 2).then_some(())
        })
        .await;
        a
    }

    pub fn uri(&self) -> String {
        format!("consul://{}", self.addr)
    }

    /// `GET /v1/agent/services`.
    pub async fn services(&self) -> Value {
        get_json(&format!("http://{}/v1/agent/services", self.addr))
            .await
            .unwrap_or(Value::Null)
    }

    /// The agent's services named `name`.
    pub async fn named(&self, name: &str) -> Vec<Value> {
        match self.services().await {
            Value::Object(m) => m
                .into_iter()
                .map(|(_, v)| v)
                .filter(|v| v["Service"] == name)
                .collect(),
            _ => vec![],
        }
    }

    /// `GET /v1/health/service/NAME?passing`.
    pub async fn passing(&self, name: &str) -> Vec<Value> {
        match get_json(&format!(
            "http://{}/v1/health/service/{name}?passing",
            self.addr
        ))
        .await
        {
            Some(Value::Array(a)) => a,
            _ => vec![],
        }
    }

    /// Polls until exactly `n` instances of `name` are registered and returns them.
    pub async fn wait_count(&self, name: &str, n: usize, deadline: Duration) -> Vec<Value> {
        poll(
            &format!("{n} instances of {name} on {}", self.node),
            deadline,
            async || {
                let v = self.named(name).await;
                (v.len() == n).then_some(v)
            },
        )
        .await
    }

    /// Polls until `n` instances of `name` pass their checks.
    pub async fn wait_passing(&self, name: &str, n: usize, deadline: Duration) -> Vec<Value> {
        poll(
            &format!("{n} passing instances of {name} on {}", self.node),
            deadline,
            async || {
                let v = self.passing(name).await;
                (v.len() == n).then_some(v)
            },
        )
        .await
    }
}

pub async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// A unique suffix for names used by one test.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), t % 0xfffff)
}

// ---- Docker ------------------------------------------------------------------------------

pub const DOCKER_SOCK: &str = "/var/run/docker.sock";
pub const IMAGE: &str = "localhost/cairn-reg-web:test";

/// Whether the engine answers `/_ping` on `sock`.
pub fn engine_answers(sock: &str) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.contains(" 200 ")
}

/// The `CAIRN_TEST_DOCKER` rule: with it set, a missing engine fails the test; without it,
/// the test says it is skipped and returns false.
pub fn docker_or_skip(test: &str) -> bool {
    let required = std::env::var("CAIRN_TEST_DOCKER").is_ok_and(|v| v == "1");
    if engine_answers(DOCKER_SOCK) {
        return true;
    }
    assert!(
        !required,
        "CAIRN_TEST_DOCKER=1 but no Docker engine answers on {DOCKER_SOCK}: run scripts/docker-engine.sh"
    );
    // Written to the real stderr, not through eprintln!, so libtest's capture does not hide it.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: no Docker engine (set CAIRN_TEST_DOCKER=1 to require one)"
    );
    false
}

/// Runs the docker CLI, returning trimmed stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds the test image once per process: `FROM scratch`, static busybox (also as
/// `/bin/sh`, for shell-form health checks), `/www/health`.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox"))
            .expect("/bin/busybox (busybox-static) is needed for the test image");
        std::fs::create_dir(dir.path().join("www")).unwrap();
        std::fs::write(dir.path().join("www/health"), "OK\n").unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /busybox\nCOPY busybox /bin/sh\nCOPY www /www\nEXPOSE 4567\n\
             CMD [\"/busybox\",\"httpd\",\"-f\",\"-p\",\"4567\",\"-h\",\"/www\"]\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
    });
    IMAGE
}

/// A container removed (`docker rm -f`) on drop.
pub struct DockerContainer {
    pub id: String,
    pub name: String,
}

impl DockerContainer {
    /// `docker run -d --name NAME ARGS... IMAGE [CMD...]`.
    pub fn run(name: &str, args: &[&str], cmd: &[&str]) -> DockerContainer {
        let image = image();
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        all.push(image);
        all.extend_from_slice(cmd);
        let id = docker(&all);
        DockerContainer {
            id,
            name: name.to_string(),
        }
    }

    /// The host port published for `port/tcp`.
    pub fn host_port(&self, port: u16) -> u16 {
        let out = docker(&["port", &self.id, &format!("{port}/tcp")]);
        out.lines()
            .find_map(|l| l.rsplit(':').next().and_then(|p| p.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no host port for {port} in {out:?}"))
    }

    pub fn stop(&self) {
        docker(&["stop", "-t", "1", &self.id]);
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// Starts `cairn registrator ARGS... URI` against `agent`.
pub fn registrator(agent: &Agent, args: &[&str], docker_host: &str) -> Proc {
    let uri = agent.uri();
    let mut all = vec!["registrator"];
    all.extend_from_slice(args);
    all.push(&uri);
    Proc::spawn(
        &format!("registrator for {}", agent.node),
        &all,
        &[("DOCKER_HOST", docker_host)],
    )
}
