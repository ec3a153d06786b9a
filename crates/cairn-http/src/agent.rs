//! `/v1/agent/*`: the local agent's services and checks, TTL check updates,
//! maintenance, members, self, metrics and reload.

use cairn_state::acl::ANONYMOUS_SECRET;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::{HealthCheck, NodeService, CRITICAL, PASSING, WARNING};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::acl::Authz;
use crate::catalog::decode_body;
use crate::query::{check_name, Query};
use crate::reply::{json, HttpError};
use crate::App;

/// The write permission a change to local service `id` needs (`service:write` on its
/// name; an unknown ID needs nothing here and fails later with its own error).
fn allow_service(app: &App, authz: &Authz, id: &str) -> Result<(), HttpError> {
    match app.local_services().into_iter().find(|s| s.id == id) {
        Some(s) => authz.allow(authz.authorizer().service_write(&s.service)),
        None => Ok(()),
    }
}

/// The write permission a change to local check `id` needs: `service:write` on its
/// service, or `node:write` on this node for a node check.
fn allow_check(app: &App, authz: &Authz, id: &str) -> Result<(), HttpError> {
    match app.local_checks().into_iter().find(|c| c.check_id == id) {
        Some(c) if !c.service_id.is_empty() => allow_service(app, authz, &c.service_id),
        Some(_) => authz.allow(authz.authorizer().node_write(app.node_name())),
        None => Ok(()),
    }
}

fn empty_ok() -> Response {
    (StatusCode::OK, [("content-type", "application/json")], "").into_response()
}

/// The agent's view of a local service (`/v1/agent/services` values).
fn agent_service_json(app: &App, s: &NodeService) -> Value {
    let mut v = json!({
        "ID": s.id,
        "Service": s.service,
        "Tags": s.tags,
        "Meta": s.meta,
        "Port": s.port,
        "Address": s.address,
        "TaggedAddresses": s.tagged_addresses,
        "Weights": s.weights,
        "EnableTagOverride": s.enable_tag_override,
        "Datacenter": app.datacenter(),
    });
    // Consul omits empty and unset optional fields here.
    if s.tagged_addresses.is_empty() {
        v.as_object_mut().map(|o| o.remove("TaggedAddresses"));
    }
    for (k, val) in [
        ("Kind", (!s.kind.is_empty()).then(|| json!(s.kind))),
        ("Proxy", s.proxy.clone()),
        ("Connect", s.connect.clone()),
        ("Locality", s.locality.clone()),
    ] {
        if let Some(val) = val {
            v[k] = val;
        }
    }
    v
}

fn content_hash(v: &Value) -> String {
    // FNV-1a over the canonical JSON: opaque, stable, cheap.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub async fn services(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let filter = q.filter()?;
    let mut out = BTreeMap::new();
    let mut hidden = false;
    for s in app.local_services() {
        if !authz.authorizer().service_read(&s.service).is_allow() {
            hidden = true;
            continue;
        }
        let v = agent_service_json(&app, &s);
        if filter.as_ref().is_none_or(|f| f.matches(&v)) {
            out.insert(s.id.clone(), v);
        }
    }
    Ok(crate::kv::mark_filtered(json(&out, q.pretty()), hidden))
}

pub async fn service(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "service ID")?;
    if let Some(s) = app.local_services().into_iter().find(|s| s.id == id) {
        authz.allow(authz.authorizer().service_read(&s.service))?;
    }
    let q = Query::from_uri(&uri);
    let s = app
        .local_services()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| HttpError::not_found(format!("unknown service ID: {id}")))?;
    let mut v = agent_service_json(&app, &s);
    let hash = content_hash(&v);
    v["ContentHash"] = Value::String(hash.clone());
    let mut r = json(&v, q.pretty());
    if let Ok(h) = hash.parse() {
        r.headers_mut().insert("x-consul-contenthash", h);
    }
    Ok(r)
}

