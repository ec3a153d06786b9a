//! `/v1/acl/bootstrap`, `/v1/acl/token*`, `/v1/acl/tokens`, `/v1/acl/login|logout` and
//! `/v1/agent/token/*`.
//!
//! IDs, secrets, hashes and times are chosen here, before the command is proposed, so
//! every replica applies the same entry; links given by name are turned into IDs against
//! this agent's replica, and the state machine re-checks that they exist when it applies.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cairn_acl::ANONYMOUS_TOKEN_ID;
use cairn_state::{AclBootstrap, AclLink, AclToken, ApplyError, Command, Outcome};
use cairn_types::duration::parse_duration_or_nanos;
use serde::Deserialize;
use serde_json::Value;

use crate::acl::{acl_not_found, Authz};
use crate::acl_handler::{begin_read, begin_write, check_body_id, delete, read_one};
use crate::acl_json::{
    decode, is_uuid, node_identities, parse_rfc3339, service_identities, token_hash, token_json,
    LinkIn, TokenIn,
};
use crate::blocking;
use crate::kv::read_body;
use crate::query::Query;
use crate::reply::{json, json_read, HttpError};
use crate::session::new_uuid;
use crate::App;

/// Shortest and longest `ExpirationTTL` by default (Consul's defaults of
/// `acl.token_min_expiration_ttl` and `acl.token_max_expiration_ttl`).
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Reads and decodes an ACL request body within the API's body limit.
pub(crate) async fn body_of<T: for<'de> Deserialize<'de> + Default>(
    app: &App,
    body: Body,
) -> Result<T, HttpError> {
    let bytes = read_body(body, app.limits().max_body).await?;
    decode(&bytes)
}

/// Maps what an ACL write produced to Consul's status codes.
pub(crate) fn acl_outcome(o: Outcome) -> Result<Outcome, HttpError> {
    match o {
        Outcome::Error(e @ ApplyError::AclBootstrapDone(_)) => {
            Err(HttpError::new(StatusCode::FORBIDDEN, e.to_string()))
        }
        Outcome::Error(e) => Err(HttpError::bad_request(e.to_string())),
        o => Ok(o),
    }
}

/// Resolves links given by ID or name to stored links (`policy`: which table).
pub(crate) fn resolve_links(
    st: &cairn_state::State,
    links: Option<Vec<LinkIn>>,
    policy: bool,
) -> Result<Vec<AclLink>, HttpError> {
    let what = if policy { "policy" } else { "role" };
    let mut out: Vec<AclLink> = Vec::new();
    for l in links.unwrap_or_default() {
        let id = if !l.id.is_empty() {
            l.id
        } else if !l.name.is_empty() {
            let found = if policy {
                st.acl_policy_by_name(&l.name).0.map(|p| p.id.clone())
            } else {
                st.acl_role_by_name(&l.name).0.map(|r| r.id)
            };
            found.ok_or_else(|| {
                HttpError::bad_request(format!("No such ACL {what} with name {:?}", l.name))
            })?
        } else {
            return Err(HttpError::bad_request(format!(
                "ACL {what} link needs an ID or a Name"
            )));
        };
        if !out.iter().any(|o| o.id == id) {
            out.push(AclLink {
                id,
                name: String::new(),
            });
        }
    }
    Ok(out)
}

/// Rejects templated policies, which Cairn does not implement.
pub(crate) fn no_templated(v: &Option<Value>) -> Result<(), HttpError> {
    match v {
        Some(Value::Array(a)) if !a.is_empty() => Err(HttpError::bad_request(
            "TemplatedPolicies are not supported by this agent",
        )),
        _ => Ok(()),
    }
}

/// The grants of a token body (policies, roles, identities, local), checked.
fn token_from(app: &App, b: TokenIn) -> Result<AclToken, HttpError> {
    no_templated(&b.templated_policies)?;
    let st = app.state().read();
    let token = AclToken {
        accessor_id: b.accessor_id,
        secret_id: b.secret_id,
        description: b.description,
        policies: resolve_links(&st, b.policies, true)?,
        roles: resolve_links(&st, b.roles, false)?,
        service_identities: service_identities(b.service_identities.unwrap_or_default())?,
        node_identities: node_identities(b.node_identities.unwrap_or_default())?,
        local: b.local,
        ..Default::default()
    };
    if token.local
        && token
            .service_identities
            .iter()
            .any(|s| !s.datacenters.is_empty())
    {
        return Err(HttpError::bad_request(
            "Invalid Token: cannot specify a list of datacenters on a local token",
        ));
    }
    Ok(token)
}

