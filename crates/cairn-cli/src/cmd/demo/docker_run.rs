//! `cairn demo --docker`: the same agents as the process demo, but the three apps run as
//! containers on the local Docker engine, from images built on the spot `FROM scratch`.
//! Each client gets a `cairn registrator` following the engine's events through a view of
//! the engine that shows only that client's containers (`docker_view`). Back ends publish
//! their port on their client's address (`-p 127.0.0.2::4567`), which the registrator
//! registers; the portal runs on the host network and asks its client's DNS interface.

use super::backend::TaskBackend;
use super::banner::Banner;
use super::bins::APPS;
use super::docker_image;
use super::docker_view::{self, NODE_LABEL};
use super::fleet::Demo;
use super::plan::{NodePlan, Plan};
use super::taskdefs;
use crate::error::CliError;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Label on every container of one demo run (its value is the run's ID).
pub const DEMO_LABEL: &str = "cairn.demo";

/// How long `docker rm -f` of every container may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks that the docker CLI reaches an engine.
fn preflight() -> Result<(), String> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("error: --docker needs the docker CLI on PATH ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "error: --docker: no Docker engine answers ({}); start one (scripts/docker-engine.sh \
             does on Debian) or set DOCKER_HOST",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    docker_view::engine_socket().map_err(|e| format!("error: {e}"))?;
    Ok(())
}

/// This run's ID: names and labels its containers.
pub fn run_id() -> String {
    format!("cairn-demo-{}", std::process::id())
}

/// The `docker run` arguments of one container.
pub fn run_args(
    id: &str,
    name: &str,
    node: &NodePlan,
    image: &str,
    env: &[(String, String)],
    publish: Option<&str>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        format!("{id}-{name}"),
        "--label".into(),
        format!("{DEMO_LABEL}={id}"),
        "--label".into(),
        format!("{NODE_LABEL}={id}-{}", node.name),
    ];
    match publish {
        Some(p) => {
            a.push("-p".into());
            a.push(p.to_string());
        }
        None => {
            a.push("--network".into());
            a.push("host".into());
        }
    }
    for (k, v) in env {
        a.push("-e".into());
        a.push(format!("{k}={v}"));
    }
    a.push(image.to_string());
    a
}

