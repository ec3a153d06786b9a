//! Configuration sources: reading JSON/HCL files and directories, normalising each source
//! (legacy key aliases, `service`/`check` collection, HCL repeated blocks), refusing keys
//! Cairn does not implement, and merging sources with Consul's rule (later scalars win,
//! lists append, maps merge).
//!
//! A key Cairn does not implement is an error that names it and its source, never a
//! warning: a setting silently ignored is a configuration that lies (an ignored `tls`
//! block would serve in plain text while the operator believes otherwise).

use super::{ConfigError, Format};
use serde_json::{Map, Value};
use std::path::Path;

/// The shape of the known configuration keys, used to report unknown ones.
pub(crate) enum Schema {
    /// A scalar or list value (type-checked later).
    Leaf,
    /// A free-form map whose keys are data (`node_meta`, `service_ttl`).
    Map,
    /// An object with a fixed set of keys.
    Obj(&'static [(&'static str, Schema)]),
}

use Schema::{Leaf, Map as FreeMap, Obj};

/// Every key Cairn interprets. Anything else refuses to start.
pub(crate) const SCHEMA: Schema = Obj(&[
    (
        "acl",
        Obj(&[
            ("default_policy", Leaf),
            ("down_policy", Leaf),
            ("enable_token_persistence", Leaf),
            ("enabled", Leaf),
            ("token_max_expiration_ttl", Leaf),
            ("token_min_expiration_ttl", Leaf),
            ("token_ttl", Leaf),
            (
                "tokens",
                Obj(&[
                    ("agent", Leaf),
                    ("agent_recovery", Leaf),
                    ("default", Leaf),
                    ("dns", Leaf),
                    ("initial_management", Leaf),
                ]),
            ),
        ]),
    ),
    (
        "addresses",
        Obj(&[
            ("dns", Leaf),
            ("http", Leaf),
            ("https", Leaf),
            ("grpc", Leaf),
        ]),
    ),
    ("advertise_addr", Leaf),
    ("alt_domain", Leaf),
    ("bind_addr", Leaf),
    ("bootstrap", Leaf),
    ("bootstrap_expect", Leaf),
    ("check_update_interval", Leaf),
    ("checks", Leaf),
    ("client_addr", Leaf),
    ("data_dir", Leaf),
    ("datacenter", Leaf),
    ("debug_unsafe_local_reads", Leaf),
    ("default_query_time", Leaf),
    ("discovery_max_stale", Leaf),
    (
        "dns_config",
        Obj(&[
            ("a_record_limit", Leaf),
            ("allow_stale", Leaf),
            ("enable_additional_node_meta_txt", Leaf),
            ("enable_truncate", Leaf),
            ("max_stale", Leaf),
            ("node_ttl", Leaf),
            ("only_passing", Leaf),
            ("service_ttl", FreeMap),
            ("udp_answer_limit", Leaf),
        ]),
    ),
    ("domain", Leaf),
    ("enable_local_script_checks", Leaf),
    ("enable_script_checks", Leaf),
    ("encrypt", Leaf),
    (
        "gossip_lan",
        Obj(&[
            ("gossip_interval", Leaf),
            ("gossip_nodes", Leaf),
            ("probe_interval", Leaf),
            ("probe_timeout", Leaf),
            ("retransmit_mult", Leaf),
            ("suspicion_timeout", Leaf),
        ]),
    ),
    ("kv_tombstone_granularity", Leaf),
    ("leave_on_terminate", Leaf),
    ("kv_tombstone_ttl", Leaf),
    (
        "limits",
        Obj(&[
            ("dns_tcp_idle_timeout", Leaf),
            ("http_header_read_timeout", Leaf),
            ("http_idle_timeout", Leaf),
            ("http_max_conns_per_client", Leaf),
            ("kv_max_value_size", Leaf),
            ("txn_max_req_len", Leaf),
        ]),
    ),
    ("log_json", Leaf),
    ("log_level", Leaf),
    ("max_query_time", Leaf),
    ("node_id", Leaf),
    ("node_meta", FreeMap),
    ("node_name", Leaf),
    ("performance", Obj(&[("raft_multiplier", Leaf)])),
    ("pid_file", Leaf),
    ("raft_snapshot_interval", Leaf),
    ("raft_snapshot_threshold", Leaf),
    ("raft_trailing_logs", Leaf),
    (
        "ports",
        Obj(&[
            ("dns", Leaf),
            ("grpc", Leaf),
            ("grpc_tls", Leaf),
            ("http", Leaf),
            ("https", Leaf),
            ("serf_lan", Leaf),
            ("serf_wan", Leaf),
            ("server", Leaf),
        ]),
    ),
    ("primary_datacenter", Leaf),
    ("reconnect_timeout", Leaf),
    ("recursors", Leaf),
    ("retry_interval", Leaf),
    ("retry_join", Leaf),
    ("retry_max", Leaf),
    ("server", Leaf),
    ("services", Leaf),
    ("session_ttl_min", Leaf),
    ("skip_leave_on_interrupt", Leaf),
    ("start_join", Leaf),
    ("tls", super::tls::SCHEMA),
    // Pre-1.12 and ignored by Consul since Go chooses the order itself; read by nothing.
    ("tls_prefer_server_cipher_suites", Leaf),
    ("ui", Leaf),
    ("ui_config", Obj(&[("enabled", Leaf)])),
]);

