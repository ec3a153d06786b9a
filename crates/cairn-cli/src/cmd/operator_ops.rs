//! `cairn operator raft remove-peer|transfer-leader` and `cairn operator autopilot
//! get-config|set-config`, as `consul operator` has them.

use serde_json::{Map, Value};

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::write_stdout;

const REMOVE_HELP: &str = "\
Usage: cairn operator raft remove-peer [options]

  Removes a server from the Raft configuration, by -id (its node ID, as
  list-peers shows it) or -address (IP:port). Meant for servers that failed
  and will not come back; a live server rejoins.";

const TRANSFER_HELP: &str = "\
Usage: cairn operator raft transfer-leader [options]

  Hands Raft leadership to the server with node ID -id, or to the most
  up-to-date other voter.";

const GET_HELP: &str = "\
Usage: cairn operator autopilot get-config [options]

  Displays the current autopilot configuration.";

const SET_HELP: &str = "\
Usage: cairn operator autopilot set-config [options]

  Modifies the autopilot configuration (options left out keep their value).";

const REMOVE_FLAGS: &[Spec] = &[
    spec("id", Kind::Value, "The node ID of the server to remove."),
    spec(
        "address",
        Kind::Value,
        "The IP:port of the server to remove.",
    ),
];

const TRANSFER_FLAGS: &[Spec] = &[spec(
    "id",
    Kind::Value,
    "The node ID of the server to transfer leadership to.",
)];

