//! Case-insensitive JSON input, as Consul accepts it.
//!
//! Consul decodes request bodies with case-insensitive keys and, for agent service and
//! check definitions, snake_case aliases (`service_id`, `deregister_critical_service_after`).
//! Clients rely on it: py-consul sends `{"name": ..}` and `{"ttl": ..}`. Rather than
//! annotate every struct with every spelling, [`normalize`] rewrites the keys of a
//! request body to Consul's canonical spelling once, before typed decoding. Keys of
//! user-defined maps (`Meta`, `NodeMeta`, `Header`, `TaggedAddresses`) are left as given.

use serde_json::{Map, Value};

/// Canonical spelling of a key, or `None` when it is not a known Consul field name.
fn canonical(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    Some(match folded.as_str() {
        "id" => "ID",
        "name" => "Name",
        "service" => "Service",
        "services" => "Services",
        "tags" => "Tags",
        "address" => "Address",
        "taggedaddresses" => "TaggedAddresses",
        "meta" => "Meta",
        "port" => "Port",
        "weights" => "Weights",
        "passing" => "Passing",
        "warning" => "Warning",
        "enabletagoverride" => "EnableTagOverride",
        "kind" => "Kind",
        "check" => "Check",
        "checks" => "Checks",
        "checkid" => "CheckID",
        "serviceid" => "ServiceID",
        "servicename" => "ServiceName",
        "servicetags" => "ServiceTags",
        "status" => "Status",
        "notes" => "Notes",
        "output" => "Output",
        "ttl" => "TTL",
        "http" => "HTTP",
        "tcp" => "TCP",
        "udp" => "UDP",
        "grpc" => "GRPC",
        "grpcusetls" => "GRPCUseTLS",
        "h2ping" => "H2PING",
        "h2pingusetls" => "H2PingUseTLS",
        "args" => "Args",
        "scriptargs" => "ScriptArgs",
        "interval" => "Interval",
        "timeout" => "Timeout",
        "deregistercriticalserviceafter" => "DeregisterCriticalServiceAfter",
        "header" => "Header",
        "method" => "Method",
        "body" => "Body",
        "tlsservername" => "TLSServerName",
        "tlsskipverify" => "TLSSkipVerify",
        "aliasnode" => "AliasNode",
        "aliasservice" => "AliasService",
        "dockercontainerid" => "DockerContainerID",
        "shell" => "Shell",
        "successbeforepassing" => "SuccessBeforePassing",
        "failuresbeforecritical" => "FailuresBeforeCritical",
        "failuresbeforewarning" => "FailuresBeforeWarning",
        "node" => "Node",
        "datacenter" => "Datacenter",
        "nodemeta" => "NodeMeta",
        "skipnodeupdate" => "SkipNodeUpdate",
        "definition" => "Definition",
        "lockdelay" => "LockDelay",
        "behavior" => "Behavior",
        "nodechecks" => "NodeChecks",
        "servicechecks" => "ServiceChecks",
        "namespace" => "Namespace",
        "partition" => "Partition",
        "kv" => "KV",
        "verb" => "Verb",
        "key" => "Key",
        "value" => "Value",
        "flags" => "Flags",
        "index" => "Index",
        "session" => "Session",
        "proxy" => "Proxy",
        "locality" => "Locality",
        "destinationservicename" => "DestinationServiceName",
        "native" => "Native",
        "connect" => "Connect",
        "token" => "Token",
        "createindex" => "CreateIndex",
        "modifyindex" => "ModifyIndex",
        "lockindex" => "LockIndex",
        "type" => "Type",
        "exposedport" => "ExposedPort",
        _ => return None,
    })
}

/// Fields whose value is a map of user-chosen keys: keep those keys verbatim.
fn is_user_map(canonical_key: &str) -> bool {
    matches!(
        canonical_key,
        "Meta" | "NodeMeta" | "Header" | "TaggedAddresses" | "ServiceMeta"
    )
}

/// Rewrites every known key of `v` (recursively) to Consul's canonical spelling.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, val) in map {
                let key = canonical(&k).map(str::to_string).unwrap_or(k);
                let val = if is_user_map(&key) {
                    normalize_map_values(val)
                } else {
                    normalize(val)
                };
                out.insert(key, val);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

fn normalize_map_values(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_case_and_snake_case() {
        let v = normalize(json!({
            "name": "web", "service_id": "x", "CheckId": "c",
            "check": {"ttl": "10s", "deregister_critical_service_after": "1m"}
        }));
        assert_eq!(
            v,
            json!({"Name": "web", "ServiceID": "x", "CheckID": "c",
                   "Check": {"TTL": "10s", "DeregisterCriticalServiceAfter": "1m"}})
        );
    }

    #[test]
    fn keeps_user_map_keys() {
        let v = normalize(json!({"meta": {"name": "x", "Some_Key": "y"},
                                 "tagged_addresses": {"lan": {"address": "1.2.3.4", "port": 80}}}));
        assert_eq!(
            v,
            json!({"Meta": {"name": "x", "Some_Key": "y"},
                   "TaggedAddresses": {"lan": {"Address": "1.2.3.4", "Port": 80}}})
        );
    }

    #[test]
    fn unknown_keys_stay() {
        assert_eq!(
            normalize(json!({"Whatever_Else": 1})),
            json!({"Whatever_Else": 1})
        );
    }
}

/// The JSON path (`Service.Name`, `[2].KV.Key`) of the first string in `v`, key or value,
/// that holds a NUL byte. Names with NUL are refused in URLs; a body must not be a way
/// around that, and no Consul field has a use for NUL.
pub fn find_nul(v: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(v, &mut path).then_some(path)
}

#[cfg(test)]
mod nul_tests {
    use super::find_nul;
    use serde_json::json;

    #[test]
    fn finds_nul_in_values_and_keys_with_path() {
        assert_eq!(
            find_nul(&json!({"Node": "a", "Service": {"Service": "w"}})),
            None
        );
        assert_eq!(
            find_nul(&json!({"Node": "a", "Service": {"Service": "w\u{0}x"}})).as_deref(),
            Some("Service.Service")
        );
        assert_eq!(
            find_nul(&json!([{"KV": {"Key": "ok"}}, {"KV": {"Key": "b\u{0}"}}])).as_deref(),
            Some("[1].KV.Key")
        );
        assert_eq!(
            find_nul(&json!({"Meta": {"k\u{0}": "v"}})).as_deref(),
            Some("Meta.k\\u0000")
        );
    }
}
