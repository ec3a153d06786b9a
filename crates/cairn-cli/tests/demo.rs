//! `cairn demo` end to end, as a user runs it: the whole topology (1 server, 2 clients,
//! three stock-price, two weather and one portal, each task under its own runner) on
//! ephemeral ports. The portal answers `/stock/AMZN` and `/weather/Paris`; after one
//! stock-price instance is killed (its runner's whole process group, so nothing
//! deregisters it) the portal keeps answering, and once that instance's check is critical
//! the portal no longer tries it; SIGINT then stops every process group the demo started.
//! With CAIRN_TEST_DOCKER=1 the same scenario runs with `--docker` (the instance killed
//! with `docker kill`, no container left at the end). Edges: SIGTERM while starting,
//! SIGKILL of the demo itself (the parent-death signal stops the children), and a `cairn`
//! without the apps next to it.
//!
//! Needs the sample apps next to the `cairn` binary (`cargo build -p cairn-cli -p
//! stock-price -p weather -p portal`); skipped with a message when they are missing,
//! except under CI=true, where that fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// Why the demo cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    let dir = Path::new(bin()).parent().unwrap();
    let missing: Vec<&str> = ["stock-price", "weather", "portal"]
        .into_iter()
        .filter(|a| !dir.join(a).is_file())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} not built next to cairn in {} (cargo build -p cairn-cli -p stock-price -p weather -p portal)",
            missing.join(", "),
            dir.display()
        ));
    }
    if !(2..=3).all(|i| std::net::UdpSocket::bind(format!("127.0.0.{i}:0")).is_ok()) {
        return Some("127.0.0.2-3 cannot be bound on this machine".into());
    }
    None
}

/// A running `cairn demo` and what it printed. Dropping it stops the demo (SIGTERM) and,
/// as a last resort, kills every group listed in processes.tsv.
struct Demo {
    child: Option<Child>,
    dir: PathBuf,
    out: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(dir: &Path, extra: &[&str]) -> Demo {
        // A loaded machine may need more than the default 60 s to get the portal answering.
        let mut args = vec![
            "demo",
            "--ports",
            "ephemeral",
            "--ready-timeout",
            "150",
            "--dir",
        ];
        let d = dir.display().to_string();
        args.push(&d);
        args.extend_from_slice(extra);
        let mut child = Command::new(bin())
            .args(&args)
            .env_remove("CARGO")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn demo");
        let out = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("demo| {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Demo {
            child: Some(child),
            dir: dir.to_path_buf(),
            out,
        }
    }

    /// The first printed line containing `marker`, waiting up to `within`.
    fn line(&mut self, marker: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            if let Some(l) = self.out.lock().unwrap().iter().find(|l| l.contains(marker)) {
                return l.clone();
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cairn demo exited ({st}) before printing {marker:?}");
            }
            assert!(Instant::now() < end, "no {marker:?} line within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (name, pgid) of every group in processes.tsv.
    fn groups(&self) -> Vec<(String, u32)> {
        std::fs::read_to_string(self.dir.join("processes.tsv"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), f.get(4)?.parse().ok()?))
            })
            .collect()
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) has no memory-safety preconditions; the child is ours and
            // not yet reaped, so its PID is not reused.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < end,
                "cairn demo did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        if let Some(c) = self.child.as_mut() {
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
        }
        for (_, g) in self.groups() {
            kill_group(g, libc::SIGKILL);
        }
        let names: Vec<String> = containers(&self.dir).into_iter().map(|(_, n)| n).collect();
        if !names.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&names)
                .output();
        }
    }
}

fn kill_group(pgid: u32, sig: libc::c_int) {
    assert!(pgid > 1);
    // SAFETY: kill(2) has no memory-safety preconditions; the negative PID names a process
    // group the demo created (never 0 or -1).
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Whether any process is in group `pgid`.
fn group_alive(pgid: u32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|s| {
            // Fields after the command name: state, ppid, pgrp. Zombies run nothing.
            let Some(i) = s.rfind(')') else { return false };
            let f: Vec<&str> = s[i + 1..].split_whitespace().take(3).collect();
            f.len() == 3 && f[0] != "Z" && f[2].parse::<u32>().ok() == Some(pgid)
        })
}

/// Polls `f` until it returns `Some`, failing with `what` after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Answer {
    status: u16,
    attempts: Option<String>,
    body: Value,
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Answer> {
    let r = http.get(url).send().await.ok()?;
    let status = r.status().as_u16();
    let attempts = r
        .headers()
        .get("x-attempts")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.json().await.unwrap_or(Value::Null);
    Some(Answer {
        status,
        attempts,
        body,
    })
}

