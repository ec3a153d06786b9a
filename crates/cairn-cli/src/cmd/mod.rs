//! Subcommand dispatch and what the client commands share: the `-http-addr`/`-token` flags,
//! building a [`cairn_api::Client`] from them and the environment, and flag-error mapping.

pub mod acl;
pub mod acl_format;
pub mod acl_object;
pub mod acl_policy;
pub mod acl_role;
pub mod acl_token;
pub mod agent;
pub mod catalog;
pub mod demo;
pub mod keyring;
pub mod kv;
pub mod members;
pub mod operator;
pub mod operator_ops;
pub mod pool;
pub mod registrator;
pub mod reload;
pub mod services;
pub mod snapshot;
pub mod tasks;
pub mod tls;
pub mod version;

use crate::error::CliError;
use crate::flags::{self, Flags, Kind, Spec};
use cairn_api::Client;

/// Top-level help.
pub const HELP: &str = "\
Usage: cairn [--version] [--help] <command> [<args>]

Available commands are:
    acl         Bootstraps the ACL system and manages tokens, policies and roles
    agent       Runs a Cairn agent
    catalog     Interact with the catalog
    demo        Runs the sample application's whole topology on this machine
    force-leave Forces a failed member of the pool to leave
    join        Tells a running agent to join the pool
    keygen      Generates a new gossip encryption key
    keyring     Lists, installs, uses and removes gossip encryption keys pool-wide
    kv          Interact with the key-value store
    leave       Gracefully leaves the pool and shuts the agent down
    members     Lists the members of a Cairn cluster
    operator    Raft peers and autopilot (operator raft|autopilot ...)
    registrator Registers this host's containers with the agent
    reload      Triggers the agent's configuration reload
    services    Interact with services
    snapshot    Saves, restores and inspects snapshots of the servers' state
    tasks       Runs ECS task definitions as local processes
    tls         Creates a certificate authority and agent certificates
    version     Prints the Cairn version

Client commands honour -http-addr and -token, and the environment variables
CAIRN_HTTP_ADDR / CONSUL_HTTP_ADDR (default 127.0.0.1:8500) and
CAIRN_HTTP_TOKEN / CONSUL_HTTP_TOKEN, or CONSUL_HTTP_TOKEN_FILE (or -token-file),
which wins when set. For HTTPS: an https:// address or CONSUL_HTTP_SSL=true,
CONSUL_CACERT (CA file, or -ca-file) or CONSUL_CAPATH (a directory of CA files, or
-ca-path), CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (client certificate, or
-client-cert and -client-key), CONSUL_TLS_SERVER_NAME (the name the agent's
certificate must carry), CONSUL_HTTP_SSL_VERIFY=false.";

/// Flags every command that talks to an agent accepts.
pub const HTTP_FLAGS: &[Spec] = &[
    flags::spec(
        "http-addr",
        Kind::Value,
        "The address of the agent: host:port or http(s)://host:port. Defaults to \
         CAIRN_HTTP_ADDR, then CONSUL_HTTP_ADDR, then 127.0.0.1:8500.",
    ),
    flags::spec(
        "token",
        Kind::Value,
        "ACL token to use. Defaults to CAIRN_HTTP_TOKEN, then CONSUL_HTTP_TOKEN.",
    ),
    flags::spec(
        "token-file",
        Kind::Value,
        "File containing the ACL token to use; wins over -token, as in Consul. Defaults \
         to CONSUL_HTTP_TOKEN_FILE.",
    ),
    flags::spec(
        "ca-file",
        Kind::Value,
        "CA file to verify the agent's HTTPS certificate with. Defaults to CONSUL_CACERT.",
    ),
    flags::spec(
        "ca-path",
        Kind::Value,
        "Directory of CA files, used without -ca-file. Defaults to CONSUL_CAPATH.",
    ),
    flags::spec(
        "client-cert",
        Kind::Value,
        "Client certificate file for HTTPS. Defaults to CONSUL_CLIENT_CERT.",
    ),
    flags::spec(
        "client-key",
        Kind::Value,
        "Key file of -client-cert. Defaults to CONSUL_CLIENT_KEY.",
    ),
];

