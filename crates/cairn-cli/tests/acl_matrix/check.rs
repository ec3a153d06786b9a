//! One cell of the matrix: a request sent as the three principals (no token, a token for
//! a neighbouring name, a token with exactly the needed rule) and what each must get.

use reqwest::Method;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::common::Resp;

/// How the two principals without the permission must be turned away.
#[derive(Clone, Copy)]
pub enum Deny {
    /// `403 Permission denied ... lacks permission '<one of these>'`.
    Forbidden(&'static [&'static str]),
    /// `200` or `404` with `X-Consul-Results-Filtered-By-ACLs: true`, and the body must
    /// not show the protected element (the predicate says whether it is absent).
    Filtered(fn(&Resp) -> bool),
    /// `/v1/txn`: `409` with the denial in `Errors`.
    Conflict(&'static str),
}

/// A request of the matrix.
pub struct Req<'a> {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub good: &'a str,
    pub near: &'a str,
    pub deny: Deny,
    /// What the good token's answer must satisfy (after a 200).
    pub ok: fn(&Resp) -> bool,
}

/// Whether `r` is Consul's denial of one of `perms`.
fn is_denial(r: &Resp, perms: &[&str], anonymous: bool) -> bool {
    let t = r.text();
    r.status == 403
        && t.contains("Permission denied")
        && perms.iter().any(|p| t.contains(&format!("'{p}'")))
        && (!anonymous || t.contains("anonymous token"))
}

fn filtered(r: &Resp) -> bool {
    (r.status == 200 || r.status == 404)
        && r.header("x-consul-results-filtered-by-acls").as_deref() == Some("true")
}

impl Cluster {
    /// Runs `req` on agent `a` as the three principals; panics naming `step` and the
    /// principal when one gets the wrong answer.
    pub async fn cell(&self, step: &str, a: usize, req: Req<'_>) {
        let agent = &self.agents[a];
        let who = crate::cluster::NAMES[a];
        let body = req.body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
        for (principal, token) in [("anonymous", None), ("neighbour token", Some(req.near))] {
            let r = self
                .steady_call(agent, req.method.clone(), &req.path, token, body.clone())
                .await;
            let ok = match req.deny {
                Deny::Forbidden(perms) => is_denial(&r, perms, token.is_none()),
                Deny::Filtered(absent) => filtered(&r) && absent(&r),
                Deny::Conflict(perm) => {
                    r.status == 409
                        && r.text().contains("Permission denied")
                        && r.text().contains(perm)
                }
            };
            assert!(
                ok,
                "{step} on {who}: {principal} must be denied or filtered: {} {} -> {} {:?} (filtered header {:?})",
                req.method,
                req.path,
                r.status,
                r.text(),
                r.header("x-consul-results-filtered-by-acls")
            );
        }
        let r = self
            .steady_call(agent, req.method.clone(), &req.path, Some(req.good), body)
            .await;
        assert!(
            r.status == 200 && (req.ok)(&r),
            "{step} on {who}: the token with the needed rule must succeed: {} {} -> {} {:?}",
            req.method,
            req.path,
            r.status,
            r.text()
        );
    }
}

impl Cluster {
    /// A call sent again while it finds no leader (an election on a loaded machine is
    /// not what the matrix checks).
    pub async fn steady_call(
        &self,
        agent: &crate::common::Agent,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        crate::common::eventually(
            crate::cluster::WAIT,
            &format!("{method} {path} finds a leader"),
            || async {
                let r = self
                    .try_call(agent, method.clone(), path, token, body.clone())
                    .await?;
                let no_leader = r.status == 500 && r.text().contains("leader");
                (!no_leader).then_some(r)
            },
        )
        .await
    }
}

/// Whether a JSON array answer has an element whose `field` is `value` (or, with an
/// empty field, a string element equal to `value`).
pub fn lists(r: &Resp, field: &str, value: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        return false;
    };
    let Some(items) = v.as_array() else {
        return false;
    };
    items.iter().any(|i| {
        if field.is_empty() {
            i.as_str() == Some(value)
        } else {
            i[field].as_str() == Some(value)
        }
    })
}

/// Whether a JSON object answer has `key`.
pub fn has_key(r: &Resp, key: &str) -> bool {
    serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get(key).cloned())
        .is_some()
}
