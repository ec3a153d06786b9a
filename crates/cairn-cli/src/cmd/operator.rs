//! `cairn operator raft list-peers`: the Raft servers as `consul operator raft list-peers`
//! shows them (from `/v1/operator/raft/configuration`). The other operator commands
//! (`raft remove-peer`, `raft transfer-leader`, `autopilot get-config|set-config`) are in
//! [`super::operator_ops`].

use crate::error::CliError;
use crate::output::{align, row, write_stdout};
use serde_json::Value;

const HELP: &str = "\
Usage: cairn operator raft list-peers [options]
       cairn operator raft remove-peer -id=<node ID> | -address=<IP:port>
       cairn operator raft transfer-leader [-id=<node ID>]
       cairn operator autopilot get-config | set-config [options]

  list-peers displays the current Raft peer configuration: each server's node
  name, ID, address, whether it leads and whether it votes.";

/// Runs `cairn operator ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = match args.as_slice() {
        [a, b, rest @ ..] if a == "raft" && b == "list-peers" => ("list-peers", rest.to_vec()),
        [a, ..] if a == "raft" || a == "autopilot" => return super::operator_ops::run(args).await,
        _ => {
            return Err(CliError::usage(
                "error: expected `operator raft list-peers|remove-peer|transfer-leader` \
                 or `operator autopilot get-config|set-config`",
                HELP,
            ))
        }
    };
    debug_assert_eq!(sub, "list-peers");
    let flags = super::parse_flags(HELP, &[], true, &rest)?;
    super::no_args(&flags, HELP)?;
    let client = super::client(&flags)?;
    let cfg: Value = client
        .get_json("/v1/operator/raft/configuration")
        .await
        .map_err(CliError::ctx("Error getting peers"))?;
    write_stdout(table(&cfg).as_bytes())
}

/// The `list-peers` table.
pub fn table(cfg: &Value) -> String {
    let mut rows = vec![row([
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
    ])];
    for s in cfg["Servers"].as_array().into_iter().flatten() {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        rows.push(vec![
            text("Node"),
            text("ID"),
            text("Address"),
            if s["Leader"] == true {
                "leader"
            } else {
                "follower"
            }
            .to_string(),
            s["Voter"].as_bool().unwrap_or(false).to_string(),
            text("ProtocolVersion"),
        ]);
    }
    align(&rows, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peers_table() {
        let t = table(&json!({"Servers": [
            {"ID": "a", "Node": "s1", "Address": "10.0.0.1:8300", "Leader": true, "Voter": true, "ProtocolVersion": "3"},
            {"ID": "b", "Node": "s2", "Address": "10.0.0.2:8300", "Leader": false, "Voter": true, "ProtocolVersion": "3"}
        ]}));
        assert!(
            t.contains("s1    a   10.0.0.1:8300  leader    true   3"),
            "{t}"
        );
        assert!(t.contains("follower"), "{t}");
    }
}
