//! Go-style command-line flags for `cairn agent`, as Go's `flag` package parses them.
//!
//! Consul users type `-dev`, `-bootstrap-expect=3`, `--node web1`; clap cannot parse
//! single-dash long flags, so this is a small purpose-built parser. Flags are turned into a
//! configuration fragment (a JSON object with config-file keys) that is merged over the files.

use super::duration::parse_duration;
use super::ConfigError;
use super::Format;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `-flag` or `-flag=bool`; never consumes the next argument.
    Bool,
    /// Any string.
    Str,
    /// A (possibly negative) integer.
    Int,
    /// A Go duration.
    Dur,
}

struct Spec {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const fn spec(name: &'static str, kind: Kind, help: &'static str) -> Spec {
    Spec { name, kind, help }
}

const SPECS: &[Spec] = &[
    spec(
        "advertise",
        Kind::Str,
        "Address advertised to other cluster members.",
    ),
    spec("alt-domain", Kind::Str, "Alternate DNS domain."),
    spec(
        "bind",
        Kind::Str,
        "Address bound for cluster communication (default 0.0.0.0).",
    ),
    spec(
        "bootstrap",
        Kind::Bool,
        "Bootstrap a single-server cluster (legacy).",
    ),
    spec(
        "bootstrap-expect",
        Kind::Int,
        "Number of servers to wait for before bootstrapping.",
    ),
    spec(
        "client",
        Kind::Str,
        "Address(es), space separated, for HTTP and DNS (default 127.0.0.1).",
    ),
    spec(
        "config-dir",
        Kind::Str,
        "Directory of .json/.hcl files, loaded alphabetically. Repeatable.",
    ),
    spec(
        "config-file",
        Kind::Str,
        "A .json/.hcl configuration file. Repeatable.",
    ),
    spec(
        "config-format",
        Kind::Str,
        "Force the format of configuration files: json or hcl.",
    ),
    spec("data-dir", Kind::Str, "Directory for persistent state."),
    spec("datacenter", Kind::Str, "Datacenter name (default dc1)."),
    spec(
        "default-query-time",
        Kind::Dur,
        "Default blocking-query wait (default 300s).",
    ),
    spec(
        "dev",
        Kind::Bool,
        "Development mode: a single in-memory server.",
    ),
    spec(
        "dns-port",
        Kind::Int,
        "DNS port (default 8600; -1 disables, 0 picks one).",
    ),
    spec("domain", Kind::Str, "DNS domain (default consul.)."),
    spec(
        "enable-local-script-checks",
        Kind::Bool,
        "Allow script checks from config files.",
    ),
    spec(
        "enable-script-checks",
        Kind::Bool,
        "Allow script checks from anywhere.",
    ),
    spec("encrypt", Kind::Str, "Base64 gossip encryption key."),
    spec(
        "grpc-port",
        Kind::Int,
        "gRPC port (default -1; 8502 with -dev).",
    ),
    spec(
        "hcl",
        Kind::Str,
        "Inline HCL configuration fragment. Repeatable.",
    ),
    spec(
        "http-port",
        Kind::Int,
        "HTTP API port (default 8500; -1 disables, 0 picks one).",
    ),
    spec("https-port", Kind::Int, "HTTPS API port (default -1)."),
    spec(
        "join",
        Kind::Str,
        "Address to join at start-up (deprecated). Repeatable.",
    ),
    spec("log-json", Kind::Bool, "Log in JSON."),
    spec("log-level", Kind::Str, "trace, debug, info, warn or error."),
    spec(
        "max-query-time",
        Kind::Dur,
        "Maximum blocking-query wait (default 600s).",
    ),
    spec("node", Kind::Str, "Node name (default: the host name)."),
    spec("node-id", Kind::Str, "Node UUID."),
    spec(
        "node-meta",
        Kind::Str,
        "Node metadata as key:value. Repeatable.",
    ),
    spec("pid-file", Kind::Str, "File to write the process id to."),
    spec("recursor", Kind::Str, "Upstream DNS server. Repeatable."),
    spec(
        "retry-join",
        Kind::Str,
        "Address to join, retried until it succeeds. Repeatable.",
    ),
    spec(
        "retry-interval",
        Kind::Dur,
        "Time between -retry-join attempts (default 30s).",
    ),
    spec(
        "retry-max",
        Kind::Int,
        "-retry-join attempts before giving up and exiting (default 0: forever).",
    ),
    spec(
        "serf-lan-port",
        Kind::Int,
        "Serf LAN gossip port (default 8301).",
    ),
    spec("server", Kind::Bool, "Run as a server."),
    spec("server-port", Kind::Int, "Server RPC port (default 8300)."),
    spec("ui", Kind::Bool, "Enable the web UI."),
];

/// Where a configuration path came from (`-config-file` or `-config-dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigPath {
    pub(crate) path: PathBuf,
    pub(crate) is_dir: bool,
}

