//! `cairn keyring`: the gossip encryption keyring of the whole pool, as `consul keyring`:
//! `-list` (or `-list-primary`) prints each pool's keys with how many of its members hold
//! them; `-install`, `-use` and `-remove` change every member's keyring through
//! `/v1/operator/keyring`, and fail (exit 1) naming the members that failed or did not
//! answer.

use cairn_api::KeyringResponse;

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::write_stdout;

const HELP: &str = "\
Usage: cairn keyring [options]

  Manages the encryption keys of the gossip pool. Several keys may be installed
  at once so that a key can be rotated without a partition: every member
  accepts all of its keys and encrypts with its primary one.

  To rotate: -install NEW, then -use NEW, then -remove OLD. Each operation is
  applied on every alive member; the command returns 0 when all of them
  answered without error, 1 otherwise (naming the members that failed).

  Exactly one of -list, -list-primary, -install, -use and -remove is required.";

const SPECS: &[Spec] = &[
    spec(
        "list",
        Kind::Bool,
        "List the installed keys and how many members hold each.",
    ),
    spec(
        "list-primary",
        Kind::Bool,
        "List the primary keys and how many members use each.",
    ),
    spec(
        "install",
        Kind::Value,
        "Install a new key on every member (base64, as from cairn keygen).",
    ),
    spec(
        "use",
        Kind::Value,
        "Make an installed key the primary (encrypting) key on every member.",
    ),
    spec(
        "remove",
        Kind::Value,
        "Remove a key from every member (the primary key cannot be removed).",
    ),
    spec(
        "relay-factor",
        Kind::Value,
        "Members also send their answer through this many others (0-5). Default 0.",
    ),
    spec(
        "local-only",
        Kind::Bool,
        "List only the local datacenter's pools (with -list or -list-primary).",
    ),
];

/// What the command was asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    List { primary: bool },
    Install(String),
    Use(String),
    Remove(String),
}

/// Runs `cairn keyring`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, SPECS, true, &args)?;
    super::no_args(&flags, HELP)?;
    let mut actions = Vec::new();
    if flags.bool("list") {
        actions.push(Action::List { primary: false });
    }
    if flags.bool("list-primary") {
        actions.push(Action::List { primary: true });
    }
    for (name, make) in [
        ("install", Action::Install as fn(String) -> Action),
        ("use", Action::Use),
        ("remove", Action::Remove),
    ] {
        if let Some(k) = flags.str(name) {
            actions.push(make(k.to_string()));
        }
    }
    let action = match actions.len() {
        1 => actions.remove(0),
        0 => {
            return Err(CliError::usage(
                "error: at least one operation is required",
                HELP,
            ))
        }
        _ => {
            return Err(CliError::usage(
                "error: only one operation may be given",
                HELP,
            ))
        }
    };
    let relay = match super::flag_value(flags.u64("relay-factor"), HELP)? {
        None => 0,
        Some(r) if r <= 5 => r as u8,
        Some(_) => {
            return Err(CliError::usage(
                "error: -relay-factor must be in range: [0, 5]",
                HELP,
            ))
        }
    };
    let local_only = flags.bool("local-only");
    if local_only && !matches!(action, Action::List { .. }) {
        return Err(CliError::usage(
            "error: -local-only may only be used with -list or -list-primary",
            HELP,
        ));
    }
    let client = super::client(&flags)?;
    match action {
        Action::List { primary } => {
            let what = if primary { "primary " } else { "" };
            write_stdout(format!("==> Gathering installed {what}encryption keys...\n").as_bytes())?;
            let pools = client
                .keyring_list(relay, local_only)
                .await
                .map_err(CliError::ctx("error"))?;
            write_stdout(render(&pools, primary).as_bytes())
        }
        Action::Install(key) => {
            write_stdout(b"==> Installing new gossip encryption key...\n")?;
            client
                .keyring_install(&key, relay)
                .await
                .map_err(CliError::ctx("error"))
        }
        Action::Use(key) => {
            write_stdout(b"==> Changing primary gossip encryption key...\n")?;
            client
                .keyring_use(&key, relay)
                .await
                .map_err(CliError::ctx("error"))
        }
        Action::Remove(key) => {
            write_stdout(b"==> Removing gossip encryption key...\n")?;
            client
                .keyring_remove(&key, relay)
                .await
                .map_err(CliError::ctx("error"))
        }
    }
}

/// Each pool's keys as `consul keyring -list` prints them: a `dc1 (LAN):` heading, then
/// one `  KEY [held/members]` line per key.
fn render(pools: &[KeyringResponse], primary: bool) -> String {
    let mut out = String::new();
    for p in pools {
        out.push_str(&format!("\n{}:\n", p.pool_name()));
        let keys = if primary { &p.primary_keys } else { &p.keys };
        for (key, n) in keys {
            out.push_str(&format!("  {key} [{n}/{}]\n", p.num_nodes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_each_key_with_its_share_of_the_pool() {
        let pool = KeyringResponse {
            datacenter: "dc1".into(),
            keys: [("A=".to_string(), 3), ("B=".to_string(), 2)].into(),
            primary_keys: [("A=".to_string(), 3)].into(),
            num_nodes: 3,
            ..Default::default()
        };
        assert_eq!(
            render(std::slice::from_ref(&pool), false),
            "\ndc1 (LAN):\n  A= [3/3]\n  B= [2/3]\n"
        );
        assert_eq!(render(&[pool], true), "\ndc1 (LAN):\n  A= [3/3]\n");
    }
}