const SET_FLAGS: &[Spec] = &[
    spec(
        "cleanup-dead-servers",
        Kind::Value,
        "true|false: remove servers that stay failed.",
    ),
    spec(
        "last-contact-threshold",
        Kind::Value,
        "A server without leader contact this long is unhealthy (e.g. 200ms).",
    ),
    spec(
        "max-trailing-logs",
        Kind::Value,
        "A server this many entries behind is unhealthy.",
    ),
    spec(
        "min-quorum",
        Kind::Value,
        "Never remove dead servers below this many voters.",
    ),
    spec(
        "server-stabilization-time",
        Kind::Value,
        "How long a server must be stable before autopilot acts (e.g. 10s).",
    ),
];

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `operator raft remove-peer|transfer-leader` or `operator autopilot ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (group, sub, rest) = match args.as_slice() {
        [g, s, rest @ ..] => (g.as_str(), s.as_str(), rest),
        _ => {
            return Err(CliError::usage(
                "error: expected a subcommand",
                "Usage: cairn operator raft|autopilot <subcommand> [options]",
            ))
        }
    };
    match (group, sub) {
        ("raft", "remove-peer") => remove_peer(rest).await,
        ("raft", "transfer-leader") => transfer_leader(rest).await,
        ("autopilot", "get-config") => get_config(rest).await,
        ("autopilot", "set-config") => set_config(rest).await,
        _ => Err(CliError::usage(
            format!("error: unknown subcommand `operator {group} {sub}`"),
            "Usage: cairn operator raft list-peers|remove-peer|transfer-leader\n       \
             cairn operator autopilot get-config|set-config",
        )),
    }
}

async fn remove_peer(rest: &[String]) -> Result<(), CliError> {
    let flags = super::parse_flags(REMOVE_HELP, REMOVE_FLAGS, true, rest)?;
    super::no_args(&flags, REMOVE_HELP)?;
    let (id, addr) = (flags.str("id"), flags.str("address"));
    let (query, shown) = match (id, addr) {
        (Some(i), None) if !i.is_empty() => (format!("id={}", enc(i)), format!("id {i:?}")),
        (None, Some(a)) if !a.is_empty() => {
            (format!("address={}", enc(a)), format!("address {a:?}"))
        }
        _ => {
            return Err(CliError::usage(
                "error: exactly one of -id or -address is required",
                REMOVE_HELP,
            ))
        }
    };
    let client = super::client(&flags)?;
    let _: Value = client
        .delete_json(&format!("/v1/operator/raft/peer?{query}"))
        .await
        .map_err(CliError::ctx("Error removing peer"))?;
    write_stdout(format!("Removed peer with {shown}\n").as_bytes())
}

async fn transfer_leader(rest: &[String]) -> Result<(), CliError> {
    let flags = super::parse_flags(TRANSFER_HELP, TRANSFER_FLAGS, true, rest)?;
    super::no_args(&flags, TRANSFER_HELP)?;
    let path = match flags.str("id").filter(|i| !i.is_empty()) {
        Some(i) => format!("/v1/operator/raft/transfer-leader?id={}", enc(i)),
        None => "/v1/operator/raft/transfer-leader".to_string(),
    };
    let client = super::client(&flags)?;
    let r: Value = client
        .post_empty(&path)
        .await
        .map_err(CliError::ctx("Error transferring leadership"))?;
    let ok = r["Success"].as_bool().unwrap_or(false);
    write_stdout(format!("Success: {ok}\n").as_bytes())
}

/// `get-config`'s text.
pub fn config_text(c: &Value) -> String {
    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
    format!(
        "CleanupDeadServers = {}\nLastContactThreshold = {}\nMaxTrailingLogs = {}\n\
         MinQuorum = {}\nServerStabilizationTime = {}\nRedundancyZoneTag = {:?}\n\
         DisableUpgradeMigration = {}\nUpgradeVersionTag = {:?}\n",
        c["CleanupDeadServers"].as_bool().unwrap_or(false),
        s("LastContactThreshold"),
        c["MaxTrailingLogs"],
        c["MinQuorum"],
        s("ServerStabilizationTime"),
        s("RedundancyZoneTag"),
        c["DisableUpgradeMigration"].as_bool().unwrap_or(false),
        s("UpgradeVersionTag"),
    )
}

async fn get_config(rest: &[String]) -> Result<(), CliError> {
    let flags = super::parse_flags(GET_HELP, &[], true, rest)?;
    super::no_args(&flags, GET_HELP)?;
    let client = super::client(&flags)?;
    let c: Value = client
        .get_json("/v1/operator/autopilot/configuration")
        .await
        .map_err(CliError::ctx("Error querying Autopilot configuration"))?;
    write_stdout(config_text(&c).as_bytes())
}

/// The changes `set-config`'s flags ask for, in Consul's JSON field names.
pub fn changes(flags: &crate::flags::Flags) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    if let Some(v) = flags.str("cleanup-dead-servers") {
        let b = match v {
            "true" => true,
            "false" => false,
            _ => {
                return Err(format!(
                    "invalid -cleanup-dead-servers {v:?}: true or false"
                ))
            }
        };
        m.insert("CleanupDeadServers".into(), Value::Bool(b));
    }
    for (flag, field) in [
        ("last-contact-threshold", "LastContactThreshold"),
        ("server-stabilization-time", "ServerStabilizationTime"),
    ] {
        if let Some(v) = flags.str(flag) {
            cairn_types::duration::parse_duration(v)
                .map_err(|e| format!("invalid -{flag} {v:?}: {e}"))?;
            m.insert(field.into(), Value::String(v.to_string()));
        }
    }
    for (flag, field) in [
        ("max-trailing-logs", "MaxTrailingLogs"),
        ("min-quorum", "MinQuorum"),
    ] {
        if let Some(v) = flags.str(flag) {
            let n: u64 = v
                .parse()
                .map_err(|_| format!("invalid -{flag} {v:?}: a non-negative integer"))?;
            m.insert(field.into(), Value::from(n));
        }
    }
    Ok(m)
}

async fn set_config(rest: &[String]) -> Result<(), CliError> {
    let flags = super::parse_flags(SET_HELP, SET_FLAGS, true, rest)?;
    super::no_args(&flags, SET_HELP)?;
    let changes = changes(&flags).map_err(|m| CliError::usage(format!("error: {m}"), SET_HELP))?;
    let client = super::client(&flags)?;
    let current: Value = client
        .get_json("/v1/operator/autopilot/configuration")
        .await
        .map_err(CliError::ctx("Error querying Autopilot configuration"))?;
    let index = current["ModifyIndex"].as_u64().unwrap_or(0);
    let mut body = current.as_object().cloned().unwrap_or_default();
    body.extend(changes);
    let ok: bool = client
        .put_json(
            &format!("/v1/operator/autopilot/configuration?cas={index}"),
            &Value::Object(body),
        )
        .await
        .map_err(CliError::ctx("Error setting Autopilot configuration"))?;
    if ok {
        write_stdout(b"Configuration updated!\n")
    } else {
        write_stdout(b"Configuration could not be atomically updated, please try again\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_text_reads_as_consuls() {
        let t = config_text(&json!({
            "CleanupDeadServers": true, "LastContactThreshold": "200ms", "MaxTrailingLogs": 250,
            "MinQuorum": 0, "ServerStabilizationTime": "10s", "RedundancyZoneTag": "",
            "DisableUpgradeMigration": false, "UpgradeVersionTag": ""
        }));
        assert!(
            t.starts_with("CleanupDeadServers = true\nLastContactThreshold = 200ms\n"),
            "{t}"
        );
        assert!(
            t.contains("ServerStabilizationTime = 10s\nRedundancyZoneTag = \"\"\n"),
            "{t}"
        );
    }

    #[test]
    fn set_config_flags_are_checked() {
        let parse = |a: &[&str]| {
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            let f = super::super::parse_flags(SET_HELP, SET_FLAGS, true, &args).unwrap();
            changes(&f)
        };
        let m = parse(&[
            "-cleanup-dead-servers=false",
            "-server-stabilization-time=2s",
        ])
        .unwrap();
        assert_eq!(m["CleanupDeadServers"], false);
        assert_eq!(m["ServerStabilizationTime"], "2s");
        assert!(parse(&["-min-quorum=-1"]).is_err());
        assert!(parse(&["-last-contact-threshold=soon"]).is_err());
        assert!(parse(&["-cleanup-dead-servers=maybe"]).is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(enc("127.0.0.1:8300"), "127.0.0.1:8300");
        assert_eq!(enc("a&b c"), "a%26b%20c");
    }
}
