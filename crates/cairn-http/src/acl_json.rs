//! The wire side of `/v1/acl/*`: Consul's JSON shapes for tokens, policies and roles,
//! request bodies (keys matched regardless of case and underscores, as Consul's decoder
//! does), RFC 3339 times and content hashes.

use base64::Engine;
use cairn_state::{AclLink, AclPolicy, AclRole, AclToken, NodeIdentity, ServiceIdentity};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::reply::HttpError;

/// A link as a request gives it: by ID or by name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkIn {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceIdentityIn {
    #[serde(rename = "servicename")]
    pub service_name: String,
    #[serde(rename = "datacenters")]
    pub datacenters: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeIdentityIn {
    #[serde(rename = "nodename")]
    pub node_name: String,
    #[serde(rename = "datacenter")]
    pub datacenter: String,
}

/// Body of token create/update/clone.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenIn {
    #[serde(rename = "accessorid")]
    pub accessor_id: String,
    #[serde(rename = "secretid")]
    pub secret_id: String,
    #[serde(rename = "description")]
    pub description: String,
    #[serde(rename = "policies")]
    pub policies: Option<Vec<LinkIn>>,
    #[serde(rename = "roles")]
    pub roles: Option<Vec<LinkIn>>,
    #[serde(rename = "serviceidentities")]
    pub service_identities: Option<Vec<ServiceIdentityIn>>,
    #[serde(rename = "nodeidentities")]
    pub node_identities: Option<Vec<NodeIdentityIn>>,
    #[serde(rename = "templatedpolicies")]
    pub templated_policies: Option<Value>,
    #[serde(rename = "local")]
    pub local: bool,
    #[serde(rename = "expirationtime")]
    pub expiration_time: Option<String>,
    #[serde(rename = "expirationttl")]
    pub expiration_ttl: Option<Value>,
}

/// Body of policy create/update.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PolicyIn {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "description")]
    pub description: String,
    #[serde(rename = "rules")]
    pub rules: String,
    #[serde(rename = "datacenters")]
    pub datacenters: Vec<String>,
}

/// Body of role create/update.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoleIn {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "description")]
    pub description: String,
    #[serde(rename = "policies")]
    pub policies: Option<Vec<LinkIn>>,
    #[serde(rename = "serviceidentities")]
    pub service_identities: Option<Vec<ServiceIdentityIn>>,
    #[serde(rename = "nodeidentities")]
    pub node_identities: Option<Vec<NodeIdentityIn>>,
    #[serde(rename = "templatedpolicies")]
    pub templated_policies: Option<Value>,
}

/// Folds every object key to lower case without `_` and `-`.
fn fold_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k: String = k
                        .chars()
                        .filter(|c| *c != '_' && *c != '-')
                        .flat_map(char::to_lowercase)
                        .collect();
                    (k, fold_keys(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(fold_keys).collect()),
        other => other,
    }
}

/// Decodes an ACL request body (empty: the type's default).
pub fn decode<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    if !v.is_object() {
        return Err(HttpError::bad_request(
            "Request decode failed: expected a JSON object",
        ));
    }
    crate::query::reject_nul(&v)?;
    serde_json::from_value(fold_keys(v))
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))
}

/// Whether `s` is a UUID in the 8-4-4-4-12 hex form (either case).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Converts request identities into stored ones, checking what Consul checks.
pub fn service_identities(v: Vec<ServiceIdentityIn>) -> Result<Vec<ServiceIdentity>, HttpError> {
    v.into_iter()
        .map(|s| {
            if s.service_name.is_empty() {
                return Err(HttpError::bad_request(
                    "Service identity is missing the service name field",
                ));
            }
            Ok(ServiceIdentity {
                service_name: s.service_name,
                datacenters: s.datacenters,
            })
        })
        .collect()
}

/// Converts request node identities into stored ones.
pub fn node_identities(v: Vec<NodeIdentityIn>) -> Result<Vec<NodeIdentity>, HttpError> {
    v.into_iter()
        .map(|n| {
            if n.node_name.is_empty() {
                return Err(HttpError::bad_request(
                    "Node identity is missing the node name field",
                ));
            }
            if n.datacenter.is_empty() {
                return Err(HttpError::bad_request(
                    "Node identity is missing the datacenter field",
                ));
            }
            Ok(NodeIdentity {
                node_name: n.node_name,
                datacenter: n.datacenter,
            })
        })
        .collect()
}

fn links_json(links: &[AclLink]) -> Value {
    Value::Array(
        links
            .iter()
            .map(|l| json!({"ID": l.id, "Name": l.name}))
            .collect(),
    )
}