pub async fn register_service(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let mut def: ServiceDefinition = decode_body(&app, body, false).await?.expect("non-empty");
    if def.name.is_empty() {
        return Err(HttpError::bad_request("Missing service name"));
    }
    authz.allow(authz.authorizer().service_write(&def.name))?;
    if def.token.is_empty() && authz.enabled() && authz.secret() != ANONYMOUS_SECRET {
        // The service is kept in the catalog with the token it was registered with.
        def.token = authz.secret().to_string();
    }
    let replace = q.flag("replace-existing-checks");
    app.register_service(def, replace).await?;
    Ok(empty_ok())
}

pub async fn deregister_service(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    check_name(&id, "service ID")?;
    allow_service(&app, &authz, &id)?;
    app.deregister_service(id).await?;
    Ok(empty_ok())
}

pub async fn checks(State(app): State<App>, authz: Authz, uri: Uri) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let filter = q.filter()?;
    let mut out = BTreeMap::new();
    let mut hidden = false;
    let a = authz.authorizer();
    for c in app.local_checks() {
        let visible = if c.service_id.is_empty() {
            a.node_read(app.node_name())
        } else {
            a.service_read(&c.service_name)
        };
        if !visible.is_allow() {
            hidden = true;
            continue;
        }
        let v = serde_json::to_value(&c).unwrap_or(Value::Null);
        if filter.as_ref().is_none_or(|f| f.matches(&v)) {
            out.insert(c.check_id.clone(), v);
        }
    }
    Ok(crate::kv::mark_filtered(json(&out, q.pretty()), hidden))
}

pub async fn register_check(
    State(app): State<App>,
    authz: Authz,
    body: Body,
) -> Result<Response, HttpError> {
    let def: CheckDefinition = decode_body(&app, body, false).await?.expect("non-empty");
    if def.name.is_empty() {
        return Err(HttpError::bad_request("Missing check name"));
    }
    if def.service_id.is_empty() {
        authz.allow(authz.authorizer().node_write(app.node_name()))?;
    } else {
        allow_service(&app, &authz, &def.service_id)?;
    }
    app.register_check(def).await?;
    Ok(empty_ok())
}

pub async fn deregister_check(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    check_name(&id, "check ID")?;
    allow_check(&app, &authz, &id)?;
    app.deregister_check(id).await?;
    Ok(empty_ok())
}

async fn ttl_update(
    app: App,
    authz: Authz,
    id: String,
    uri: Uri,
    status: &str,
) -> Result<Response, HttpError> {
    check_name(&id, "check ID")?;
    allow_check(&app, &authz, &id)?;
    let q = Query::from_uri(&uri);
    let note = q.get("note").unwrap_or("").to_string();
    app.update_check(id, status.to_string(), note).await?;
    Ok(empty_ok())
}

pub async fn check_pass(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    ttl_update(app, authz, id, uri, PASSING).await
}

pub async fn check_warn(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    ttl_update(app, authz, id, uri, WARNING).await
}

pub async fn check_fail(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    ttl_update(app, authz, id, uri, CRITICAL).await
}

#[derive(Deserialize, Default)]
struct UpdateBody {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "Output", default)]
    output: String,
}

pub async fn check_update(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, HttpError> {
    check_name(&id, "check ID")?;
    allow_check(&app, &authz, &id)?;
    let b: UpdateBody = decode_body(&app, body, false).await?.expect("non-empty");
    if !cairn_types::is_valid_status(&b.status) {
        return Err(HttpError::bad_request(format!(
            "Invalid check status: {:?}",
            b.status
        )));
    }
    app.update_check(id, b.status, b.output).await?;
    Ok(empty_ok())
}

fn enable_param(q: &Query) -> Result<bool, HttpError> {
    match q.get("enable") {
        None => Err(HttpError::bad_request("Missing value for enable")),
        Some(v) => v
            .parse::<bool>()
            .map_err(|_| HttpError::bad_request(format!("Invalid value for enable: {v:?}"))),
    }
}

pub async fn service_maintenance(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "service ID")?;
    allow_service(&app, &authz, &id)?;
    let q = Query::from_uri(&uri);
    let enable = enable_param(&q)?;
    let reason = q.get("reason").unwrap_or("").to_string();
    app.service_maintenance(id, enable, reason).await?;
    Ok(empty_ok())
}