/// The parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub(crate) dev: bool,
    /// `-config-file` and `-config-dir`, in the order given.
    pub(crate) config_paths: Vec<ConfigPath>,
    pub(crate) config_format: Option<Format>,
    /// `-hcl` fragments, in the order given.
    pub(crate) hcl: Vec<String>,
    /// Everything else, as a config-file fragment.
    pub(crate) fragment: Map<String, Value>,
}

/// The usage text listing every flag.
pub(crate) fn usage() -> String {
    let mut out = String::from("Usage: cairn agent [options]\n\nOptions:\n");
    for s in SPECS {
        let arg = match s.kind {
            Kind::Bool => "",
            Kind::Str => " <value>",
            Kind::Int => " <int>",
            Kind::Dur => " <duration>",
        };
        out.push_str(&format!("  -{}{}\n      {}\n", s.name, arg, s.help));
    }
    out
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn invalid(flag: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidFlagValue {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Sets `path` (dotted) in `map` to `v`, creating intermediate objects.
fn set(map: &mut Map<String, Value>, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = map;
    for p in parents {
        let entry = cur
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        cur = next;
    }
    cur.insert((*last).to_string(), v);
}

/// Appends `v` to the list at top-level `key`.
fn push(map: &mut Map<String, Value>, key: &str, v: Value) {
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.push(v);
    } else {
        *entry = Value::Array(vec![v]);
    }
}

/// Parses the arguments after `cairn agent`.
pub(crate) fn parse(args: &[String]) -> Result<Flags, ConfigError> {
    let mut flags = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            if let Some(extra) = args.get(i) {
                return Err(ConfigError::UnexpectedArgument(extra.clone()));
            }
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            return Err(ConfigError::UnexpectedArgument(arg.clone()));
        }
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .unwrap_or(arg);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadFlagSyntax(arg.clone()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Err(ConfigError::Help(usage()));
        }
        let spec = SPECS
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ConfigError::UnknownFlag(name.to_string()))?;
        let value: String = match (spec.kind, inline) {
            (_, Some(v)) => v.to_string(),
            (Kind::Bool, None) => "true".to_string(),
            (_, None) => {
                let v = args
                    .get(i)
                    .ok_or_else(|| ConfigError::MissingValue(name.to_string()))?;
                i += 1;
                v.clone()
            }
        };
        apply(&mut flags, spec, &value)?;
    }
    Ok(flags)
}

