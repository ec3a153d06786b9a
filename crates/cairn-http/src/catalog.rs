//! `/v1/catalog/*`: register/deregister and the catalog reads, with `tag`, `node-meta`
//! and `filter` selection.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use cairn_state::{Command, Deregistration, Outcome, Registration};
use cairn_types::{HealthCheck, Node, NodeService};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::acl::Authz;
use crate::blocking;
use crate::kv::read_body;
use crate::query::{check_name, Query};
use crate::reply::{json as json_resp, json_read, HttpError};
use crate::App;

/// Decodes a JSON body (keys normalised to Consul's spelling) into `T`, with 400s.
pub(crate) async fn decode_body<T: serde::de::DeserializeOwned>(
    app: &App,
    body: Body,
    allow_empty: bool,
) -> Result<Option<T>, HttpError> {
    let bytes = read_body(body, app.limits().max_body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if allow_empty {
            Ok(None)
        } else {
            Err(HttpError::bad_request("Request decode failed: empty body"))
        };
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    if !v.is_object() {
        return Err(HttpError::bad_request(
            "Request decode failed: expected a JSON object",
        ));
    }
    crate::query::reject_nul(&v)?;
    let v = cairn_types::input::normalize(v);
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))
}

/// Maps a state-machine refusal to Consul's status codes.
pub(crate) fn outcome_ok(o: Outcome) -> Result<Outcome, HttpError> {
    match o {
        Outcome::Error(e) => Err(HttpError::bad_request(e.to_string())),
        o => Ok(o),
    }
}

#[derive(Deserialize)]
struct RegisterBody {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Node", default)]
    node: String,
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "Datacenter", default)]
    datacenter: String,
    #[serde(rename = "TaggedAddresses", default)]
    tagged_addresses: Option<BTreeMap<String, String>>,
    #[serde(rename = "NodeMeta", default)]
    node_meta: Option<BTreeMap<String, String>>,
    #[serde(rename = "Service", default)]
    service: Option<NodeService>,
    #[serde(rename = "Check", default)]
    check: Option<HealthCheck>,
    #[serde(rename = "Checks", default)]
    checks: Option<Vec<HealthCheck>>,
    #[serde(rename = "SkipNodeUpdate", default)]
    skip_node_update: bool,
}

pub async fn register(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let b: RegisterBody = decode_body(&app, body, false).await?.expect("non-empty");
    if b.node.is_empty() {
        return Err(HttpError::bad_request("Missing node name"));
    }
    if b.address.is_empty() && !b.skip_node_update {
        return Err(HttpError::bad_request("Missing node address"));
    }
    if !b.datacenter.is_empty() && b.datacenter != app.datacenter() {
        return Err(HttpError::internal(format!(
            "No path to datacenter {:?}",
            b.datacenter
        )));
    }
    let mut service = b.service;
    if let Some(s) = service.as_mut() {
        if s.service.is_empty() {
            return Err(HttpError::bad_request(
                "Invalid service: missing service name",
            ));
        }
        if s.id.is_empty() {
            s.id = s.service.clone();
        }
        s.create_index = 0;
        s.modify_index = 0;
    }
    let mut checks: Vec<HealthCheck> = b
        .check
        .into_iter()
        .chain(b.checks.unwrap_or_default())
        .collect();
    for c in checks.iter_mut() {
        if c.check_id.is_empty() {
            c.check_id = c.name.clone();
        }
        if c.check_id.is_empty() {
            return Err(HttpError::bad_request(
                "Invalid check: missing CheckID and Name",
            ));
        }
        if !c.status.is_empty() && !cairn_types::is_valid_status(&c.status) {
            return Err(HttpError::bad_request(format!(
                "Invalid check status {:?}",
                c.status
            )));
        }
        if !c.node.is_empty() && c.node != b.node {
            return Err(HttpError::bad_request(
                "Check node does not match the registration node",
            ));
        }
        c.create_index = 0;
        c.modify_index = 0;
    }
    let a = authz.authorizer();
    if !b.skip_node_update || checks.iter().any(|c| c.service_id.is_empty()) {
        authz.allow(a.node_write(&b.node))?;
    }
    if let Some(s) = &service {
        authz.allow(a.service_write(&s.service))?;
    }
    for c in checks.iter().filter(|c| !c.service_id.is_empty()) {
        let name = match &service {
            Some(s) if s.id == c.service_id => Some(s.service.clone()),
            _ => app
                .state()
                .read()
                .node(&b.node)
                .0
                .and_then(|r| r.services.get(&c.service_id).map(|s| s.service.clone())),
        };
        if let Some(name) = name {
            authz.allow(a.service_write(&name))?;
        }
    }
    let reg = Registration {
        node: Node {
            id: b.id,
            node: b.node,
            address: b.address,
            datacenter: app.datacenter().to_string(),
            tagged_addresses: b.tagged_addresses.unwrap_or_default(),
            meta: b.node_meta.unwrap_or_default(),
            create_index: 0,
            modify_index: 0,
        },
        service,
        checks,
        skip_node_update: b.skip_node_update,
        now_ms: app.now_ms(),
    };
    let (_, o) = app.write(Command::Register(reg)).await?;
    outcome_ok(o)?;
    Ok(json_resp(&true, q.pretty()))
}

