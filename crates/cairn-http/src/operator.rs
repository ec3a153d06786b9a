//! `/v1/operator/raft/peer`, `/v1/operator/raft/transfer-leader` and
//! `/v1/operator/autopilot/*`, in Consul's shapes.
//!
//! Raft changes and health are the leader's business (the backend forwards them there);
//! autopilot's settings live in the replicated state, read from this node's replica and
//! written as a command.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cairn_state::{AutopilotConfig, Command, Outcome};
use cairn_types::duration::{format_duration, parse_duration_or_nanos};
use serde_json::{json, Value};

use crate::catalog::decode_body;
use crate::query::Query;
use crate::reply::json;
use crate::{App, HttpError};

/// `DELETE /v1/operator/raft/peer?id=|?address=`: removes a server from the Raft
/// configuration.
pub async fn remove_peer(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().operator_write())?;
    let q = Query::from_uri(&uri);
    let id = q.get("id").filter(|v| !v.is_empty()).map(str::to_string);
    let address = q
        .get("address")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    match (&id, &address) {
        (None, None) => {
            return Err(HttpError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(HttpError::bad_request(
                "Must specify only one of ?id or ?address",
            ))
        }
        _ => {}
    }
    if let Some(a) = &address {
        if a.len() > 300 || a.parse::<std::net::SocketAddr>().is_err() {
            return Err(HttpError::bad_request(format!(
                "Invalid address {a:?}: expected IP:port"
            )));
        }
    }
    if id.as_ref().is_some_and(|i| i.len() > 300) {
        return Err(HttpError::bad_request("Invalid id: too long"));
    }
    app.raft_remove_peer(id, address).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /v1/operator/raft/transfer-leader[?id=]`: hands leadership to the named server
/// (or to the most up-to-date other voter). `{"Success": true}`.
pub async fn transfer_leader(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().operator_write())?;
    let q = Query::from_uri(&uri);
    let id = q.get("id").filter(|v| !v.is_empty()).map(str::to_string);
    if id.as_ref().is_some_and(|i| i.len() > 300) {
        return Err(HttpError::bad_request("Invalid id: too long"));
    }
    app.raft_transfer_leader(id).await?;
    Ok(json(&json!({ "Success": true }), q.pretty()))
}

/// Consul's JSON shape of the settings.
pub fn config_json(c: &AutopilotConfig) -> Value {
    json!({
        "CleanupDeadServers": c.cleanup_dead_servers,
        "LastContactThreshold": format_duration(Duration::from_millis(c.last_contact_threshold_ms)),
        "MaxTrailingLogs": c.max_trailing_logs,
        "MinQuorum": c.min_quorum,
        "ServerStabilizationTime": format_duration(Duration::from_millis(c.server_stabilization_time_ms)),
        "RedundancyZoneTag": "",
        "DisableUpgradeMigration": false,
        "UpgradeVersionTag": "",
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// Reads Consul's JSON shape onto `base` (fields left out keep their value, as a PUT of
/// Consul's own GET output round-trips).
pub fn config_from_json(v: &Value, base: &AutopilotConfig) -> Result<AutopilotConfig, String> {
    let obj = v.as_object().ok_or("the body must be a JSON object")?;
    let mut c = base.clone();
    for (k, val) in obj {
        let ms = |val: &Value| -> Result<u64, String> {
            parse_duration_or_nanos(val)
                .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX))
                .map_err(|e| format!("invalid {k}: {e}"))
        };
        let num = |val: &Value| -> Result<u64, String> {
            val.as_u64()
                .ok_or_else(|| format!("invalid {k}: expected a non-negative integer"))
        };
        match k.as_str() {
            "CleanupDeadServers" => {
                c.cleanup_dead_servers = val
                    .as_bool()
                    .ok_or_else(|| format!("invalid {k}: expected true or false"))?
            }
            "LastContactThreshold" => c.last_contact_threshold_ms = ms(val)?,
            "ServerStabilizationTime" => c.server_stabilization_time_ms = ms(val)?,
            "MaxTrailingLogs" => c.max_trailing_logs = num(val)?,
            "MinQuorum" => c.min_quorum = num(val)?,
            // Enterprise-only settings and the indexes are accepted and ignored.
            _ => {}
        }
    }
    Ok(c)
}

/// `GET /v1/operator/autopilot/configuration`.
pub async fn get_config(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().operator_read())?;
    // A read like any other: the consistency mode's barrier first (a server that does not
    // lead, or a client, must not answer settings older than an acknowledged write).
    let q = Query::from_uri(&uri);
    let (v, meta) = crate::blocking::read(&app, &q, &authz, |st| {
        let c = st.autopilot_config();
        Ok((config_json(&c), c.modify_index))
    })
    .await?;
    Ok(crate::reply::json_read(&v, q.pretty(), &meta))
}

/// `PUT /v1/operator/autopilot/configuration[?cas=index]`: `true`, or `false` when the
/// check-and-set index does not match.
pub async fn set_config(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().operator_write())?;
    let q = Query::from_uri(&uri);
    let cas = q.u64("cas")?;
    let v: Value = decode_body(&app, body, false).await?.unwrap_or(Value::Null);
    let base = app.state().read().autopilot_config();
    let config = config_from_json(&v, &base).map_err(HttpError::bad_request)?;
    let (_, outcome) = app
        .write(Command::AutopilotSetConfig { config, cas })
        .await?;
    match outcome {
        Outcome::Bool(ok) => Ok(json(&ok, q.pretty())),
        Outcome::Error(e) => Err(HttpError::bad_request(e.to_string())),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// `GET /v1/operator/autopilot/health`: 200 when every server is healthy, else 429 with
/// the same body (as Consul).
pub async fn health(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().operator_read())?;
    let h = app.autopilot_health().await?;
    let healthy = h.get("Healthy").and_then(Value::as_bool).unwrap_or(false);
    let mut resp = json(&h, Query::from_uri(&uri).pretty());
    if !healthy {
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_consuls_shape() {
        let d = AutopilotConfig::default();
        let v = config_json(&d);
        assert_eq!(v["LastContactThreshold"], "200ms");
        assert_eq!(v["ServerStabilizationTime"], "10s");
        assert_eq!(v["MaxTrailingLogs"], 250);
        assert_eq!(config_from_json(&v, &d).unwrap(), d);
        let changed = config_from_json(
            &json!({"CleanupDeadServers": false, "ServerStabilizationTime": "1m30s", "MinQuorum": 3}),
            &d,
        )
        .unwrap();
        assert!(!changed.cleanup_dead_servers);
        assert_eq!(changed.server_stabilization_time_ms, 90_000);
        assert_eq!(changed.min_quorum, 3);
        assert_eq!(changed.max_trailing_logs, 250, "left out: kept");
        assert!(config_from_json(&json!({"MinQuorum": -1}), &d).is_err());
        assert!(config_from_json(&json!({"LastContactThreshold": "soon"}), &d).is_err());
        assert!(config_from_json(&json!([1]), &d).is_err());
    }
}
