//! Carries a demo [`Plan`] out: checks what it needs, starts the agents as local process
//! groups (waiting for each banner), then the task instances through a [`TaskBackend`]
//! (one `cairn tasks run` each, or containers), waits for the portal to answer and for
//! SIGINT/SIGTERM, and stops everything in reverse order (the instances first, so their
//! services are deregistered while the agents still run).

use super::backend::{Processes, TaskBackend};
use super::banner;
use super::bins;
use super::fleet::Demo;
use super::plan::{self, NodePlan, Plan, Ports, Role};
use super::probe;
use super::summary::{print_summary, wait_ready, Started};
use super::Options;
use crate::error::CliError;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an agent may take to print its banner.
const AGENT_START: Duration = Duration::from_secs(30);

/// Consul's default ports where they are free on `ip`, else ephemeral with a note.
fn choose_ports(ip: &str, role: Role, wanted: Ports, notes: &mut Vec<String>) -> Ports {
    if wanted == Ports::Ephemeral {
        return Ports::Ephemeral;
    }
    let free = probe::free(ip, plan::HTTP_PORT, false)
        && probe::free(ip, plan::DNS_PORT, true)
        && probe::free(ip, plan::SERF_LAN_PORT, true)
        && (role == Role::Client || probe::free(ip, plan::SERVER_PORT, false));
    if free {
        Ports::Default
    } else {
        notes.push(format!(
            "note: a default port (8500, 8600, 8301{}) is taken on {ip}; that agent uses ephemeral ports",
            if role == Role::Server { ", 8300" } else { "" }
        ));
        Ports::Ephemeral
    }
}

/// The portal's host port: the asked-for one (default 8080) when free, else a free one.
fn choose_portal_port(o: &Options, notes: &mut Vec<String>) -> Result<u16, CliError> {
    let wanted = match (o.portal_port, o.ports) {
        (Some(p), _) => p,
        (None, Ports::Ephemeral) => 0,
        (None, Ports::Default) => plan::PORTAL_PORT,
    };
    if wanted != 0 && probe::free("0.0.0.0", wanted, false) {
        return Ok(wanted);
    }
    let p = probe::ephemeral_port().map_err(CliError::failed)?;
    if wanted != 0 {
        notes.push(format!(
            "note: port {wanted} is taken; the portal uses port {p} instead"
        ));
    }
    Ok(p)
}

fn default_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("cairn-demo-{secs}-{}", std::process::id()))
}

/// Runs the demo until SIGINT/SIGTERM: task instances as local processes, or as
/// containers with `--docker`.
pub async fn run(o: Options) -> Result<(), CliError> {
    if o.docker {
        run_with(o, super::docker_run::Containers::default()).await
    } else {
        run_with(o, Processes).await
    }
}

