//! `cairn acl role create|read|list|update|delete`, as `consul acl role` has them.

use serde_json::{json, Value};

use super::acl::{self, Kindof};
use super::acl_object;
use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};

const HELP: &str = "\
Usage: cairn acl role <subcommand> [options]

  Manages ACL roles: named sets of policies and identities that tokens can
  be granted together.

Subcommands:
    create    Creates a role
    delete    Deletes a role
    list      Lists every role
    read      Reads a role (-id or -name)
    update    Updates a role";

const CREATE_HELP: &str = "\
Usage: cairn acl role create -name NAME [options]

  Creates a role.

      $ cairn acl role create -name web -policy-name app-config -service-identity web";

const READ_HELP: &str = "\
Usage: cairn acl role read [options] -id ID | -name NAME

  Prints a role.";

const LIST_HELP: &str = "\
Usage: cairn acl role list [options]

  Prints every role.";

const UPDATE_HELP: &str = "\
Usage: cairn acl role update [options] -id ID

  Updates a role. The policies and identities given are added to the ones it
  has, and options left out keep their value, unless -no-merge is given.";

const DELETE_HELP: &str = "\
Usage: cairn acl role delete [options] -id ID | -name NAME

  Deletes a role.";

const ID: Spec = spec("id", Kind::Value, "The role's ID (or a unique prefix).");
const NAME: Spec = spec("name", Kind::Value, "The role's name.");

const WRITE_FLAGS: &[Spec] = &[
    NAME,
    spec("description", Kind::Value, "A description of the role."),
    spec(
        "policy-id",
        Kind::Multi,
        "ID of a policy to link. Repeatable.",
    ),
    spec(
        "policy-name",
        Kind::Multi,
        "Name of a policy to link. Repeatable.",
    ),
    spec(
        "service-identity",
        Kind::Multi,
        "A service identity: NAME or NAME:DC1,DC2. Repeatable.",
    ),
    spec(
        "node-identity",
        Kind::Multi,
        "A node identity: NODE:DATACENTER. Repeatable.",
    ),
];

const UPDATE_EXTRA: &[Spec] = &[
    ID,
    spec(
        "no-merge",
        Kind::Bool,
        "Replace every field instead of adding to and keeping the current ones.",
    ),
];

const NAMED: acl_object::Named = acl_object::Named {
    kind: Kindof::Role,
    help: HELP,
    read_help: READ_HELP,
    list_help: LIST_HELP,
    update_help: UPDATE_HELP,
    delete_help: DELETE_HELP,
    find: &[ID, NAME],
    update_flags: &[UPDATE_EXTRA, WRITE_FLAGS],
    updated,
};

/// Runs `cairn acl role ...`.
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
    let body = json!({
        "Name": name,
        "Description": flags.str("description").unwrap_or(""),
        "Policies": acl::links(flags.all("policy-id"), flags.all("policy-name")),
        "ServiceIdentities": acl::service_identities(flags.all("service-identity"))?,
        "NodeIdentities": acl::node_identities(flags.all("node-identity"))?,
    });
    let client = super::client(&flags)?;
    let role = client
        .acl_role_create(&body)
        .await
        .map_err(CliError::ctx("Failed to create new role"))?;
    acl::print_one(&role, format, super::acl_format::role)
}

/// `current` changed as `flags` say: links and identities are added (replaced with
/// `-no-merge`), name and description replaced when given.
fn updated(current: &Value, flags: &Flags) -> Result<Value, CliError> {
    let merge = !flags.bool("no-merge");
    let mut body = json!({"ID": current["ID"], "Name": current["Name"]});
    if merge {
        body["Description"] = current["Description"].clone();
    }
    if let Some(n) = flags.str("name") {
        body["Name"] = json!(n);
    }
    if let Some(d) = flags.str("description") {
        body["Description"] = json!(d);
    }
    let lists = [
        (
            "Policies",
            acl::links(flags.all("policy-id"), flags.all("policy-name")),
        ),
        (
            "ServiceIdentities",
            acl::service_identities(flags.all("service-identity"))?,
        ),
        (
            "NodeIdentities",
            acl::node_identities(flags.all("node-identity"))?,
        ),
    ];
    for (key, add) in lists {
        let mut list = if merge {
            current[key].as_array().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        list.extend(add);
        body[key] = Value::Array(list);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_adds_links_unless_no_merge() {
        let specs: Vec<Spec> = UPDATE_EXTRA.iter().chain(WRITE_FLAGS).copied().collect();
        let f = |a: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            acl::parse("", &specs, true, &a).unwrap()
        };
        let cur = json!({"ID": "r", "Name": "web", "Description": "d",
                         "Policies": [{"ID": "p1", "Name": "one"}]});
        let b = updated(&cur, &f(&["-policy-name=two"])).unwrap();
        assert_eq!(
            b["Policies"],
            json!([{"ID": "p1", "Name": "one"}, {"Name": "two"}])
        );
        assert_eq!(b["Description"], "d");
        let b = updated(&cur, &f(&["-no-merge", "-policy-name=two"])).unwrap();
        assert_eq!(b["Policies"], json!([{"Name": "two"}]));
        assert_eq!(b["Description"], Value::Null);
    }
}