fn apply(flags: &mut Flags, spec: &Spec, value: &str) -> Result<(), ConfigError> {
    let name = spec.name;
    let typed = match spec.kind {
        Kind::Bool => Value::Bool(
            parse_bool(value).ok_or_else(|| invalid(name, value, "expected a boolean"))?,
        ),
        Kind::Int => Value::from(
            value
                .parse::<i64>()
                .map_err(|_| invalid(name, value, "expected an integer"))?,
        ),
        Kind::Dur => {
            parse_duration(value).map_err(|e| invalid(name, value, e.to_string()))?;
            Value::String(value.to_string())
        }
        Kind::Str => Value::String(value.to_string()),
    };
    let frag = &mut flags.fragment;
    match name {
        "dev" => flags.dev = typed.as_bool().unwrap_or(false),
        "config-file" | "config-dir" => flags.config_paths.push(ConfigPath {
            path: PathBuf::from(value),
            is_dir: name == "config-dir",
        }),
        "config-format" => {
            flags.config_format = Some(match value {
                "json" => Format::Json,
                "hcl" => Format::Hcl,
                _ => return Err(invalid(name, value, "must be \"json\" or \"hcl\"")),
            })
        }
        "hcl" => flags.hcl.push(value.to_string()),
        "node-meta" => {
            let (k, v) = value.split_once(':').unwrap_or((value, ""));
            if k.is_empty() {
                return Err(invalid(name, value, "expected key:value"));
            }
            set(frag, &["node_meta", k], Value::String(v.to_string()));
        }
        "recursor" => push(frag, "recursors", typed),
        "retry-join" => push(frag, "retry_join", typed),
        "join" => push(frag, "start_join", typed),
        "ui" => set(frag, &["ui_config", "enabled"], typed),
        "http-port" => set(frag, &["ports", "http"], typed),
        "https-port" => set(frag, &["ports", "https"], typed),
        "dns-port" => set(frag, &["ports", "dns"], typed),
        "grpc-port" => set(frag, &["ports", "grpc"], typed),
        "server-port" => set(frag, &["ports", "server"], typed),
        "serf-lan-port" => set(frag, &["ports", "serf_lan"], typed),
        other => {
            let key = match other {
                "node" => "node_name",
                "client" => "client_addr",
                "bind" => "bind_addr",
                "advertise" => "advertise_addr",
                o => o,
            };
            set(frag, &[key.replace('-', "_").as_str()], typed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    fn frag(a: &[&str]) -> Value {
        Value::Object(parse(&args(a)).unwrap().fragment)
    }

    #[test]
    fn every_value_form() {
        for form in [
            &["-http-port=1"][..],
            &["-http-port", "1"],
            &["--http-port", "1"],
            &["--http-port=1"],
        ] {
            assert_eq!(frag(form), json!({"ports": {"http": 1}}), "{form:?}");
        }
        // A non-bool flag takes the next argument even if it starts with '-'.
        assert_eq!(frag(&["-http-port", "-1"]), json!({"ports": {"http": -1}}));
        assert_eq!(frag(&["-node="]), json!({"node_name": ""}));
    }

    #[test]
    fn bool_forms() {
        assert!(parse(&args(&["-dev"])).unwrap().dev);
        assert!(parse(&args(&["--dev"])).unwrap().dev);
        assert!(parse(&args(&["-dev=true"])).unwrap().dev);
        assert!(parse(&args(&["-dev=1"])).unwrap().dev);
        assert!(!parse(&args(&["-dev=false"])).unwrap().dev);
        assert_eq!(frag(&["-server=F"]), json!({"server": false}));
        assert_eq!(frag(&["-server"]), json!({"server": true}));
        assert_eq!(frag(&["-ui"]), json!({"ui_config": {"enabled": true}}));
        // A bool flag never consumes the next argument.
        assert!(matches!(
            parse(&args(&["-server", "false"])),
            Err(ConfigError::UnexpectedArgument(a)) if a == "false"
        ));
        assert!(matches!(
            parse(&args(&["-dev=yes"])),
            Err(ConfigError::InvalidFlagValue { flag, .. }) if flag == "dev"
        ));
    }

    #[test]
    fn repeatables() {
        let f = parse(&args(&[
            "-recursor",
            "8.8.8.8",
            "-recursor=1.1.1.1",
            "-retry-join",
            "a",
            "--retry-join",
            "b",
            "-join",
            "c",
            "-node-meta",
            "rack:r1",
            "-node-meta=zone:z:1",
            "-config-file",
            "a.json",
            "-config-dir=d",
            "-config-file=b.hcl",
            "-hcl",
            "datacenter = \"x\"",
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(f.fragment),
            json!({
                "recursors": ["8.8.8.8", "1.1.1.1"],
                "retry_join": ["a", "b"],
                "start_join": ["c"],
                "node_meta": {"rack": "r1", "zone": "z:1"},
            })
        );
        let paths: Vec<_> = f
            .config_paths
            .iter()
            .map(|p| (p.path.to_string_lossy().into_owned(), p.is_dir))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("a.json".to_string(), false),
                ("d".to_string(), true),
                ("b.hcl".to_string(), false)
            ]
        );
        assert_eq!(f.hcl, vec!["datacenter = \"x\"".to_string()]);
    }

    #[test]
    fn errors() {
        let e = parse(&args(&["-bogus"])).unwrap_err();
        assert!(matches!(&e, ConfigError::UnknownFlag(f) if f == "bogus"));
        assert!(e.to_string().contains("-bogus"), "{e}");
        assert!(matches!(
            parse(&args(&["--bogus=1"])),
            Err(ConfigError::UnknownFlag(f)) if f == "bogus"
        ));
        assert!(matches!(
            parse(&args(&["-node"])),
            Err(ConfigError::MissingValue(f)) if f == "node"
        ));
        assert!(matches!(
            parse(&args(&["-http-port", "x"])),
            Err(ConfigError::InvalidFlagValue { .. })
        ));
        assert!(matches!(
            parse(&args(&["-max-query-time", "10"])),
            Err(ConfigError::InvalidFlagValue { .. })
        ));
        assert!(matches!(
            parse(&args(&["-config-format", "yaml"])),
            Err(ConfigError::InvalidFlagValue { .. })
        ));
        assert!(matches!(
            parse(&args(&["---dev"])),
            Err(ConfigError::BadFlagSyntax(_))
        ));
        assert!(matches!(
            parse(&args(&["-=x"])),
            Err(ConfigError::BadFlagSyntax(_))
        ));
        assert!(matches!(
            parse(&args(&["stray"])),
            Err(ConfigError::UnexpectedArgument(_))
        ));
        assert!(matches!(
            parse(&args(&["-dev", "--", "x"])),
            Err(ConfigError::UnexpectedArgument(_))
        ));
        assert!(parse(&args(&["-dev", "--"])).unwrap().dev);
        assert!(matches!(parse(&args(&["-h"])), Err(ConfigError::Help(_))));
        assert!(matches!(
            parse(&args(&["-node-meta", ":v"])),
            Err(ConfigError::InvalidFlagValue { .. })
        ));
    }

    #[test]
    fn scalar_mapping() {
        assert_eq!(
            frag(&[
                "-node",
                "n1",
                "-node-id",
                "id",
                "-datacenter",
                "DC2",
                "-domain",
                "x",
                "-alt-domain",
                "y",
                "-client",
                "0.0.0.0",
                "-bind",
                "1.2.3.4",
                "-advertise",
                "5.6.7.8",
                "-data-dir",
                "/d",
                "-log-level",
                "warn",
                "-log-json",
                "-pid-file",
                "/p",
                "-encrypt",
                "k",
                "-enable-script-checks",
                "-enable-local-script-checks",
                "-bootstrap",
                "-bootstrap-expect",
                "3",
                "-default-query-time",
                "1m",
                "-max-query-time=2m",
                "-dns-port",
                "53",
                "-grpc-port",
                "0",
                "-https-port",
                "-1",
                "-server-port",
                "1",
                "-serf-lan-port",
                "2",
            ]),
            json!({
                "node_name": "n1", "node_id": "id", "datacenter": "DC2", "domain": "x",
                "alt_domain": "y", "client_addr": "0.0.0.0", "bind_addr": "1.2.3.4",
                "advertise_addr": "5.6.7.8", "data_dir": "/d", "log_level": "warn",
                "log_json": true, "pid_file": "/p", "encrypt": "k",
                "enable_script_checks": true, "enable_local_script_checks": true,
                "bootstrap": true, "bootstrap_expect": 3, "default_query_time": "1m",
                "max_query_time": "2m",
                "ports": {"dns": 53, "grpc": 0, "https": -1, "server": 1, "serf_lan": 2},
            })
        );
    }
}
