//! Shared harness for the black-box API tests: starts the real `cairn` binary on an
//! ephemeral port, reads the bound address back from its banner, talks plain HTTP to it,
//! and kills it on drop. Nothing here sleeps to "let things settle": waiting is always
//! a poll against a deadline.
#![allow(dead_code)]

pub mod servers;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

/// How long the agent may take to print its HTTP address.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound of stderr kept for panic messages.
const STDERR_KEEP: usize = 64 * 1024;

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// A running `cairn agent` child process.
pub struct Agent {
    child: Option<Child>,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The `DNS address:` banner line's address, once printed.
    dns: Arc<Mutex<Option<String>>>,
    /// The `HTTPS address:` banner line's address, once printed.
    https: Arc<Mutex<Option<String>>>,
    http: reqwest::Client,
}

/// One HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// `X-Consul-Index` as a number; panics if it is missing.
    pub fn index(&self) -> u64 {
        self.header("x-consul-index")
            .unwrap_or_else(|| {
                panic!(
                    "no X-Consul-Index header: status {} body {:?}",
                    self.status,
                    self.text()
                )
            })
            .parse()
            .expect("X-Consul-Index is a number")
    }

    /// Asserts the status, showing the body on failure; returns self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status, body: {:?}",
            self.text()
        );
        self
    }
}

/// `args` for `cairn agent` with the server RPC and serf LAN ports made ephemeral unless
/// the test chose them: tests run agents side by side, and the defaults (8300, 8301)
/// would collide.
pub fn isolated(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if args.first() == Some(&"agent") {
        if !args.iter().any(|a| a.starts_with("-serf-lan-port")) {
            v.extend(["-serf-lan-port".into(), "0".into()]);
        }
        if !args.iter().any(|a| a.starts_with("-server-port")) {
            v.extend(["-server-port".into(), "0".into()]);
        }
    }
    v
}

impl Agent {
    /// `cairn agent -dev -http-port 0 -dns-port -1`: an in-memory single server.
    pub async fn dev() -> Agent {
        Agent::dev_with(&[]).await
    }

    /// [`Agent::dev`] with more flags (`-config-file=...`, `-max-query-time 1s`, ...).
    pub async fn dev_with(extra: &[&str]) -> Agent {
        let mut args = vec!["agent", "-dev", "-http-port", "0", "-dns-port", "-1"];
        args.extend_from_slice(extra);
        Agent::start(&args).await
    }

    /// A durable single server on `dir` with node name `test-node`.
    pub async fn durable(dir: &Path) -> Agent {
        Agent::durable_with(dir, &[]).await
    }

    /// [`Agent::durable`] with more flags.
    pub async fn durable_with(dir: &Path, extra: &[&str]) -> Agent {
        let owned = durable_args(dir);
        let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        Agent::start(&args).await
    }

    /// Starts the binary with `args`, reads the HTTP address, and waits for a leader
    /// and for the agent's own node to be in the catalog.
    pub async fn start(args: &[&str]) -> Agent {
        Agent::start_cmd(Command::new(bin()), args).await
    }

    /// Starts the binary with `args` and reads the HTTP address, without waiting for a
    /// leader (a server of a cluster that is still forming).
    pub async fn start_unready(args: &[&str]) -> Agent {
        Agent::spawn(Command::new(bin()), args).await
    }

