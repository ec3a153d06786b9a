//! `/v1/health/*`: service instances with their checks (`passing`, repeated `tag`,
//! `node-meta`, `filter`), checks by service, by node and by state.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use cairn_types::{HealthCheck, CRITICAL, PASSING, WARNING};
use serde_json::{json, Value};

use crate::acl::Authz;
use crate::blocking;
use crate::catalog::has_tags;
use crate::query::{check_name, Query};
use crate::reply::HttpError;
use crate::App;

fn check_values(checks: &[&HealthCheck]) -> Vec<Value> {
    checks
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect()
}

/// Which instances a health query returns.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Service,
    Connect,
    Ingress,
}

pub async fn service(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    service_common(app, authz, name, uri, Kind::Service).await
}

/// `/v1/health/connect/:name`: Connect-capable instances for `name`.
pub async fn connect(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    service_common(app, authz, name, uri, Kind::Connect).await
}

/// `/v1/health/ingress/:name`: ingress gateways routing to `name`. Cairn has no
/// config entries that could configure one, so the answer is always empty.
pub async fn ingress(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    service_common(app, authz, name, uri, Kind::Ingress).await
}

async fn service_common(
    app: App,
    authz: Authz,
    name: String,
    uri: Uri,
    kind: Kind,
) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    let q = Query::from_uri(&uri).for_discovery();
    let want = q.node_meta()?;
    let tags = q.all("tag");
    let passing = q.flag("passing");
    let no_peer = !crate::catalog::peer_excludes_all(&q);
    blocking::json_list_acl(&app, &q, &authz, |st| {
        let (inst, i) = match kind {
            Kind::Service => st.service_health(&name),
            Kind::Connect => st.connect_health(&name),
            Kind::Ingress => (Vec::new(), st.service_name_index(&name)),
        };
        let items = inst
            .iter()
            .filter(|_| no_peer)
            .filter(|h| want.iter().all(|(k, v)| h.node.meta.get(k) == Some(v)))
            .filter(|h| has_tags(h.service, &tags))
            .filter(|h| !passing || h.checks.iter().all(|c| c.status == PASSING))
            .map(|h| {
                json!({
                    "Node": h.node,
                    "Service": h.service,
                    "Checks": check_values(&h.checks),
                })
            })
            .collect();
        (items, i)
    })
    .await
}

pub async fn checks(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    blocking::json_list_acl(&app, &Query::from_uri(&uri), &authz, |st| {
        let (checks, i) = st.service_checks(&name);
        (check_values(&checks), i)
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
    blocking::json_list_acl(&app, &Query::from_uri(&uri), &authz, |st| {
        let (checks, i) = st.node_checks(&node);
        (check_values(&checks), i)
    })
    .await
}

pub async fn state(
    State(app): State<App>,
    authz: Authz,
    Path(state): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    if !matches!(state.as_str(), "any" | PASSING | WARNING | CRITICAL) {
        return Err(HttpError::bad_request(format!(
            "Invalid state {state:?}: must be one of any, passing, warning, critical"
        )));
    }
    blocking::json_list_acl(&app, &Query::from_uri(&uri), &authz, |st| {
        let (checks, i) = st.all_checks();
        let checks: Vec<&HealthCheck> = checks
            .into_iter()
            .filter(|c| state == "any" || c.status == state)
            .collect();
        (check_values(&checks), i)
    })
    .await
}
