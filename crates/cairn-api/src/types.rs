//! Wire types of the Consul HTTP API, with Consul's exact JSON field names.
//!
//! They live here rather than in `cairn-types` so the client is independent of the server's
//! domain model. Decoding is lenient, as a client should be: unknown fields are ignored, and
//! missing or `null` fields take their default value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Deserialises `null` (or a missing field, with `#[serde(default)]`) as `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `Value` of a KV pair: base64 on the wire, raw bytes in memory, `null` for no value.
mod base64_bytes {
    use super::*;
    use base64::Engine as _;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(serde::de::Error::custom),
        }
    }
}

/// One entry of `GET /v1/agent/members`: a gossip member as seen by the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    #[serde(rename = "Name", deserialize_with = "null_default")]
    pub name: String,
    #[serde(rename = "Addr", deserialize_with = "null_default")]
    pub addr: String,
    #[serde(rename = "Port", deserialize_with = "null_default")]
    pub port: u16,
    /// Serf tags: `role` (`consul` for servers), `dc`, `build`, `vsn`, `segment`, ...
    #[serde(rename = "Tags", deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    /// Serf status: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
    #[serde(rename = "Status", deserialize_with = "null_default")]
    pub status: i64,
    #[serde(rename = "ProtocolMin", deserialize_with = "null_default")]
    pub protocol_min: u64,
    #[serde(rename = "ProtocolMax", deserialize_with = "null_default")]
    pub protocol_max: u64,
    #[serde(rename = "ProtocolCur", deserialize_with = "null_default")]
    pub protocol_cur: u64,
    #[serde(rename = "DelegateMin", deserialize_with = "null_default")]
    pub delegate_min: u64,
    #[serde(rename = "DelegateMax", deserialize_with = "null_default")]
    pub delegate_max: u64,
    #[serde(rename = "DelegateCur", deserialize_with = "null_default")]
    pub delegate_cur: u64,
}

impl Member {
    /// The status as the `consul members` CLI prints it.
    pub fn status_text(&self) -> &'static str {
        match self.status {
            0 => "none",
            1 => "alive",
            2 => "leaving",
            3 => "left",
            4 => "failed",
            _ => "unknown",
        }
    }
}

/// `{Passing, Warning}` DNS SRV weights of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    #[serde(rename = "Passing", deserialize_with = "null_default")]
    pub passing: i64,
    #[serde(rename = "Warning", deserialize_with = "null_default")]
    pub warning: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service tagged address (`{"Address": "...", "Port": N}`; lowercase keys also accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAddress {
    #[serde(
        rename = "Address",
        alias = "address",
        deserialize_with = "null_default"
    )]
    pub address: String,
    #[serde(rename = "Port", alias = "port", deserialize_with = "null_default")]
    pub port: u16,
}

/// A check embedded in a service registration (`Check` / `Checks[]` of
/// `PUT /v1/agent/service/register`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentServiceCheck {
    #[serde(
        rename = "CheckID",
        alias = "ID",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub check_id: String,
    #[serde(
        rename = "Name",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        rename = "Notes",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub notes: String,
    #[serde(
        rename = "Status",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub status: String,
    #[serde(
        rename = "Args",
        alias = "ScriptArgs",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    #[serde(
        rename = "Interval",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub interval: String,
    #[serde(
        rename = "Timeout",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub timeout: String,
    #[serde(
        rename = "TTL",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ttl: String,
    #[serde(
        rename = "HTTP",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub http: String,
    #[serde(
        rename = "Header",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(
        rename = "Method",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub method: String,
    #[serde(
        rename = "Body",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub body: String,
    #[serde(
        rename = "DisableRedirects",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disable_redirects: bool,
    #[serde(
        rename = "TCP",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tcp: String,
    #[serde(
        rename = "TCPUseTLS",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub tcp_use_tls: bool,
    #[serde(
        rename = "UDP",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub udp: String,
    #[serde(
        rename = "TLSServerName",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_server_name: String,
    #[serde(
        rename = "TLSSkipVerify",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub tls_skip_verify: bool,
    #[serde(
        rename = "GRPC",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub grpc: String,
    #[serde(
        rename = "GRPCUseTLS",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub grpc_use_tls: bool,
    #[serde(
        rename = "H2PING",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub h2ping: String,
    #[serde(
        rename = "H2PingUseTLS",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub h2ping_use_tls: Option<bool>,
    #[serde(
        rename = "DockerContainerID",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_container_id: String,
    #[serde(
        rename = "Shell",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub shell: String,
    #[serde(
        rename = "AliasNode",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub alias_node: String,
    #[serde(
        rename = "AliasService",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub alias_service: String,
    #[serde(
        rename = "OSService",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_service: String,
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub deregister_critical_service_after: String,
    #[serde(
        rename = "SuccessBeforePassing",
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub success_before_passing: u64,
    #[serde(
        rename = "FailuresBeforeWarning",
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub failures_before_warning: u64,
    #[serde(
        rename = "FailuresBeforeCritical",
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub failures_before_critical: u64,
    #[serde(
        rename = "OutputMaxSize",
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub output_max_size: u64,
}

