//! `cairn acl token create|read|list|update|delete|clone`, as `consul acl token` has them.

use serde_json::{json, Value};

use super::acl::{self, Kindof};
use super::acl_object;
use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};
use crate::output::say;

const HELP: &str = "\
Usage: cairn acl token <subcommand> [options]

  Manages ACL tokens. -id takes a token's AccessorID, a unique prefix of
  one, or `anonymous`.

Subcommands:
    clone     Creates a token with the same grants as another
    create    Creates a token
    delete    Deletes a token
    list      Lists every token
    read      Reads a token (-id, or -self for the one in use)
    update    Updates a token's description and grants";

const CREATE_HELP: &str = "\
Usage: cairn acl token create [options]

  Creates a token holding the given policies, roles and identities.

      $ cairn acl token create -description \"app\" -policy-name app-config
      $ cairn acl token create -service-identity web:dc1 -expires-ttl 1h";

const READ_HELP: &str = "\
Usage: cairn acl token read [options] -id ID | -self

  Prints a token.";

const LIST_HELP: &str = "\
Usage: cairn acl token list [options]

  Prints every token.";

const UPDATE_HELP: &str = "\
Usage: cairn acl token update [options] -id ID

  Updates a token. Options left out keep their value; -policy-id,
  -policy-name, -role-id, -role-name, -service-identity and -node-identity
  replace that kind of grant, the -append-... forms add to it.";

const DELETE_HELP: &str = "\
Usage: cairn acl token delete [options] -id ID

  Deletes a token.";

const CLONE_HELP: &str = "\
Usage: cairn acl token clone [options] -id ID

  Creates a new token (new AccessorID and SecretID) with the grants of the
  token -id, and its description unless -description is given.";

const ID: Spec = spec(
    "id",
    Kind::Value,
    "The token's AccessorID (or a unique prefix).",
);
const DESCRIPTION: Spec = spec("description", Kind::Value, "A description of the token.");

