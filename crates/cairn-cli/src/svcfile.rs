//! Service definition files, as `consul services register FILE` reads them: Consul's agent
//! config format (`{"service": {...}}` or `{"services": [...]}`, snake_case keys, JSON or
//! HCL) converted into the agent register API's CamelCase body.

use cairn_api::ServiceDefinition;
use serde_json::{Map, Value};

/// Whole config keys whose snake_case → CamelCase mapping is not the generic one.
const SPECIAL_KEYS: &[(&str, &str)] = &[
    ("h2ping", "H2PING"),
    ("h2ping_use_tls", "H2PingUseTLS"),
    ("script_args", "Args"),
    ("service_id", "ServiceID"),
    ("check_id", "CheckID"),
];

/// Word parts written in capitals by Consul (`check_id` → `CheckID`, `tls_skip_verify` →
/// `TLSSkipVerify`).
const ACRONYMS: &[&str] = &[
    "id", "http", "tcp", "udp", "ttl", "tls", "grpc", "os", "ip", "dns",
];

/// Keys whose object value is user data: its keys stay as written (values still convert).
const USER_KEYED: &[&str] = &["meta", "node_meta", "header", "tagged_addresses"];

/// Keys whose whole value is opaque user configuration, copied untouched.
const OPAQUE: &[&str] = &["config"];

/// Converts one config key to the API spelling. Keys already in CamelCase are kept.
pub fn api_key(key: &str) -> String {
    if let Some((_, v)) = SPECIAL_KEYS.iter().find(|(k, _)| *k == key) {
        return v.to_string();
    }
    if key.chars().any(|c| c.is_ascii_uppercase()) {
        return key.to_string();
    }
    key.split('_')
        .map(|part| {
            if ACRONYMS.contains(&part) {
                part.to_ascii_uppercase()
            } else {
                let mut c = part.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect()
}

/// Recursively renames config keys to their API spelling.
pub fn to_api_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let lower = k.to_ascii_lowercase();
                let converted = if OPAQUE.contains(&lower.as_str()) {
                    val
                } else if USER_KEYED.contains(&lower.as_str()) {
                    match val {
                        Value::Object(inner) => Value::Object(
                            inner
                                .into_iter()
                                .map(|(ik, iv)| (ik, to_api_keys(iv)))
                                .collect(),
                        ),
                        other => to_api_keys(other),
                    }
                } else {
                    to_api_keys(val)
                };
                out.insert(api_key(&k), converted);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(to_api_keys).collect()),
        other => other,
    }
}

/// Parses a file's text (HCL when `hcl` is true, JSON otherwise) into service definitions.
pub fn parse(text: &str, hcl: bool) -> Result<Vec<ServiceDefinition>, String> {
    let doc: Value = if hcl {
        hcl::from_str(text).map_err(|e| format!("invalid HCL: {e}"))?
    } else {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?
    };
    from_config_value(doc)
}

/// Parses a file, choosing the format by extension (`.hcl`, else JSON, falling back to HCL).
pub fn parse_file(path: &str, text: &str) -> Result<Vec<ServiceDefinition>, String> {
    if path.ends_with(".hcl") {
        return parse(text, true);
    }
    match parse(text, false) {
        Ok(v) => Ok(v),
        Err(json_err) if !path.ends_with(".json") => parse(text, true).map_err(|_| json_err),
        Err(e) => Err(e),
    }
}

/// Extracts the services of a decoded config document.
pub fn from_config_value(doc: Value) -> Result<Vec<ServiceDefinition>, String> {
    let Value::Object(top) = doc else {
        return Err("expected an object with a \"service\" or \"services\" key".into());
    };
    let mut raw = Vec::new();
    for (k, v) in top {
        match k.to_ascii_lowercase().as_str() {
            "service" | "services" => match v {
                Value::Array(items) => raw.extend(items),
                obj @ Value::Object(_) => raw.push(obj),
                _ => return Err(format!("\"{k}\" must be an object or a list of objects")),
            },
            _ => {}
        }
    }
    if raw.is_empty() {
        return Err("no \"service\" or \"services\" definition found".into());
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let def: ServiceDefinition = serde_json::from_value(normalize(to_api_keys(v)))
                .map_err(|e| format!("service #{}: {e}", i + 1))?;
            if def.name.is_empty() {
                return Err(format!("service #{}: missing service name", i + 1));
            }
            Ok(def)
        })
        .collect()
}

