//! `/v1/kv/<key>`: get (one, `recurse`, `keys` + `separator`, `raw`), put (`flags`,
//! `cas`, `acquire`, `release`) and delete (`recurse`, `cas`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use cairn_state::{ApplyError, Command, KvOp, KvVerb, Outcome};
use cairn_types::KvPair;

use crate::acl::Authz;
use crate::blocking;
use crate::query::{decode_path, Query};
use crate::reply::{json, json_read, status_read, HttpError};
use crate::App;

/// Longest key accepted, in bytes, by `/v1/kv` and `/v1/txn` alike.
pub const MAX_KEY_LEN: usize = 4096;

/// The one key-length rule of the KV endpoints and transactions.
pub(crate) fn check_key_len(key: &str) -> Result<(), HttpError> {
    if key.len() > MAX_KEY_LEN {
        return Err(HttpError::bad_request(format!(
            "Key too long (max {MAX_KEY_LEN} bytes)"
        )));
    }
    Ok(())
}

fn key_of(uri: &Uri) -> Result<String, HttpError> {
    let path = uri.path();
    let key = if path == "/v1/kv" {
        String::new()
    } else {
        decode_path(path, "/v1/kv/")?
    };
    check_key_len(&key)?;
    Ok(key)
}

pub async fn get(State(app): State<App>, authz: Authz, uri: Uri) -> Result<Response, HttpError> {
    let key = key_of(&uri)?;
    let q = Query::from_uri(&uri);
    let pretty = q.pretty();
    let a = authz.authorizer();
    if q.get("keys").is_some() {
        let sep = q.get("separator").unwrap_or("").to_string();
        let ((keys, filtered), meta) = blocking::read(&app, &q, &authz, |st| {
            let (keys, i) = st.kv_keys(&key, &sep);
            let n = keys.len();
            let keys: Vec<String> = keys
                .into_iter()
                .filter(|k| a.key_read(k).is_allow())
                .collect();
            let filtered = keys.len() < n;
            Ok(((keys, filtered), i))
        })
        .await?;
        if keys.is_empty() {
            // Consul says so on the 404 too: the keys may exist, unreadable.
            return Ok(mark_filtered(
                status_read(StatusCode::NOT_FOUND, Vec::new(), "text/plain", &meta),
                filtered,
            ));
        }
        return Ok(mark_filtered(json_read(&keys, pretty, &meta), filtered));
    }
    if q.get("recurse").is_some() {
        let ((pairs, filtered), meta) = blocking::read(&app, &q, &authz, |st| {
            let (v, i) = st.kv_list(&key);
            let n = v.len();
            let pairs: Vec<KvPair> = v
                .into_iter()
                .filter(|e| a.key_read(&e.key).is_allow())
                .map(KvPair::from)
                .collect();
            let filtered = pairs.len() < n;
            Ok(((pairs, filtered), i))
        })
        .await?;
        if pairs.is_empty() {
            // Consul says so on the 404 too: the keys may exist, unreadable.
            return Ok(mark_filtered(
                status_read(StatusCode::NOT_FOUND, Vec::new(), "text/plain", &meta),
                filtered,
            ));
        }
        return Ok(mark_filtered(json_read(&pairs, pretty, &meta), filtered));
    }
    if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    authz.allow(a.key_read(&key))?;
    let raw = q.get("raw").is_some();
    let (entry, meta) = blocking::read(&app, &q, &authz, |st| {
        let (e, i) = st.kv_get(&key);
        Ok((e.cloned(), i))
    })
    .await?;
    match entry {
        None => Ok(status_read(
            StatusCode::NOT_FOUND,
            Vec::new(),
            "text/plain",
            &meta,
        )),
        Some(e) if raw => Ok(status_read(
            StatusCode::OK,
            e.value,
            "text/plain; charset=utf-8",
            &meta,
        )),
        Some(e) => Ok(json_read(&[KvPair::from(&e)], pretty, &meta)),
    }
}

pub async fn put(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let key = key_of(&uri)?;
    if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    authz.allow(authz.authorizer().key_write(&key))?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let limit = app.limits().kv_max_value_size;
    let value = read_body(body, limit).await?;
    let mut op = KvOp::new(KvVerb::Set, key);
    op.value = value;
    op.flags = q.u64("flags")?.unwrap_or(0);
    op.now_ms = app.now_ms();
    let acquire = q.get("acquire");
    let release = q.get("release");
    if acquire.is_some() && release.is_some() {
        return Err(HttpError::bad_request(
            "Conflicting flags: acquire and release",
        ));
    }
    if let Some(cas) = q.u64("cas")? {
        if acquire.is_some() || release.is_some() {
            return Err(HttpError::bad_request(
                "Conflicting flags: cas with acquire/release",
            ));
        }
        op.verb = KvVerb::Cas;
        op.index = cas;
    }
    if let Some(s) = acquire {
        op.verb = KvVerb::Lock;
        op.session = s.to_string();
    }
    if let Some(s) = release {
        op.verb = KvVerb::Unlock;
        op.session = s.to_string();
    }
    if (op.verb == KvVerb::Lock || op.verb == KvVerb::Unlock) && op.session.is_empty() {
        return Err(HttpError::bad_request("Missing session ID"));
    }
    write_bool(&app, op, q.pretty()).await
}

pub async fn delete(State(app): State<App>, authz: Authz, uri: Uri) -> Result<Response, HttpError> {
    let key = key_of(&uri)?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let mut op = KvOp::new(KvVerb::Delete, key);
    op.now_ms = app.now_ms();
    if q.get("recurse").is_some() {
        op.verb = KvVerb::DeleteTree;
        authz.allow(authz.authorizer().key_write_prefix(&op.key))?;
    } else if op.key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    } else {
        authz.allow(authz.authorizer().key_write(&op.key))?;
    }
    if let Some(cas) = q.u64("cas")? {
        if op.verb == KvVerb::DeleteTree {
            return Err(HttpError::bad_request(
                "Conflicting flags: cas with recurse",
            ));
        }
        op.verb = KvVerb::DeleteCas;
        op.index = cas;
    }
    write_bool(&app, op, q.pretty()).await
}

async fn write_bool(app: &App, op: KvOp, pretty: bool) -> Result<Response, HttpError> {
    let (_, outcome) = app.write(Command::Kv(op)).await?;
    match outcome {
        Outcome::Bool(b) => Ok(json(&b, pretty)),
        Outcome::Error(ApplyError::InvalidSession(s)) => {
            Err(HttpError::internal(format!("invalid session {s:?}")))
        }
        Outcome::Error(e) => Err(HttpError::bad_request(e.to_string())),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// Sets `X-Consul-Results-Filtered-By-ACLs: true` when ACLs removed something from a
/// listing (Consul's header).
pub(crate) fn mark_filtered(mut resp: Response, filtered: bool) -> Response {
    if filtered {
        resp.headers_mut().insert(
            "x-consul-results-filtered-by-acls",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    resp
}

/// Reads a request body of at most `limit` bytes; larger bodies are a 413.
pub async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, HttpError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b.to_vec()),
        Err(e) => {
            // axum reports the limit as a length-limit error in the source chain.
            let text = format!("{e:?}");
            if text.contains("LengthLimit") || text.contains("length limit") {
                Err(HttpError::too_large(format!(
                    "Request body too large, max size: {limit} bytes (limits.kv_max_value_size for KV values, limits.txn_max_req_len for transactions)"
                )))
            } else {
                Err(HttpError::bad_request(format!(
                    "Failed to read request body: {e}"
                )))
            }
        }
    }
}
