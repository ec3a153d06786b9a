//! `cairn acl bootstrap|token|policy|role ...`, as `consul acl` has them: dispatch, the
//! `-format`/`-meta` output flags, and what the groups share (looking an ID up by a unique
//! prefix, parsing identity flags, reading rules from `@file` or stdin). The subcommands
//! are in [`super::acl_token`], [`super::acl_policy`] and [`super::acl_role`]; their text
//! output in [`super::acl_format`].

use cairn_api::{ApiError, Client};
use serde_json::{json, Value};

use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};
use crate::output::write_stdout;

const HELP: &str = "\
Usage: cairn acl <subcommand> [options] [args]

  Bootstraps the ACL system and manages its tokens, policies and roles.
  Every subcommand but bootstrap needs a token allowed to read (list, read)
  or write (create, update, delete) ACLs: -token or CONSUL_HTTP_TOKEN.

  Bootstrap the ACL system (once per cluster):

      $ cairn acl bootstrap

  Create a policy from a rules file and a token holding it:

      $ cairn acl policy create -name app-config -rules @app-config.hcl
      $ cairn acl token create -description \"app\" -policy-name app-config

Subcommands:
    bootstrap    Bootstraps the ACL system and prints the management token
    policy       Creates, reads, updates, lists and deletes policies
    role         Creates, reads, updates, lists and deletes roles
    token        Creates, reads, updates, clones, lists and deletes tokens";

const BOOTSTRAP_HELP: &str = "\
Usage: cairn acl bootstrap [options] [FILE]

  Creates the cluster's first management token and prints it. This works
  once: afterwards the agent refuses, and tokens are made with a management
  token (cairn acl token create). With FILE (or - for standard input), the
  new token's SecretID is read from it instead of generated.";

/// `-format` and `-meta`, which every command that prints ACL objects takes.
pub const OUTPUT_FLAGS: &[Spec] = &[
    spec(
        "format",
        Kind::Value,
        "Output format: pretty (the default) or json (the API's JSON).",
    ),
    spec(
        "meta",
        Kind::Bool,
        "Also show metadata: the content hash and the Raft indexes.",
    ),
];

/// How objects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Consul's text layout; `meta` adds hashes and indexes.
    Pretty { meta: bool },
    /// The API's JSON, indented.
    Json,
}

/// Reads `-format`/`-meta`.
pub fn format(flags: &Flags, help: &str) -> Result<Format, CliError> {
    match flags.str("format").unwrap_or("pretty") {
        "pretty" => Ok(Format::Pretty {
            meta: flags.bool("meta"),
        }),
        "json" => Ok(Format::Json),
        other => Err(CliError::usage(
            format!("error: invalid -format {other:?}: must be pretty or json"),
            help,
        )),
    }
}

/// A command's flags: its own, the output flags and the HTTP flags.
pub fn parse(help: &str, own: &[Spec], output: bool, args: &[String]) -> Result<Flags, CliError> {
    let mut specs: Vec<Spec> = own.to_vec();
    if output {
        specs.extend_from_slice(OUTPUT_FLAGS);
    }
    let flags = super::parse_flags(help, &specs, true, args)?;
    Ok(flags)
}

/// Prints JSON the way Consul's CLI does (four-space indent).
pub fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)
        .map_err(CliError::ctx("Error encoding output"))?;
    out.push(b'\n');
    write_stdout(&out)
}

/// Prints one object as JSON or through `pretty`.
pub fn print_one(
    v: &Value,
    format: Format,
    pretty: impl Fn(&Value, bool) -> String,
) -> Result<(), CliError> {
    match format {
        Format::Json => print_json(v),
        Format::Pretty { meta } => write_stdout(pretty(v, meta).as_bytes()),
    }
}

