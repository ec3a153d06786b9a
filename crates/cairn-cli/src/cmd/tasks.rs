//! `cairn tasks run FILE.json`: runs an ECS task definition's containers as local processes
//! and registers them with the agent through the registrator pipeline, deregistering them
//! and stopping the processes on SIGINT/SIGTERM.

use crate::error::CliError;
use crate::flags::{self, spec, Flags, Kind, Spec};
use cairn_registrator::metadata::split_tags;
use cairn_registrator::tasks::command::ImageMap;
use cairn_registrator::tasks::taskdef;
use cairn_registrator::tasks::{RunnerConfig, TaskRunner};
use cairn_registrator::{log, AgentRegistry, Options, Runtime};
use std::collections::BTreeMap;
use std::time::Duration;

const HELP: &str = "\
Usage: cairn tasks run FILE.json [options]

  Runs the containers of an ECS task definition (family, containerDefinitions
  with name, image, environment, portMappings, command, entryPoint, essential)
  as local processes and registers them with the agent from their SERVICE_*
  variables, like the registrator does for Docker containers.

  Each process gets its host port in PORT (and PORT_<containerPort>): a free
  port unless hostPort is set. The program is entryPoint + command, or the one
  mapped to the image: -image NAME=COMMAND, CAIRN_TASKS_IMAGE_<NAME>, or a
  binary named like the image basename next to cairn or on PATH. $PORT in a
  command is replaced. Essential containers are restarted with backoff.
  SIGINT/SIGTERM deregisters the services and stops the processes.";

const TASKS_HELP: &str = "\
Usage: cairn tasks <subcommand> [options] [args]

Subcommands:
    run    Run an ECS task definition as local processes";

const SPECS: &[Spec] = &[
    spec(
        "count",
        Kind::Value,
        "Copies of the task to run (default 1).",
    ),
    spec(
        "image",
        Kind::Multi,
        "NAME=COMMAND: the program for image NAME (its basename). May be repeated.",
    ),
    spec(
        "dynamic-ports",
        Kind::Bool,
        "Pick free host ports even where hostPort is set.",
    ),
    spec(
        "ip",
        Kind::Value,
        "IP address to register the services with (default: the agent's advertise address).",
    ),
    spec(
        "tags",
        Kind::Value,
        "Comma-separated tags added to every service.",
    ),
    spec(
        "resync",
        Kind::Value,
        "Seconds between full reconciles (default 30; 0: on changes only).",
    ),
];

/// Runs `cairn tasks ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, TASKS_HELP)?;
    match sub {
        "run" => run_task(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            TASKS_HELP,
        )),
    }
}

/// Flags may come before and after FILE: both groups are parsed, the later one winning.
fn parse_all(args: &[String]) -> Result<(Flags, Option<Flags>, String), CliError> {
    let all: Vec<Spec> = SPECS.iter().chain(super::HTTP_FLAGS).copied().collect();
    let help = flags::usage(HELP, &all);
    let first = super::parse_flags(HELP, SPECS, true, args)?;
    let Some((file, rest)) = first.args.split_first() else {
        return Err(CliError::usage(
            "error: missing task definition FILE.json",
            &help,
        ));
    };
    let file = file.clone();
    let second = if rest.is_empty() {
        None
    } else {
        let f = super::parse_flags(HELP, SPECS, true, rest)?;
        if !f.args.is_empty() {
            return Err(CliError::usage(
                format!("error: unexpected argument {:?}", f.args[0]),
                &help,
            ));
        }
        Some(f)
    };
    Ok((first, second, file))
}

async fn run_task(args: Vec<String>) -> Result<(), CliError> {
    let (first, second, file) = parse_all(&args)?;
    let get = |name: &str| {
        second
            .as_ref()
            .and_then(|f| f.str(name))
            .or_else(|| first.str(name))
    };
    let is = |name: &str| second.as_ref().is_some_and(|f| f.bool(name)) || first.bool(name);
    let help = flags::usage(HELP, SPECS);
    let bad = |m: String| CliError::usage(format!("error: {m}"), &help);

    let count: usize = match get("count") {
        None => 1,
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| bad(format!("--count {s:?} is not a number")))?,
    };
    let mut images = BTreeMap::new();
    for f in std::iter::once(&first).chain(second.as_ref()) {
        for m in f.all("image") {
            let (k, v) = m
                .split_once('=')
                .ok_or_else(|| bad(format!("-image {m:?} must be NAME=COMMAND")))?;
            images.insert(k.trim().to_string(), v.to_string());
        }
    }
    let resync = match get("resync").map(str::trim) {
        None => Some(Duration::from_secs(30)),
        Some("0") => None,
        Some(s) => Some(Duration::from_secs(s.parse().map_err(|_| {
            bad(format!("-resync {s:?} is not a number of seconds"))
        })?)),
    };
    let ip = get("ip")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(ip) = &ip {
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| bad(format!("-ip {ip:?} is not an IP address")))?;
    }

    let bytes = cairn_fs::read_regular(std::path::Path::new(&file), taskdef::MAX_FILE_BYTES as u64)
        .map_err(|e| CliError::failed(format!("error: {e}")))?;
    let td = taskdef::parse(&bytes).map_err(|e| CliError::failed(format!("error: {file}: {e}")))?;

    // The HTTP flags of either group, then the environment.
    let http = second
        .as_ref()
        .filter(|f| super::HTTP_FLAGS.iter().any(|s| f.is_set(s.name)))
        .unwrap_or(&first);
    let client = super::client(http)?;

    let cfg = RunnerConfig {
        count,
        images: ImageMap::from_env(images),
        dynamic_ports: is("dynamic-ports"),
        ..Default::default()
    };
    let runner =
        TaskRunner::start(&td, cfg).map_err(|e| CliError::failed(format!("error: {e}")))?;
    let opts = Options {
        ip,
        tags: get("tags").map(split_tags).unwrap_or_default(),
        resync,
        scope: Some(format!("tasks-{}", td.family)),
        ..Default::default()
    };
    let rt = Runtime::new(runner, AgentRegistry::new(client), opts);
    let mut rt = rt.run(super::registrator::shutdown_signal()).await;
    log::info(format!("task {}: stopping", td.family));
    let mut drained = rt.owner().is_none();
    for attempt in 0..5u32 {
        if drained {
            break;
        }
        match rt.drain().await {
            Ok(r) if r.failed == 0 => drained = true,
            Ok(r) => log::warn(format!("{} deregistrations failed; retrying", r.failed)),
            Err(e) => log::warn(format!("cannot deregister: {e}; retrying")),
        }
        if !drained {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }
    rt.source_mut().stop().await;
    if drained {
        log::info(format!(
            "task {}: services deregistered, processes stopped",
            td.family
        ));
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "error: task {}: processes stopped but the services could not be deregistered; \
             the next `cairn tasks run` of this family on this node removes them",
            td.family
        )))
    }
}
