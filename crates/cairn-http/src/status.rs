//! `/v1/status/leader`, `/v1/status/peers` and `/v1/operator/raft/configuration`.

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;

use crate::query::Query;
use crate::reply::json;
use crate::App;

pub async fn leader(State(app): State<App>, uri: Uri) -> Response {
    let leader = app.raft_info().leader.unwrap_or_default();
    json(&leader, Query::from_uri(&uri).pretty())
}

pub async fn peers(State(app): State<App>, uri: Uri) -> Response {
    json(&app.raft_info().peers, Query::from_uri(&uri).pretty())
}

/// `GET /v1/operator/raft/configuration`: the Raft servers, Consul's shape.
pub async fn raft_configuration(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, crate::HttpError> {
    authz.allow(authz.authorizer().operator_read())?;
    Ok(json(
        &app.raft_configuration(),
        Query::from_uri(&uri).pretty(),
    ))
}
