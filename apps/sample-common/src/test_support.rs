//! Helpers the apps' integration tests share (behind the `test-support`
//! feature): serve a router on an ephemeral port, GET JSON, and run a
//! sample binary until it prints its "<name> listening on" line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use serde_json::Value;

/// Serves `app` on 127.0.0.1:0; returns the address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// GETs `url`; the status and the JSON body.
pub async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary `exe` (the app `name`) on 127.0.0.1 and an ephemeral
/// port with `envs` added, and reads its address from the
/// "<name> listening on" line (polling with a deadline); its stderr is
/// returned for the lines after.
pub fn start_binary(
    exe: &str,
    name: &str,
    envs: &[(&str, &str)],
) -> (Proc, SocketAddr, BufReader<ChildStderr>) {
    let mut cmd = Command::new(exe);
    cmd.env("PORT", "0")
        .env("BIND", "127.0.0.1")
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let marker = format!("{name} listening on ");
    let mut line = String::new();
    loop {
        assert!(Instant::now() < deadline, "no listening line");
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("{name} exited early");
        }
        if let Some(a) = line.trim().strip_prefix(marker.as_str()) {
            return (proc, a.parse().unwrap(), err);
        }
    }
}
