//! `cairn acl policy create|read|list|update|delete`, as `consul acl policy` has them.
//! Rules come from `-rules`: the text itself, `@FILE`, or `-` for standard input.

use serde_json::{json, Value};

use super::acl::{self, Kindof};
use super::acl_object;
use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};

const HELP: &str = "\
Usage: cairn acl policy <subcommand> [options]

  Manages ACL policies. A policy is named, and its rules (HCL or JSON) say
  what a token holding it may do:

      key_prefix \"app/\" { policy = \"read\" }
      service_prefix \"\" { policy = \"read\" }

Subcommands:
    create    Creates a policy
    delete    Deletes a policy
    list      Lists every policy
    read      Reads a policy (-id or -name)
    update    Updates a policy";

const CREATE_HELP: &str = "\
Usage: cairn acl policy create -name NAME [options]

  Creates a policy. -rules is the rules text, @FILE to read it from a file,
  or - to read it from standard input.

      $ cairn acl policy create -name app-config -rules @app-config.hcl";

const READ_HELP: &str = "\
Usage: cairn acl policy read [options] -id ID | -name NAME

  Prints a policy and its rules.";

const LIST_HELP: &str = "\
Usage: cairn acl policy list [options]

  Prints every policy (without rules).";

const UPDATE_HELP: &str = "\
Usage: cairn acl policy update [options] -id ID | -name NAME

  Updates a policy. Options left out keep their value, unless -no-merge is
  given. To rename a policy, give its -id and the new -name.";

const DELETE_HELP: &str = "\
Usage: cairn acl policy delete [options] -id ID | -name NAME

  Deletes a policy.";

const ID: Spec = spec("id", Kind::Value, "The policy's ID (or a unique prefix).");
const NAME: Spec = spec("name", Kind::Value, "The policy's name.");

const WRITE_FLAGS: &[Spec] = &[
    NAME,
    spec("description", Kind::Value, "A description of the policy."),
    spec(
        "rules",
        Kind::Value,
        "The rules: the text, @FILE to read them from a file, or - for stdin.",
    ),
    spec(
        "valid-datacenter",
        Kind::Multi,
        "A datacenter the policy is valid in (default: all). Repeatable.",
    ),
];

const UPDATE_EXTRA: &[Spec] = &[
    ID,
    spec(
        "no-merge",
        Kind::Bool,
        "Replace every field instead of keeping the ones left out.",
    ),
];

const NAMED: acl_object::Named = acl_object::Named {
    kind: Kindof::Policy,
    help: HELP,
    read_help: READ_HELP,
    list_help: LIST_HELP,
    update_help: UPDATE_HELP,
    delete_help: DELETE_HELP,
    find: &[ID, NAME],
    update_flags: &[UPDATE_EXTRA, WRITE_FLAGS],
    updated,
};

/// Runs `cairn acl policy ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "create" => create(rest).await,
        other => acl_object::run_named(&NAMED, other, rest).await,
    }
}

async fn create(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(CREATE_HELP, WRITE_FLAGS, true, &args)?;
    super::no_args(&flags, CREATE_HELP)?;
    let format = acl::format(&flags, CREATE_HELP)?;
    let name = acl::required(&flags, "name", CREATE_HELP)?;
    let rules = match flags.str("rules") {
        Some(r) => acl::rules_arg(r)?,
        None => String::new(),
    };
    let body = json!({
        "Name": name,
        "Description": flags.str("description").unwrap_or(""),
        "Rules": rules,
        "Datacenters": flags.all("valid-datacenter"),
    });
    let client = super::client(&flags)?;
    let policy = client
        .acl_policy_create(&body)
        .await
        .map_err(CliError::ctx("Failed to create new policy"))?;
    acl::print_one(&policy, format, super::acl_format::policy)
}

/// `current` changed as `flags` say (`-no-merge`: only what the flags give).
fn updated(current: &Value, flags: &Flags) -> Result<Value, CliError> {
    let merge = !flags.bool("no-merge");
    let keep = |key: &str| {
        if merge {
            current[key].clone()
        } else {
            Value::Null
        }
    };
    let mut body = json!({
        "ID": current["ID"],
        "Name": keep("Name"),
        "Description": keep("Description"),
        "Rules": keep("Rules"),
        "Datacenters": keep("Datacenters"),
    });
    if let Some(n) = flags.str("name") {
        body["Name"] = json!(n);
    }
    if let Some(d) = flags.str("description") {
        body["Description"] = json!(d);
    }
    if let Some(r) = flags.str("rules") {
        body["Rules"] = json!(acl::rules_arg(r)?);
    }
    if !flags.all("valid-datacenter").is_empty() {
        body["Datacenters"] = json!(flags.all("valid-datacenter"));
    }
    if let Value::Object(m) = &mut body {
        m.retain(|_, v| !v.is_null());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let specs: Vec<Spec> = UPDATE_EXTRA.iter().chain(WRITE_FLAGS).copied().collect();
        acl::parse("", &specs, true, &args).unwrap()
    }

    #[test]
    fn update_merges_unless_told_not_to() {
        let cur = json!({"ID": "p", "Name": "n", "Description": "d", "Rules": "acl = \"read\""});
        let b = updated(&cur, &flags(&["-description=new"])).unwrap();
        assert_eq!(
            b,
            json!({"ID": "p", "Name": "n", "Description": "new", "Rules": "acl = \"read\""})
        );
        let b = updated(&cur, &flags(&["-no-merge", "-name=m"])).unwrap();
        assert_eq!(b, json!({"ID": "p", "Name": "m"}));
    }
}
