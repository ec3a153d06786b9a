//! Fail loud, never fail open: each test drives a real agent into one class of fault and
//! checks it refuses, exits or recovers as docs/operations.md says, never silently:
//! security settings that are not built, a disk that fills up then grows, file
//! descriptors running out under a connection flood, slow and idle clients on HTTP and DNS
//! over TCP, an emptied, deleted or corrupt Raft log, IDs longer than a file name, a corrupt
//! persisted service file, and NUL bytes or over-long keys in request bodies.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{b64, durable_args, eventually, run_to_exit, tempdir, unb64, Agent};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const DEV: &[&str] = &["agent", "-dev", "-http-port", "0", "-dns-port", "-1"];

fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

// ---------------------------------------------------------------- configuration

#[tokio::test]
async fn unsupported_security_settings_refuse_to_start() {
    let (_d, dir) = tempdir();
    let acl_file = dir.join("acl.json");
    std::fs::write(
        &acl_file,
        r#"{"acl":{"enabled":true,"default_policy":"deny","tokens":{"replication":"r"}}}"#,
    )
    .unwrap();
    let acl_arg = format!("-config-file={}", acl_file.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // ACL replication between datacenters is not built.
        (vec![acl_arg.as_str()], "acl.tokens.replication"),
        // HTTPS without a certificate, and verification without a CA: weaker than written.
        (vec!["-https-port", "8501"], "ports.https"),
        (
            vec!["-hcl", "tls {\n defaults {\n verify_incoming = true\n }\n}"],
            "tls",
        ),
        (vec!["-hcl", "bogus_setting = 1"], "bogus_setting"),
    ];
    for (extra, key) in cases {
        let (code, stderr) = run_to_exit(&args(DEV, &extra), Duration::from_secs(20));
        assert_eq!(
            code,
            Some(1),
            "{extra:?} must refuse to start; stderr: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "{extra:?}: the error must name {key}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------- disk full

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _hold: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let hold = tempfile::tempdir().ok()?;
        let dir = hold.path().join("mnt");
        std::fs::create_dir_all(&dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir, _hold: hold })
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {} to {size}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Fills the file system holding `dir` until it is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0xA5u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // Byte by byte for the last partial block.
    while f.write_all(&[0]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn disk_full_refuses_unpersistable_writes_exits_and_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("16m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs"
        );
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.dir.join("data");
    let mut agent = Agent::durable(&data).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = format!("before/{i}");
        agent.kv_put(&key, format!("v{i}")).await;
        acked.push(key);
    }
    let filler = fill(&fs.dir);

    // A registration that cannot be persisted is an error, not a 200 forgotten at restart.
    let r = agent
        .put_json(
            "/v1/agent/service/register",
            &json!({"Name": "web", "ID": "web-1", "Port": 80}),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("could not persist"), "{}", r.text());

    // Writes until the log cannot grow: the process must then exit, not live on refusing
    // every write while looking healthy.
    let big = "x".repeat(64 * 1024);
    let mut failed = false;
    for i in 0..400 {
        let key = format!("during/{i}");
        match agent
            .try_request(
                reqwest::Method::PUT,
                &format!("/v1/kv/{key}"),
                Some(big.clone().into_bytes()),
            )
            .await
        {
            Ok(r) if r.status == 200 && r.text() == "true" => acked.push(key),
            _ => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the log never filled the disk");
    let status = agent.wait_exit(Duration::from_secs(15)).await;
    let stderr = agent.stderr();
    let status =
        status.unwrap_or_else(|| panic!("agent still running after the log failed:\n{stderr}"));
    assert!(!status.success(), "exit status {status:?}");
    assert!(stderr.contains("Raft log failed"), "{stderr}");

    // The disk grows: restart, every acknowledged write is there, writes work again.
    std::fs::remove_file(&filler).unwrap();
    fs.grow("64m");
    drop(agent);
    let agent = Agent::durable(&data).await;
    for key in &acked {
        assert!(
            agent.kv_entry(key).await.is_some(),
            "acknowledged {key} lost"
        );
    }
    agent.kv_put("after", "ok").await;
    let services = agent.get("/v1/agent/services").await.expect(200).json();
    assert!(
        services.get("web-1").is_none(),
        "the refused registration came back"
    );
}

// ---------------------------------------------------------------- connections

async fn connect_from(src: &str, to: &str) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(format!("{src}:0").parse::<SocketAddr>().unwrap())?;
    sock.connect(to.parse().unwrap()).await
}

/// Sends one HTTP/1.1 request on `s` and reads the status code and whole response head.
async fn raw_get(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_some(s).await
}

async fn read_some(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Ok(Err(_)) => String::new(),
        Err(_) => panic!("no answer within 10 s"),
    }
}

/// Waits until the peer closes `s` (read returns 0 or an error); how long it took.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {limit:?}"),
        }
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test]
async fn per_client_limit_answers_429_and_other_clients_are_served() {
    let agent = Agent::start(&args(
        DEV,
        &["-hcl", "limits {\n http_max_conns_per_client = 5\n}"],
    ))
    .await;
    // The harness's own pooled connections come from 127.0.0.1; this client is 127.0.0.3.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = connect_from("127.0.0.3", &agent.addr).await.unwrap();
        assert!(raw_get(&mut s, "/v1/status/leader")
            .await
            .starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut sixth = connect_from("127.0.0.3", &agent.addr).await.unwrap();
    let head = read_some(&mut sixth).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.contains("too many concurrent connections"), "{head}");
    let mut other = connect_from("127.0.0.2", &agent.addr).await.unwrap();
    assert!(raw_get(&mut other, "/v1/status/leader")
        .await
        .starts_with("HTTP/1.1 200"));
    drop(held);
    eventually(Duration::from_secs(10), "a slot frees up", || async {
        let mut s = connect_from("127.0.0.3", &agent.addr).await.ok()?;
        raw_get(&mut s, "/v1/status/leader")
            .await
            .starts_with("HTTP/1.1 200")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn connection_flood_at_a_low_fd_limit_neither_spins_nor_locks_out_the_api() {
    let agent = Agent::start_with_nofile(&args(DEV, &[]), 1024).await;
    let pid = agent.pid().unwrap();
    // 5 clients x 300 connections: over the per-client limit (200) and over the listener's
    // budget from 1024 descriptors.
    let mut flood = Vec::new();
    for c in 3..8 {
        let src = format!("127.0.0.{c}");
        for _ in 0..300 {
            if let Ok(s) = connect_from(&src, &agent.addr).await {
                flood.push(s);
            }
        }
    }
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
    assert!(
        busy < 0.5,
        "agent used {busy:.2} of a core while flooded (spinning?)"
    );
    drop(flood);
    // Once the flood is gone the API answers everyone again.
    eventually(
        Duration::from_secs(20),
        "the API answers after the flood",
        || async {
            agent
                .try_get("/v1/status/leader")
                .await
                .ok()
                .filter(|r| r.status == 200)
        },
    )
    .await;
    let mut other = connect_from("127.0.0.2", &agent.addr).await.unwrap();
    assert!(raw_get(&mut other, "/v1/agent/self")
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn slow_header_client_is_cut_off_and_idle_connections_close_but_blocking_queries_live() {
    let agent = Agent::start(&args(
        DEV,
        &[
            "-hcl",
            "limits {\n http_header_read_timeout = \"1s\"\n http_idle_timeout = \"1s\"\n}",
        ],
    ))
    .await;
    // Slowloris: one header byte every 200 ms is never a complete request.
    let mut slow = TcpStream::connect(&agent.addr).await.unwrap();
    slow.write_all(b"GET /v1/status/leader HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = async {
        loop {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let cut = tokio::time::timeout(Duration::from_secs(8), trickle).await;
    assert!(
        cut.is_ok(),
        "a client trickling header bytes was never cut off"
    );

    // Idle keep-alive connection: closed after about the idle timeout.
    let mut idle = TcpStream::connect(&agent.addr).await.unwrap();
    assert!(raw_get(&mut idle, "/v1/status/leader")
        .await
        .starts_with("HTTP/1.1 200"));
    closed_within(&mut idle, Duration::from_secs(8)).await;

    // A blocking query in flight is not idle: it outlives the idle timeout.
    let index = agent.get("/v1/kv/?recurse").await.index();
    let mut blocking = TcpStream::connect(&agent.addr).await.unwrap();
    let started = Instant::now();
    let head = raw_get(
        &mut blocking,
        &format!("/v1/kv/?recurse&index={index}&wait=3s"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "woke early: {head}"
    );
}

#[tokio::test]
async fn dns_over_tcp_has_per_client_limit_and_cuts_off_trickling_clients() {
    let agent = Agent::start(&[
        "agent",
        "-dev",
        "-http-port",
        "0",
        "-dns-port",
        "0",
        "-hcl",
        "limits {\n http_max_conns_per_client = 3\n dns_tcp_idle_timeout = \"1s\"\n}",
    ])
    .await;
    let dns = agent.dns_addr().await.to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", &dns).await.unwrap());
    }
    let mut fourth = connect_from("127.0.0.1", &dns).await.unwrap();
    closed_within(&mut fourth, Duration::from_secs(5)).await;
    // Another client is answered.
    let mut other = connect_from("127.0.0.2", &dns).await.unwrap();
    let q = dns_query("consul.service.consul");
    other.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), other.read_exact(&mut len))
        .await
        .expect("DNS answer in time")
        .unwrap();
    drop(held);
    // A client that trickles a query one byte at a time is cut off.
    let mut slow = connect_from("127.0.0.1", &dns).await.unwrap();
    let trickle = async {
        for b in q.iter().cycle() {
            if slow.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(8), trickle)
            .await
            .is_ok(),
        "a trickling DNS client was never cut off"
    );
}

/// A TCP-framed DNS query for `name` IN A.
fn dns_query(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend(m);
    framed
}

// ---------------------------------------------------------------- the Raft log

fn refused_start(dir: &Path) -> String {
    let a = durable_args(dir);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, stderr) = run_to_exit(&a, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(1),
        "the agent must refuse to start; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a panic instead of an error: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn emptied_deleted_or_corrupt_log_refuses_to_start() {
    let (_d, dir) = tempdir();
    {
        let mut a = Agent::durable(&dir).await;
        for i in 0..40 {
            a.kv_put(&format!("k{i}"), "x".repeat(3000)).await;
        }
        a.kill9();
    }
    let log_dir = dir.join("raft").join("log");
    let log = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment file");
    let saved = std::fs::read(&log).unwrap();

    std::fs::remove_file(&log).unwrap();
    let e = refused_start(&dir);
    assert!(
        e.contains("is empty") && e.contains("node-id exists"),
        "{e}"
    );

    std::fs::remove_dir_all(&log_dir).unwrap();
    let e = refused_start(&dir);
    assert!(
        e.contains("is missing") && e.contains("docs/operations.md"),
        "{e}"
    );

    std::fs::create_dir_all(&log_dir).unwrap();
    let used = saved.iter().rposition(|b| *b != 0).unwrap();
    let mut corrupt = saved.clone();
    for b in corrupt.iter_mut().skip(used / 3).take(64) {
        *b ^= 0x5A;
    }
    std::fs::write(&log, &corrupt).unwrap();
    let e = refused_start(&dir);
    assert!(e.contains("corrupt") && e.contains(".wal"), "{e}");

    // A data directory of the old single-file log is refused by name.
    let legacy = dir.join("raft").join("raft.redb");
    std::fs::write(&legacy, b"old").unwrap();
    let e = refused_start(&dir);
    assert!(e.contains("raft.redb") && e.contains("older Cairn"), "{e}");
    std::fs::remove_file(&legacy).unwrap();

    // Restoring the file brings everything back.
    std::fs::write(&log, &saved).unwrap();
    let a = Agent::durable(&dir).await;
    assert_eq!(
        unb64(&a.kv_entry("k39").await.unwrap()["Value"]),
        "x".repeat(3000).into_bytes()
    );
}

// ---------------------------------------------------------------- agent persistence

#[tokio::test]
async fn long_ids_persist_across_restart() {
    let (_d, dir) = tempdir();
    let sid = format!("svc-{}", "s".repeat(300));
    let cid = format!("chk-{}", "c".repeat(600));
    {
        let mut a = Agent::durable(&dir).await;
        a.put_json(
            "/v1/agent/service/register",
            &json!({"Name": "long", "ID": sid, "Port": 1, "Check": {"CheckID": cid, "TTL": "30s"}}),
        )
        .await
        .expect(200);
        a.kill9();
    }
    let a = Agent::durable(&dir).await;
    let services = a.get("/v1/agent/services").await.expect(200).json();
    assert!(services.get(&sid).is_some(), "service lost: {services}");
    let checks = a.get("/v1/agent/checks").await.expect(200).json();
    assert!(checks.get(&cid).is_some(), "check lost: {checks}");
}

#[tokio::test]
async fn a_corrupt_persisted_service_file_is_skipped_with_a_warning() {
    let (_d, dir) = tempdir();
    {
        let mut a = Agent::durable(&dir).await;
        a.put_json(
            "/v1/agent/service/register",
            &json!({"Name": "good", "ID": "good-1", "Port": 1}),
        )
        .await
        .expect(200);
        a.kill9();
    }
    let bad = dir.join("agent").join("services").join("garbage.snap");
    std::fs::write(&bad, b"{not json").unwrap();
    let a = Agent::durable(&dir).await;
    let services = a.get("/v1/agent/services").await.expect(200).json();
    assert!(services.get("good-1").is_some(), "{services}");
    eventually(
        Duration::from_secs(5),
        "a warning naming the file",
        || async { a.stderr().contains("garbage.snap").then_some(()) },
    )
    .await;
}

// ---------------------------------------------------------------- request bodies

#[tokio::test]
async fn nul_bytes_in_bodies_and_over_long_txn_keys_are_refused() {
    let a = Agent::dev().await;
    for (path, body) in [
        (
            "/v1/catalog/register",
            json!({"Node": "a\u{0}b", "Address": "127.0.0.9"}),
        ),
        (
            "/v1/catalog/register",
            json!({"Node": "n", "Address": "127.0.0.9", "Service": {"Service": "w\u{0}"}}),
        ),
        ("/v1/agent/service/register", json!({"Name": "web\u{0}x"})),
    ] {
        let r = a.put_json(path, &body).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
        assert!(r.text().contains("NUL"), "{}", r.text());
    }
    let long = "k".repeat(5000);
    let r = a
        .put_json(
            "/v1/txn",
            &json!([{"KV": {"Verb": "set", "Key": long, "Value": b64(b"v")}}]),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Key too long"), "{}", r.text());
    let ok = "k".repeat(4096);
    a.put_json(
        "/v1/txn",
        &json!([{"KV": {"Verb": "set", "Key": ok, "Value": b64(b"v")}}]),
    )
    .await
    .expect(200);
    let r = a
        .put_json(
            "/v1/txn",
            &json!([{"KV": {"Verb": "set", "Key": "a\u{0}", "Value": b64(b"v")}}]),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
