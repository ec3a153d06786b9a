//! `/v1/txn`: up to 128 KV operations applied atomically (200) or rolled back (409).

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cairn_state::{Command, KvOp, KvVerb, Outcome, TxnRequest};
use cairn_types::KvPair;
use serde_json::{json, Value};

use crate::kv::read_body;
use crate::query::Query;
use crate::reply::{json as json_resp, HttpError};
use crate::App;

/// Most operations in one transaction (Consul's limit).
pub const MAX_OPS: usize = 128;

pub async fn txn(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let bytes = read_body(body, app.limits().txn_max_req_len).await?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::bad_request(format!("Failed to parse body: {e}")))?;
    crate::query::reject_nul(&v)?;
    let v = cairn_types::input::normalize(v);
    let Value::Array(items) = v else {
        return Err(HttpError::bad_request(
            "Failed to parse body: expected an array of operations",
        ));
    };
    if items.len() > MAX_OPS {
        return Err(HttpError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_OPS})",
            items.len()
        )));
    }
    let now = app.now_ms();
    let mut ops = Vec::with_capacity(items.len());
    let mut value_bytes = 0usize;
    for (i, item) in items.iter().enumerate() {
        let kv = item.get("KV").ok_or_else(|| {
            HttpError::bad_request(format!(
                "Operation {i}: only KV operations are supported by this server"
            ))
        })?;
        let verb_s = kv.get("Verb").and_then(Value::as_str).unwrap_or("");
        let verb = KvVerb::from_txn_name(verb_s).ok_or_else(|| {
            HttpError::bad_request(format!("Operation {i}: unknown KV verb {verb_s:?}"))
        })?;
        let key = kv
            .get("Key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if key.is_empty() && verb != KvVerb::DeleteTree && verb != KvVerb::GetTree {
            return Err(HttpError::bad_request(format!(
                "Operation {i}: missing key"
            )));
        }
        crate::kv::check_key_len(&key)
            .map_err(|e| HttpError::bad_request(format!("Operation {i}: {}", e.message)))?;
        let mut op = KvOp::new(verb, key);
        if let Some(val) = kv.get("Value").filter(|v| !v.is_null()) {
            let s = val.as_str().ok_or_else(|| {
                HttpError::bad_request(format!("Operation {i}: Value must be a base64 string"))
            })?;
            op.value = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| {
                    HttpError::bad_request(format!("Operation {i}: Value is not valid base64: {e}"))
                })?;
            value_bytes += op.value.len();
        }
        op.flags = num(kv, "Flags", i)?;
        op.index = num(kv, "Index", i)?;
        op.session = kv
            .get("Session")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        op.now_ms = now;
        ops.push(op);
    }
    if value_bytes > app.limits().kv_max_value_size {
        return Err(HttpError::too_large(
            "Transaction values exceed the KV value size limit",
        ));
    }
    let a = authz.authorizer();
    // Every operation is checked before anything is proposed: one denied operation
    // fails the whole transaction, as Consul's does.
    let denied: Vec<Value> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| {
            let d = match op.verb {
                KvVerb::GetTree => return None, // results are filtered below
                KvVerb::DeleteTree => a.key_write_prefix(&op.key),
                v if v.is_read() => a.key_read(&op.key),
                _ => a.key_write(&op.key),
            };
            authz
                .allow(d)
                .err()
                .map(|e| json!({"OpIndex": i, "What": e.message}))
        })
        .collect();
    if !denied.is_empty() {
        let mut resp = json_resp(&json!({"Results": null, "Errors": denied}), q.pretty());
        *resp.status_mut() = StatusCode::CONFLICT;
        return Ok(resp);
    }
    let (_, outcome) = app.write(Command::Txn(TxnRequest { ops })).await?;
    let Outcome::Txn(r) = outcome else {
        return Err(HttpError::internal(format!(
            "unexpected outcome {outcome:?}"
        )));
    };
    let pretty = q.pretty();
    if !r.errors.is_empty() {
        let errors: Vec<Value> = r
            .errors
            .iter()
            .map(|e| json!({"OpIndex": e.op_index, "What": e.what}))
            .collect();
        let mut resp = json_resp(&json!({"Results": null, "Errors": errors}), pretty);
        *resp.status_mut() = StatusCode::CONFLICT;
        return Ok(resp);
    }
    let results: Vec<Value> = r
        .results
        .iter()
        .filter(|e| a.key_read(&e.key).is_allow())
        .map(|e| json!({"KV": KvPair::from(e)}))
        .collect();
    Ok(json_resp(&json!({"Results": results, "Errors": null}), pretty).into_response())
}

fn num(kv: &Value, field: &str, i: usize) -> Result<u64, HttpError> {
    match kv.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            HttpError::bad_request(format!(
                "Operation {i}: {field} must be an unsigned integer"
            ))
        }),
    }
}
