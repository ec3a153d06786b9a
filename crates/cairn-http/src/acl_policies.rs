//! `/v1/acl/policy*`, `/v1/acl/policies`, `/v1/acl/role*` and `/v1/acl/roles`.
//!
//! A policy's rules are parsed here with `cairn-acl` before anything is proposed, so text
//! that does not parse is a 400 saying where, and the stored text always compiles.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use cairn_acl::Rules;
use cairn_state::{AclPolicy, AclRole, Command, Outcome};
use serde_json::Value;

use crate::acl::Authz;
use crate::acl_handler::{begin_read, begin_write, check_body_id, check_id, delete, read_one};
use crate::acl_json::{
    content_hash, node_identities, policy_json, role_json, service_identities, PolicyIn, RoleIn,
};
use crate::acl_tokens::{acl_outcome, body_of, no_templated, resolve_links};
use crate::blocking;
use crate::reply::{json, json_read, HttpError};
use crate::session::new_uuid;
use crate::App;

/// Consul's rule for policy and role names.
fn check_acl_name(name: &str, what: &str) -> Result<(), HttpError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(HttpError::bad_request(format!(
            "Invalid {what} Name: {name:?}: only alphanumerics, '-' and '_' are allowed (1 to 256)"
        )))
    }
}

fn policy_from(b: PolicyIn, id: String) -> Result<AclPolicy, HttpError> {
    check_acl_name(&b.name, "Policy")?;
    Rules::parse(&b.rules).map_err(|e| {
        HttpError::bad_request(format!("Invalid Policy: failed to parse rules: {e}"))
    })?;
    let hash = content_hash(&[&b.name, &b.description, &b.rules, &b.datacenters.join(",")]);
    Ok(AclPolicy {
        id,
        name: b.name,
        description: b.description,
        rules: b.rules,
        datacenters: b.datacenters,
        hash,
        ..Default::default()
    })
}

fn policy_not_found() -> HttpError {
    HttpError::not_found("ACL policy not found")
}

fn role_not_found() -> HttpError {
    HttpError::not_found("ACL role not found")
}

fn policy_response(o: Outcome, pretty: bool) -> Result<Response, HttpError> {
    match acl_outcome(o)? {
        Outcome::AclPolicy(p) => Ok(json(&policy_json(&p, true), pretty)),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn policy_create(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    let b: PolicyIn = body_of(&app, body).await?;
    check_body_id(&b.id, None, "Policy")?;
    let policy = policy_from(b, new_uuid())?;
    let (_, o) = app
        .write(Command::AclPolicySet {
            policy,
            create: true,
        })
        .await?;
    policy_response(o, q.pretty())
}

pub async fn policy_update(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    check_id(&id, "Policy")?;
    let b: PolicyIn = body_of(&app, body).await?;
    check_body_id(&b.id, Some(&id), "Policy")?;
    let policy = policy_from(b, id)?;
    let (_, o) = app
        .write(Command::AclPolicySet {
            policy,
            create: false,
        })
        .await?;
    policy_response(o, q.pretty())
}

pub async fn policy_read(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    check_id(&id, "Policy")?;
    read_one(&app, &q, &authz, policy_not_found, |st| {
        let (p, i) = st.acl_policy(&id);
        (p.map(|p| policy_json(p, true)), i)
    })
    .await
}

pub async fn policy_read_by_name(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    read_one(&app, &q, &authz, policy_not_found, |st| {
        let (p, i) = st.acl_policy_by_name(&name);
        (p.map(|p| policy_json(p, true)), i)
    })
    .await
}

pub async fn policy_delete(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    check_id(&id, "Policy")?;
    delete(&app, &q, Command::AclPolicyDelete { id }).await
}

pub async fn policy_list(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    let (list, meta) = blocking::read(&app, &q, &authz, |st| {
        let (ps, i) = st.acl_policies();
        let v: Vec<Value> = ps.iter().map(|p| policy_json(p, false)).collect();
        Ok((v, i))
    })
    .await?;
    Ok(json_read(&list, q.pretty(), &meta))
}

// ---- roles ---------------------------------------------------------------------

fn role_from(app: &App, b: RoleIn, id: String) -> Result<AclRole, HttpError> {
    check_acl_name(&b.name, "Role")?;
    no_templated(&b.templated_policies)?;
    let policies = resolve_links(&app.state().read(), b.policies, true)?;
    let mut role = AclRole {
        id,
        name: b.name,
        description: b.description,
        policies,
        service_identities: service_identities(b.service_identities.unwrap_or_default())?,
        node_identities: node_identities(b.node_identities.unwrap_or_default())?,
        ..Default::default()
    };
    let links: Vec<&str> = role.policies.iter().map(|l| l.id.as_str()).collect();
    let ids = serde_json::to_string(&(&role.service_identities, &role.node_identities))
        .unwrap_or_default();
    role.hash = content_hash(&[&role.name, &role.description, &links.join(","), &ids]);
    Ok(role)
}

fn role_response(o: Outcome, pretty: bool) -> Result<Response, HttpError> {
    match acl_outcome(o)? {
        Outcome::AclRole(r) => Ok(json(&role_json(&r), pretty)),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn role_create(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    let b: RoleIn = body_of(&app, body).await?;
    check_body_id(&b.id, None, "Role")?;
    let role = role_from(&app, b, new_uuid())?;
    let (_, o) = app
        .write(Command::AclRoleSet { role, create: true })
        .await?;
    role_response(o, q.pretty())
}

pub async fn role_update(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    check_id(&id, "Role")?;
    let b: RoleIn = body_of(&app, body).await?;
    check_body_id(&b.id, Some(&id), "Role")?;
    let role = role_from(&app, b, id)?;
    let (_, o) = app
        .write(Command::AclRoleSet {
            role,
            create: false,
        })
        .await?;
    role_response(o, q.pretty())
}

pub async fn role_read(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    check_id(&id, "Role")?;
    read_one(&app, &q, &authz, role_not_found, |st| {
        let (r, i) = st.acl_role(&id);
        (r.as_ref().map(role_json), i)
    })
    .await
}

pub async fn role_read_by_name(
    State(app): State<App>,
    authz: Authz,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    read_one(&app, &q, &authz, role_not_found, |st| {
        let (r, i) = st.acl_role_by_name(&name);
        (r.as_ref().map(role_json), i)
    })
    .await
}

pub async fn role_delete(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    check_id(&id, "Role")?;
    delete(&app, &q, Command::AclRoleDelete { id }).await
}

pub async fn role_list(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    let policy = q.get("policy").unwrap_or("").to_string();
    let (list, meta) = blocking::read(&app, &q, &authz, |st| {
        let (rs, i) = st.acl_roles();
        let v: Vec<Value> = rs
            .iter()
            .filter(|r| policy.is_empty() || r.policies.iter().any(|l| l.id == policy))
            .map(role_json)
            .collect();
        Ok((v, i))
    })
    .await?;
    Ok(json_read(&list, q.pretty(), &meta))
}

/// ACL endpoints Cairn does not implement (auth methods, binding rules, templated
/// policies): 401 without ACLs, as every ACL endpoint, else 404.
pub async fn unsupported(authz: Authz, uri: Uri) -> HttpError {
    match authz.require_enabled() {
        Err(e) => e,
        Ok(()) => HttpError::not_found(format!("no such endpoint: {}", uri.path())),
    }
}