/// Prints a list as a JSON array or as pretty blocks separated by blank lines.
pub fn print_list(
    list: &[Value],
    format: Format,
    pretty: impl Fn(&Value, bool) -> String,
) -> Result<(), CliError> {
    match format {
        Format::Json => print_json(&list),
        Format::Pretty { meta } => {
            let blocks: Vec<String> = list.iter().map(|v| pretty(v, meta)).collect();
            write_stdout(blocks.join("\n").as_bytes())
        }
    }
}

/// Runs `cairn acl ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "bootstrap" => bootstrap(rest).await,
        "token" => super::acl_token::run(rest).await,
        "policy" => super::acl_policy::run(rest).await,
        "role" => super::acl_role::run(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

async fn bootstrap(args: Vec<String>) -> Result<(), CliError> {
    let flags = parse(BOOTSTRAP_HELP, &[], true, &args)?;
    let format = format(&flags, BOOTSTRAP_HELP)?;
    let secret = match flags.args.as_slice() {
        [] => None,
        [file] => Some(read_arg_file(file, "secret")?.trim().to_string()),
        more => {
            return Err(CliError::usage(
                format!(
                    "error: too many arguments (expected 0 or 1, got {})",
                    more.len()
                ),
                BOOTSTRAP_HELP,
            ))
        }
    };
    let client = super::client(&flags)?;
    let token = match secret {
        Some(s) => client.acl_bootstrap_with_secret(&s).await,
        None => client.acl_bootstrap().await,
    }
    .map_err(CliError::ctx("Failed ACL bootstrapping"))?;
    print_one(&token, format, super::acl_format::token)
}

/// Reads a file named on the command line, or standard input for `-`.
pub fn read_arg_file(path: &str, what: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::failed(format!("Error reading the {what} from stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::failed(format!("Error reading the {what} from {path}: {e}")))
}

/// A `-rules` value: `@file`, `-` (stdin) or the rules themselves.
pub fn rules_arg(v: &str) -> Result<String, CliError> {
    match v.strip_prefix('@') {
        Some(file) => read_arg_file(file, "rules"),
        None if v == "-" => read_arg_file("-", "rules"),
        None => Ok(v.to_string()),
    }
}

/// Policy or role links from `-X-id` and `-X-name` values.
pub fn links(ids: &[String], names: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|i| json!({"ID": i}))
        .chain(names.iter().map(|n| json!({"Name": n})))
        .collect()
}

/// `-service-identity name[:dc1,dc2]` values.
pub fn service_identities(values: &[String]) -> Result<Vec<Value>, CliError> {
    values
        .iter()
        .map(|v| {
            let (name, dcs) = match v.split_once(':') {
                Some((n, d)) => (n, Some(d)),
                None => (v.as_str(), None),
            };
            if name.is_empty() {
                return Err(CliError::failed(format!(
                    "Malformed -service-identity argument: {v:?}"
                )));
            }
            let mut o = json!({"ServiceName": name});
            if let Some(d) = dcs {
                let list: Vec<&str> = d.split(',').filter(|s| !s.is_empty()).collect();
                if list.is_empty() {
                    return Err(CliError::failed(format!(
                        "Malformed -service-identity argument: {v:?}"
                    )));
                }
                o["Datacenters"] = json!(list);
            }
            Ok(o)
        })
        .collect()
}

/// `-node-identity node:dc` values.
pub fn node_identities(values: &[String]) -> Result<Vec<Value>, CliError> {
    values
        .iter()
        .map(|v| match v.split_once(':') {
            Some((n, d)) if !n.is_empty() && !d.is_empty() => {
                Ok(json!({"NodeName": n, "Datacenter": d}))
            }
            _ => Err(CliError::failed(format!(
                "Malformed -node-identity argument: {v:?} (expected NODE:DATACENTER)"
            ))),
        })
        .collect()
}

/// Whether `s` is a whole UUID (8-4-4-4-12 hex).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Picks the one ID in `ids` starting with `prefix`.
pub fn unique_prefix(prefix: &str, ids: &[String], what: &str) -> Result<String, String> {
    let hits: Vec<&String> = ids.iter().filter(|i| i.starts_with(prefix)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("No such {what} ID with prefix: {prefix}")),
        _ => Err(format!("Multiple {what} IDs found with prefix: {prefix}")),
    }
}

/// Which list an ID prefix is looked up in.
#[derive(Debug, Clone, Copy)]
pub enum Kindof {
    Token,
    Policy,
    Role,
}

/// Resolves `-id`: a whole UUID as-is, Consul's builtin names (`anonymous`,
/// `global-management`), or else a unique prefix of a listed ID.
pub async fn resolve_id(client: &Client, id: &str, kind: Kindof) -> Result<String, CliError> {
    match (kind, id) {
        (Kindof::Token, "anonymous") => return Ok("00000000-0000-0000-0000-000000000002".into()),
        (Kindof::Policy, "global-management") => {
            return Ok("00000000-0000-0000-0000-000000000001".into())
        }
        _ if is_uuid(id) => return Ok(id.to_string()),
        _ => {}
    }
    let (list, key, what): (Result<Vec<Value>, ApiError>, &str, &str) = match kind {
        Kindof::Token => (client.acl_token_list().await, "AccessorID", "token"),
        Kindof::Policy => (client.acl_policy_list().await, "ID", "policy"),
        Kindof::Role => (client.acl_role_list().await, "ID", "role"),
    };
    let list = list.map_err(|e| CliError::failed(format!("Error determining {what} ID: {e}")))?;
    let ids: Vec<String> = list
        .iter()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect();
    unique_prefix(id, &ids, what)
        .map_err(|e| CliError::failed(format!("Error determining {what} ID: {e}")))
}

/// The value of a flag the command cannot do without.
pub fn required<'a>(flags: &'a Flags, name: &str, help: &str) -> Result<&'a str, CliError> {
    match flags.str(name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CliError::usage(
            format!("error: missing required flag -{name}"),
            help,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identities_parse() {
        let s = service_identities(&v(&["web", "db:dc1,dc2"])).unwrap();
        assert_eq!(s[0], json!({"ServiceName": "web"}));
        assert_eq!(
            s[1],
            json!({"ServiceName": "db", "Datacenters": ["dc1", "dc2"]})
        );
        assert!(service_identities(&v(&[":dc1"])).is_err());
        assert!(service_identities(&v(&["web:"])).is_err());
        let n = node_identities(&v(&["n1:dc1"])).unwrap();
        assert_eq!(n[0], json!({"NodeName": "n1", "Datacenter": "dc1"}));
        assert!(node_identities(&v(&["n1"])).is_err());
        assert!(node_identities(&v(&["n1:"])).is_err());
    }

    #[test]
    fn prefixes_resolve_only_when_unique() {
        let ids = v(&["abc-1", "abd-2"]);
        assert_eq!(unique_prefix("abc", &ids, "token").unwrap(), "abc-1");
        assert!(unique_prefix("ab", &ids, "token")
            .unwrap_err()
            .contains("Multiple"));
        assert!(unique_prefix("x", &ids, "token")
            .unwrap_err()
            .contains("No such"));
        assert!(is_uuid("00000000-0000-0000-0000-000000000002"));
        assert!(!is_uuid("00000000"));
    }

    #[test]
    fn links_by_id_then_name() {
        assert_eq!(
            links(&v(&["i"]), &v(&["n"])),
            vec![json!({"ID": "i"}), json!({"Name": "n"})]
        );
    }

    #[test]
    fn formats() {
        let f = parse("", &[], true, &v(&["-format=json"])).unwrap();
        assert_eq!(format(&f, "").unwrap(), Format::Json);
        let f = parse("", &[], true, &v(&["-meta"])).unwrap();
        assert_eq!(format(&f, "").unwrap(), Format::Pretty { meta: true });
        let f = parse("", &[], true, &v(&["-format=yaml"])).unwrap();
        assert!(matches!(format(&f, ""), Err(CliError::Usage { .. })));
    }
}
