//! `/v1/session/*`: create (with Consul's defaults and limits), destroy, info, node,
//! list, renew. TTL expiry is enforced by the leader's session timers (see the agent).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use cairn_state::{Command, Outcome};
use cairn_types::duration::{format_duration, parse_duration, parse_duration_or_nanos};
use cairn_types::{
    ServiceCheckRef, Session, BEHAVIOR_DELETE, BEHAVIOR_RELEASE, MAX_LOCK_DELAY_NANOS,
    SERF_CHECK_ID,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::blocking;
use crate::catalog::{decode_body, outcome_ok};
use crate::query::{check_name, Query};
use crate::reply::{json as json_resp, HttpError};
use crate::App;

/// Longest TTL a session may have (Consul: 86400s).
const MAX_TTL_SECS: u64 = 86_400;

#[derive(Deserialize, Default)]
struct CreateBody {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Node", default)]
    node: String,
    #[serde(rename = "LockDelay", default)]
    lock_delay: Option<Value>,
    #[serde(rename = "Behavior", default)]
    behavior: String,
    #[serde(rename = "TTL", default)]
    ttl: String,
    #[serde(rename = "Checks", default)]
    checks: Option<Vec<String>>,
    #[serde(rename = "NodeChecks", default)]
    node_checks: Option<Vec<String>>,
    #[serde(rename = "ServiceChecks", default)]
    service_checks: Option<Vec<ServiceCheckRef>>,
}

/// A random UUID in Consul's 8-4-4-4-12 form.
pub fn new_uuid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub async fn create(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let b: CreateBody = decode_body(&app, body, true).await?.unwrap_or_default();
    let lock_delay = match &b.lock_delay {
        None | Some(Value::Null) => 15_000_000_000,
        Some(v) => {
            let d = parse_duration_or_nanos(v)
                .map_err(|e| HttpError::bad_request(format!("Invalid LockDelay: {e}")))?;
            d.as_nanos() as u64
        }
    };
    if lock_delay > MAX_LOCK_DELAY_NANOS {
        return Err(HttpError::bad_request(
            "Invalid LockDelay: must be at most 60s",
        ));
    }
    let behavior = match b.behavior.as_str() {
        "" | BEHAVIOR_RELEASE => BEHAVIOR_RELEASE,
        BEHAVIOR_DELETE => BEHAVIOR_DELETE,
        other => {
            return Err(HttpError::bad_request(format!(
                "Invalid Behavior setting {other:?}: must be release or delete"
            )))
        }
    };
    let ttl = if b.ttl.is_empty() {
        String::new()
    } else {
        let d = parse_duration(&b.ttl)
            .map_err(|e| HttpError::bad_request(format!("Invalid TTL: {e}")))?;
        let min = app.limits().session_ttl_min;
        if d.is_zero() {
            String::new()
        } else if d < min || d.as_secs() > MAX_TTL_SECS {
            return Err(HttpError::bad_request(format!(
                "Invalid Session TTL '{}', must be between [{}=24h0m0s]",
                b.ttl,
                format_duration(min)
            )));
        } else {
            format_duration(d)
        }
    };
    let mut node_checks = match (b.node_checks, b.checks) {
        (Some(n), Some(c)) => n.into_iter().chain(c).collect(),
        (Some(n), None) => n,
        (None, Some(c)) => c,
        (None, None) => vec![SERF_CHECK_ID.to_string()],
    };
    node_checks.dedup();
    let service_checks = b.service_checks.unwrap_or_default();
    let node = if b.node.is_empty() {
        app.node_name().to_string()
    } else {
        b.node
    };
    authz.allow(authz.authorizer().session_write(&node))?;
    let id = new_uuid();
    let s = Session {
        id: id.clone(),
        name: b.name,
        node,
        lock_delay,
        behavior: behavior.to_string(),
        ttl,
        node_checks,
        service_checks,
        create_index: 0,
        modify_index: 0,
    };
    let (_, o) = app.write(Command::SessionCreate { session: s }).await?;
    outcome_ok(o)?;
    app.session_renewed(&id);
    Ok(json_resp(&json!({"ID": id}), q.pretty()))
}

pub async fn destroy(
    State(app): State<App>,
    authz: crate::acl::Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "session ID")?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let owner = app.state().read().session(&id).0.map(|s| s.node.clone());
    if let Some(node) = owner {
        authz.allow(authz.authorizer().session_write(&node))?;
    }
    let (_, o) = app
        .write(Command::SessionDestroy {
            id,
            now_ms: app.now_ms(),
        })
        .await?;
    match outcome_ok(o)? {
        Outcome::Bool(_) | Outcome::None => Ok(json_resp(&true, q.pretty())),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn info(
    State(app): State<App>,
    authz: crate::acl::Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "session ID")?;
    sessions_read(&app, &uri, &authz, |st| {
        let (s, i) = st.session(&id);
        (session_values(s.into_iter()), i)
    })
    .await
}

/// A session listing as a blocking read, without the sessions `authz` may not read.
async fn sessions_read(
    app: &App,
    uri: &Uri,
    authz: &crate::acl::Authz,
    read: impl Fn(&cairn_state::State) -> (Vec<Value>, u64),
) -> Result<Response, HttpError> {
    blocking::json_list_where(app, &Query::from_uri(uri), authz, readable(authz), read).await
}

/// Sessions as JSON.
fn session_values<'a>(sessions: impl Iterator<Item = &'a Session>) -> Vec<Value> {
    sessions
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .collect()
}

/// Whether the token may see a session (`session:read` on its node).
fn readable(authz: &crate::acl::Authz) -> impl Fn(&Value) -> bool + '_ {
    |v| {
        let node = v.get("Node").and_then(Value::as_str).unwrap_or("");
        authz.authorizer().session_read(node).is_allow()
    }
}

pub async fn node(
    State(app): State<App>,
    authz: crate::acl::Authz,
    Path(node): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&node, "node name")?;
    sessions_read(&app, &uri, &authz, |st| {
        let (s, i) = st.node_sessions(&node);
        (session_values(s.into_iter()), i)
    })
    .await
}

pub async fn list(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    sessions_read(&app, &uri, &authz, |st| {
        let (s, i) = st.sessions();
        (session_values(s.into_iter()), i)
    })
    .await
}

pub async fn renew(
    State(app): State<App>,
    authz: crate::acl::Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "session ID")?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let lookup = || app.state().read().session(&id).0.cloned();
    let mut s = lookup();
    if s.is_none() {
        // Not in this node's replica: it may have been created through another node a
        // moment ago. Ask as the leader has it before answering 404.
        app.barrier(crate::reply::Consistency::Leader).await?;
        s = lookup();
    }
    match s {
        None => Err(HttpError::not_found(format!("Session id '{id}' not found"))),
        Some(s) => {
            authz.allow(authz.authorizer().session_write(&s.node))?;
            app.session_renewed(&id);
            Ok(json_resp(&[s], q.pretty()))
        }
    }
}
