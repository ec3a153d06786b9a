//! The matrix's cluster: three servers and two client agents with ACLs on and
//! `default_policy = "deny"`, on their own loopback addresses (127.0.0.61-65) so that it
//! does not meet the other multi-process tests, and an HTTP helper that sends a token.
//!
//! Raft and gossip use Consul's fixed ports (8300, 8301) on those addresses: a restarted
//! server must be found where its peers last saw it. HTTP and DNS ports are ephemeral.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::common::{eventually, Agent, Resp};

/// The initial management token (any string; the servers create it on election).
pub const ROOT: &str = "matrix-root-secret";
/// The agent token every agent is configured with (a UUID: it is created as a token).
pub const AGENT_TOKEN: &str = "a9e7c0de-0000-4000-8000-000000000001";
/// How long cluster-wide conditions may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The five processes: `s61`..`s63` (servers), `c64`, `c65` (clients).
pub struct Cluster {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    /// Index 0-2 servers, 3-4 clients.
    pub agents: Vec<Agent>,
    pub http: reqwest::Client,
}

pub const NAMES: [&str; 5] = ["s61", "s62", "s63", "c64", "c65"];

/// Agent `i`'s name (`c66` for the extra client).
pub fn name(i: usize) -> String {
    NAMES
        .get(i)
        .map_or_else(|| format!("c{}", 61 + i), |n| n.to_string())
}

fn ip(i: usize) -> String {
    format!("127.0.0.{}", 61 + i)
}

fn acl_hcl(agent_token: &str) -> String {
    format!(
        "acl {{\n enabled = true\n default_policy = \"deny\"\n token_min_expiration_ttl = \"1s\"\n tokens {{\n initial_management = \"{ROOT}\"\n agent = \"{agent_token}\"\n }}\n}}"
    )
}

/// The arguments of agent `i` (0-2 servers, 3-4 clients, 5 the extra client `c66`).
pub fn args(i: usize, dir: &Path, agent_token: &str) -> Vec<String> {
    let mut v = vec![
        "agent".to_string(),
        format!("-node={}", name(i)),
        format!("-bind={}", ip(i)),
        format!("-client={}", ip(i)),
        format!("-data-dir={}", dir.display()),
        "-http-port=0".into(),
        "-dns-port=0".into(),
        "-serf-lan-port=8301".into(),
        "-server-port=8300".into(),
        "-retry-interval=500ms".into(),
    ];
    for j in 0..3 {
        v.push(format!("-retry-join={}", ip(j)));
    }
    if i < 3 {
        v.push("-server".into());
        v.push("-bootstrap-expect=3".into());
    }
    v.push("-hcl".into());
    v.push(acl_hcl(agent_token));
    v
}

/// Whether 127.0.0.61-67 exist and Consul's fixed ports are free on them.
pub fn usable() -> Result<(), String> {
    for i in 0..7 {
        let ip = ip(i);
        if std::net::UdpSocket::bind(format!("{ip}:0")).is_err() {
            return Err(format!("{ip} cannot be bound on this machine"));
        }
        if std::net::TcpListener::bind(format!("{ip}:8300")).is_err()
            || std::net::UdpSocket::bind(format!("{ip}:8301")).is_err()
        {
            return Err(format!("ports 8300/8301 are taken on {ip}"));
        }
    }
    Ok(())
}

async fn start_all(root: &Path) -> Vec<Agent> {
    let rt = tokio::runtime::Handle::current();
    let starts: Vec<_> = (0..5)
        .map(|i| {
            let a = args(i, &root.join(NAMES[i]), AGENT_TOKEN);
            let rt = rt.clone();
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                rt.block_on(Agent::start_unready(&a))
            })
        })
        .collect();
    let mut agents = Vec::new();
    for s in starts {
        agents.push(s.await.expect("agent started"));
    }
    agents
}