/// The body of `PUT /v1/agent/service/register`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDefinition {
    #[serde(
        rename = "ID",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(rename = "Name", deserialize_with = "null_default")]
    pub name: String,
    #[serde(
        rename = "Tags",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    #[serde(
        rename = "Address",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub address: String,
    #[serde(
        rename = "TaggedAddresses",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(
        rename = "Meta",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub meta: BTreeMap<String, String>,
    #[serde(
        rename = "Port",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    #[serde(
        rename = "Kind",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    #[serde(
        rename = "EnableTagOverride",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub enable_tag_override: bool,
    #[serde(
        rename = "Weights",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub weights: Option<Weights>,
    #[serde(
        rename = "Check",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub check: Option<AgentServiceCheck>,
    #[serde(
        rename = "Checks",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub checks: Vec<AgentServiceCheck>,
    #[serde(
        rename = "Namespace",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// Connect proxy configuration, passed through untouched.
    #[serde(
        rename = "Proxy",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy: Option<serde_json::Value>,
    /// Connect settings (`Native`, `SidecarService`), passed through untouched.
    #[serde(
        rename = "Connect",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect: Option<serde_json::Value>,
}

impl ServiceDefinition {
    /// The ID the agent will use: `ID`, or `Name` when no ID is set.
    pub fn effective_id(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }
}

/// A service registered on the local agent (`GET /v1/agent/services` values); also the
/// `Service` part of a health entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentService {
    #[serde(rename = "ID", deserialize_with = "null_default")]
    pub id: String,
    #[serde(rename = "Service", deserialize_with = "null_default")]
    pub service: String,
    #[serde(rename = "Tags", deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "Port", deserialize_with = "null_default")]
    pub port: u16,
    #[serde(rename = "Address", deserialize_with = "null_default")]
    pub address: String,
    #[serde(rename = "TaggedAddresses", deserialize_with = "null_default")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "EnableTagOverride", deserialize_with = "null_default")]
    pub enable_tag_override: bool,
    #[serde(rename = "Weights", deserialize_with = "null_default")]
    pub weights: Weights,
    #[serde(rename = "Kind", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(rename = "Datacenter", deserialize_with = "null_default")]
    pub datacenter: String,
    #[serde(rename = "Namespace", deserialize_with = "null_default")]
    pub namespace: String,
    #[serde(rename = "CreateIndex", deserialize_with = "null_default")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", deserialize_with = "null_default")]
    pub modify_index: u64,
}

/// A catalog node (`GET /v1/catalog/nodes` element; `Node` of a health entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(rename = "ID", deserialize_with = "null_default")]
    pub id: String,
    #[serde(rename = "Node", deserialize_with = "null_default")]
    pub node: String,
    #[serde(rename = "Address", deserialize_with = "null_default")]
    pub address: String,
    #[serde(rename = "Datacenter", deserialize_with = "null_default")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses", deserialize_with = "null_default")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "CreateIndex", deserialize_with = "null_default")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", deserialize_with = "null_default")]
    pub modify_index: u64,
}