/// Runs the command named by the first argument.
pub async fn dispatch(args: Vec<String>) -> Result<(), CliError> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(CliError::usage("error: missing command", HELP));
    };
    let rest = rest.to_vec();
    match cmd.as_str() {
        "acl" => acl::run(rest).await,
        "agent" => agent::run(rest).await,
        "members" => members::run(rest).await,
        "operator" => operator::run(rest).await,
        "join" => pool::join(rest).await,
        "leave" => pool::leave(rest).await,
        "force-leave" => pool::force_leave(rest).await,
        "keygen" => pool::keygen(rest),
        "keyring" => keyring::run(rest).await,
        "reload" => reload::run(rest).await,
        "catalog" => catalog::run(rest).await,
        "kv" => kv::run(rest).await,
        "services" => services::run(rest).await,
        "snapshot" => snapshot::run(rest).await,
        "registrator" => registrator::run(rest).await,
        "tasks" => tasks::run(rest).await,
        "tls" => tls::run(rest).await,
        "demo" => demo::run(rest).await,
        "version" | "-v" | "-version" | "--version" => version::run(rest),
        "help" | "-h" | "-help" | "--help" => Err(CliError::Help(HELP.to_string())),
        other => Err(CliError::usage(
            format!("error: unknown command {other:?}"),
            HELP,
        )),
    }
}

/// Parses `args` for a command with help `text` and `specs` (plus [`HTTP_FLAGS`] when
/// `http` is set), turning flag errors into help/usage outcomes.
pub fn parse_flags(
    text: &str,
    specs: &[Spec],
    http: bool,
    args: &[String],
) -> Result<Flags, CliError> {
    let all: Vec<Spec> = if http {
        specs.iter().chain(HTTP_FLAGS).copied().collect()
    } else {
        specs.to_vec()
    };
    let help = flags::usage(text, &all);
    flags::parse(&all, args).map_err(|e| match e {
        flags::FlagError::Help => CliError::Help(help.clone()),
        flags::FlagError::Invalid(msg) => CliError::usage(format!("error: {msg}"), &help),
    })
}

/// Converts a flag value error (e.g. a non-numeric `-flags`) into a usage error.
pub fn flag_value<T>(r: Result<T, flags::FlagError>, text: &str) -> Result<T, CliError> {
    r.map_err(|e| match e {
        flags::FlagError::Help => CliError::Help(text.to_string()),
        flags::FlagError::Invalid(msg) => CliError::usage(format!("error: {msg}"), text),
    })
}

/// Builds the HTTP client from the flags and the environment (see [`with_flags`]).
pub fn client(flags: &Flags) -> Result<Client, CliError> {
    Client::from_lookup(with_flags(flags, |k| std::env::var(k).ok()))
        .map_err(CliError::ctx("Error connecting to agent"))
}

/// The variables the client reads, with the flags standing in for theirs (`-http-addr`,
/// `-token`, `-token-file`, `-ca-file`, `-ca-path`, `-client-cert`, `-client-key`). A
/// flag given on the command line also hides the variables it competes with: `-token` or
/// `-token-file` every token variable (a token file in the environment would otherwise
/// win over `-token`), `-ca-file` or `-ca-path` both CA variables.
fn with_flags<'a>(
    flags: &'a Flags,
    env: impl Fn(&str) -> Option<String> + 'a,
) -> impl Fn(&str) -> Option<String> + 'a {
    const BY_FLAG: [(&str, &str); 7] = [
        ("CAIRN_HTTP_ADDR", "http-addr"),
        ("CAIRN_HTTP_TOKEN", "token"),
        ("CONSUL_HTTP_TOKEN_FILE", "token-file"),
        ("CONSUL_CACERT", "ca-file"),
        ("CONSUL_CAPATH", "ca-path"),
        ("CONSUL_CLIENT_CERT", "client-cert"),
        ("CONSUL_CLIENT_KEY", "client-key"),
    ];
    const TOKEN: [&str; 3] = [
        "CAIRN_HTTP_TOKEN",
        "CONSUL_HTTP_TOKEN",
        "CONSUL_HTTP_TOKEN_FILE",
    ];
    const CA: [&str; 2] = ["CONSUL_CACERT", "CONSUL_CAPATH"];
    let given = |names: &[&str]| names.iter().any(|n| flags.str(n).is_some());
    let (token_flag, ca_flag) = (
        given(&["token", "token-file"]),
        given(&["ca-file", "ca-path"]),
    );
    move |k| {
        if let Some((_, flag)) = BY_FLAG.iter().find(|(var, _)| *var == k) {
            if let Some(v) = flags.str(flag) {
                return Some(v.to_string());
            }
        }
        let hidden = (token_flag && TOKEN.contains(&k)) || (ca_flag && CA.contains(&k));
        if hidden {
            None
        } else {
            env(k)
        }
    }
}

