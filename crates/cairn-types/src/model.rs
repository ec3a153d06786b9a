//! Catalog, health, KV and session records as Consul serialises them.
//!
//! Field names follow Consul's JSON exactly (`ServiceID`, not `ServiceId`); maps are
//! `BTreeMap` so keys come back sorted, as Consul's do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Health states of a check, in Consul's spelling.
pub const PASSING: &str = "passing";
/// A check that is degraded but not failing.
pub const WARNING: &str = "warning";
/// A failing check: the instance is left out of discovery.
pub const CRITICAL: &str = "critical";
/// The gossip liveness check every node carries.
pub const SERF_CHECK_ID: &str = "serfHealth";
/// Name of the gossip liveness check.
pub const SERF_CHECK_NAME: &str = "Serf Health Status";
/// Check ID used for node maintenance mode.
pub const NODE_MAINT_CHECK_ID: &str = "_node_maintenance";
/// Prefix of the check ID used for service maintenance mode.
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";

/// Returns true for the three valid check states.
pub fn is_valid_status(s: &str) -> bool {
    matches!(s, PASSING | WARNING | CRITICAL)
}

/// A node of the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Node", default)]
    pub node: String,
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses", default)]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "Meta", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// A tagged address of a service (`{"Address": .., "Port": ..}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceAddress {
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "Port", default)]
    pub port: u16,
}

/// DNS SRV weights of a service instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    #[serde(rename = "Passing", default = "one")]
    pub passing: i64,
    #[serde(rename = "Warning", default = "one")]
    pub warning: i64,
}

fn one() -> i64 {
    1
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service instance registered on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeService {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Service", default)]
    pub service: String,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<String>,
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "TaggedAddresses", default)]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Meta", default)]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "Port", default)]
    pub port: u16,
    #[serde(rename = "Weights", default)]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride", default)]
    pub enable_tag_override: bool,
    #[serde(rename = "Kind", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Connect proxy configuration, kept as given (Cairn has no service mesh).
    #[serde(rename = "Proxy", default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<serde_json::Value>,
    /// Connect settings (`{"Native": true}`), kept as given.
    #[serde(rename = "Connect", default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<serde_json::Value>,
    #[serde(rename = "Locality", default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<serde_json::Value>,
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// The part of a check's definition that Consul echoes in health results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckDefinition {
    #[serde(rename = "Interval", default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    #[serde(rename = "Timeout", default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub deregister_critical_service_after: String,
    #[serde(rename = "HTTP", default, skip_serializing_if = "String::is_empty")]
    pub http: String,
    #[serde(rename = "Header", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method", default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(rename = "Body", default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(
        rename = "TLSServerName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", default)]
    pub tls_skip_verify: bool,
    #[serde(rename = "TCP", default, skip_serializing_if = "String::is_empty")]
    pub tcp: String,
}

/// One health check as stored in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(rename = "Node", default)]
    pub node: String,
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "Notes", default)]
    pub notes: String,
    #[serde(rename = "Output", default)]
    pub output: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(rename = "ServiceName", default)]
    pub service_name: String,
    #[serde(rename = "ServiceTags", default)]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type", default)]
    pub check_type: String,
    #[serde(rename = "Interval", default)]
    pub interval: String,
    #[serde(rename = "Timeout", default)]
    pub timeout: String,
    #[serde(rename = "ExposedPort", default)]
    pub exposed_port: u16,
    #[serde(rename = "Definition", default)]
    pub definition: CheckDefinition,
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// A KV entry. `value` is raw bytes; JSON carries it base64-encoded (see [`KvPair`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    pub session: String,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The JSON form of a KV entry on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvPair {
    #[serde(rename = "LockIndex")]
    pub lock_index: u64,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Flags")]
    pub flags: u64,
    #[serde(rename = "Value")]
    pub value: Option<String>,
    #[serde(rename = "Session", skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl NodeService {
    /// The service a Connect-capable instance fronts: a `connect-proxy`'s destination,
    /// or the service itself when it is Connect-native.
    pub fn connect_target(&self) -> Option<&str> {
        if self.kind == "connect-proxy" {
            return self
                .proxy
                .as_ref()
                .and_then(|p| p.get("DestinationServiceName"))
                .and_then(|v| v.as_str());
        }
        let native = self
            .connect
            .as_ref()
            .and_then(|c| c.get("Native"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        native.then_some(self.service.as_str())
    }
}

impl From<&KvEntry> for KvPair {
    fn from(e: &KvEntry) -> Self {
        use base64::Engine as _;
        KvPair {
            lock_index: e.lock_index,
            key: e.key.clone(),
            flags: e.flags,
            // Consul returns null for an empty value.
            value: if e.value.is_empty() {
                None
            } else {
                Some(base64::engine::general_purpose::STANDARD.encode(&e.value))
            },
            session: if e.session.is_empty() {
                None
            } else {
                Some(e.session.clone())
            },
            create_index: e.create_index,
            modify_index: e.modify_index,
        }
    }
}

/// A service check a session is tied to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceCheckRef {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(
        rename = "Namespace",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// What happens to a session's locks when it is invalidated.
pub const BEHAVIOR_RELEASE: &str = "release";
/// Invalidation deletes the keys the session holds.
pub const BEHAVIOR_DELETE: &str = "delete";

/// A session as stored and returned by `/v1/session/*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Node", default)]
    pub node: String,
    /// Nanoseconds, as Consul's JSON has it.
    #[serde(rename = "LockDelay", default)]
    pub lock_delay: u64,
    #[serde(rename = "Behavior", default)]
    pub behavior: String,
    /// A Go duration string such as `"30s"`, or empty for no TTL.
    #[serde(rename = "TTL", default)]
    pub ttl: String,
    #[serde(rename = "NodeChecks", default)]
    pub node_checks: Vec<String>,
    #[serde(rename = "ServiceChecks", default)]
    pub service_checks: Vec<ServiceCheckRef>,
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// Largest lock-delay a session may ask for (Consul's `MaxLockDelay`).
pub const MAX_LOCK_DELAY_NANOS: u64 = 60_000_000_000;

/// One gossip pool's keyring, Consul's `KeyringResponse` (`/v1/operator/keyring`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyringResponse {
    #[serde(rename = "WAN")]
    pub wan: bool,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "Segment")]
    pub segment: String,
    /// Each key and how many members hold it.
    #[serde(rename = "Keys")]
    pub keys: BTreeMap<String, usize>,
    /// Each key and how many members encrypt with it.
    #[serde(rename = "PrimaryKeys")]
    pub primary_keys: BTreeMap<String, usize>,
    /// Alive members asked.
    #[serde(rename = "NumNodes")]
    pub num_nodes: usize,
    /// Per-member errors (node name -> text).
    #[serde(rename = "Messages")]
    pub messages: BTreeMap<String, String>,
}

impl KeyringResponse {
    /// The pool's name as Consul prints it: `WAN`, `dc1 (LAN)` or `dc1 (LAN) [segment]`.
    pub fn pool_name(&self) -> String {
        if self.wan {
            "WAN".to_string()
        } else if self.segment.is_empty() {
            format!("{} (LAN)", self.datacenter)
        } else {
            format!("{} (LAN) [{}]", self.datacenter, self.segment)
        }
    }
}
