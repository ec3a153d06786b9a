//! `cairn services register|deregister`: register services on the local agent from flags or
//! from Consul-format definition files, like `consul services`.

use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};
use crate::output::say;
use crate::svcfile;
use cairn_api::ServiceDefinition;
use std::collections::BTreeMap;

const HELP: &str = "\
Usage: cairn services <subcommand> [options] [args]

  Registers and deregisters services on the local agent.

Subcommands:
    deregister    Deregister services with the local agent
    register      Register services with the local agent";

const REGISTER_HELP: &str = "\
Usage: cairn services register [options] [FILE...]

  Registers a service from flags, or every service defined in the given
  .json/.hcl files (a \"service\" block or a \"services\" list, as in agent
  configuration).";

const REGISTER_SPECS: &[Spec] = &[
    spec("name", Kind::Value, "Name of the service to register."),
    spec(
        "id",
        Kind::Value,
        "ID of the service to register (defaults to the name).",
    ),
    spec(
        "address",
        Kind::Value,
        "Address of the service (defaults to the node address).",
    ),
    spec("port", Kind::Value, "Port of the service."),
    spec(
        "tag",
        Kind::Multi,
        "Tag to add to the service. May be repeated.",
    ),
    spec(
        "meta",
        Kind::Multi,
        "Metadata key=value to set on the service. May be repeated.",
    ),
];

const DEREGISTER_HELP: &str = "\
Usage: cairn services deregister [options] [FILE...]

  Deregisters the service with -id, or every service defined in the given files.";

const DEREGISTER_SPECS: &[Spec] = &[spec("id", Kind::Value, "ID of the service to deregister.")];

/// Runs `cairn services ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "register" => register(rest).await,
        "deregister" => deregister(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

/// Builds a definition from `services register` flags.
pub fn definition_from_flags(flags: &Flags) -> Result<ServiceDefinition, String> {
    let name = flags.str("name").unwrap_or_default().to_string();
    if name.is_empty() {
        return Err("Service name is required (-name)".into());
    }
    let port = match flags.str("port") {
        None => None,
        Some(p) => Some(
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("invalid value {p:?} for flag -port: must be 0-65535"))?,
        ),
    };
    let mut meta = BTreeMap::new();
    for kv in flags.all("meta") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("invalid -meta {kv:?}: expected key=value"))?;
        if k.is_empty() {
            return Err(format!("invalid -meta {kv:?}: empty key"));
        }
        meta.insert(k.to_string(), v.to_string());
    }
    Ok(ServiceDefinition {
        id: flags.str("id").unwrap_or_default().to_string(),
        name,
        address: flags.str("address").unwrap_or_default().to_string(),
        port,
        tags: flags.all("tag").to_vec(),
        meta,
        ..Default::default()
    })
}

/// Reads and parses every definition in `paths`.
fn definitions_from_files(paths: &[String]) -> Result<Vec<ServiceDefinition>, CliError> {
    let mut defs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::failed(format!("Error reading file {path}: {e}")))?;
        defs.extend(
            svcfile::parse_file(path, &text)
                .map_err(|e| CliError::failed(format!("Error parsing {path}: {e}")))?,
        );
    }
    Ok(defs)
}

async fn register(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(REGISTER_HELP, REGISTER_SPECS, true, &args)?;
    let from_flags = REGISTER_SPECS.iter().any(|s| flags.is_set(s.name));
    let defs = match (from_flags, flags.args.is_empty()) {
        (true, false) => {
            return Err(CliError::usage(
                "error: service flags and FILE arguments cannot be combined",
                REGISTER_HELP,
            ))
        }
        (false, true) => {
            return Err(CliError::usage(
                "error: service registration requires at least one FILE or the -name flag",
                REGISTER_HELP,
            ))
        }
        (true, true) => vec![definition_from_flags(&flags)
            .map_err(|e| CliError::usage(format!("error: {e}"), REGISTER_HELP))?],
        (false, false) => definitions_from_files(&flags.args)?,
    };
    let client = super::client(&flags)?;
    for def in &defs {
        client
            .agent_service_register(def)
            .await
            .map_err(CliError::ctx(&format!(
                "Error registering service {:?}",
                def.name
            )))?;
        say(&format!("Registered service: {}", def.name))?;
    }
    Ok(())
}

async fn deregister(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(DEREGISTER_HELP, DEREGISTER_SPECS, true, &args)?;
    let ids: Vec<String> = match (flags.str("id"), flags.args.is_empty()) {
        (Some(_), false) => {
            return Err(CliError::usage(
                "error: -id and FILE arguments cannot be combined",
                DEREGISTER_HELP,
            ))
        }
        (None, true) => {
            return Err(CliError::usage(
                "error: service deregistration requires at least one FILE or the -id flag",
                DEREGISTER_HELP,
            ))
        }
        (Some(""), true) => {
            return Err(CliError::usage(
                "error: -id must not be empty",
                DEREGISTER_HELP,
            ))
        }
        (Some(id), true) => vec![id.to_string()],
        (None, false) => definitions_from_files(&flags.args)?
            .iter()
            .map(|d| d.effective_id().to_string())
            .collect(),
    };
    let client = super::client(&flags)?;
    for id in &ids {
        client
            .agent_service_deregister(id)
            .await
            .map_err(CliError::ctx(&format!(
                "Error deregistering service {id:?}"
            )))?;
        say(&format!("Deregistered service: {id}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags;

    fn parse(a: &[&str]) -> Flags {
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        flags::parse(REGISTER_SPECS, &a).unwrap()
    }

    #[test]
    fn flags_to_definition() {
        let d = definition_from_flags(&parse(&[
            "-name=web",
            "-id",
            "web-1",
            "-port=8080",
            "-tag",
            "a",
            "-tag=b",
            "-meta",
            "k=v=w",
            "-address",
            "10.0.0.5",
        ]))
        .unwrap();
        assert_eq!(d.name, "web");
        assert_eq!(d.id, "web-1");
        assert_eq!(d.port, Some(8080));
        assert_eq!(d.tags, ["a", "b"]);
        assert_eq!(d.meta["k"], "v=w");
        assert_eq!(d.address, "10.0.0.5");
    }

    #[test]
    fn bad_flags() {
        assert!(definition_from_flags(&parse(&["-port=1"])).is_err());
        assert!(definition_from_flags(&parse(&["-name=a", "-port=70000"])).is_err());
        assert!(definition_from_flags(&parse(&["-name=a", "-meta=novalue"])).is_err());
        assert!(definition_from_flags(&parse(&["-name=a", "-meta==v"])).is_err());
    }
}
