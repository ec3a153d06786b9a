//! `/v1/operator/keyring`: the gossip encryption keyring of the whole LAN pool, in
//! Consul's shapes. `GET` lists every member's keys, `POST` installs a key everywhere,
//! `PUT` makes it the primary everywhere, `DELETE` removes it everywhere (the primary key
//! cannot be removed). The backend applies the operation on every alive member and answers
//! once all did; a member that failed or stayed silent turns the answer into a 500 naming
//! it, as Consul does.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use cairn_types::KeyringResponse;
use serde::Deserialize;

use crate::catalog::decode_body;
use crate::query::Query;
use crate::reply::json;
use crate::{App, HttpError};

/// Longest key accepted in a request body (a 32-byte key is 44 base64 characters).
const MAX_KEY_LEN: usize = 128;

/// Largest `relay-factor` (Consul's limit).
pub const MAX_RELAY_FACTOR: u8 = 5;

/// A keyring operation over the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringOp {
    List,
    Install(String),
    Use(String),
    Remove(String),
}

/// One gossip pool's answer and, when the operation failed on some member, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyringPool {
    /// What the pool's members answered, in Consul's shape.
    pub answer: KeyringResponse,
    /// Why the operation did not succeed on every member (`None`: it did).
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct KeyBody {
    #[serde(rename = "Key", default)]
    key: String,
}

/// Every method of `/v1/operator/keyring`.
pub async fn keyring(
    State(app): State<App>,
    authz: crate::acl::Authz,
    method: Method,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let relay = match q.get("relay-factor").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => v
            .parse::<u8>()
            .ok()
            .filter(|r| *r <= MAX_RELAY_FACTOR)
            .ok_or_else(|| {
                HttpError::bad_request(format!(
                    "Relay factor must be in range: [0, {MAX_RELAY_FACTOR}]"
                ))
            })?,
    };
    let local_only = q.flag("local-only");
    let op = if method == Method::GET {
        authz.allow(authz.authorizer().keyring_read())?;
        KeyringOp::List
    } else {
        authz.allow(authz.authorizer().keyring_write())?;
        if local_only {
            return Err(HttpError::bad_request(
                "local-only can only be set for list requests",
            ));
        }
        let key = decode_body::<KeyBody>(&app, body, false)
            .await?
            .map(|b| b.key)
            .unwrap_or_default();
        if key.is_empty() {
            return Err(HttpError::bad_request("Request decode failed: missing Key"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(HttpError::bad_request("Invalid key: too long"));
        }
        match method {
            Method::POST => KeyringOp::Install(key),
            Method::PUT => KeyringOp::Use(key),
            _ => KeyringOp::Remove(key),
        }
    };
    let list = op == KeyringOp::List;
    let pools = app.keyring(op, relay).await?;
    let errors: Vec<String> = pools
        .iter()
        .filter_map(|p| {
            let e = p.error.as_ref()?;
            Some(format!("{} error: {e}", p.answer.pool_name()))
        })
        .collect();
    if !errors.is_empty() {
        return Err(HttpError::internal(errors.join("\n")));
    }
    if list {
        let answers: Vec<&KeyringResponse> = pools.iter().map(|p| &p.answer).collect();
        Ok(json(&answers, q.pretty()))
    } else {
        Ok(().into_response())
    }
}