pub async fn node_maintenance(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().node_write(app.node_name()))?;
    let q = Query::from_uri(&uri);
    let enable = enable_param(&q)?;
    let reason = q.get("reason").unwrap_or("").to_string();
    app.node_maintenance(enable, reason).await?;
    Ok(empty_ok())
}

/// Local aggregate health of the given services: (status code, JSON element).
fn local_health(app: &App, services: Vec<NodeService>) -> Vec<(&'static str, Value)> {
    let checks: Vec<HealthCheck> = app.local_checks();
    services
        .into_iter()
        .map(|s| {
            let own: Vec<&HealthCheck> = checks
                .iter()
                .filter(|c| c.service_id == s.id || c.service_id.is_empty())
                .collect();
            let status = if own.iter().any(|c| c.check_id.starts_with(cairn_types::SERVICE_MAINT_PREFIX) || c.check_id == cairn_types::NODE_MAINT_CHECK_ID) {
                "maintenance"
            } else {
                cairn_state::aggregate(own.iter().map(|c| c.status.as_str()))
            };
            let checks: Vec<&HealthCheck> = own.into_iter().filter(|c| c.service_id == s.id).collect();
            (
                status,
                json!({"AggregatedStatus": status, "Service": agent_service_json(app, &s), "Checks": checks}),
            )
        })
        .collect()
}

fn health_code(status: &str) -> StatusCode {
    match status {
        "passing" => StatusCode::OK,
        "warning" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn worst<'a>(statuses: impl Iterator<Item = &'a str>) -> &'a str {
    let mut w = "passing";
    for s in statuses {
        let rank = |x: &str| match x {
            "passing" => 0,
            "warning" => 1,
            "critical" => 2,
            _ => 3,
        };
        if rank(s) > rank(w) {
            w = s;
        }
    }
    w
}

fn health_response(q: &Query, status: &str, body: &Value) -> Response {
    let code = health_code(status);
    let mut r = if q.get("format") == Some("text") {
        (code, [("content-type", "text/plain")], status.to_string()).into_response()
    } else {
        json(body, q.pretty())
    };
    *r.status_mut() = code;
    r
}

pub async fn health_by_name(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    authz.allow(authz.authorizer().service_read(&name))?;
    let q = Query::from_uri(&uri);
    let services: Vec<NodeService> = app
        .local_services()
        .into_iter()
        .filter(|s| s.service == name)
        .collect();
    if services.is_empty() {
        let mut r = health_response(&q, "critical", &json!([]));
        *r.status_mut() = StatusCode::NOT_FOUND;
        if q.get("format") == Some("text") {
            return Ok((
                StatusCode::NOT_FOUND,
                format!("ServiceName {name} Not Found"),
            )
                .into_response());
        }
        return Ok(r);
    }
    let items = local_health(&app, services);
    let status = worst(items.iter().map(|(s, _)| *s)).to_string();
    let body = Value::Array(items.into_iter().map(|(_, v)| v).collect());
    Ok(health_response(&q, &status, &body))
}

pub async fn health_by_id(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&id, "service ID")?;
    if let Some(s) = app.local_services().into_iter().find(|s| s.id == id) {
        authz.allow(authz.authorizer().service_read(&s.service))?;
    }
    let q = Query::from_uri(&uri);
    let services: Vec<NodeService> = app
        .local_services()
        .into_iter()
        .filter(|s| s.id == id)
        .collect();
    if services.is_empty() {
        return Ok((StatusCode::NOT_FOUND, format!("ServiceId {id} not found")).into_response());
    }
    let (status, body) = local_health(&app, services).remove(0);
    Ok(health_response(&q, status, &body))
}

pub async fn members(State(app): State<App>, authz: Authz, uri: Uri) -> Response {
    let q = Query::from_uri(&uri);
    let mut members = app.members();
    let all = members.len();
    // Members are nodes: a token sees those it may read (Consul filters the same way).
    members.retain(|m| {
        let name = m.get("Name").and_then(Value::as_str).unwrap_or("");
        authz.authorizer().node_read(name).is_allow()
    });
    let hidden = members.len() < all;
    if q.flag("wan") {
        // WAN members are named node.datacenter.
        for m in members.iter_mut() {
            let name = format!("{}.{}", m["Name"].as_str().unwrap_or(""), app.datacenter());
            m["Name"] = Value::String(name);
        }
    }
    crate::kv::mark_filtered(json(&members, q.pretty()), hidden)
}