/// The environment of a task definition's first container.
fn taskdef_env(family: &str) -> Result<Vec<(String, String)>, CliError> {
    let def = taskdefs::base(family).map_err(CliError::failed)?;
    Ok(def["containerDefinitions"][0]["environment"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_string(),
                        e["value"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The instances as containers on the local engine, with a registrator per client.
#[derive(Default)]
pub struct Containers {
    /// The run ID labelling this run's containers, set before the first one starts.
    run_id: Option<String>,
    /// The per-client engine views.
    views: Vec<tokio::task::JoinHandle<()>>,
}

impl TaskBackend for Containers {
    fn stopping(&self) -> &'static str {
        "containers, registrators"
    }

    fn describe(&self) -> &'static str {
        ", the apps as Docker containers"
    }

    fn preflight(&self) -> Result<(), String> {
        preflight()
    }

    /// Builds the images, starts the engine views and registrators, then the containers.
    async fn start(
        &mut self,
        demo: &mut Demo,
        cairn: &Path,
        plan: &Plan,
        agents: &[(NodePlan, Banner)],
        portal_port: u16,
    ) -> Result<(), CliError> {
        let dir = demo.dir.clone();
        let bin_dir = cairn.parent().unwrap_or(Path::new("."));
        let id = run_id();
        // Set first: stop() then removes whatever of this run exists, images included.
        self.run_id = Some(id.clone());
        for app in APPS {
            let ctx = dir.join("images").join(app);
            std::fs::create_dir_all(&ctx)
                .map_err(|e| CliError::failed(format!("error: creating {}: {e}", ctx.display())))?;
            let bin = bin_dir.join(app);
            let tag = id.clone();
            tokio::task::spawn_blocking(move || docker_image::build(app, &tag, &bin, &ctx))
                .await
                .map_err(|e| CliError::failed(format!("error: {e}")))?
                .map_err(|e| CliError::failed(format!("error: {e}")))?;
        }
        let engine = docker_view::engine_socket().map_err(CliError::failed)?;
        for (node, b) in agents.iter().skip(1) {
            let sock = dir.join(format!("docker-{}.sock", node.name));
            let view = docker_view::start(
                &sock,
                engine.clone(),
                format!("{NODE_LABEL}={id}-{}", node.name),
            )
            .map_err(|e| CliError::failed(format!("error: {e}")))?;
            self.views.push(view);
            let http = b.http.clone().unwrap_or_default();
            let args: Vec<String> = vec![
                "registrator".into(),
                "-resync=10".into(),
                format!("consul://{http}"),
            ];
            let env = vec![(
                "DOCKER_HOST".to_string(),
                format!("unix://{}", sock.display()),
            )];
            demo.spawn(
                &format!("registrator-{}", node.name),
                "registrator",
                &node.name,
                cairn,
                &args,
                &env,
            )?;
        }
        let list = dir.join("containers.tsv");
        for inst in &plan.instances {
            let (node, b) = &agents[1 + inst.client];
            let mut env = taskdef_env(&inst.family)?;
            let publish = if inst.family == "portal" {
                env.push(("PORT".into(), portal_port.to_string()));
                env.push(("DNS_SERVER".into(), b.dns.clone().unwrap_or_default()));
                // On the host network the registrator would see only the image's exposed
                // port, not the one the portal listens on: leave it unregistered.
                env.push(("SERVICE_IGNORE".into(), "true".into()));
                None
            } else {
                Some(format!("{}::4567", node.ip))
            };
            let args = run_args(
                &id,
                &inst.name(),
                node,
                &docker_image::image_name(&inst.family, &id),
                &env,
                publish.as_deref(),
            );
            let name = format!("{id}-{}", inst.name());
            let out = tokio::process::Command::new("docker")
                .args(&args)
                .process_group(0)
                .output()
                .await
                .map_err(|e| CliError::failed(format!("error: docker run: {e}")))?;
            if !out.status.success() {
                return Err(CliError::failed(format!(
                    "error: docker run {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&list)
                .and_then(|mut f| writeln!(f, "{}\t{name}\t{}", inst.name(), node.name))
                .map_err(|e| CliError::failed(format!("error: writing {}: {e}", list.display())))?;
        }
        Ok(())
    }

    /// Removes every container of the run (so the registrators see them die) and its
    /// images, then closes the engine views; the registrators are process groups of the
    /// fleet.
    async fn stop(&mut self) {
        if let Some(id) = self.run_id.take() {
            remove(&id).await;
            let images: Vec<String> = APPS
                .iter()
                .map(|a| docker_image::image_name(a, &id))
                .collect();
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            if let Err(e) = docker_cli(&args).await {
                // An image that was never built is no error worth reporting.
                if !e.contains("No such image") {
                    println!("    warning: docker rmi: {e}");
                }
            }
        }
        for v in self.views.drain(..) {
            v.abort();
        }
    }
}

/// Docker with `args`, in its own process group (a second Ctrl-C in the terminal must not
/// cut a removal short), within [`REMOVE_TIMEOUT`]: its stdout, or why not.
async fn docker_cli(args: &[&str]) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args).process_group(0).kill_on_drop(true);
    match tokio::time::timeout(REMOVE_TIMEOUT, cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(Ok(o)) => Err(format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {REMOVE_TIMEOUT:?}")),
    }
}

/// Removes every container labelled with run `id` (`docker rm -f`), including one whose
/// `docker run` was cut short by a signal.
pub async fn remove(id: &str) {
    let filter = format!("label={DEMO_LABEL}={id}");
    let ids = match docker_cli(&["ps", "-aq", "--filter", &filter]).await {
        Ok(out) => out
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>(),
        Err(e) => {
            println!("    warning: docker ps: {e}");
            return;
        }
    };
    if ids.is_empty() {
        return;
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    if let Err(e) = docker_cli(&args).await {
        println!("    warning: docker rm -f: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Ports, Role};
    use super::*;

    #[test]
    fn container_arguments() {
        let node = NodePlan {
            name: "c3".into(),
            ip: "127.0.0.3".into(),
            role: Role::Client,
            ports: Ports::Default,
            expect: 0,
        };
        let env = vec![("SERVICE_4567_NAME".to_string(), "weather".to_string())];
        let a = run_args(
            "cairn-demo-9",
            "weather-2",
            &node,
            "cairn-demo/weather:latest",
            &env,
            Some("127.0.0.3::4567"),
        );
        let s = a.join(" ");
        assert!(
            s.starts_with("run -d --name cairn-demo-9-weather-2 "),
            "{s}"
        );
        assert!(s.contains("--label cairn.demo=cairn-demo-9"));
        assert!(s.contains("--label cairn.demo.node=cairn-demo-9-c3"));
        assert!(
            s.contains("-p 127.0.0.3::4567 -e SERVICE_4567_NAME=weather cairn-demo/weather:latest")
        );
        let a = run_args("i", "portal-1", &node, "img", &[], None);
        assert!(a.join(" ").contains("--network host img"));
        assert_eq!(
            taskdef_env("stock-price").unwrap()[0].0,
            "SERVICE_4567_NAME"
        );
    }
}