/// One instance of `GET /v1/catalog/service/:name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogService {
    #[serde(rename = "ID", deserialize_with = "null_default")]
    pub id: String,
    #[serde(rename = "Node", deserialize_with = "null_default")]
    pub node: String,
    #[serde(rename = "Address", deserialize_with = "null_default")]
    pub address: String,
    #[serde(rename = "Datacenter", deserialize_with = "null_default")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses", deserialize_with = "null_default")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "NodeMeta", deserialize_with = "null_default")]
    pub node_meta: BTreeMap<String, String>,
    #[serde(rename = "ServiceID", deserialize_with = "null_default")]
    pub service_id: String,
    #[serde(rename = "ServiceName", deserialize_with = "null_default")]
    pub service_name: String,
    /// Empty means "use the node `Address`".
    #[serde(rename = "ServiceAddress", deserialize_with = "null_default")]
    pub service_address: String,
    #[serde(rename = "ServiceTaggedAddresses", deserialize_with = "null_default")]
    pub service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "ServicePort", deserialize_with = "null_default")]
    pub service_port: u16,
    #[serde(rename = "ServiceTags", deserialize_with = "null_default")]
    pub service_tags: Vec<String>,
    #[serde(rename = "ServiceMeta", deserialize_with = "null_default")]
    pub service_meta: BTreeMap<String, String>,
    #[serde(rename = "ServiceKind", deserialize_with = "null_default")]
    pub service_kind: String,
    #[serde(rename = "ServiceEnableTagOverride", deserialize_with = "null_default")]
    pub service_enable_tag_override: bool,
    #[serde(rename = "ServiceWeights", deserialize_with = "null_default")]
    pub service_weights: Weights,
    #[serde(rename = "Namespace", deserialize_with = "null_default")]
    pub namespace: String,
    #[serde(rename = "CreateIndex", deserialize_with = "null_default")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", deserialize_with = "null_default")]
    pub modify_index: u64,
}

/// The `Definition` of a health check as reported by the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckDefinition {
    #[serde(rename = "HTTP", deserialize_with = "null_default")]
    pub http: String,
    #[serde(rename = "Header", deserialize_with = "null_default")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method", deserialize_with = "null_default")]
    pub method: String,
    #[serde(rename = "Body", deserialize_with = "null_default")]
    pub body: String,
    #[serde(rename = "TLSServerName", deserialize_with = "null_default")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", deserialize_with = "null_default")]
    pub tls_skip_verify: bool,
    #[serde(rename = "TCP", deserialize_with = "null_default")]
    pub tcp: String,
    /// Consul emits durations here as strings or nanosecond numbers, so kept as raw JSON.
    #[serde(rename = "Interval", deserialize_with = "null_default")]
    pub interval: serde_json::Value,
    #[serde(rename = "Timeout", deserialize_with = "null_default")]
    pub timeout: serde_json::Value,
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        deserialize_with = "null_default"
    )]
    pub deregister_critical_service_after: serde_json::Value,
}

/// A health check (`/v1/health/*`, the `Checks` of a health entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "Node", deserialize_with = "null_default")]
    pub node: String,
    #[serde(rename = "CheckID", deserialize_with = "null_default")]
    pub check_id: String,
    #[serde(rename = "Name", deserialize_with = "null_default")]
    pub name: String,
    /// `passing`, `warning`, `critical` (or `maintenance` in some aggregates).
    #[serde(rename = "Status", deserialize_with = "null_default")]
    pub status: String,
    #[serde(rename = "Notes", deserialize_with = "null_default")]
    pub notes: String,
    #[serde(rename = "Output", deserialize_with = "null_default")]
    pub output: String,
    #[serde(rename = "ServiceID", deserialize_with = "null_default")]
    pub service_id: String,
    #[serde(rename = "ServiceName", deserialize_with = "null_default")]
    pub service_name: String,
    #[serde(rename = "ServiceTags", deserialize_with = "null_default")]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type", deserialize_with = "null_default")]
    pub check_type: String,
    #[serde(rename = "Namespace", deserialize_with = "null_default")]
    pub namespace: String,
    #[serde(rename = "Definition", deserialize_with = "null_default")]
    pub definition: HealthCheckDefinition,
    #[serde(rename = "CreateIndex", deserialize_with = "null_default")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", deserialize_with = "null_default")]
    pub modify_index: u64,
}

/// One element of `GET /v1/health/service/:name`: node, service instance and all checks
/// (including node-level ones such as `serfHealth`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceEntry {
    #[serde(rename = "Node", deserialize_with = "null_default")]
    pub node: Node,
    #[serde(rename = "Service", deserialize_with = "null_default")]
    pub service: AgentService,
    #[serde(rename = "Checks", deserialize_with = "null_default")]
    pub checks: Vec<HealthCheck>,
}

