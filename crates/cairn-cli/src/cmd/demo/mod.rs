//! `cairn demo`: the article's whole topology on one machine in one command. One server
//! (127.0.0.1) and two client agents (127.0.0.2-3) standing in for the two ECS instances,
//! each client running the three task definitions of apps/ecs through `cairn tasks run`
//! (the local ECS task runner with the registrator pipeline), the portal resolving its back
//! ends through its own agent's DNS. Ctrl-C or SIGTERM stops everything it started.
//!
//! `plan` decides the shape, `taskdefs` writes the per-instance task definitions, `procs`
//! owns one process group and `fleet` all of them, `banner` reads the agents' bound
//! addresses, `summary` tells the user, `local` carries the plan out, starting the task
//! instances through a `backend::TaskBackend` (processes, or `docker_run::Containers`).

pub mod backend;
pub mod banner;
pub mod bins;
pub mod docker_image;
pub mod docker_run;
pub mod docker_view;
pub mod fleet;
pub mod local;
pub mod plan;
pub mod probe;
pub mod procs;
pub mod summary;
pub mod taskdefs;

use crate::error::CliError;
use crate::flags::{self, spec, Kind, Spec};
use plan::Ports;
use std::path::PathBuf;
use std::time::Duration;

const HELP: &str = "\
Usage: cairn demo [options]

  Runs the sample application's whole topology on this machine: one server
  agent on 127.0.0.1 and two client agents on 127.0.0.2 and 127.0.0.3 standing
  in for the two ECS container instances, each with the local ECS task runner
  and its registrator. The three task definitions of apps/ecs run on the
  clients: stock-price and weather on dynamic host ports (one copy per client
  unless -scale says otherwise), the portal once on the first client, on a
  fixed port, resolving its back ends through that client's DNS interface.

  The agents use Consul's default ports (HTTP 8500, DNS 8600, serf 8301, RPC
  8300) where they are free on their address, ephemeral ports otherwise (a
  note says so). The sample apps must be built next to cairn:

      cargo build --release --workspace && target/release/cairn demo

  Logs and the generated task definitions go to a demo directory (printed);
  processes.tsv there lists every process group started. Ctrl-C or SIGTERM
  stops every process the demo started. See docs/demo.md.";

const SPECS: &[Spec] = &[
    spec(
        "servers",
        Kind::Value,
        "Server agents to run: 1 (default), 3 or 5. More servers form one replicated Raft \
         cluster (-bootstrap-expect); s2, s3, ... run on 127.0.0.4 and up.",
    ),
    spec(
        "scale",
        Kind::Multi,
        "NAME=N: copies of the task NAME (stock-price or weather), spread over the \
         clients. May be repeated. Default: one per client.",
    ),
    spec(
        "portal-port",
        Kind::Value,
        "Host port of the portal (default 8080; 0 picks a free one).",
    ),
    spec(
        "ports",
        Kind::Value,
        "default (Consul's ports where free, the default) or ephemeral (every agent and \
         the portal on free ports: for tests, or next to a running Consul).",
    ),
    spec(
        "dir",
        Kind::Value,
        "Directory for logs, data and task definitions (default: a new cairn-demo-* \
         directory under the system temporary directory).",
    ),
    spec(
        "docker",
        Kind::Bool,
        "Run the three apps as Docker containers (images built locally FROM scratch from \
         the binaries next to cairn) with one registrator per client following the \
         engine's events, instead of local processes. Needs a Docker engine \
         (DOCKER_HOST or /var/run/docker.sock) and the docker CLI.",
    ),
    spec(
        "ready-timeout",
        Kind::Value,
        "Seconds to wait for the portal to answer before saying so (default 60).",
    ),
];

/// The demo's options, from the flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub scale: Vec<(String, usize)>,
    /// `None`: the default port; `Some(0)`: ephemeral.
    pub portal_port: Option<u16>,
    pub ports: Ports,
    pub dir: Option<PathBuf>,
    pub ready_timeout: Duration,
    pub docker: bool,
    /// Server agents: 1, 3 or 5.
    pub servers: u32,
}

/// Runs `cairn demo ...` until SIGINT/SIGTERM.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, SPECS, false, &args)?;
    let help = flags::usage(HELP, SPECS);
    super::no_args(&flags, &help)?;
    let bad = |m: String| CliError::usage(format!("error: {m}"), &help);
    let servers = match flags.str("servers") {
        Some(n) => plan::check_servers(n).map_err(bad)?,
        None => 1,
    };
    let scale = flags
        .all("scale")
        .iter()
        .map(|s| plan::parse_scale(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let portal_port = match flags.str("portal-port") {
        None => None,
        Some(p) => Some(
            p.trim()
                .parse::<u16>()
                .map_err(|_| bad(format!("--portal-port {p:?} is not a port number")))?,
        ),
    };
    let ports = match flags.str("ports").map(str::trim) {
        None | Some("default") => Ports::Default,
        Some("ephemeral") => Ports::Ephemeral,
        Some(o) => {
            return Err(bad(format!(
                "--ports must be default or ephemeral, not {o:?}"
            )))
        }
    };
    let ready_timeout = match flags.str("ready-timeout") {
        None => Duration::from_secs(60),
        Some(s) => Duration::from_secs(
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=3600).contains(n))
                .ok_or_else(|| bad(format!("--ready-timeout {s:?} must be 1 to 3600 seconds")))?,
        ),
    };
    let opts = Options {
        scale,
        portal_port,
        ports,
        dir: flags.str("dir").map(PathBuf::from),
        ready_timeout,
        docker: flags.bool("docker"),
        servers,
    };
    local::run(opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn bad_flags_are_usage_errors_before_anything_starts() {
        for args in [
            &["--servers", "2"][..],
            &["--scale", "stock-price"],
            &["--scale", "portal=2"],
            &["--portal-port", "99999"],
            &["--ports", "fixed"],
            &["--ready-timeout", "0"],
            &["extra"],
        ] {
            match run(v(args)).await {
                Err(CliError::Usage { msg, .. }) => assert!(msg.starts_with("error: "), "{msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        match run(v(&["--servers", "4"])).await {
            Err(CliError::Usage { msg, .. }) => assert!(msg.contains("1, 3 or 5")),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(run(v(&["-h"])).await, Err(CliError::Help(h)) if h.contains("1 (default), 3 or 5"))
        );
    }
}