/// Fixes shapes HCL produces: a single `checks {}` block is an object, and repeated
/// `check {}` blocks are a list.
fn normalize(v: Value) -> Value {
    let Value::Object(mut m) = v else { return v };
    if let Some(Value::Object(_)) = m.get("Checks") {
        if let Some(obj) = m.remove("Checks") {
            m.insert("Checks".into(), Value::Array(vec![obj]));
        }
    }
    if let Some(Value::Array(_)) = m.get("Check") {
        if let Some(Value::Array(list)) = m.remove("Check") {
            let mut checks = match m.remove("Checks") {
                Some(Value::Array(c)) => c,
                _ => Vec::new(),
            };
            checks.extend(list);
            m.insert("Checks".into(), Value::Array(checks));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_conversion() {
        assert_eq!(api_key("id"), "ID");
        assert_eq!(api_key("enable_tag_override"), "EnableTagOverride");
        assert_eq!(api_key("tls_skip_verify"), "TLSSkipVerify");
        assert_eq!(api_key("grpc_use_tls"), "GRPCUseTLS");
        assert_eq!(
            api_key("deregister_critical_service_after"),
            "DeregisterCriticalServiceAfter"
        );
        assert_eq!(api_key("docker_container_id"), "DockerContainerID");
        assert_eq!(api_key("h2ping"), "H2PING");
        assert_eq!(api_key("ServiceID"), "ServiceID");
    }

    #[test]
    fn json_service_with_checks_and_user_maps() {
        let defs = parse(
            r#"{"service": {
                "name": "web", "id": "web-1", "port": 8080, "tags": ["v1"],
                "meta": {"team_name": "x"},
                "tagged_addresses": {"lan_ipv4": {"address": "10.0.0.1", "port": 80}},
                "check": {"id": "web-http", "http": "http://localhost:8080/health",
                          "interval": "10s", "header": {"x_auth": ["t"]}},
                "enable_tag_override": true
            }}"#,
            false,
        )
        .unwrap();
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(d.id, "web-1");
        assert_eq!(d.port, Some(8080));
        assert_eq!(d.meta["team_name"], "x");
        assert_eq!(d.tagged_addresses["lan_ipv4"].port, 80);
        assert!(d.enable_tag_override);
        let c = d.check.as_ref().unwrap();
        assert_eq!(c.check_id, "web-http");
        assert_eq!(c.http, "http://localhost:8080/health");
        assert_eq!(c.header["x_auth"], ["t"]);
        let body = serde_json::to_value(d).unwrap();
        assert_eq!(body["Check"]["CheckID"], "web-http");
        assert_eq!(body["Meta"], json!({"team_name": "x"}));
    }

    #[test]
    fn json_services_list() {
        let defs = parse(
            r#"{"services": [{"name": "a", "checks": [{"ttl": "30s"}]}, {"Name": "b"}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].checks[0].ttl, "30s");
        assert_eq!(defs[1].name, "b");
    }

    #[test]
    fn hcl_service() {
        let defs = parse(
            r#"
            service {
              name = "redis"
              port = 6379
              tags = ["primary"]
              meta = { version = "7" }
              check {
                id       = "redis-tcp"
                tcp      = "localhost:6379"
                interval = "10s"
              }
            }
            "#,
            true,
        )
        .unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].name, "redis");
        assert_eq!(defs[0].port, Some(6379));
        assert_eq!(defs[0].meta["version"], "7");
        let c = defs[0].check.as_ref().unwrap();
        assert_eq!(c.tcp, "localhost:6379");
    }

    #[test]
    fn hcl_repeated_blocks() {
        let defs = parse(
            r#"
            services { name = "a" }
            services { name = "b" }
            "#,
            true,
        )
        .unwrap();
        let names: Vec<_> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse("{", false).is_err());
        assert!(parse("[]", false).is_err());
        assert!(parse(r#"{"service": 3}"#, false).is_err());
        assert!(parse(r#"{"service": {"port": 1}}"#, false).is_err());
        assert!(parse(r#"{"service": {"name": "x", "port": "nope"}}"#, false).is_err());
        assert!(parse(r#"{"check": {}}"#, false).is_err());
        assert!(parse("service {", true).is_err());
    }
}