impl ServiceEntry {
    /// The address to dial: the service address, or the node's when the service has none.
    pub fn address(&self) -> &str {
        if self.service.address.is_empty() {
            &self.node.address
        } else {
            &self.service.address
        }
    }

    /// The worst status among the checks (`passing` when there are none).
    pub fn aggregated_status(&self) -> &str {
        let rank = |s: &str| match s {
            "passing" => 0,
            "warning" => 1,
            _ => 2,
        };
        self.checks
            .iter()
            .map(|c| c.status.as_str())
            .max_by_key(|s| rank(s))
            .unwrap_or("passing")
    }
}

/// A KV entry (`GET /v1/kv/:key`). `value` is already base64-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvPair {
    #[serde(rename = "Key", deserialize_with = "null_default")]
    pub key: String,
    #[serde(rename = "CreateIndex", deserialize_with = "null_default")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", deserialize_with = "null_default")]
    pub modify_index: u64,
    #[serde(rename = "LockIndex", deserialize_with = "null_default")]
    pub lock_index: u64,
    #[serde(rename = "Flags", deserialize_with = "null_default")]
    pub flags: u64,
    #[serde(rename = "Value", with = "base64_bytes")]
    pub value: Vec<u8>,
    /// The session holding the lock, if any.
    #[serde(
        rename = "Session",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub session: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_pair_decodes_base64_and_null() {
        let p: KvPair = serde_json::from_value(json!({
            "CreateIndex": 5, "ModifyIndex": 7, "LockIndex": 0, "Key": "foo",
            "Flags": 42, "Value": "YmFy", "Session": null, "Extra": true
        }))
        .unwrap();
        assert_eq!(p.value, b"bar");
        assert_eq!(p.flags, 42);
        assert_eq!(p.session, None);
        let p: KvPair = serde_json::from_value(json!({"Key": "k", "Value": null})).unwrap();
        assert!(p.value.is_empty());
        assert!(serde_json::from_value::<KvPair>(json!({"Value": "!!"})).is_err());
        let back = serde_json::to_value(KvPair {
            key: "k".into(),
            value: b"bar".to_vec(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back["Value"], "YmFy");
    }

    #[test]
    fn catalog_service_uses_consul_names_and_tolerates_nulls() {
        let s: CatalogService = serde_json::from_value(json!({
            "ID": "abc", "Node": "n1", "Address": "10.0.0.1", "ServiceID": "web-1",
            "ServiceName": "web", "ServicePort": 80, "ServiceTags": null, "ServiceMeta": null,
            "ServiceTaggedAddresses": {"lan": {"address": "10.0.0.1", "port": 80}}
        }))
        .unwrap();
        assert_eq!(s.service_id, "web-1");
        assert!(s.service_tags.is_empty());
        assert_eq!(s.service_tagged_addresses["lan"].port, 80);
        assert_eq!(s.service_weights, Weights::default());
    }

    #[test]
    fn service_definition_serialises_sparse_camel_case() {
        let def = ServiceDefinition {
            name: "web".into(),
            port: Some(8080),
            tags: vec!["v1".into()],
            check: Some(AgentServiceCheck {
                check_id: "c".into(),
                ttl: "10s".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&def).unwrap();
        assert_eq!(
            v,
            json!({"Name": "web", "Port": 8080, "Tags": ["v1"],
                   "Check": {"CheckID": "c", "TTL": "10s"}})
        );
    }

    #[test]
    fn health_entry_helpers() {
        let e: ServiceEntry = serde_json::from_value(json!({
            "Node": {"Node": "n1", "Address": "10.0.0.1"},
            "Service": {"ID": "web", "Service": "web", "Address": "", "Port": 80},
            "Checks": [{"CheckID": "serfHealth", "Status": "passing"},
                       {"CheckID": "c2", "Status": "warning"}]
        }))
        .unwrap();
        assert_eq!(e.address(), "10.0.0.1");
        assert_eq!(e.aggregated_status(), "warning");
    }

    #[test]
    fn member_status_text() {
        let m: Member = serde_json::from_value(json!({"Name": "a", "Status": 4})).unwrap();
        assert_eq!(m.status_text(), "failed");
    }
}