/// Runs the demo with the task instances on `backend`.
async fn run_with(o: Options, mut backend: impl TaskBackend) -> Result<(), CliError> {
    let b = bins::locate().map_err(CliError::failed)?;
    if let Err(e) = bins::check(&b.dir) {
        let Some((cargo, args)) = bins::cargo_autobuild(&b.dir, |k| std::env::var(k).ok()) else {
            return Err(CliError::failed(e));
        };
        println!(
            "==> Building the sample apps first: cargo {}",
            args.join(" ")
        );
        let st = tokio::process::Command::new(&cargo)
            .args(&args)
            .status()
            .await
            .map_err(|e| CliError::failed(format!("error: running {cargo}: {e}")))?;
        if !st.success() {
            return Err(CliError::failed(format!(
                "error: building the sample apps failed ({st})"
            )));
        }
        bins::check(&b.dir).map_err(CliError::failed)?;
    }
    let extra_ips: Vec<String> = (2..=o.servers)
        .map(|i| format!("127.0.0.{}", i + 2))
        .collect();
    for ip in ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .chain(extra_ips.iter().map(String::as_str))
    {
        std::net::UdpSocket::bind((ip, 0)).map_err(|e| {
            CliError::failed(format!(
                "error: cannot bind {ip} ({e}); the demo needs the loopback addresses \
                 127.0.0.2 and 127.0.0.3 (Linux routes all of 127.0.0.0/8 to lo)"
            ))
        })?;
    }
    backend.preflight().map_err(CliError::failed)?;
    let dir = o.dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failed(format!("error: creating {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(dir.join("processes.tsv"));
    let mut notes = Vec::new();
    let plan = plan::plan(&o.scale, o.servers, |ip, role| {
        choose_ports(ip, role, o.ports, &mut notes)
    });
    let portal_port = choose_portal_port(&o, &mut notes)?;

    println!(
        "==> Cairn demo: {} and 2 client agents (the two ECS instances){}",
        if o.servers == 1 {
            "1 server".to_string()
        } else {
            format!("{} replicated servers", o.servers)
        },
        backend.describe()
    );
    println!("    Logs, data and task definitions: {}", dir.display());
    for n in &notes {
        println!("    {n}");
    }

    let mut demo = Demo::new(dir.clone());
    let shutdown = crate::cmd::registrator::shutdown_signal();
    tokio::pin!(shutdown);
    let started = tokio::select! {
        r = start(&mut demo, &b.cairn, &plan, portal_port, &mut backend) => r,
        _ = &mut shutdown => Err(CliError::failed("interrupted while starting; stopped everything")),
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            backend.stop().await;
            demo.stop_all().await;
            return Err(e);
        }
    };
    print_summary(&plan, &started);

    let ready = tokio::select! {
        r = wait_ready(&started.portal, o.ready_timeout) => Some(r),
        _ = &mut shutdown => None,
    };
    match &ready {
        Some(Ok(t)) => println!(
            "==> Ready after {:.1} s: the portal answers /stock/AMZN and /weather/Paris. \
             Ctrl-C stops everything.",
            t.as_secs_f64()
        ),
        Some(Err(e)) => println!(
            "==> warning: {e}; the demo keeps running, see the logs in {}. Ctrl-C stops everything.",
            dir.display()
        ),
        None => {}
    }
    if ready.is_some() {
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    demo.report_exits();
                }
            }
        }
    }
    println!(
        "==> Stopping: {}, then clients, then the server",
        backend.stopping()
    );
    backend.stop().await;
    demo.stop_all().await;
    println!("==> Stopped; logs kept in {}", dir.display());
    Ok(())
}

/// Starts the agents, then the task instances through `backend`.
async fn start(
    demo: &mut Demo,
    cairn: &Path,
    plan: &Plan,
    portal_port: u16,
    backend: &mut impl TaskBackend,
) -> Result<Started, CliError> {
    let fail = |e: banner::BannerError| CliError::failed(format!("error: {e}"));
    let root = demo.dir.clone();
    let data = |n: &str| demo_path(&root, n);
    let sdata = data(&plan.server.name);
    let i = demo.spawn(
        &plan.server.name,
        "server",
        &plan.server.name,
        cairn,
        &plan.server.agent_args(&sdata, None),
        &[],
    )?;
    let sb = banner::wait(demo.proc_mut(i), AGENT_START)
        .await
        .map_err(fail)?;
    let join = sb.serf.clone().unwrap_or_default();
    // The other servers join the first; the cluster forms once they are all in the pool.
    let extra = join_agents(demo, cairn, &plan.extra_servers, &join, &data).await?;
    for (s, b) in &extra {
        println!(
            "    {}  server  HTTP API http://{}",
            s.name,
            b.http.as_deref().unwrap_or("?")
        );
    }
    let mut agents = vec![(plan.server.clone(), sb)];
    agents.extend(join_agents(demo, cairn, &plan.clients, &join, &data).await?);
    backend
        .start(demo, cairn, plan, &agents, portal_port)
        .await?;
    Ok(Started {
        agents,
        portal: format!("127.0.0.1:{portal_port}"),
    })
}

/// Starts `nodes` (joining the pool at `join`) all at once, then reads each banner.
async fn join_agents(
    demo: &mut Demo,
    cairn: &Path,
    nodes: &[NodePlan],
    join: &str,
    data: &impl Fn(&str) -> String,
) -> Result<Vec<(NodePlan, banner::Banner)>, CliError> {
    let mut idx = Vec::new();
    for n in nodes {
        let kind = if n.role == Role::Server {
            "server"
        } else {
            "client"
        };
        let args = n.agent_args(&data(&n.name), Some(join));
        idx.push(demo.spawn(&n.name, kind, &n.name, cairn, &args, &[])?);
    }
    let mut out = Vec::new();
    for (n, i) in nodes.iter().zip(idx) {
        let b = banner::wait(demo.proc_mut(i), AGENT_START)
            .await
            .map_err(|e| CliError::failed(format!("error: {e}")))?;
        out.push((n.clone(), b));
    }
    Ok(out)
}

fn demo_path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
