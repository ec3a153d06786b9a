//! Agent service and check definitions: the bodies of `/v1/agent/service/register`
//! and `/v1/agent/check/register`, and the `service`/`check` blocks of config files.
//!
//! Decode them from JSON that went through [`crate::input::normalize`], so every
//! spelling Consul accepts (CamelCase, snake_case, lower case) arrives here canonical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ServiceAddress, Weights};

/// Accepts a Go duration string or a number of nanoseconds (Consul decodes both) and
/// keeps it as a duration string.
fn go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(String::new()),
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(|ns| crate::duration::format_duration(std::time::Duration::from_nanos(ns)))
            .ok_or_else(|| {
                D::Error::custom(
                    "duration must be a non-negative integer of nanoseconds or a string",
                )
            }),
        other => Err(D::Error::custom(format!("invalid duration {other}"))),
    }
}

fn yes() -> bool {
    true
}

/// A service as an agent registers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDefinition {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Tags", default)]
    pub tags: Option<Vec<String>>,
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "TaggedAddresses", default)]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Meta", default)]
    pub meta: Option<BTreeMap<String, String>>,
    #[serde(rename = "Port", default)]
    pub port: u16,
    #[serde(rename = "Kind", default)]
    pub kind: String,
    #[serde(rename = "Weights", default)]
    pub weights: Option<Weights>,
    #[serde(rename = "EnableTagOverride", default)]
    pub enable_tag_override: bool,
    #[serde(rename = "Proxy", default)]
    pub proxy: Option<serde_json::Value>,
    #[serde(rename = "Connect", default)]
    pub connect: Option<serde_json::Value>,
    #[serde(rename = "Locality", default)]
    pub locality: Option<serde_json::Value>,
    #[serde(rename = "Check", default)]
    pub check: Option<CheckDefinition>,
    #[serde(rename = "Checks", default)]
    pub checks: Option<Vec<CheckDefinition>>,
    /// The ACL token the agent writes this service to the catalog with (Consul's
    /// `Token`; empty: the agent's own token).
    #[serde(rename = "Token", default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

/// A health check definition (any type: TTL, HTTP, TCP, UDP, gRPC, script, alias...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckDefinition {
    #[serde(rename = "ID", alias = "CheckID", default)]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Notes", default)]
    pub notes: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "TTL", default, deserialize_with = "go_duration")]
    pub ttl: String,
    #[serde(rename = "HTTP", default)]
    pub http: String,
    #[serde(rename = "Header", default)]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method", default)]
    pub method: String,
    #[serde(rename = "Body", default)]
    pub body: String,
    #[serde(rename = "TLSServerName", default)]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", default)]
    pub tls_skip_verify: bool,
    #[serde(rename = "TCP", default)]
    pub tcp: String,
    #[serde(rename = "UDP", default)]
    pub udp: String,
    #[serde(rename = "GRPC", default)]
    pub grpc: String,
    #[serde(rename = "GRPCUseTLS", default)]
    pub grpc_use_tls: bool,
    #[serde(rename = "H2PING", default)]
    pub h2ping: String,
    /// H2PING over TLS (Consul's default) or plaintext HTTP/2 with prior knowledge.
    #[serde(rename = "H2PingUseTLS", default = "yes")]
    pub h2ping_use_tls: bool,
    #[serde(rename = "Args", alias = "ScriptArgs", default)]
    pub args: Vec<String>,
    #[serde(rename = "Shell", default)]
    pub shell: String,
    #[serde(rename = "DockerContainerID", default)]
    pub docker_container_id: String,
    #[serde(rename = "AliasNode", default)]
    pub alias_node: String,
    #[serde(rename = "AliasService", default)]
    pub alias_service: String,
    #[serde(rename = "Interval", default, deserialize_with = "go_duration")]
    pub interval: String,
    #[serde(rename = "Timeout", default, deserialize_with = "go_duration")]
    pub timeout: String,
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        default,
        deserialize_with = "go_duration"
    )]
    pub deregister_critical_service_after: String,
    #[serde(rename = "SuccessBeforePassing", default)]
    pub success_before_passing: u32,
    #[serde(rename = "FailuresBeforeWarning", default)]
    pub failures_before_warning: u32,
    #[serde(rename = "FailuresBeforeCritical", default)]
    pub failures_before_critical: u32,
}

impl CheckDefinition {
    /// Consul's check type name for this definition ("ttl", "http", ...), or None when
    /// it names no way to run the check.
    pub fn check_type(&self) -> Option<&'static str> {
        Some(if !self.ttl.is_empty() {
            "ttl"
        } else if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.udp.is_empty() {
            "udp"
        } else if !self.grpc.is_empty() {
            "grpc"
        } else if !self.h2ping.is_empty() {
            "h2ping"
        } else if !self.args.is_empty() {
            "script"
        } else if !self.alias_node.is_empty() || !self.alias_service.is_empty() {
            "alias"
        } else {
            return None;
        })
    }
}