fn service_identities_json(v: &[ServiceIdentity]) -> Value {
    Value::Array(
        v.iter()
            .map(|s| {
                let mut o = json!({"ServiceName": s.service_name});
                if !s.datacenters.is_empty() {
                    o["Datacenters"] = json!(s.datacenters);
                }
                o
            })
            .collect(),
    )
}

fn node_identities_json(v: &[NodeIdentity]) -> Value {
    Value::Array(
        v.iter()
            .map(|n| json!({"NodeName": n.node_name, "Datacenter": n.datacenter}))
            .collect(),
    )
}

/// Sets `key` only when `value` is a non-empty array (Consul's `omitempty`).
fn put_list(o: &mut Value, key: &str, value: Value) {
    if value.as_array().is_some_and(|a| !a.is_empty()) {
        o[key] = value;
    }
}

/// A token as Consul shows it.
pub fn token_json(t: &AclToken) -> Value {
    let mut o = json!({
        "AccessorID": t.accessor_id,
        "SecretID": t.secret_id,
        "Description": t.description,
        "Local": t.local,
        "CreateTime": rfc3339(t.create_time_ms),
        "Hash": t.hash,
        "CreateIndex": t.create_index,
        "ModifyIndex": t.modify_index,
    });
    put_list(&mut o, "Policies", links_json(&t.policies));
    put_list(&mut o, "Roles", links_json(&t.roles));
    put_list(
        &mut o,
        "ServiceIdentities",
        service_identities_json(&t.service_identities),
    );
    put_list(
        &mut o,
        "NodeIdentities",
        node_identities_json(&t.node_identities),
    );
    if let Some(e) = t.expiration_ms {
        o["ExpirationTime"] = json!(rfc3339(e));
    }
    o
}

/// A policy as Consul shows it (`with_rules`: false for list entries).
pub fn policy_json(p: &AclPolicy, with_rules: bool) -> Value {
    let mut o = json!({
        "ID": p.id,
        "Name": p.name,
        "Description": p.description,
        "Hash": p.hash,
        "CreateIndex": p.create_index,
        "ModifyIndex": p.modify_index,
    });
    if with_rules {
        o["Rules"] = json!(p.rules);
    }
    put_list(&mut o, "Datacenters", json!(p.datacenters));
    o
}

/// A role as Consul shows it.
pub fn role_json(r: &AclRole) -> Value {
    let mut o = json!({
        "ID": r.id,
        "Name": r.name,
        "Description": r.description,
        "Hash": r.hash,
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    });
    put_list(&mut o, "Policies", links_json(&r.policies));
    put_list(
        &mut o,
        "ServiceIdentities",
        service_identities_json(&r.service_identities),
    );
    put_list(
        &mut o,
        "NodeIdentities",
        node_identities_json(&r.node_identities),
    );
    o
}

/// Base64 SHA-256 of `parts` (Consul's `Hash` is an opaque content digest).
pub fn content_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The hash of a token's grants.
pub fn token_hash(t: &AclToken) -> String {
    let links = |l: &[AclLink]| {
        l.iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let sids = serde_json::to_string(&t.service_identities).unwrap_or_default();
    let nids = serde_json::to_string(&t.node_identities).unwrap_or_default();
    content_hash(&[
        &t.description,
        &links(&t.policies),
        &links(&t.roles),
        &sids,
        &nids,
        if t.local { "local" } else { "global" },
    ])
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Wall-clock ms as RFC 3339 in UTC with milliseconds (`2026-11-30T12:00:00.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// Parses an RFC 3339 time (`Z` or `±hh:mm`, optional fraction) to wall-clock ms.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms_digits: String = r[..digits.min(3)].to_string();
        frac_ms = format!("{ms_digits:0<3}").parse().ok()?;
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    u64::try_from(secs * 1000 + frac_ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_offsets_apply() {
        let ms = 1_795_000_000_123;
        let text = rfc3339(ms);
        assert_eq!(parse_rfc3339(&text), Some(ms));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2024-02-29T01:00:00+01:00"),
            parse_rfc3339("2024-02-29T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00.5Z").map(|m| m % 1000),
            Some(500)
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T00:00:00",
            "x024-02-29T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn uuids_and_bodies() {
        assert!(is_uuid("00000000-DEAD-BEEF-0000-000000000000"));
        assert!(!is_uuid("unknown"));
        assert!(!is_uuid("00000000-0000-0000-0000-00000000000g"));
        let t: TokenIn =
            decode(br#"{"accessor_id":"a","SecretID":"s","node_identities":[{"NodeName":"n","datacenter":"dc1"}]}"#)
                .unwrap();
        assert_eq!((t.accessor_id.as_str(), t.secret_id.as_str()), ("a", "s"));
        assert_eq!(t.node_identities.unwrap()[0].node_name, "n");
        assert!(decode::<TokenIn>(b"[1]").is_err());
        assert!(decode::<TokenIn>(b"  ").is_ok());
    }
}