    /// [`Agent::start`] with the open-file limit (soft and hard) set to `nofile` first.
    pub async fn start_with_nofile(args: &[&str], nofile: u32) -> Agent {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(bin());
        Agent::start_cmd(cmd, args).await
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Some(status);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn start_cmd(cmd: Command, args: &[&str]) -> Agent {
        let agent = Agent::spawn(cmd, args).await;
        agent.wait_ready().await;
        agent
    }

    async fn spawn(mut cmd: Command, args: &[&str]) -> Agent {
        let mut child = cmd
            .args(isolated(args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("CONSUL_HTTP_ADDR")
            .env_remove("CAIRN_HTTP_ADDR")
            .spawn()
            .expect("spawn cairn");

        // Drain stderr forever (a full pipe would block the agent), keeping the start.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let mut err = child.stderr.take().expect("stderr");
            let keep = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match err.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut k = keep.lock().unwrap();
                            if k.len() < STDERR_KEEP {
                                k.extend_from_slice(&buf[..n]);
                            }
                        }
                    }
                }
            });
        }
        // Read stdout lines until the banner line with the address; keep draining after.
        let (tx, rx) = mpsc::channel::<String>();
        let dns = Arc::new(Mutex::new(None));
        let https = Arc::new(Mutex::new(None));
        {
            let out = child.stdout.take().expect("stdout");
            let dns = dns.clone();
            let https = https.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(a) = line.trim().strip_prefix("DNS address:") {
                        let a = a.split_whitespace().next().unwrap_or("").to_string();
                        *dns.lock().unwrap() = Some(a);
                    }
                    if let Some(a) = line.trim().strip_prefix("HTTPS address:") {
                        *https.lock().unwrap() = Some(a.trim().to_string());
                    }
                    if !sent {
                        if let Some(a) = line.trim().strip_prefix("HTTP address:") {
                            let _ = tx.send(a.trim().to_string());
                            sent = true;
                        }
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Give the stderr thread a moment to collect the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                let err = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
                panic!(
                    "cairn {args:?} did not print its HTTP address within {START_TIMEOUT:?} (exit: {status:?}); stderr:\n{err}"
                );
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .build()
            .expect("reqwest client");
        let agent = Agent {
            child: Some(child),
            base: format!("http://{addr}"),
            addr,
            stderr,
            dns,
            https,
            http,
        };
        agent
    }

    /// The DNS listener's address (the agent must have been started with a DNS port).
    pub async fn dns_addr(&self) -> std::net::SocketAddr {
        eventually(START_TIMEOUT, "agent printed its DNS address", || async {
            self.dns
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|a| a.parse().ok())
        })
        .await
    }

    /// The HTTPS listener's address (the agent must have been started with an HTTPS port).
    pub async fn https_addr(&self) -> std::net::SocketAddr {
        eventually(START_TIMEOUT, "agent printed its HTTPS address", || async {
            self.https
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|a| a.parse().ok())
        })
        .await
    }

    /// Waits until the agent has a leader and its own node is registered.
    async fn wait_ready(&self) {
        eventually(
            START_TIMEOUT,
            "agent has a leader and its node is registered",
            || async {
                let r = self.try_get("/v1/status/leader").await.ok()?;
                if r.status != 200 || r.json().as_str().unwrap_or("").is_empty() {
                    return None;
                }
                let n = self.try_get("/v1/catalog/nodes").await.ok()?;
                (n.status == 200 && n.json().as_array().is_some_and(|a| !a.is_empty()))
                    .then_some(())
            },
        )
        .await;
    }

    /// The agent's stderr so far (for diagnostics).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The process id, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL and reap the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on unix
            let _ = c.wait();
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> reqwest::Result<Resp> {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Any request; panics (with the agent's stderr) if the transport fails.
    pub async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Resp {
        match self.try_request(method.clone(), path, body).await {
            Ok(r) => r,
            Err(e) => panic!(
                "{method} {path} failed: {e}; agent stderr:\n{}",
                self.stderr()
            ),
        }
    }

    pub async fn try_get(&self, path: &str) -> reqwest::Result<Resp> {
        self.try_request(Method::GET, path, None).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.request(Method::PUT, path, Some(body.into())).await
    }

    pub async fn put_empty(&self, path: &str) -> Resp {
        self.request(Method::PUT, path, None).await
    }

    pub async fn put_json(&self, path: &str, v: &Value) -> Resp {
        self.request(Method::PUT, path, Some(serde_json::to_vec(v).unwrap()))
            .await
    }

    pub async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.request(Method::POST, path, Some(body.into())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, None).await
    }

    /// The node name the agent registered itself under.
    pub async fn node_name(&self) -> String {
        let s = self.get("/v1/agent/self").await.expect(200).json();
        s["Config"]["NodeName"]
            .as_str()
            .expect("Config.NodeName")
            .to_string()
    }

    /// Creates a session from `body` and returns its ID.
    pub async fn session(&self, body: Value) -> String {
        let r = self.put_json("/v1/session/create", &body).await.expect(200);
        r.json()["ID"].as_str().expect("session ID").to_string()
    }

    /// PUTs a KV value and asserts the literal `true`.
    pub async fn kv_put(&self, key: &str, value: impl Into<Vec<u8>>) {
        let r = self.put(&format!("/v1/kv/{key}"), value).await.expect(200);
        assert_eq!(r.json(), Value::Bool(true), "PUT /v1/kv/{key}");
    }

    /// GET `/v1/kv/{key}` → the single entry, or None on 404.
    pub async fn kv_entry(&self, key: &str) -> Option<Value> {
        let r = self.get(&format!("/v1/kv/{key}")).await;
        match r.status {
            404 => None,
            200 => Some(r.json()[0].clone()),
            s => panic!("GET /v1/kv/{key}: status {s} body {:?}", r.text()),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` until it returns `Some`, every 50 ms, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Base64 of `bytes` (standard alphabet, padded), as Consul's `Value` fields.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a base64 `Value` field.
pub fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

/// A seed for randomised tests: `CAIRN_TEST_SEED` if set, else the clock. Always printed.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("CAIRN_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {s} (rerun with CAIRN_TEST_SEED={s})");
    s
}

/// A tiny deterministic PRNG (xorshift64*) so seeds reproduce without extra crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Runs `cairn ARGS...` with extra environment; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(isolated(args))
        .stdin(Stdio::null())
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CAIRN_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CAIRN_HTTP_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cairn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh temporary directory kept alive by the returned guard.
pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().to_path_buf();
    (d, p)
}

/// Runs `cairn ARGS` expecting it to exit by itself within `timeout` (e.g. a refused
/// start); returns its exit code and stderr. Panics if it is still running.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(isolated(args))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cairn");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cairn {args:?} was still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap_or_default())
}

/// The arguments of a durable single server on `dir` named `test-node`.
pub fn durable_args(dir: &Path) -> Vec<String> {
    [
        "agent",
        "-server",
        "-bootstrap-expect=1",
        &format!("-data-dir={}", dir.display()),
        "-http-port",
        "0",
        "-dns-port",
        "-1",
        "-node",
        "test-node",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One DNS query over UDP to `server` (panics without an answer within 2 s).
pub async fn dns(
    server: std::net::SocketAddr,
    name: &str,
    qtype: hickory_proto::rr::RecordType,
) -> hickory_proto::op::Message {
    try_dns(server, name, qtype)
        .await
        .unwrap_or_else(|| panic!("no DNS answer from {server} for {name} within 2s"))
}

/// One DNS query over UDP to `server`; `None` without an answer within 2 s.
pub async fn try_dns(
    server: std::net::SocketAddr,
    name: &str,
    qtype: hickory_proto::rr::RecordType,
) -> Option<hickory_proto::op::Message> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    let id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .subsec_nanos()
        & 0xffff) as u16;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        hickory_proto::rr::Name::from_ascii(name).ok()?,
        qtype,
    ));
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    sock.send_to(&m.to_vec().ok()?, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// The ports of the SRV records in an answer.
pub fn srv_ports(m: &hickory_proto::op::Message) -> Vec<u16> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(s) => Some(s.port),
            _ => None,
        })
        .collect()
}

/// `name`'s member status (1 alive, 3 left, 4 failed) as `agent` sees it.
pub async fn member_status(agent: &Agent, name: &str) -> Option<i64> {
    let r = agent.try_get("/v1/agent/members").await.ok()?;
    r.json()
        .as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_i64())
}

/// `Some` when `agent` sees exactly `n` members alive.
pub async fn members_alive(agent: &Agent, n: usize) -> Option<()> {
    let r = agent.try_get("/v1/agent/members").await.ok()?;
    let alive = r
        .json()
        .as_array()?
        .iter()
        .filter(|m| m["Status"] == 1)
        .count();
    (alive == n).then_some(())
}

/// Whether 127.0.0.2-`last` can be bound (Linux routes all of 127/8 to loopback).
pub fn loopback_aliases(last: u8) -> bool {
    (2..=last).all(|i| std::net::UdpSocket::bind(format!("127.0.0.{i}:0")).is_ok())
}

/// Whether Consul's default ports are free on 127.0.0.1-`last`.
pub fn default_ports_free(last: u8) -> bool {
    (1..=last).all(|i| {
        let ip = format!("127.0.0.{i}");
        std::net::TcpListener::bind(format!("{ip}:8500")).is_ok()
            && std::net::TcpListener::bind(format!("{ip}:8300")).is_ok()
            && std::net::UdpSocket::bind(format!("{ip}:8301")).is_ok()
            && std::net::UdpSocket::bind(format!("{ip}:8600")).is_ok()
    })
}