#[derive(Deserialize)]
struct DeregisterBody {
    #[serde(rename = "Node", default)]
    node: String,
    #[serde(rename = "ServiceID", default)]
    service_id: String,
    #[serde(rename = "CheckID", default)]
    check_id: String,
    #[serde(rename = "Datacenter", default)]
    datacenter: String,
}

pub async fn deregister(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let b: DeregisterBody = decode_body(&app, body, false).await?.expect("non-empty");
    if b.node.is_empty() {
        return Err(HttpError::bad_request("Missing node name"));
    }
    if !b.datacenter.is_empty() && b.datacenter != app.datacenter() {
        return Err(HttpError::internal(format!(
            "No path to datacenter {:?}",
            b.datacenter
        )));
    }
    let a = authz.authorizer();
    let service_name = (!b.service_id.is_empty())
        .then(|| {
            let st = app.state().read();
            let rec = st.node(&b.node).0;
            rec.and_then(|r| r.services.get(&b.service_id).map(|s| s.service.clone()))
        })
        .flatten();
    match service_name {
        Some(name) => authz.allow(a.service_write(&name))?,
        None => authz.allow(a.node_write(&b.node))?,
    }
    let d = Deregistration {
        node: b.node,
        service_id: Some(b.service_id).filter(|s| !s.is_empty()),
        check_id: Some(b.check_id).filter(|s| !s.is_empty()),
        now_ms: app.now_ms(),
    };
    let (_, o) = app.write(Command::Deregister(d)).await?;
    outcome_ok(o)?;
    Ok(json_resp(&true, q.pretty()))
}

pub async fn datacenters(State(app): State<App>, uri: Uri) -> Response {
    json_resp(&[app.datacenter()], Query::from_uri(&uri).pretty())
}

fn meta_matches(meta: &BTreeMap<String, String>, want: &[(String, String)]) -> bool {
    want.iter().all(|(k, v)| meta.get(k) == Some(v))
}

/// Applies `?filter=` to a list of JSON elements.
pub(crate) fn apply_filter(items: Vec<Value>, q: &Query) -> Result<Vec<Value>, HttpError> {
    match q.filter()? {
        None => Ok(items),
        Some(f) => Ok(items.into_iter().filter(|v| f.matches(v)).collect()),
    }
}

pub async fn nodes(State(app): State<App>, authz: Authz, uri: Uri) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let want = q.node_meta()?;
    blocking::json_list_acl(&app, &q, &authz, |st| {
        let (nodes, i) = st.nodes();
        let items = nodes
            .into_iter()
            .filter(|n| meta_matches(&n.meta, &want))
            .map(|n| serde_json::to_value(n).unwrap_or(Value::Null))
            .collect();
        (items, i)
    })
    .await
}

pub async fn services(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = Query::from_uri(&uri);
    let want = q.node_meta()?;
    let filter = q.filter()?;
    let a = authz.authorizer();
    let ((v, filtered), meta) = blocking::read(&app, &q, &authz, |st| {
        let (inst, i) = st.all_instances();
        let n = inst.len();
        let inst: Vec<_> = inst
            .into_iter()
            .filter(|(n, s)| {
                a.node_read(&n.node).is_allow() && a.service_read(&s.service).is_allow()
            })
            .collect();
        let filtered = inst.len() < n;
        let inst: Vec<_> = inst
            .into_iter()
            .filter(|(n, s)| {
                meta_matches(&n.meta, &want)
                    && filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&catalog_service_json(n, s)))
            })
            .collect();
        Ok(((cairn_state::State::service_tags(&inst), filtered), i))
    })
    .await?;
    Ok(crate::kv::mark_filtered(
        json_read(&v, q.pretty(), &meta),
        filtered,
    ))
}