pub async fn self_info(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().agent_read(app.node_name()))?;
    Ok(json(&app.self_info(), Query::from_uri(&uri).pretty()))
}

pub async fn reload(State(app): State<App>, authz: Authz) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().agent_write(app.node_name()))?;
    app.reload().await?;
    Ok(empty_ok())
}

pub async fn metrics(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().agent_read(app.node_name()))?;
    let q = Query::from_uri(&uri);
    let m = crate::metrics::global();
    let gauges = {
        let st = app.state().read();
        let t = st.table_indexes();
        let raft = app.raft_info();
        vec![
            ("cairn.raft.applied_index", st.index as f64),
            (
                "cairn.raft.is_leader",
                if raft.is_leader { 1.0 } else { 0.0 },
            ),
            ("cairn.kv.entries", st.kv_len() as f64),
            ("cairn.kv.tombstones", st.kv_tombstone_count() as f64),
            ("cairn.catalog.nodes", st.nodes().0.len() as f64),
            (
                "cairn.catalog.service_instances",
                st.all_instances().0.len() as f64,
            ),
            ("cairn.state.kv_index", t.kv as f64),
            (
                "cairn.agent.local_services",
                app.local_services().len() as f64,
            ),
            ("cairn.agent.local_checks", app.local_checks().len() as f64),
        ]
    };
    match q.get("format") {
        Some("prometheus") => Ok((
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            m.prometheus(&gauges),
        )
            .into_response()),
        None | Some("") | Some("json") => Ok(json(&m.json(&gauges), q.pretty())),
        Some(other) => Err(HttpError::bad_request(format!(
            "Invalid metrics format {other:?}: use prometheus or omit it"
        ))),
    }
}

pub async fn leave(State(app): State<App>, authz: Authz) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().agent_write(app.node_name()))?;
    app.leave().await;
    Ok(empty_ok())
}

/// `PUT /v1/agent/force-leave/:node[?prune]`: a failed member becomes left (and is
/// deregistered by the leader); `prune` also drops it from the member list. A node cannot
/// force-leave itself.
pub async fn force_leave(
    State(app): State<App>,
    authz: Authz,
    Path(node): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&node, "node name")?;
    authz.allow(authz.authorizer().operator_write())?;
    if node == app.node_name() {
        return Err(HttpError::bad_request(
            "Cannot force-leave the local node; use /v1/agent/leave",
        ));
    }
    let q = Query::from_uri(&uri);
    app.force_leave(node, q.flag("prune")).await?;
    Ok(empty_ok())
}

/// `PUT /v1/agent/join/:address[?wan]`: joins the LAN pool through another agent's serf
/// address (`host` or `host:port`, port 8301 by default).
pub async fn join(
    State(app): State<App>,
    authz: Authz,
    Path(addr): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().agent_write(app.node_name()))?;
    let q = Query::from_uri(&uri);
    if q.flag("wan") {
        return Err(HttpError::bad_request(
            "WAN federation is not built: Cairn runs one datacenter per pool (join without ?wan)",
        ));
    }
    if addr.is_empty() || addr.len() > 255 {
        return Err(HttpError::bad_request(
            "the join address must be 1-255 characters",
        ));
    }
    app.join(addr).await?;
    Ok(empty_ok())
}

/// Log streaming is not built yet; parameters are still validated as Consul does.
pub async fn monitor(uri: Uri) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let level = q.get("loglevel").unwrap_or("info").to_ascii_lowercase();
    if !matches!(
        level.as_str(),
        "trace" | "debug" | "info" | "warn" | "err" | "error"
    ) {
        return Err(HttpError::bad_request(format!(
            "Unknown log level: {level}"
        )));
    }
    Err(HttpError::new(
        StatusCode::NOT_IMPLEMENTED,
        "log streaming (/v1/agent/monitor) is not supported by Cairn yet",
    ))
}
