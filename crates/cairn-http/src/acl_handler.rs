//! The steps every `/v1/acl/*` handler shares, so that each handler says only what is
//! particular to it: the gate (ACLs enabled, `acl:read` or `acl:write`, the datacenter), the
//! path ID's shape, the body's ID against the path's, a read of one object that may be
//! missing, and a delete answered with `true`.

use axum::http::Uri;
use axum::response::Response;
use cairn_state::{Command, State};
use serde::Serialize;

use crate::acl::Authz;
use crate::acl_json::is_uuid;
use crate::acl_tokens::acl_outcome;
use crate::blocking;
use crate::query::Query;
use crate::reply::{json, json_read, HttpError};
use crate::App;

/// ACLs on and `acl:write` held, for this datacenter: the request's query.
pub(crate) fn begin_write(app: &App, authz: &Authz, uri: &Uri) -> Result<Query, HttpError> {
    authz.require_enabled()?;
    authz.allow(authz.authorizer().acl_write())?;
    let q = Query::from_uri(uri);
    q.check_dc(app.datacenter())?;
    Ok(q)
}

/// ACLs on and `acl:read` held: the request's query (the read checks the datacenter).
pub(crate) fn begin_read(authz: &Authz, uri: &Uri) -> Result<Query, HttpError> {
    authz.require_enabled()?;
    authz.allow(authz.authorizer().acl_read())?;
    Ok(Query::from_uri(uri))
}

/// A path ID must look like one: anything else is a 400, a well-formed unknown one a 404.
pub(crate) fn check_id(id: &str, what: &str) -> Result<(), HttpError> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(HttpError::bad_request(format!(
            "Invalid {what} ID {id:?}: not a UUID"
        )))
    }
}

/// A body's ID: none when creating (`path` is `None`), else empty or the path's.
pub(crate) fn check_body_id(
    body_id: &str,
    path: Option<&str>,
    what: &str,
) -> Result<(), HttpError> {
    match path {
        None if !body_id.is_empty() => Err(HttpError::bad_request(format!(
            "Cannot specify an ID when creating a {}",
            what.to_ascii_lowercase()
        ))),
        Some(id) if !body_id.is_empty() && body_id != id => Err(HttpError::bad_request(format!(
            "{what} ID in URL and payload do not match"
        ))),
        _ => Ok(()),
    }
}

/// Reads one object with the request's consistency (and blocking, if asked); `None` from
/// `find` is `missing`.
pub(crate) async fn read_one<T: Serialize>(
    app: &App,
    q: &Query,
    authz: &crate::acl::Authz,
    missing: impl FnOnce() -> HttpError,
    find: impl Fn(&State) -> (Option<T>, u64),
) -> Result<Response, HttpError> {
    let (found, meta) = blocking::read(app, q, authz, |st| Ok(find(st))).await?;
    let found = found.ok_or_else(missing)?;
    Ok(json_read(&found, q.pretty(), &meta))
}

/// Proposes a delete and answers `true` once it is applied.
pub(crate) async fn delete(app: &App, q: &Query, command: Command) -> Result<Response, HttpError> {
    let (_, o) = app.write(command).await?;
    acl_outcome(o)?;
    Ok(json(&true, q.pretty()))
}
