//! The seam between the demo's agents and its task instances: [`TaskBackend`] starts the
//! instances of a plan on their clients and stops what lives outside the demo's process
//! groups. [`Processes`] runs each instance under its own `cairn tasks run` (the local ECS
//! task runner with the registrator pipeline); `docker_run::Containers` runs them as
//! containers with a registrator per client. `tests/demo.rs` runs one scenario against
//! both.

use super::banner::Banner;
use super::fleet::Demo;
use super::plan::{Instance, NodePlan, Plan};
use super::taskdefs;
use crate::error::CliError;
use std::path::{Path, PathBuf};

/// Where the task instances run.
pub trait TaskBackend {
    /// What stops first, for the "Stopping" line.
    fn stopping(&self) -> &'static str;
    /// What the summary's first line adds.
    fn describe(&self) -> &'static str;
    /// Checks made before anything starts.
    fn preflight(&self) -> Result<(), String>;
    /// Starts every instance of `plan` on its client (`agents[0]` is the server).
    async fn start(
        &mut self,
        demo: &mut Demo,
        cairn: &Path,
        plan: &Plan,
        agents: &[(NodePlan, Banner)],
        portal_port: u16,
    ) -> Result<(), CliError>;
    /// Stops what `start` left outside the demo's process groups; runs before they stop.
    async fn stop(&mut self);
}

/// Each instance as a local process group: `cairn tasks run` of its own task definition
/// against its client agent.
pub struct Processes;

impl TaskBackend for Processes {
    fn stopping(&self) -> &'static str {
        "task runners"
    }

    fn describe(&self) -> &'static str {
        ""
    }

    fn preflight(&self) -> Result<(), String> {
        Ok(())
    }

    async fn start(
        &mut self,
        demo: &mut Demo,
        cairn: &Path,
        plan: &Plan,
        agents: &[(NodePlan, Banner)],
        portal_port: u16,
    ) -> Result<(), CliError> {
        for inst in &plan.instances {
            let (node, b) = &agents[1 + inst.client];
            let file = write_taskdef(&demo.dir, inst, node, b, portal_port)?;
            let http = b.http.clone().unwrap_or_default();
            let args: Vec<String> = vec![
                "tasks".into(),
                "run".into(),
                format!("-http-addr={http}"),
                "-resync=10".into(),
                file.display().to_string(),
            ];
            demo.spawn(&inst.name(), "task", &node.name, cairn, &args, &[])?;
        }
        Ok(())
    }

    /// The runners are process groups of the fleet: nothing else to stop.
    async fn stop(&mut self) {}
}

/// Writes instance `inst`'s task definition into the demo directory.
fn write_taskdef(
    dir: &Path,
    inst: &Instance,
    node: &NodePlan,
    b: &Banner,
    portal_port: u16,
) -> Result<PathBuf, CliError> {
    let base = taskdefs::base(&inst.family).map_err(CliError::failed)?;
    let (env, port) = if inst.family == "portal" {
        let dns = b.dns.clone().unwrap_or_default();
        (
            vec![
                ("DNS_SERVER".to_string(), dns),
                ("BIND".to_string(), "0.0.0.0".to_string()),
            ],
            Some(portal_port),
        )
    } else {
        (vec![("BIND".to_string(), node.ip.clone())], None)
    };
    let def = taskdefs::instance(&base, &inst.name(), &env, port).map_err(CliError::failed)?;
    let path = dir.join(format!("{}.json", inst.name()));
    let text = serde_json::to_string_pretty(&def).map_err(|e| CliError::failed(e.to_string()))?;
    std::fs::write(&path, text)
        .map_err(|e| CliError::failed(format!("error: writing {}: {e}", path.display())))?;
    Ok(path)
}
