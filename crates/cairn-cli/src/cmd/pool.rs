//! The LAN pool commands: `cairn join`, `cairn leave`, `cairn force-leave` and
//! `cairn keygen`, as their Consul namesakes (the first three through the agent's HTTP API).

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::write_stdout;

const JOIN_HELP: &str = "\
Usage: cairn join [options] address ...

  Tells a running agent to join the LAN pool through one or more other agents'
  serf LAN addresses (host or host:port; the port defaults to 8301).";

const LEAVE_HELP: &str = "\
Usage: cairn leave [options]

  Makes the agent leave the pool gracefully and shut down: the other members
  see it as left (not failed) and the leader removes it from the catalog.";

const FORCE_LEAVE_HELP: &str = "\
Usage: cairn force-leave [options] name

  Turns a failed member into a left one, so the leader removes it from the
  catalog at once instead of after reconnect_timeout. With -prune the member
  is also dropped from the member list.";

const KEYGEN_HELP: &str = "\
Usage: cairn keygen

  Prints a new random gossip encryption key (32 bytes, base64) for -encrypt.";

const FORCE_LEAVE_SPECS: &[Spec] = &[spec(
    "prune",
    Kind::Bool,
    "Also remove the member from the member list.",
)];

/// Runs `cairn join`.
pub async fn join(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(JOIN_HELP, &[], true, &args)?;
    if flags.args.is_empty() {
        return Err(CliError::usage(
            "error: at least one address to join is required",
            JOIN_HELP,
        ));
    }
    let client = super::client(&flags)?;
    let mut joined = 0;
    let mut last_err = None;
    for addr in &flags.args {
        let path = format!("/v1/agent/join/{}", cairn_api::encode_component(addr));
        match client.put_empty::<()>(&path).await {
            Ok(()) => joined += 1,
            Err(e) => last_err = Some(format!("{addr}: {e}")),
        }
    }
    if joined == 0 {
        return Err(CliError::failed(format!(
            "Error joining address(es): {}",
            last_err.unwrap_or_default()
        )));
    }
    write_stdout(format!("Successfully joined cluster by contacting {joined} nodes.\n").as_bytes())
}

/// Runs `cairn leave`.
pub async fn leave(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(LEAVE_HELP, &[], true, &args)?;
    super::no_args(&flags, LEAVE_HELP)?;
    let client = super::client(&flags)?;
    let _: () = client
        .put_empty("/v1/agent/leave")
        .await
        .map_err(CliError::ctx("Error leaving"))?;
    write_stdout(b"Graceful leave complete\n")
}

/// Runs `cairn force-leave`.
pub async fn force_leave(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(FORCE_LEAVE_HELP, FORCE_LEAVE_SPECS, true, &args)?;
    let [node] = flags.args.as_slice() else {
        return Err(CliError::usage(
            "error: exactly one node name is required",
            FORCE_LEAVE_HELP,
        ));
    };
    let client = super::client(&flags)?;
    let mut path = format!(
        "/v1/agent/force-leave/{}",
        cairn_api::encode_component(node)
    );
    if flags.bool("prune") {
        path.push_str("?prune=1");
    }
    let _: () = client
        .put_empty(&path)
        .await
        .map_err(CliError::ctx("Error force leaving"))?;
    Ok(())
}

/// Runs `cairn keygen`.
pub fn keygen(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(KEYGEN_HELP, &[], false, &args)?;
    super::no_args(&flags, KEYGEN_HELP)?;
    write_stdout(format!("{}\n", cairn_gossip::keygen()).as_bytes())
}