/// `ExpirationTime` / `ExpirationTTL` of a new token, as wall-clock ms.
fn expiration(
    time: Option<String>,
    ttl: Option<Value>,
    now_ms: u64,
    (min, max): (Duration, Duration),
) -> Result<Option<u64>, HttpError> {
    let span = || {
        format!(
            "between {} and {}",
            cairn_types::duration::format_duration(min),
            cairn_types::duration::format_duration(max)
        )
    };
    let ttl = match ttl {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(
            parse_duration_or_nanos(&v)
                .map_err(|e| HttpError::bad_request(format!("Invalid ExpirationTTL: {e}")))?,
        ),
    };
    let time = time.filter(|t| !t.is_empty());
    match (time, ttl) {
        (Some(_), Some(_)) => Err(HttpError::bad_request(
            "Token Expiration TTL and Expiration Time cannot both be set",
        )),
        (None, Some(ttl)) => {
            if ttl < min || ttl > max {
                return Err(HttpError::bad_request(format!(
                    "Token Expiration TTL must be {}",
                    span()
                )));
            }
            Ok(Some(now_ms + ttl.as_millis() as u64))
        }
        (Some(t), None) => {
            let at = parse_rfc3339(&t).ok_or_else(|| {
                HttpError::bad_request(format!("Invalid ExpirationTime {t:?}: not RFC 3339"))
            })?;
            let ahead = at.saturating_sub(now_ms);
            if ahead < min.as_millis() as u64 || ahead > max.as_millis() as u64 {
                return Err(HttpError::bad_request(format!(
                    "ExpirationTime must be {} in the future",
                    span()
                )));
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

fn token_response(o: Outcome, pretty: bool) -> Result<Response, HttpError> {
    match acl_outcome(o)? {
        Outcome::AclToken(t) => Ok(json(&token_json(&t), pretty)),
        other => Err(HttpError::internal(format!("unexpected outcome {other:?}"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BootstrapIn {
    #[serde(rename = "bootstrapsecret")]
    bootstrap_secret: String,
}

pub async fn bootstrap(
    State(app): State<App>,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    if app.acl().is_none() {
        return Err(crate::acl::acl_disabled());
    }
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let b: BootstrapIn = body_of(&app, body).await?;
    let secret = if b.bootstrap_secret.is_empty() {
        new_uuid()
    } else if is_uuid(&b.bootstrap_secret) {
        b.bootstrap_secret
    } else {
        return Err(HttpError::bad_request("BootstrapSecret must be a UUID"));
    };
    let mut token = AclToken {
        accessor_id: new_uuid(),
        secret_id: secret,
        description: "Bootstrap Token (Global Management)".into(),
        create_time_ms: app.now_ms(),
        ..Default::default()
    };
    token.hash = token_hash(&token);
    let (_, o) = app
        .write(Command::AclBootstrap(AclBootstrap {
            token,
            initial: false,
        }))
        .await?;
    token_response(o, q.pretty())
}

pub async fn token_create(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    let b: TokenIn = body_of(&app, body).await?;
    for (id, what) in [(&b.accessor_id, "AccessorID"), (&b.secret_id, "SecretID")] {
        if !id.is_empty() && !is_uuid(id) {
            return Err(HttpError::bad_request(format!(
                "Invalid Token: {what} is not a valid UUID"
            )));
        }
    }
    let now = app.now_ms();
    let bounds = app
        .acl()
        .map_or((MIN_TTL, MAX_TTL), |rt| rt.expiration_ttl_bounds());
    let exp = expiration(
        b.expiration_time.clone(),
        b.expiration_ttl.clone(),
        now,
        bounds,
    )?;
    let mut token = token_from(&app, b)?;
    if token.accessor_id.is_empty() {
        token.accessor_id = new_uuid();
    }
    if token.secret_id.is_empty() {
        token.secret_id = new_uuid();
    }
    token.expiration_ms = exp;
    token.create_time_ms = now;
    token.hash = token_hash(&token);
    let (_, o) = app
        .write(Command::AclTokenSet {
            token,
            create: true,
        })
        .await?;
    token_response(o, q.pretty())
}

pub async fn token_update(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    let b: TokenIn = body_of(&app, body).await?;
    check_body_id(&b.accessor_id, Some(&id), "Token Accessor")?;
    if b.expiration_time.is_some() || b.expiration_ttl.is_some() {
        let existing = app.state().read().acl_token(&id).0;
        let same = existing.is_some_and(|t| {
            b.expiration_ttl.is_none()
                && t.expiration_ms == b.expiration_time.as_deref().and_then(parse_rfc3339)
        });
        if !same {
            return Err(HttpError::bad_request(
                "Cannot change expiration time of an existing token",
            ));
        }
    }
    let mut token = token_from(&app, b)?;
    token.accessor_id = id;
    token.hash = token_hash(&token);
    let (_, o) = app
        .write(Command::AclTokenSet {
            token,
            create: false,
        })
        .await?;
    token_response(o, q.pretty())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CloneIn {
    #[serde(rename = "description")]
    description: String,
}

pub async fn token_clone(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    let b: CloneIn = body_of(&app, body).await?;
    let Some(src) = app.state().read().acl_token(&id).0 else {
        return Err(acl_not_found());
    };
    if src.accessor_id == ANONYMOUS_TOKEN_ID {
        return Err(HttpError::bad_request("Cannot clone the anonymous token"));
    }
    let mut token = AclToken {
        accessor_id: new_uuid(),
        secret_id: new_uuid(),
        description: if b.description.is_empty() {
            src.description.clone()
        } else {
            b.description
        },
        create_time_ms: app.now_ms(),
        ..src
    };
    token.create_index = 0;
    token.hash = token_hash(&token);
    let (_, o) = app
        .write(Command::AclTokenSet {
            token,
            create: true,
        })
        .await?;
    token_response(o, q.pretty())
}

pub async fn token_read(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    read_one(&app, &q, &authz, acl_not_found, |st| {
        let (t, i) = st.acl_token(&id);
        (t.as_ref().map(token_json), i)
    })
    .await
}

pub async fn token_self(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.require_enabled()?;
    let q = Query::from_uri(&uri);
    let t = {
        let st = app.state().read();
        st.acl_token_by_secret(authz.secret())
            .map(|t| st.acl_token_view(t))
    };
    let t = t.ok_or_else(acl_not_found)?;
    Ok(json(&token_json(&t), q.pretty()))
}

pub async fn token_delete(
    State(app): State<App>,
    authz: Authz,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_write(&app, &authz, &uri)?;
    delete(&app, &q, Command::AclTokenDelete { accessor_id: id }).await
}

pub async fn token_list(
    State(app): State<App>,
    authz: Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    let q = begin_read(&authz, &uri)?;
    let policy = q.get("policy").unwrap_or("").to_string();
    let role = q.get("role").unwrap_or("").to_string();
    let service = q.get("servicename").unwrap_or("").to_string();
    let method = q.get("authmethod").unwrap_or("").to_string();
    let (list, meta) = blocking::read(&app, &q, &authz, |st| {
        let (tokens, i) = st.acl_tokens();
        let list: Vec<Value> = tokens
            .iter()
            .filter(|t| policy.is_empty() || t.policies.iter().any(|l| l.id == policy))
            .filter(|t| role.is_empty() || t.roles.iter().any(|l| l.id == role))
            .filter(|t| {
                service.is_empty()
                    || t.service_identities
                        .iter()
                        .any(|s| s.service_name == service)
            })
            // No token comes from an auth method here.
            .filter(|_| method.is_empty())
            .map(token_json)
            .collect();
        Ok((list, i))
    })
    .await?;
    Ok(json_read(&list, q.pretty(), &meta))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginIn {
    #[serde(rename = "authmethod")]
    auth_method: String,
}

/// Auth methods are not implemented: every login names an unknown one.
pub async fn login(State(app): State<App>, body: Body) -> Result<Response, HttpError> {
    if app.acl().is_none() {
        return Err(crate::acl::acl_disabled());
    }
    let b: LoginIn = body_of(&app, body).await?;
    Err(HttpError::bad_request(format!(
        "auth method {:?} not found",
        b.auth_method
    )))
}

/// Only tokens created by a login may log out, and none are.
pub async fn logout(authz: Authz) -> Result<Response, HttpError> {
    authz.require_enabled()?;
    Err(HttpError::new(
        StatusCode::FORBIDDEN,
        "Permission denied: token was not created by an auth method",
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AgentTokenIn {
    #[serde(rename = "token")]
    token: String,
}

/// `PUT /v1/agent/token/<kind>`: replaces one of the agent's tokens (saved in the data
/// directory with `acl.enable_token_persistence`).
pub async fn agent_token(
    State(app): State<App>,
    authz: Authz,
    Path(kind): Path<String>,
    body: Body,
) -> Result<Response, HttpError> {
    crate::query::check_name(&kind, "token type")?;
    let Some(rt) = app.acl() else {
        return Err(crate::acl::acl_disabled());
    };
    authz.allow(authz.authorizer().acl_write())?;
    let b: AgentTokenIn = body_of(&app, body).await?;
    let value = (!b.token.is_empty()).then_some(b.token);
    match rt.set_token(&kind, value) {
        Ok(true) => {}
        Ok(false) => return Err(HttpError::not_found(format!("Token {kind:?} is unknown"))),
        Err(e) => {
            return Err(HttpError::internal(format!(
                "Failed to persist the {kind} token: {e}"
            )))
        }
    }
    Ok((StatusCode::OK, [("content-type", "application/json")], "").into_response())
}