impl Cluster {
    pub async fn start() -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let agents = start_all(&root).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        let c = Cluster {
            _tmp: tmp,
            root,
            agents,
            http,
        };
        c.wait_formed("start").await;
        c
    }

    /// Stops all five processes (SIGKILL) and starts them again on the same data dirs.
    pub async fn restart_all(&mut self) {
        for a in &mut self.agents {
            a.kill9();
        }
        self.agents = start_all(&self.root).await;
        self.wait_formed("restart").await;
    }

    /// Every agent agrees on a leader, and the management token works on all of them.
    pub async fn wait_formed(&self, step: &str) {
        eventually(
            WAIT,
            &format!("{step}: a leader everyone agrees on"),
            || async {
                let mut seen = None;
                for a in &self.agents {
                    let r = self
                        .try_call(a, Method::GET, "/v1/status/leader", None, None)
                        .await?;
                    let l = r.json().as_str()?.to_string();
                    if l.is_empty() || seen.as_ref().is_some_and(|s| *s != l) {
                        return None;
                    }
                    seen = Some(l);
                }
                seen
            },
        )
        .await;
        let seen = std::sync::Mutex::new(String::new());
        let what = format!("{step}: the management token lists the five nodes on every agent");
        let formed = async {
            loop {
                let mut all = true;
                for (i, a) in self.agents.iter().enumerate() {
                    let r = self
                        .try_call(a, Method::GET, "/v1/catalog/nodes", Some(ROOT), None)
                        .await;
                    let ok = r.as_ref().is_some_and(|r| {
                        r.status == 200 && r.json().as_array().is_some_and(|n| n.len() >= 5)
                    });
                    if !ok {
                        *seen.lock().unwrap() = format!(
                            "{} answered {:?}",
                            NAMES[i],
                            r.map(|r| (r.status, r.text()))
                        );
                        all = false;
                        break;
                    }
                }
                if all {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(WAIT, formed).await.is_err() {
            panic!(
                "timed out after {WAIT:?} waiting for: {what}; last: {}",
                seen.lock().unwrap()
            );
        }
    }

    /// The index in `agents` of the current leader.
    pub async fn leader(&self) -> usize {
        let r = self
            .call(
                &self.agents[0],
                Method::GET,
                "/v1/status/leader",
                None,
                None,
            )
            .await;
        let addr = r.json().as_str().unwrap_or_default().to_string();
        (0..3)
            .find(|i| addr.starts_with(&format!("{}:", ip(*i))))
            .unwrap_or_else(|| panic!("leader {addr:?} is not one of the servers"))
    }

    pub async fn try_call(
        &self,
        a: &Agent,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Option<Resp> {
        let mut rb = self.http.request(method, a.url(path));
        if let Some(t) = token {
            rb = rb.header("X-Consul-Token", t);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.ok()?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.ok()?.to_vec();
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    /// A request that must get an answer; sent again while it finds no leader (an
    /// election on a loaded machine is not what the matrix checks).
    pub async fn call(
        &self,
        a: &Agent,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.steady_call(a, method, path, token, body).await
    }

    /// Sets agent `a`'s `kind` token (`PUT /v1/agent/token/<kind>`) with the management
    /// token.
    pub async fn set_agent_token(&self, a: &Agent, kind: &str, token: &str) {
        let body = serde_json::to_vec(&serde_json::json!({ "Token": token })).unwrap();
        let path = format!("/v1/agent/token/{kind}");
        let r = self
            .call(a, Method::PUT, &path, Some(ROOT), Some(body))
            .await;
        assert_eq!(r.status, 200, "set the {kind} token: {}", r.text());
    }

    /// A management write that must succeed; the JSON answer.
    pub async fn admin(&self, method: Method, path: &str, body: &Value) -> Value {
        // A leader election on a loaded machine is not what this test is about: a write
        // that found no leader is sent again (writes here are idempotent or chose no ID).
        let body = serde_json::to_vec(body).unwrap();
        let r = eventually(WAIT, &format!("{method} {path} finds a leader"), || async {
            let r = self
                .try_call(
                    &self.agents[0],
                    method.clone(),
                    path,
                    Some(ROOT),
                    Some(body.clone()),
                )
                .await?;
            let no_leader = r.status == 500 && r.text().contains("leader");
            (!no_leader).then_some(r)
        })
        .await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    /// Creates a policy with `rules` and a token holding it; the token's SecretID.
    pub async fn token_with(&self, name: &str, rules: &str) -> String {
        self.admin(
            Method::PUT,
            "/v1/acl/policy",
            &serde_json::json!({"Name": name, "Rules": rules}),
        )
        .await;
        let t = self
            .admin(
                Method::PUT,
                "/v1/acl/token",
                &serde_json::json!({"Description": name, "Policies": [{"Name": name}]}),
            )
            .await;
        t["SecretID"].as_str().expect("SecretID").to_string()
    }
}