/// The address after `key` in `line` (`... HTTP API http://127.0.0.1:PORT ...`).
fn after(line: &str, key: &str) -> String {
    let rest = &line[line
        .find(key)
        .unwrap_or_else(|| panic!("{key} in {line:?}"))
        + key.len()..];
    rest.split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_survives_a_killed_instance_and_stops_cleanly() {
    if let Some(why) = skip_reason() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("cannot run the demo test: {why}");
        }
        eprintln!("SKIP: {why}");
        return;
    }
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_demo_serves_survives_a_killed_container_and_stops_cleanly() {
    if std::env::var("CAIRN_TEST_DOCKER").as_deref() != Ok("1") {
        eprintln!(
            "SKIP: set CAIRN_TEST_DOCKER=1 with a Docker engine running (scripts/test.sh does)"
        );
        return;
    }
    if let Some(why) = skip_reason() {
        panic!("cannot run the docker demo test: {why}");
    }
    scenario(true).await;
}

/// The containers.tsv rows: (instance, container name).
fn containers(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("containers.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the demo (local processes, or containers with `docker`), checks the portal,
/// kills one of three stock-price instances, checks the portal again, stops with SIGINT.
async fn scenario(docker_mode: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let mut extra = vec!["--scale", "stock-price=3"];
    if docker_mode {
        extra.push("--docker");
    }
    let mut demo = Demo::start(tmp.path(), &extra);
    let wait = Duration::from_secs(150);
    let portal = after(&demo.line("Portal:", wait), "Portal: ");
    let server = after(&demo.line("s1  server  HTTP API", wait), "HTTP API ");
    demo.line("Try:    dig @127.0.0.2", wait);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The portal answers both back ends through its agent's DNS.
    let stock = format!("{portal}/stock/AMZN");
    let a = eventually(wait, "the portal answers /stock/AMZN", || async {
        get(&http, &stock).await.filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(a.body["symbol"], "AMZN");
    assert!(a.body["price"].as_str().is_some(), "{}", a.body);
    let weather = format!("{portal}/weather/Paris");
    let w = eventually(wait, "the portal answers /weather/Paris", || async {
        get(&http, &weather).await.filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(w.body["city"], "Paris");
    demo.line("==> Ready", wait);

    // Three stock-price instances pass their checks, spread over both clients.
    let passing = format!("{server}/v1/health/service/stock-price?passing");
    let list = eventually(wait, "3 passing stock-price instances", || async {
        let v = http
            .get(&passing)
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()?;
        (v.as_array()?.len() == 3).then_some(v)
    })
    .await;
    let nodes: std::collections::BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Node"]["Node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["c2", "c3"]);
    let containers = containers(tmp.path());
    let victim_id = if docker_mode {
        let (_, name) = containers
            .iter()
            .find(|(i, _)| i == "stock-price-1")
            .unwrap_or_else(|| panic!("stock-price-1 in containers.tsv: {containers:?}"));
        format!(":{name}:")
    } else {
        ":stock-price-1-1-stock-price:".to_string()
    };
    let victim = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["Service"]["ID"]
                .as_str()
                .unwrap_or_default()
                .contains(&victim_id)
        })
        .unwrap_or_else(|| panic!("no service of stock-price-1 in {list}"));
    // Address and port: with Docker, two clients may publish the same port number.
    let dead = (
        victim["Service"]["Address"].as_str().unwrap().to_string(),
        victim["Service"]["Port"].as_u64().unwrap(),
    );
    let groups = demo.groups();
    if docker_mode {
        assert_eq!(
            groups.len(),
            5,
            "s1, c2, c3 and two registrators: {groups:?}"
        );
        assert_eq!(containers.len(), 6, "{containers:?}");
        // Kill the container: its registrator sees it die.
        docker(&["kill", victim_id.trim_matches(':')]);
    } else {
        assert_eq!(
            groups.len(),
            9,
            "s1, c2, c3 and six task runners: {groups:?}"
        );
        let (_, pgid) = groups
            .iter()
            .find(|(n, _)| n == "stock-price-1")
            .unwrap()
            .clone();
        // Kill the instance and its runner at once: nothing deregisters it.
        kill_group(pgid, libc::SIGKILL);
        eventually(
            Duration::from_secs(10),
            "the killed group is gone",
            || async { (!group_alive(pgid)).then_some(()) },
        )
        .await;
    }
    let killed_at = Instant::now();
    // The portal keeps answering straight away (it retries the next instance).
    for _ in 0..10 {
        let a = get(&http, &stock).await.expect("portal reachable");
        assert_eq!(a.status, 200, "{}", a.body);
    }
    // Once its check is critical (with Docker: once the registrator saw the container die
    // and deregistered it), the dead instance is no longer offered.
    eventually(
        wait,
        "the killed instance leaves the passing list",
        || async {
            let v = http
                .get(&passing)
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()?;
            let live: Vec<(String, u64)> = v
                .as_array()?
                .iter()
                .filter_map(|e| {
                    Some((
                        e["Service"]["Address"].as_str()?.to_string(),
                        e["Service"]["Port"].as_u64()?,
                    ))
                })
                .collect();
            (live.len() == 2 && !live.contains(&dead)).then_some(())
        },
    )
    .await;
    eprintln!(
        "the killed instance left the passing list {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    eventually(
        Duration::from_secs(30),
        "20 answers in a row from live instances at the first attempt",
        || async {
            for _ in 0..20 {
                let a = get(&http, &stock).await?;
                let at = (
                    a.body["instance"]["address"].as_str()?.to_string(),
                    a.body["instance"]["port"].as_u64()?,
                );
                if a.status != 200 || at == dead || a.attempts.as_deref() != Some("1") {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;

    // SIGINT stops everything the demo started.
    demo.signal(libc::SIGINT);
    let st = demo.wait(Duration::from_secs(60));
    assert!(st.success(), "cairn demo exited with {st}");
    demo.line("==> Stopped", Duration::from_secs(5));
    let left: Vec<(String, u32)> = groups
        .iter()
        .filter(|(_, g)| group_alive(*g))
        .cloned()
        .collect();
    assert!(left.is_empty(), "process groups left behind: {left:?}");
    if docker_mode {
        let (inst, name) = &containers[0];
        let id = name.strip_suffix(&format!("-{inst}")).unwrap().to_string();
        let ps = docker(&["ps", "-aq", "--filter", &format!("label=cairn.demo={id}")]);
        assert!(ps.trim().is_empty(), "containers left behind: {ps}");
    }
}

/// Polls until no process of `groups` is left.
async fn all_gone(groups: &[(String, u32)], within: Duration) {
    eventually(
        within,
        "every process group of the demo is gone",
        || async {
            let left: Vec<&(String, u32)> =
                groups.iter().filter(|(_, g)| group_alive(*g)).collect();
            left.is_empty().then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_starting_stops_what_started() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(tmp.path(), &[]);
    demo.line("Logs, data and task definitions", Duration::from_secs(30));
    // Wait until at least the server runs, then stop the demo mid-start.
    eventually(Duration::from_secs(30), "the server started", || async {
        (!demo.groups().is_empty()).then_some(())
    })
    .await;
    demo.signal(libc::SIGTERM);
    let st = demo.wait(Duration::from_secs(60));
    let groups = demo.groups();
    assert!(!groups.is_empty());
    // Interrupted before it was up: a failure exit, or a clean one if start had just ended.
    eprintln!(
        "demo exited with {st} after starting {} groups",
        groups.len()
    );
    all_gone(&groups, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_form_one_cluster_and_stop_cleanly() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(tmp.path(), &["--servers", "3"]);
    demo.line("==> Ready", Duration::from_secs(150));
    let s1 = after(
        &demo.line("s1  server  HTTP API", Duration::from_secs(1)),
        "http://",
    );
    let out = Command::new(bin())
        .args(["operator", "raft", "list-peers", "-http-addr", &s1])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CAIRN_HTTP_ADDR")
        .output()
        .expect("run cairn operator");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for name in ["s1", "s2", "s3"] {
        assert!(text.contains(name), "{text}");
    }
    assert_eq!(text.matches("leader").count(), 1, "{text}");
    let groups = demo.groups();
    demo.signal(libc::SIGINT);
    let st = demo.wait(Duration::from_secs(60));
    assert!(st.success(), "{st}");
    all_gone(&groups, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_demo_takes_its_processes_with_it() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(tmp.path(), &[]);
    demo.line("==> Ready", Duration::from_secs(150));
    let groups = demo.groups();
    assert_eq!(groups.len(), 8, "{groups:?}");
    // SIGKILL: the demo cannot clean up; the kernel's parent-death signal stops each child.
    demo.signal(libc::SIGKILL);
    demo.wait(Duration::from_secs(10));
    all_gone(&groups, Duration::from_secs(30)).await;
}

#[test]
fn missing_apps_are_named_with_the_build_command() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("cairn");
    std::fs::copy(bin(), &copy)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", bin(), copy.display()));
    // A fork in another test thread can briefly hold the fresh copy open for writing
    // (ETXTBSY); retry that, within a deadline.
    let end = Instant::now() + Duration::from_secs(10);
    let out = loop {
        match Command::new(&copy)
            .args(["demo", "--ports", "ephemeral"])
            .env_remove("CARGO")
            .output()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => break r.unwrap(),
        }
    };
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stock-price, weather, portal are missing")
            && err.contains("cargo build --workspace && target/debug/cairn demo"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "nothing started"
    );
}
