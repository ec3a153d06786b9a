//! The `cairn acl` subcommands that are the same for every kind of ACL object but for
//! which endpoint they call and which words they print: `list` for tokens, policies and
//! roles, and `read`, `update` and `delete` for policies and roles, which are found by
//! `-id` (an ID or a unique prefix) or by `-name`. Each kind keeps only what is its own
//! (its flags, how `create` and `update` build a body) in its module.

use cairn_api::{ApiError, Client};
use serde_json::Value;

use super::acl::{self, Kindof};
use super::acl_format;
use crate::error::CliError;
use crate::flags::{Flags, Spec};
use crate::output::say;

impl Kindof {
    /// The kind's name in messages.
    fn noun(self) -> &'static str {
        match self {
            Kindof::Token => "token",
            Kindof::Policy => "policy",
            Kindof::Role => "role",
        }
    }

    /// How one object of this kind is printed in the pretty format.
    fn pretty(self) -> fn(&Value, bool) -> String {
        match self {
            Kindof::Token => acl_format::token,
            Kindof::Policy => acl_format::policy,
            Kindof::Role => acl_format::role,
        }
    }

    async fn list(self, c: &Client) -> Result<Vec<Value>, ApiError> {
        match self {
            Kindof::Token => c.acl_token_list().await,
            Kindof::Policy => c.acl_policy_list().await,
            Kindof::Role => c.acl_role_list().await,
        }
    }

    async fn read(self, c: &Client, id: &str) -> Result<Value, ApiError> {
        match self {
            Kindof::Token => c.acl_token_read(id).await,
            Kindof::Policy => c.acl_policy_read(id).await,
            Kindof::Role => c.acl_role_read(id).await,
        }
    }

    /// Tokens have no names: only policies and roles are looked up by one.
    async fn read_by_name(self, c: &Client, name: &str) -> Result<Value, ApiError> {
        match self {
            Kindof::Role => c.acl_role_read_by_name(name).await,
            _ => c.acl_policy_read_by_name(name).await,
        }
    }

    async fn update(self, c: &Client, id: &str, body: &Value) -> Result<Value, ApiError> {
        match self {
            Kindof::Token => c.acl_token_update(id, body).await,
            Kindof::Policy => c.acl_policy_update(id, body).await,
            Kindof::Role => c.acl_role_update(id, body).await,
        }
    }

    async fn delete(self, c: &Client, id: &str) -> Result<bool, ApiError> {
        match self {
            Kindof::Token => c.acl_token_delete(id).await,
            Kindof::Policy => c.acl_policy_delete(id).await,
            Kindof::Role => c.acl_role_delete(id).await,
        }
    }
}

/// `list`: every object of the kind.
pub async fn list(kind: Kindof, args: Vec<String>, help: &str) -> Result<(), CliError> {
    let flags = acl::parse(help, &[], true, &args)?;
    super::no_args(&flags, help)?;
    let format = acl::format(&flags, help)?;
    let client = super::client(&flags)?;
    let all = kind.list(&client).await.map_err(CliError::ctx(&format!(
        "Failed to retrieve the {} list",
        kind.noun()
    )))?;
    acl::print_list(&all, format, kind.pretty())
}

/// The policy or role named by `-id` (an ID or unique prefix) or `-name`.
async fn fetch(
    client: &Client,
    flags: &Flags,
    help: &str,
    kind: Kindof,
) -> Result<Value, CliError> {
    let noun = kind.noun();
    match (flags.str("id"), flags.str("name")) {
        (Some(id), _) if !id.is_empty() => {
            let id = acl::resolve_id(client, id, kind).await?;
            kind.read(client, &id)
                .await
                .map_err(|e| CliError::failed(format!("Error reading {noun} {id:?}: {e}")))
        }
        (_, Some(name)) if !name.is_empty() => kind
            .read_by_name(client, name)
            .await
            .map_err(|e| CliError::failed(format!("Error reading {noun} {name:?}: {e}"))),
        _ => Err(CliError::usage(
            "error: must specify either the -id or -name parameter",
            help,
        )),
    }
}

/// `read`: one policy or role, by `-id` or `-name` (`specs`).
pub async fn read(
    kind: Kindof,
    args: Vec<String>,
    help: &str,
    specs: &[Spec],
) -> Result<(), CliError> {
    let flags = acl::parse(help, specs, true, &args)?;
    super::no_args(&flags, help)?;
    let format = acl::format(&flags, help)?;
    let client = super::client(&flags)?;
    let found = fetch(&client, &flags, help, kind).await?;
    acl::print_one(&found, format, kind.pretty())
}

/// `update`: the policy or role found by `-id` or `-name`, changed by `updated`. With
/// both, `-id` finds it and `-name` renames it.
pub async fn update(
    kind: Kindof,
    args: Vec<String>,
    help: &str,
    specs: &[Spec],
    updated: fn(&Value, &Flags) -> Result<Value, CliError>,
) -> Result<(), CliError> {
    let flags = acl::parse(help, specs, true, &args)?;
    super::no_args(&flags, help)?;
    let format = acl::format(&flags, help)?;
    let client = super::client(&flags)?;
    let current = fetch(&client, &flags, help, kind).await?;
    let id = current["ID"].as_str().unwrap_or("").to_string();
    let body = updated(&current, &flags)?;
    let changed = kind
        .update(&client, &id, &body)
        .await
        .map_err(|e| CliError::failed(format!("Error updating {} {id:?}: {e}", kind.noun())))?;
    acl::print_one(&changed, format, kind.pretty())
}

/// `delete`: the policy or role found by `-id` or `-name` (`specs`).
pub async fn delete(
    kind: Kindof,
    args: Vec<String>,
    help: &str,
    specs: &[Spec],
) -> Result<(), CliError> {
    let flags = acl::parse(help, specs, false, &args)?;
    super::no_args(&flags, help)?;
    let client = super::client(&flags)?;
    let current = fetch(&client, &flags, help, kind).await?;
    let id = current["ID"].as_str().unwrap_or("").to_string();
    let noun = kind.noun();
    kind.delete(&client, &id)
        .await
        .map_err(|e| CliError::failed(format!("Error deleting {noun} {id:?}: {e}")))?;
    let mut word = noun.to_string();
    word[..1].make_ascii_uppercase();
    say(&format!("{word} {id:?} deleted successfully"))
}

/// What a policy or role module gives the subcommands it shares: its kind, help texts,
/// the flags that find one (`-id`, `-name`), its update flags and how an update builds
/// the body.
pub struct Named {
    pub kind: Kindof,
    pub help: &'static str,
    pub read_help: &'static str,
    pub list_help: &'static str,
    pub update_help: &'static str,
    pub delete_help: &'static str,
    pub find: &'static [Spec],
    pub update_flags: &'static [&'static [Spec]],
    pub updated: fn(&Value, &Flags) -> Result<Value, CliError>,
}

/// Runs `read`, `list`, `update` or `delete` for a policy or role (`create` stays with
/// each kind); anything else is a usage error.
pub async fn run_named(n: &Named, sub: &str, rest: Vec<String>) -> Result<(), CliError> {
    match sub {
        "read" => read(n.kind, rest, n.read_help, n.find).await,
        "list" => list(n.kind, rest, n.list_help).await,
        "update" => {
            let specs: Vec<Spec> = n.update_flags.concat();
            update(n.kind, rest, n.update_help, &specs, n.updated).await
        }
        "delete" => delete(n.kind, rest, n.delete_help, n.find).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            n.help,
        )),
    }
}
