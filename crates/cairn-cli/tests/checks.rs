//! Check runners end to end: the real `cairn` binary runs HTTP, TCP, UDP, script, gRPC,
//! H2PING and alias checks against real targets started here, and the statuses are read
//! back from `/v1/agent/checks` and `/v1/health/service/<name>?passing`.
//!
//! Targets flip their answers while the agent watches (HTTP 200 -> 429 -> 500 -> gone,
//! a TCP listener that is closed, a script whose exit code is set by a file, a gRPC
//! health server whose status changes). Every assertion polls with a deadline of a few
//! check intervals; nothing sleeps to "let things settle".

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Interval 1s + timeout 1s + first-run stagger (< 1 interval) + write latency, with room
/// for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(15);

/// A running `cairn agent -dev`, killed on drop.
struct Agent {
    child: Child,
    base: String,
    http: reqwest::Client,
    stderr: Arc<Mutex<Vec<u8>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let err = self.stderr.lock().unwrap();
            let start = err.len().saturating_sub(16 * 1024);
            eprintln!(
                "--- agent stderr (tail) ---\n{}",
                String::from_utf8_lossy(&err[start..])
            );
        }
    }
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.json");
        std::fs::write(
            &cfg,
            r#"{"enable_script_checks": true, "check_update_interval": "0s"}"#,
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "agent",
                "-dev",
                "-serf-lan-port",
                "0",
                "-server-port",
                "0",
                "-http-port",
                "0",
                "-dns-port",
                "-1",
                "-config-file",
            ])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cairn");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err = child.stderr.take().unwrap();
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut k = keep.lock().unwrap();
                k.extend_from_slice(&buf[..n]);
                if k.len() > 256 * 1024 {
                    k.drain(..128 * 1024);
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.trim().strip_prefix("HTTP address:") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let mut agent = Agent {
            child,
            base: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stderr,
            _dir: dir,
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the agent printed its HTTP address");
        agent.base = format!("http://{addr}");
        agent
    }

    async fn put(&self, path: &str, body: Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "PUT {path}: {status} {text}");
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        serde_json::from_str(&r.text().await.ok()?).ok()
    }

    /// Waits until check `id` has `status` (and its output satisfies `output`); returns
    /// the check.
    async fn wait_check(&self, id: &str, status: &str, output: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        loop {
            if let Some(checks) = self.get("/v1/agent/checks").await {
                last = checks[id].clone();
                if last["Status"] == status && output(last["Output"].as_str().unwrap_or("")) {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "check {id} did not become {status}; last seen: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/v1/health/service/<svc>?passing` lists `n` instances.
    async fn wait_passing(&self, svc: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        loop {
            if let Some(v) = self.get(&format!("/v1/health/service/{svc}?passing")).await {
                if v.as_array().map(|a| a.len()) == Some(n) {
                    return;
                }
                last = v;
            }
            assert!(
                Instant::now() < deadline,
                "{svc} never had {n} passing instances; last: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn any(_: &str) -> bool {
    true
}

/// An HTTP/1.1 server answering every request with the status in `code`.
async fn http_server(code: Arc<AtomicU16>) -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let code = code.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("status {code}");
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_follows_the_status_code() {
    let agent = Agent::start();
    let code = Arc::new(AtomicU16::new(200));
    let (addr, server) = http_server(code.clone()).await;
    let url = format!("http://{addr}/health");
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "web", "Port": 80, "Check": {"HTTP": url, "Interval": "1s", "Timeout": "1s"}}),
        )
        .await;
    let id = "service:web";
    let c = agent.wait_check(id, "passing", any).await;
    // The server's reason phrase is "X"; the check prints the canonical one, as Go does.
    assert_eq!(
        c["Output"],
        format!("HTTP GET {url}: 200 OK Output: status 200")
    );
    assert_eq!(c["Type"], "http");
    agent.wait_passing("web", 1).await;

    code.store(429, Ordering::SeqCst);
    agent
        .wait_check(id, "warning", |o| o.contains("429 Too Many Requests"))
        .await;
    agent.wait_passing("web", 0).await;

    code.store(500, Ordering::SeqCst);
    agent
        .wait_check(id, "critical", |o| o.contains("500 Internal Server Error"))
        .await;

    code.store(200, Ordering::SeqCst);
    agent.wait_check(id, "passing", any).await;
    agent.wait_passing("web", 1).await;

    // The server goes away: connection refused.
    server.abort();
    let _ = server.await;
    agent
        .wait_check(id, "critical", |o| {
            o.starts_with(&format!("Get \"{url}\": "))
        })
        .await;
    agent.wait_passing("web", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_and_failure_thresholds() {
    let agent = Agent::start();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    // Accept (and drop) connections so the backlog never fills.
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "db", "Port": 5432, "Check": {
                "TCP": addr, "Interval": "1s", "Timeout": "1s",
                "FailuresBeforeWarning": 1, "FailuresBeforeCritical": 3
            }}),
        )
        .await;
    let id = "service:db";
    agent
        .wait_check(id, "passing", |o| {
            o == format!("TCP connect {addr}: Success")
        })
        .await;
    agent.wait_passing("db", 1).await;
    acceptor.abort();
    let _ = acceptor.await;
    // One failure: warning; three in a row: critical.
    let prefix = format!("dial tcp {addr}: ");
    agent
        .wait_check(id, "warning", |o| o.starts_with(&prefix))
        .await;
    agent
        .wait_check(id, "critical", |o| o.starts_with(&prefix))
        .await;
    agent.wait_passing("db", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_check() {
    let agent = Agent::start();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    agent
        .put(
            "/v1/agent/check/register",
            json!({"Name": "udp", "UDP": addr, "Interval": "1s", "Timeout": "500ms"}),
        )
        .await;
    agent
        .wait_check("udp", "passing", |o| {
            o == format!("UDP connect {addr}: Success")
        })
        .await;
    drop(sock);
    agent
        .wait_check("udp", "critical", |o| o.contains("refused"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_check_follows_the_exit_code() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::write(&code, "0").unwrap();
    let script = format!(
        "c=$(cat {}); echo \"exit $c\"; echo err >&2; exit $c",
        code.display()
    );
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "job", "Check": {"Args": ["/bin/sh", "-c", script], "Interval": "1s", "Timeout": "5s"}}),
        )
        .await;
    let id = "service:job";
    let c = agent.wait_check(id, "passing", any).await;
    assert_eq!(c["Output"], "exit 0\nerr\n");
    assert_eq!(c["Type"], "script");
    agent.wait_passing("job", 1).await;
    std::fs::write(&code, "1").unwrap();
    agent
        .wait_check(id, "warning", |o| o == "exit 1\nerr\n")
        .await;
    std::fs::write(&code, "2").unwrap();
    agent
        .wait_check(id, "critical", |o| o == "exit 2\nerr\n")
        .await;
    agent.wait_passing("job", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_check_timeout_is_critical() {
    let agent = Agent::start();
    agent
        .put(
            "/v1/agent/check/register",
            json!({"Name": "slow", "Args": ["/bin/sh", "-c", "sleep 20"], "Interval": "1s", "Timeout": "300ms", "Status": "passing"}),
        )
        .await;
    // Registered passing (the initial status is honoured), then the first run times out.
    agent
        .wait_check("slow", "critical", |o| {
            o == "Timed out (300ms) running check"
        })
        .await;
}

/// A minimal HTTP/2 server speaking just enough of the protocol for gRPC health checks
/// (and PINGs): prior knowledge, one SETTINGS exchange, and per request a response of
/// HEADERS (`:status 200`), one DATA frame with `HealthCheckResponse{status}` and
/// trailers `grpc-status: 0`. Written from RFC 9113 / RFC 7541 rather than with the
/// crate the agent uses, so the two are checked against each other.
async fn grpc_server(status: Arc<AtomicU8>) -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let status = status.clone();
            tokio::spawn(async move {
                let _ = h2_conn(s, status).await;
            });
        }
    });
    (addr, task)
}

async fn frame(
    s: &mut TcpStream,
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    s.write_all(&f).await
}

async fn h2_conn(mut s: TcpStream, status: Arc<AtomicU8>) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    s.read_exact(&mut preface).await?;
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    frame(&mut s, 4, 0, 0, &[]).await?;
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await?;
        match kind {
            4 if flags & 1 == 0 => frame(&mut s, 4, 1, 0, &[]).await?,
            6 if flags & 1 == 0 => frame(&mut s, 6, 1, 0, &payload).await?,
            // HEADERS with END_STREAM (no body) or the request's last DATA frame.
            1 | 0 if flags & 1 == 1 => {
                // :status 200 (static index 8); content-type (static 31) literal.
                let mut hdrs = vec![0x88, 0x0f, 0x10, 16];
                hdrs.extend_from_slice(b"application/grpc");
                frame(&mut s, 1, 0x4, stream, &hdrs).await?;
                let st = status.load(Ordering::SeqCst);
                frame(&mut s, 0, 0, stream, &[0, 0, 0, 0, 2, 0x08, st]).await?;
                let mut trailers = vec![0x00, 11];
                trailers.extend_from_slice(b"grpc-status");
                trailers.extend_from_slice(&[1, b'0']);
                frame(&mut s, 1, 0x5, stream, &trailers).await?;
            }
            7 => return Ok(()),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_h2ping_checks() {
    let agent = Agent::start();
    let status = Arc::new(AtomicU8::new(1));
    let (addr, server) = grpc_server(status.clone()).await;
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "rpc", "Port": 9000, "Checks": [
                {"CheckID": "grpc", "GRPC": format!("{addr}/rpc.Svc"), "Interval": "1s", "Timeout": "2s"},
                {"CheckID": "ping", "H2PING": addr, "H2PingUseTLS": false, "Interval": "1s", "Timeout": "2s"}
            ]}),
        )
        .await;
    agent
        .wait_check("grpc", "passing", |o| {
            o == format!("gRPC check {addr}/rpc.Svc: success")
        })
        .await;
    agent
        .wait_check("ping", "passing", |o| o == "HTTP2 ping was successful")
        .await;
    agent.wait_passing("rpc", 1).await;
    status.store(2, Ordering::SeqCst);
    agent
        .wait_check("grpc", "critical", |o| o.contains("NOT_SERVING"))
        .await;
    agent.wait_passing("rpc", 0).await;
    status.store(1, Ordering::SeqCst);
    agent.wait_check("grpc", "passing", any).await;
    server.abort();
    let _ = server.await;
    agent.wait_check("ping", "critical", any).await;
    agent.wait_check("grpc", "critical", any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_check_mirrors_a_service() {
    let agent = Agent::start();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "backend", "Check": {"TCP": addr, "Interval": "1s", "Timeout": "1s"}}),
        )
        .await;
    agent
        .put(
            "/v1/agent/service/register",
            json!({"Name": "front", "Check": {"AliasService": "backend"}}),
        )
        .await;
    agent
        .wait_check("service:front", "passing", |o| o == "All checks passing.")
        .await;
    agent.wait_passing("front", 1).await;
    acceptor.abort();
    let _ = acceptor.await;
    agent.wait_check("service:backend", "critical", any).await;
    agent
        .wait_check("service:front", "critical", |o| {
            o.starts_with("Aliased check")
        })
        .await;
    agent.wait_passing("front", 0).await;
}