const GRANT_FLAGS: &[Spec] = &[
    spec(
        "policy-id",
        Kind::Multi,
        "ID of a policy to grant. Repeatable.",
    ),
    spec(
        "policy-name",
        Kind::Multi,
        "Name of a policy to grant. Repeatable.",
    ),
    spec("role-id", Kind::Multi, "ID of a role to grant. Repeatable."),
    spec(
        "role-name",
        Kind::Multi,
        "Name of a role to grant. Repeatable.",
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

const CREATE_ONLY: &[Spec] = &[
    DESCRIPTION,
    spec(
        "local",
        Kind::Bool,
        "Create the token local to this datacenter.",
    ),
    spec(
        "expires-ttl",
        Kind::Value,
        "How long until the token expires (e.g. 1h; 1m to 24h).",
    ),
    spec("secret", Kind::Value, "The SecretID to use (a UUID)."),
    spec("accessor", Kind::Value, "The AccessorID to use (a UUID)."),
];

const UPDATE_ONLY: &[Spec] = &[
    ID,
    DESCRIPTION,
    spec(
        "append-policy-id",
        Kind::Multi,
        "ID of a policy to add. Repeatable.",
    ),
    spec(
        "append-policy-name",
        Kind::Multi,
        "Name of a policy to add. Repeatable.",
    ),
    spec(
        "append-role-id",
        Kind::Multi,
        "ID of a role to add. Repeatable.",
    ),
    spec(
        "append-role-name",
        Kind::Multi,
        "Name of a role to add. Repeatable.",
    ),
    spec(
        "append-service-identity",
        Kind::Multi,
        "A service identity to add. Repeatable.",
    ),
    spec(
        "append-node-identity",
        Kind::Multi,
        "A node identity to add. Repeatable.",
    ),
];

const READ_FLAGS: &[Spec] = &[
    ID,
    spec("self", Kind::Bool, "Read the token used by this command."),
];

const CLONE_FLAGS: &[Spec] = &[ID, DESCRIPTION];

/// Runs `cairn acl token ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "create" => create(rest).await,
        "read" => read(rest).await,
        "list" => acl_object::list(Kindof::Token, rest, LIST_HELP).await,
        "update" => update(rest).await,
        "delete" => delete(rest).await,
        "clone" => clone(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

fn specs(parts: &[&[Spec]]) -> Vec<Spec> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

async fn create(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(
        CREATE_HELP,
        &specs(&[CREATE_ONLY, GRANT_FLAGS]),
        true,
        &args,
    )?;
    super::no_args(&flags, CREATE_HELP)?;
    let format = acl::format(&flags, CREATE_HELP)?;
    let mut body = json!({
        "Description": flags.str("description").unwrap_or(""),
        "Local": flags.bool("local"),
        "Policies": acl::links(flags.all("policy-id"), flags.all("policy-name")),
        "Roles": acl::links(flags.all("role-id"), flags.all("role-name")),
        "ServiceIdentities": acl::service_identities(flags.all("service-identity"))?,
        "NodeIdentities": acl::node_identities(flags.all("node-identity"))?,
    });
    for (flag, key) in [
        ("expires-ttl", "ExpirationTTL"),
        ("secret", "SecretID"),
        ("accessor", "AccessorID"),
    ] {
        if let Some(v) = flags.str(flag) {
            body[key] = json!(v);
        }
    }
    let client = super::client(&flags)?;
    let token = client
        .acl_token_create(&body)
        .await
        .map_err(CliError::ctx("Failed to create new token"))?;
    acl::print_one(&token, format, super::acl_format::token)
}

async fn read(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(READ_HELP, READ_FLAGS, true, &args)?;
    super::no_args(&flags, READ_HELP)?;
    let format = acl::format(&flags, READ_HELP)?;
    let client = super::client(&flags)?;
    let token = if flags.bool("self") {
        client
            .acl_token_read_self()
            .await
            .map_err(CliError::ctx("Error reading token"))?
    } else {
        let id = acl::required(&flags, "id", READ_HELP)?;
        let id = acl::resolve_id(&client, id, Kindof::Token).await?;
        client
            .acl_token_read(&id)
            .await
            .map_err(|e| CliError::failed(format!("Error reading token {id:?}: {e}")))?
    };
    acl::print_one(&token, format, super::acl_format::token)
}

/// The grants of `current` (a token read from the agent) changed as `flags` say.
pub fn updated(current: &Value, flags: &Flags) -> Result<Value, CliError> {
    let mut body = current.clone();
    if let Some(d) = flags.str("description") {
        body["Description"] = json!(d);
    }
    let grant = |body: &mut Value, key: &str, set: Vec<Value>, add: Vec<Value>, replace: bool| {
        let mut list = if replace {
            Vec::new()
        } else {
            body[key].as_array().cloned().unwrap_or_default()
        };
        list.extend(set);
        list.extend(add);
        body[key] = Value::Array(list);
    };
    let pol = acl::links(flags.all("policy-id"), flags.all("policy-name"));
    let pol_add = acl::links(
        flags.all("append-policy-id"),
        flags.all("append-policy-name"),
    );
    let replace = !pol.is_empty();
    grant(&mut body, "Policies", pol, pol_add, replace);
    let roles = acl::links(flags.all("role-id"), flags.all("role-name"));
    let roles_add = acl::links(flags.all("append-role-id"), flags.all("append-role-name"));
    let replace = !roles.is_empty();
    grant(&mut body, "Roles", roles, roles_add, replace);
    let sids = acl::service_identities(flags.all("service-identity"))?;
    let sids_add = acl::service_identities(flags.all("append-service-identity"))?;
    let replace = !sids.is_empty();
    grant(&mut body, "ServiceIdentities", sids, sids_add, replace);
    let nids = acl::node_identities(flags.all("node-identity"))?;
    let nids_add = acl::node_identities(flags.all("append-node-identity"))?;
    let replace = !nids.is_empty();
    grant(&mut body, "NodeIdentities", nids, nids_add, replace);
    Ok(body)
}

async fn update(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(
        UPDATE_HELP,
        &specs(&[UPDATE_ONLY, GRANT_FLAGS]),
        true,
        &args,
    )?;
    super::no_args(&flags, UPDATE_HELP)?;
    let format = acl::format(&flags, UPDATE_HELP)?;
    let id = acl::required(&flags, "id", UPDATE_HELP)?;
    let client = super::client(&flags)?;
    let id = acl::resolve_id(&client, id, Kindof::Token).await?;
    let current = client
        .acl_token_read(&id)
        .await
        .map_err(|e| CliError::failed(format!("Error when retrieving current token: {e}")))?;
    let body = updated(&current, &flags)?;
    let token = client
        .acl_token_update(&id, &body)
        .await
        .map_err(|e| CliError::failed(format!("Failed to update token {id}: {e}")))?;
    if format != acl::Format::Json {
        say("Token updated successfully.")?;
    }
    acl::print_one(&token, format, super::acl_format::token)
}

async fn delete(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(DELETE_HELP, &[ID], false, &args)?;
    super::no_args(&flags, DELETE_HELP)?;
    let id = acl::required(&flags, "id", DELETE_HELP)?;
    let client = super::client(&flags)?;
    let id = acl::resolve_id(&client, id, Kindof::Token).await?;
    client
        .acl_token_delete(&id)
        .await
        .map_err(|e| CliError::failed(format!("Error deleting token {id:?}: {e}")))?;
    say(&format!("Token {id:?} deleted successfully"))
}

async fn clone(args: Vec<String>) -> Result<(), CliError> {
    let flags = acl::parse(CLONE_HELP, CLONE_FLAGS, true, &args)?;
    super::no_args(&flags, CLONE_HELP)?;
    let format = acl::format(&flags, CLONE_HELP)?;
    let id = acl::required(&flags, "id", CLONE_HELP)?;
    let client = super::client(&flags)?;
    let id = acl::resolve_id(&client, id, Kindof::Token).await?;
    let token = client
        .acl_token_clone(&id, flags.str("description").unwrap_or(""))
        .await
        .map_err(CliError::ctx("Error cloning token"))?;
    if format != acl::Format::Json {
        say("Token cloned successfully.")?;
    }
    acl::print_one(&token, format, super::acl_format::token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        acl::parse("", &specs(&[UPDATE_ONLY, GRANT_FLAGS]), true, &args).unwrap()
    }

    #[test]
    fn update_replaces_or_appends_grants() {
        let cur = json!({
            "AccessorID": "a", "Description": "old",
            "Policies": [{"ID": "p1", "Name": "one"}],
            "ServiceIdentities": [{"ServiceName": "web"}]
        });
        let b = updated(&cur, &flags(&["-description=new", "-policy-name=two"])).unwrap();
        assert_eq!(b["Description"], "new");
        assert_eq!(b["Policies"], json!([{"Name": "two"}]));
        assert_eq!(b["ServiceIdentities"], json!([{"ServiceName": "web"}]));
        let b = updated(
            &cur,
            &flags(&["-append-policy-id=p2", "-append-service-identity=db"]),
        )
        .unwrap();
        assert_eq!(b["Description"], "old");
        assert_eq!(
            b["Policies"],
            json!([{"ID": "p1", "Name": "one"}, {"ID": "p2"}])
        );
        assert_eq!(
            b["ServiceIdentities"],
            json!([{"ServiceName": "web"}, {"ServiceName": "db"}])
        );
    }
}