/// Rejects positional arguments for commands that take none.
pub fn no_args(flags: &Flags, text: &str) -> Result<(), CliError> {
    if flags.args.is_empty() {
        Ok(())
    } else {
        Err(CliError::usage(
            format!(
                "error: too many arguments (expected 0, got {})",
                flags.args.len()
            ),
            text,
        ))
    }
}

/// Picks the subcommand of a command group (`cairn kv get ...`), or explains the group.
pub fn subcommand<'a>(args: &'a [String], help: &str) -> Result<(&'a str, Vec<String>), CliError> {
    match args.split_first() {
        None => Err(CliError::usage("error: missing subcommand", help)),
        Some((s, _)) if matches!(s.as_str(), "-h" | "-help" | "--help" | "help") => {
            Err(CliError::Help(help.to_string()))
        }
        Some((s, rest)) => Ok((s.as_str(), rest.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_stand_in_for_variables_and_hide_their_rivals() {
        let env = |k: &str| match k {
            "CONSUL_HTTP_TOKEN_FILE" => Some("/env/token".to_string()),
            "CONSUL_HTTP_TOKEN" => Some("env-token".to_string()),
            "CONSUL_CAPATH" => Some("/env/cas".to_string()),
            "CONSUL_HTTP_ADDR" => Some("env:1".to_string()),
            _ => None,
        };
        let parsed = |a: &[&str]| parse_flags("", &[], true, &v(a)).unwrap();
        let none = parsed(&[]);
        let look = with_flags(&none, env);
        assert_eq!(
            look("CONSUL_HTTP_TOKEN_FILE").as_deref(),
            Some("/env/token")
        );
        assert_eq!(look("CONSUL_CAPATH").as_deref(), Some("/env/cas"));

        let f = parsed(&["-token", "flag-token", "-ca-file", "/flag/ca.pem"]);
        let look = with_flags(&f, env);
        assert_eq!(look("CAIRN_HTTP_TOKEN").as_deref(), Some("flag-token"));
        assert_eq!(
            look("CONSUL_HTTP_TOKEN_FILE"),
            None,
            "-token hides the token file"
        );
        assert_eq!(look("CONSUL_HTTP_TOKEN"), None);
        assert_eq!(look("CONSUL_CACERT").as_deref(), Some("/flag/ca.pem"));
        assert_eq!(look("CONSUL_CAPATH"), None, "-ca-file hides CONSUL_CAPATH");
        assert_eq!(look("CONSUL_HTTP_ADDR").as_deref(), Some("env:1"));

        let f = parsed(&["-token-file", "/flag/token"]);
        let look = with_flags(&f, env);
        assert_eq!(
            look("CONSUL_HTTP_TOKEN_FILE").as_deref(),
            Some("/flag/token")
        );
        assert_eq!(look("CONSUL_HTTP_TOKEN"), None);
    }

    #[tokio::test]
    async fn dispatch_outcomes() {
        assert!(matches!(
            dispatch(v(&[])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(matches!(
            dispatch(v(&["bogus"])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(matches!(dispatch(v(&["-h"])).await, Err(CliError::Help(_))));
        assert!(matches!(
            dispatch(v(&["kv"])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(matches!(
            dispatch(v(&["kv", "get", "-h"])).await,
            Err(CliError::Help(_))
        ));
        assert!(matches!(
            dispatch(v(&["kv", "get", "-bogus"])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(matches!(
            dispatch(v(&["acl"])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(matches!(
            dispatch(v(&["acl", "role", "list", "-h"])).await,
            Err(CliError::Help(_))
        ));
        assert!(matches!(
            dispatch(v(&["keyring", "-h"])).await,
            Err(CliError::Help(_))
        ));
        assert!(matches!(
            dispatch(v(&["keyring", "-install", "k", "-local-only"])).await,
            Err(CliError::Usage { .. })
        ));
        assert!(dispatch(v(&["version"])).await.is_ok());
    }

    #[test]
    fn client_flags_override_env() {
        let f = parse_flags("", &[], true, &v(&["-http-addr=10.1.2.3:9", "-token", "s"])).unwrap();
        let c = client(&f).unwrap();
        assert_eq!(c.base(), "http://10.1.2.3:9");
        assert_eq!(c.token(), Some("s"));
        let f = parse_flags("", &[], true, &v(&["-http-addr=ftp://x"])).unwrap();
        assert!(matches!(client(&f), Err(CliError::Failed(_))));
        let f = parse_flags("", &[], true, &v(&["-ca-file=/nonexistent/ca.pem"])).unwrap();
        assert!(
            matches!(client(&f), Err(CliError::Failed(m)) if m.contains("/nonexistent/ca.pem"))
        );
    }
}
