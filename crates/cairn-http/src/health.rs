//! `/v1/health/*`: service instances with their checks (`passing`, repeated `tag`,
//! `node-meta`, `filter`), checks by service, by node and by state.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use cairn_types::{HealthCheck, CRITICAL, PASSING, WARNING};
use serde_json::{json, Value};

use crate::blocking;
use crate::catalog::{apply_filter, has_tags};
use crate::query::{check_name, Query};
use crate::reply::{json_read, HttpError};
use crate::App;

fn check_values(checks: &[&HealthCheck]) -> Vec<Value> {
    checks
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect()
}

pub async fn service(State(app): State<App>, Path(name): Path<String>, uri: Uri) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    let q = Query::from_uri(&uri);
    let want = q.node_meta()?;
    let tags = q.all("tag");
    let passing = q.flag("passing");
    q.filter()?;
    let (v, meta) = blocking::read(&app, &q, |st| {
        let (inst, i) = st.service_health(&name);
        let items = inst
            .iter()
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
        Ok((apply_filter(items, &q)?, i))
    })
    .await?;
    Ok(json_read(&v, q.pretty(), &meta))
}

pub async fn checks(State(app): State<App>, Path(name): Path<String>, uri: Uri) -> Result<Response, HttpError> {
    check_name(&name, "service name")?;
    let q = Query::from_uri(&uri);
    q.filter()?;
    let (v, meta) = blocking::read(&app, &q, |st| {
        let (checks, i) = st.service_checks(&name);
        Ok((apply_filter(check_values(&checks), &q)?, i))
    })
    .await?;
    Ok(json_read(&v, q.pretty(), &meta))
}

pub async fn node(State(app): State<App>, Path(node): Path<String>, uri: Uri) -> Result<Response, HttpError> {
    check_name(&node, "node name")?;
    let q = Query::from_uri(&uri);
    q.filter()?;
    let (v, meta) = blocking::read(&app, &q, |st| {
        let (checks, i) = st.node_checks(&node);
        Ok((apply_filter(check_values(&checks), &q)?, i))
    })
    .await?;
    Ok(json_read(&v, q.pretty(), &meta))
}

pub async fn state(State(app): State<App>, Path(state): Path<String>, uri: Uri) -> Result<Response, HttpError> {
    if !matches!(state.as_str(), "any" | PASSING | WARNING | CRITICAL) {
        return Err(HttpError::bad_request(format!(
            "Invalid state {state:?}: must be one of any, passing, warning, critical"
        )));
    }
    let q = Query::from_uri(&uri);
    q.filter()?;
    let (v, meta) = blocking::read(&app, &q, |st| {
        let (checks, i) = st.all_checks();
        let checks: Vec<&HealthCheck> = checks
            .into_iter()
            .filter(|c| state == "any" || c.status == state)
            .collect();
        Ok((apply_filter(check_values(&checks), &q)?, i))
    })
    .await?;
    Ok(json_read(&v, q.pretty(), &meta))
}