/// Legacy keys Consul still accepts, and where they now live.
const ALIASES: &[(&[&str], &[&str])] = &[
    (&["acl_datacenter"], &["primary_datacenter"]),
    (&["acl_default_policy"], &["acl", "default_policy"]),
    (&["acl_down_policy"], &["acl", "down_policy"]),
    (
        &["acl_master_token"],
        &["acl", "tokens", "initial_management"],
    ),
    (
        &["acl_agent_master_token"],
        &["acl", "tokens", "agent_recovery"],
    ),
    (&["acl_agent_token"], &["acl", "tokens", "agent"]),
    (&["acl_token"], &["acl", "tokens", "default"]),
    (
        &["acl", "tokens", "master"],
        &["acl", "tokens", "initial_management"],
    ),
    (
        &["acl", "tokens", "agent_master"],
        &["acl", "tokens", "agent_recovery"],
    ),
];

/// One parsed source: a file, an `-hcl` fragment, the flags or the `-dev` defaults.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) value: Map<String, Value>,
}

/// Format from a file's extension.
fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Some(Format::Json),
        Some("hcl") => Some(Format::Hcl),
        _ => None,
    }
}

/// Parses text in `format` into a JSON object.
pub(crate) fn parse_text(name: &str, text: &str, format: Format) -> Result<Source, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        source_name: name.to_string(),
        message,
    };
    let value: Value = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?,
        Format::Hcl => hcl::from_str(text).map_err(|e| parse_err(e.to_string()))?,
    };
    match value {
        Value::Object(map) => Ok(Source {
            name: name.to_string(),
            value: map,
        }),
        Value::Null if format == Format::Hcl => Ok(Source {
            name: name.to_string(),
            value: Map::new(),
        }),
        _ => Err(parse_err("the top level must be an object".to_string())),
    }
}

fn read_file(path: &Path, format: Format) -> Result<Source, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_text(&path.display().to_string(), &text, format)
}

/// Loads a `-config-file` or `-config-dir` path, appending its sources in order.
///
/// Directories load their `.json`/`.hcl` files alphabetically, without recursing. Files of
/// another extension are skipped with a warning unless `-config-format` is set.
pub(crate) fn load_path(
    path: &Path,
    require_dir: bool,
    forced: Option<Format>,
    out: &mut Vec<Source>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let io_err = |e| ConfigError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if require_dir && !meta.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "-config-dir {} is not a directory",
            path.display()
        )));
    }
    let mut files = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let p = entry.path();
            // Follow symlinks; skip subdirectories.
            if std::fs::metadata(&p).map(|m| m.is_file()).unwrap_or(false) {
                files.push(p);
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    } else {
        files.push(path.to_path_buf());
    }
    for f in files {
        match forced.or_else(|| format_of(&f)) {
            Some(format) => out.push(read_file(&f, format)?),
            None => warnings.push(format!(
                "skipping file {}: extension must be .hcl or .json, or -config-format must be set",
                f.display()
            )),
        }
    }
    Ok(())
}

/// Removes the value at `path`, pruning nothing else.
fn take(map: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = map;
    for p in parents {
        cur = cur.get_mut(*p)?.as_object_mut()?;
    }
    cur.remove(*last)
}

/// Inserts `v` at `path` unless something is already there.
fn put(map: &mut Map<String, Value>, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = map;
    for p in parents {
        let entry = cur
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = entry else {
            return;
        };
        cur = next;
    }
    cur.entry((*last).to_string()).or_insert(v);
}

/// Turns a value that should be a list of definitions into that list.
fn into_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// HCL gives repeated blocks (`ports {..} ports {..}`) as an array of objects: fold them.
fn fold_objects(v: Value) -> Value {
    match v {
        Value::Array(list) if !list.is_empty() && list.iter().all(Value::is_object) => {
            let mut acc = Map::new();
            for item in list {
                if let Value::Object(m) = item {
                    merge_into(&mut acc, m);
                }
            }
            Value::Object(acc)
        }
        other => other,
    }
}