/// The element of `/v1/catalog/service/:name`.
pub(crate) fn catalog_service_json(n: &Node, s: &NodeService) -> Value {
    json!({
        "ID": n.id,
        "Node": n.node,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": n.tagged_addresses,
        "NodeMeta": n.meta,
        "ServiceKind": s.kind,
        "ServiceID": s.id,
        "ServiceName": s.service,
        "ServiceTags": s.tags,
        "ServiceAddress": s.address,
        "ServiceTaggedAddresses": s.tagged_addresses,
        "ServiceWeights": s.weights,
        "ServiceMeta": s.meta,
        "ServicePort": s.port,
        "ServiceEnableTagOverride": s.enable_tag_override,
        "ServiceProxy": s.proxy.clone().unwrap_or_else(|| json!({"Mode": "", "MeshGateway": {}, "Expose": {}})),
        "ServiceConnect": s.connect.clone().unwrap_or_else(|| json!({})),
        "ServiceLocality": s.locality,
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// True when the instance carries every tag asked for (`?tag=` may repeat).
pub(crate) fn has_tags(s: &NodeService, tags: &[&str]) -> bool {
    tags.iter().all(|t| s.tags.iter().any(|x| x == t))
}

pub async fn service(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    service_common(app, authz, name, uri, false).await
}

/// `/v1/catalog/connect/:name`: Connect-capable instances of a service (proxies whose
/// destination is `name`, and Connect-native instances).
pub async fn connect(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    service_common(app, authz, name, uri, true).await
}

/// True when a query names a cluster peer: Cairn has no peerings, so nothing matches.
pub(crate) fn peer_excludes_all(q: &Query) -> bool {
    q.get("peer").is_some_and(|p| !p.is_empty())
}

async fn service_common(
    app: App,
    authz: Authz,
    name: String,
    uri: Uri,
    connect: bool,
) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    let q = Query::from_uri(&uri).for_discovery();
    let want = q.node_meta()?;
    let tags = q.all("tag");
    let no_peer = !peer_excludes_all(&q);
    blocking::json_list_acl(&app, &q, &authz, |st| {
        let (inst, i) = if connect {
            st.connect_health(&name)
        } else {
            st.service_health(&name)
        };
        let items = inst
            .iter()
            .filter(|_| no_peer)
            .filter(|h| meta_matches(&h.node.meta, &want) && has_tags(h.service, &tags))
            .map(|h| catalog_service_json(h.node, h.service))
            .collect();
        (items, i)
    })
    .await
}

pub async fn node(
    State(app): State<App>,
    authz: Authz,
    Path(node): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&node, "node name")?;
    let q = Query::from_uri(&uri);
    let filter = q.filter()?;
    let a = authz.authorizer();
    let ((v, hidden), meta) = blocking::read(&app, &q, &authz, |st| {
        let (rec, i) = st.node(&node);
        let hidden = rec.is_some_and(|r| {
            !a.node_read(&r.node.node).is_allow()
                || r.services
                    .values()
                    .any(|s| !a.service_read(&s.service).is_allow())
        });
        let rec = rec.filter(|r| a.node_read(&r.node.node).is_allow());
        let v = rec.map(|r| {
            let services: BTreeMap<&String, &NodeService> = r
                .services
                .iter()
                .filter(|(_, s)| a.service_read(&s.service).is_allow())
                .filter(|(_, s)| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&serde_json::to_value(s).unwrap_or(Value::Null)))
                })
                .collect();
            json!({"Node": r.node, "Services": services})
        });
        Ok(((v.unwrap_or(Value::Null), hidden), i))
    })
    .await?;
    Ok(crate::kv::mark_filtered(
        json_read(&v, q.pretty(), &meta),
        hidden,
    ))
}

pub async fn node_services(
    State(app): State<App>,
    authz: Authz,
    Path(node): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&node, "node name")?;
    let q = Query::from_uri(&uri);
    q.filter()?;
    let a = authz.authorizer();
    let ((v, hidden), meta) = blocking::read(&app, &q, &authz, |st| {
        let (rec, i) = st.node(&node);
        let hidden = rec.is_some_and(|r| {
            !a.node_read(&r.node.node).is_allow()
                || r.services
                    .values()
                    .any(|s| !a.service_read(&s.service).is_allow())
        });
        let rec = rec.filter(|r| a.node_read(&r.node.node).is_allow());
        let v = match rec {
            None => Value::Null,
            Some(r) => {
                let items = r
                    .services
                    .values()
                    .filter(|s| a.service_read(&s.service).is_allow())
                    .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                    .collect();
                json!({"Node": r.node, "Services": apply_filter(items, &q)?})
            }
        };
        Ok(((v, hidden), i))
    })
    .await?;
    Ok(crate::kv::mark_filtered(
        json_read(&v, q.pretty(), &meta),
        hidden,
    ))
}
