//! A request's token and its resolution: the token comes from `X-Consul-Token`,
//! `Authorization: Bearer <token>` or `?token=` (in that order), else the agent's
//! `default` token, else the anonymous token. Writes and default-mode reads first catch
//! the replica up with the leader, so a token just deleted through another agent stops
//! working here at once; `down_policy` answers while no server is reachable.

use std::borrow::Cow;
use std::task::Poll;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{HeaderName, AUTHORIZATION};
use axum::http::request::Parts;

use super::{acl_not_found, Authz};
use crate::acl_down::DownPolicy;
use crate::query::Query;
use crate::reply::{Consistency, HttpError};
use crate::App;

/// Longest token accepted from a request.
const MAX_TOKEN_LEN: usize = 512;
/// Longest wait for the replica to catch up before a token is resolved.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// `X-Consul-Token`, looked up without parsing the name on every request.
static X_CONSUL_TOKEN: HeaderName = HeaderName::from_static("x-consul-token");

/// The secret a request carries (`None`: none given), borrowed from a header when it
/// comes in one.
pub fn request_token(parts: &Parts) -> Result<Option<Cow<'_, str>>, HttpError> {
    let header = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let token = header(&X_CONSUL_TOKEN)
        .or_else(|| {
            header(&AUTHORIZATION).and_then(|a| {
                let (scheme, rest) = a.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim())
                    .filter(|s| !s.is_empty())
            })
        })
        .map(Cow::Borrowed)
        .or_else(|| {
            Query::from_uri(&parts.uri)
                .get("token")
                .filter(|s| !s.is_empty())
                .map(|t| Cow::Owned(t.to_string()))
        });
    if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_LEN) {
        return Err(HttpError::bad_request(format!(
            "ACL token longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(token)
}

/// Resolves the token of a request on `app` (see the module docs): `token` as the request
/// carries it, `None` for the agent's `default` token. `fresh`: the request is a write or
/// a read in the default or `?consistent` mode, so the replica first catches up with the
/// leader, and a token deleted or changed through another agent a moment ago is seen as
/// the leader has it.
pub async fn resolve(app: &App, token: Option<&str>, fresh: bool) -> Result<Authz, HttpError> {
    let Some(rt) = app.acl() else {
        return Ok(Authz::disabled());
    };
    let default_secret;
    let secret = match token {
        Some(t) => t,
        None => {
            default_secret = rt.tokens().read().default.clone();
            default_secret
                .as_deref()
                .unwrap_or(cairn_state::acl::ANONYMOUS_SECRET)
        }
    };
    if let Some(a) = rt.recovery(secret) {
        return Ok(a);
    }
    let contact = (fresh || matches!(rt.down_policy(), DownPolicy::Allow | DownPolicy::Deny))
        .then(|| app.leader_contact());
    if let Some(contact) = &contact {
        let decision = rt.down_decision(contact.last_contact_ms);
        if let Some(a) = rt.when_down(app.state(), secret, decision) {
            return Ok(a);
        }
    }
    let leader_known = contact.is_some_and(|c| c.known_leader);
    if fresh && leader_known && app.read_ready().is_ok() {
        // A failed catch-up (the leader just went away) leaves the replica as it is; the
        // request's own read or write then reports the cause. A catch-up with nothing to
        // wait for (a lone server) sets no timer.
        let mut catch_up = app.barrier(Consistency::Leader);
        let caught_up = match futures::poll!(&mut catch_up) {
            Poll::Ready(done) => done.is_ok(),
            Poll::Pending => matches!(
                tokio::time::timeout(CATCH_UP_WAIT, catch_up).await,
                Ok(Ok(()))
            ),
        };
        // Expiry is judged after the catch-up, however long it took.
        let mut authz = rt
            .resolve_stored(&app.state().read(), secret, app.now_ms())
            .ok_or_else(acl_not_found)?;
        authz.caught_up = caught_up;
        return Ok(authz);
    }
    if let Some(a) = rt.resolve_stored(&app.state().read(), secret, app.now_ms()) {
        return Ok(a);
    }
    // A token created a moment ago may not have reached this replica yet: catch up with
    // the leader once before saying it does not exist.
    if app.barrier(Consistency::Leader).await.is_ok() {
        if let Some(a) = rt.resolve_stored(&app.state().read(), secret, app.now_ms()) {
            return Ok(a);
        }
    }
    Err(acl_not_found())
}

impl FromRequestParts<App> for Authz {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if app.acl().is_none() {
            return Ok(Authz::disabled());
        }
        let token = request_token(parts)?;
        let q = Query::from_uri(&parts.uri);
        let stale_read = (parts.method == axum::http::Method::GET
            || parts.method == axum::http::Method::HEAD)
            && (q.get("stale").is_some() || q.get("max_stale").is_some());
        resolve(app, token.as_deref(), !stale_read).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_token_comes_from_the_header_then_bearer_then_the_query() {
        let t = |uri, h: &[(&str, &str)]| {
            request_token(&parts(uri, h))
                .unwrap()
                .map(|t| t.into_owned())
        };
        assert_eq!(t("/v1/kv/a", &[]), None);
        assert_eq!(t("/v1/kv/a?token=q", &[]).as_deref(), Some("q"));
        assert_eq!(
            t("/v1/kv/a?token=q", &[("authorization", "Bearer b")]).as_deref(),
            Some("b")
        );
        assert_eq!(
            t(
                "/v1/kv/a?token=q",
                &[("authorization", "Bearer b"), ("x-consul-token", "h")]
            )
            .as_deref(),
            Some("h")
        );
        assert_eq!(t("/v1/kv/a", &[("authorization", "Basic xyz")]), None);
        let long = format!("/v1/kv/a?token={}", "x".repeat(MAX_TOKEN_LEN + 1));
        assert!(request_token(&parts(&long, &[])).is_err());
    }
}