/// Normalises one source in place; a key Cairn does not implement is an error naming it.
pub(crate) fn normalise(src: &mut Source) -> Result<(), ConfigError> {
    let map = &mut src.value;
    // Fold repeated blocks first so aliases inside `acl` are found.
    for key in [
        "acl",
        "ports",
        "addresses",
        "performance",
        "limits",
        "dns_config",
        "ui_config",
    ] {
        if let Some(v) = map.remove(key) {
            map.insert(key.to_string(), fold_objects(v));
        }
    }
    if let Some(Value::Object(acl)) = map.get_mut("acl") {
        if let Some(v) = acl.remove("tokens") {
            acl.insert("tokens".to_string(), fold_objects(v));
        }
    }
    // Legacy ACLs were enabled by naming the ACL datacenter.
    if map.contains_key("acl_datacenter") {
        put(map, &["acl", "enabled"], Value::Bool(true));
    }
    for (from, to) in ALIASES.iter().chain(super::tls::LEGACY_KEYS) {
        if let Some(v) = take(map, from) {
            put(map, to, v);
        }
    }
    // Single and plural service/check definitions become one list each.
    for (single, plural) in [("service", "services"), ("check", "checks")] {
        let mut list = Vec::new();
        if let Some(v) = map.remove(single) {
            list.extend(into_list(v));
        }
        if let Some(v) = map.remove(plural) {
            list.extend(into_list(v));
        }
        if !list.is_empty() {
            map.insert(plural.to_string(), Value::Array(list));
        }
    }
    match &SCHEMA {
        Obj(fields) => check_keys(map, fields, "", &src.name),
        _ => Ok(()),
    }
}

fn check_keys(
    map: &Map<String, Value>,
    fields: &[(&str, Schema)],
    prefix: &str,
    source: &str,
) -> Result<(), ConfigError> {
    for (key, value) in map {
        let path = format!("{prefix}{key}");
        match fields.iter().find(|(k, _)| k == key) {
            None => {
                let why = super::unbuilt::reason_for_key(&path).unwrap_or(
                    "Cairn does not implement it; remove it (Cairn refuses to start rather than ignore a setting)",
                );
                return Err(ConfigError::Unsupported {
                    source_name: source.to_string(),
                    key: path,
                    reason: why.to_string(),
                });
            }
            Some((_, Obj(sub))) => {
                if let Value::Object(m) = value {
                    check_keys(m, sub, &format!("{path}."), source)?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Merges `src` over `dst`: scalars replace, lists append, objects merge; `null` is ignored.
pub(crate) fn merge_into(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (k, v) in src {
        match (dst.get_mut(&k), v) {
            (_, Value::Null) => {}
            (Some(Value::Object(a)), Value::Object(b)) => merge_into(a, b),
            (Some(Value::Array(a)), Value::Array(b)) => a.extend(b),
            (_, v) => {
                dst.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn merge_rule() {
        let mut a = obj(json!({"x": 1, "l": [1], "m": {"a": 1, "b": 2}, "keep": true}));
        merge_into(
            &mut a,
            obj(json!({"x": 2, "l": [2, 3], "m": {"b": 3, "c": 4}, "keep": null})),
        );
        assert_eq!(
            Value::Object(a),
            json!({"x": 2, "l": [1, 2, 3], "m": {"a": 1, "b": 3, "c": 4}, "keep": true})
        );
    }

    #[test]
    fn normalise_aliases_services_and_blocks() {
        let mut s = Source {
            name: "t".into(),
            value: obj(json!({
                "acl_master_token": "root",
                "acl_datacenter": "dc1",
                "service": {"name": "web"},
                "services": [{"name": "db"}],
                "check": {"name": "c"},
                "ports": [{"http": 1}, {"dns": 2}],
                "bogus": 1,
                "dns_config": {"weird": 1, "service_ttl": {"*": "5s"}},
            })),
        };
        let err = normalise(&mut s).unwrap_err().to_string();
        assert!(err.contains("\"bogus\""), "{err}");
        s.value.remove("bogus");
        normalise(&mut s).unwrap_err();
        s.value
            .get_mut("dns_config")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("weird");
        normalise(&mut s).unwrap();
        assert_eq!(
            Value::Object(s.value),
            json!({
                "acl": {"enabled": true, "tokens": {"initial_management": "root"}},
                "primary_datacenter": "dc1",
                "services": [{"name": "web"}, {"name": "db"}],
                "checks": [{"name": "c"}],
                "ports": {"http": 1, "dns": 2},
                "dns_config": {"service_ttl": {"*": "5s"}},
            })
        );
    }

    #[test]
    fn hcl_repeated_blocks() {
        let s = parse_text(
            "x.hcl",
            "service {\n name = \"a\"\n}\nservice {\n name = \"b\"\n}\n",
            Format::Hcl,
        )
        .unwrap();
        assert_eq!(
            Value::Object(s.value),
            json!({"service": [{"name": "a"}, {"name": "b"}]})
        );
        assert!(parse_text("x.hcl", "", Format::Hcl)
            .unwrap()
            .value
            .is_empty());
        assert!(parse_text("x.json", "[1]", Format::Json).is_err());
        assert!(parse_text("x.hcl", "a = = 1", Format::Hcl).is_err());
    }
}
