//! Consul's HTTP API (`/v1/*`) over a [`Backend`].
//!
//! This crate knows the wire: routes, query parameters, JSON shapes, status codes,
//! Consul's response headers and blocking queries. It does not know Raft or how the
//! agent runs checks: everything that writes or touches agent-local state goes through
//! the [`Backend`] trait, which the agent implements. That keeps the HTTP layer testable
//! and keeps `http` independent of `raft`, as DESIGN.md asks.

pub mod acl;
pub mod acl_down;
mod acl_handler;
mod acl_json;
mod acl_policies;
mod acl_tokens;
mod agent;
mod backend;
mod blocking;
mod catalog;
pub mod filter;
mod health;
mod keyring;
mod kv;
pub mod metrics;
mod operator;
mod query;
mod reply;
mod serve;
mod session;
mod snapshot;
pub mod snapshot_archive;
mod status;
mod txn;
mod unread_body;

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::Router;

pub use acl::{AclRuntime, AgentTokens, Authz, Persist};
pub use acl_down::{DownPolicy, WhenDown};
pub use acl_json::token_hash as acl_token_hash;
pub use backend::{Backend, BoxFut, LeaderContact, Limits, RaftInfo};
pub use keyring::{KeyringOp, KeyringPool, MAX_RELAY_FACTOR};
pub use reply::{Consistency, HttpError};
pub use serve::{BoxStream, Handshake, ServeLimits, Stream};
pub use session::new_uuid;

/// Shared handler state.
pub type App = Arc<dyn Backend>;

/// Builds the `/v1` router.
pub fn router(app: App) -> Router {
    Router::new()
        // kv
        .route("/v1/kv", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/kv/", get(kv::get).put(kv::put).delete(kv::delete))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/txn", put(txn::txn))
        // catalog
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/connect/{name}", get(catalog::connect))
        .route("/v1/catalog/node/{node}", get(catalog::node))
        .route(
            "/v1/catalog/node-services/{node}",
            get(catalog::node_services),
        )
        // health
        .route("/v1/health/service/{name}", get(health::service))
        .route("/v1/health/connect/{name}", get(health::connect))
        .route("/v1/health/ingress/{name}", get(health::ingress))
        .route("/v1/health/checks/{name}", get(health::checks))
        .route("/v1/health/node/{node}", get(health::node))
        .route("/v1/health/state/{state}", get(health::state))
        // session
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/node/{node}", get(session::node))
        .route("/v1/session/list", get(session::list))
        .route("/v1/session/renew/{id}", put(session::renew))
        // status
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route(
            "/v1/operator/raft/configuration",
            get(status::raft_configuration),
        )
        .route("/v1/snapshot", get(snapshot::save).put(snapshot::restore))
        .route(
            "/v1/operator/raft/peer",
            axum::routing::delete(operator::remove_peer),
        )
        .route(
            "/v1/operator/raft/transfer-leader",
            axum::routing::post(operator::transfer_leader),
        )
        .route(
            "/v1/operator/autopilot/configuration",
            get(operator::get_config).put(operator::set_config),
        )
        .route("/v1/operator/autopilot/health", get(operator::health))
        .route(
            "/v1/operator/keyring",
            get(keyring::keyring)
                .post(keyring::keyring)
                .put(keyring::keyring)
                .delete(keyring::keyring),
        )
        // agent
        .route("/v1/agent/self", get(agent::self_info))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/metrics", get(agent::metrics))
        .route("/v1/agent/reload", put(agent::reload))
        .route("/v1/agent/leave", put(agent::leave))
        .route("/v1/agent/force-leave/{node}", put(agent::force_leave))
        .route("/v1/agent/join/{address}", put(agent::join))
        .route("/v1/agent/monitor", get(agent::monitor))
        .route("/v1/agent/token/{kind}", put(acl_tokens::agent_token))
        // acl
        .route("/v1/acl/bootstrap", put(acl_tokens::bootstrap))
        .route("/v1/acl/login", axum::routing::post(acl_tokens::login))
        .route("/v1/acl/logout", axum::routing::post(acl_tokens::logout))
        .route("/v1/acl/token", put(acl_tokens::token_create))
        .route("/v1/acl/token/self", get(acl_tokens::token_self))
        .route(
            "/v1/acl/token/{id}",
            get(acl_tokens::token_read)
                .put(acl_tokens::token_update)
                .delete(acl_tokens::token_delete),
        )
        .route("/v1/acl/token/{id}/clone", put(acl_tokens::token_clone))
        .route("/v1/acl/tokens", get(acl_tokens::token_list))
        .route("/v1/acl/policy", put(acl_policies::policy_create))
        .route(
            "/v1/acl/policy/name/{name}",
            get(acl_policies::policy_read_by_name),
        )
        .route(
            "/v1/acl/policy/{id}",
            get(acl_policies::policy_read)
                .put(acl_policies::policy_update)
                .delete(acl_policies::policy_delete),
        )
        .route("/v1/acl/policies", get(acl_policies::policy_list))
        .route("/v1/acl/role", put(acl_policies::role_create))
        .route(
            "/v1/acl/role/name/{name}",
            get(acl_policies::role_read_by_name),
        )
        .route(
            "/v1/acl/role/{id}",
            get(acl_policies::role_read)
                .put(acl_policies::role_update)
                .delete(acl_policies::role_delete),
        )
        .route("/v1/acl/roles", get(acl_policies::role_list))
        .route("/v1/acl/{*rest}", any(acl_policies::unsupported))
        .route("/v1/agent/maintenance", put(agent::node_maintenance))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/{id}", get(agent::service))
        .route("/v1/agent/service/register", put(agent::register_service))
        .route(
            "/v1/agent/service/deregister/{id}",
            put(agent::deregister_service),
        )
        .route(
            "/v1/agent/service/maintenance/{id}",
            put(agent::service_maintenance),
        )
        .route(
            "/v1/agent/health/service/name/{name}",
            get(agent::health_by_name),
        )
        .route("/v1/agent/health/service/id/{id}", get(agent::health_by_id))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/register", put(agent::register_check))
        .route(
            "/v1/agent/check/deregister/{id}",
            put(agent::deregister_check),
        )
        .route("/v1/agent/check/pass/{id}", put(agent::check_pass))
        .route("/v1/agent/check/warn/{id}", put(agent::check_warn))
        .route("/v1/agent/check/fail/{id}", put(agent::check_fail))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/", get(root))
        .route("/ui", get(ui))
        .route("/ui/", get(ui))
        .route("/v1/{*rest}", any(not_found))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), common_headers))
        .with_state(app)
}

/// `/` redirects to `/ui/`, as Consul's agent does (HTTP checks pointed at an agent's
/// root rely on it answering 2xx after the redirect).
async fn root() -> Response {
    axum::response::Redirect::permanent("/ui/").into_response()
}

/// A minimal status page in place of Consul's web UI.
async fn ui(axum::extract::State(app): axum::extract::State<App>) -> Response {
    let (services, nodes) = {
        let st = app.state().read();
        let (inst, _) = st.all_instances();
        (cairn_state::State::service_tags(&inst), st.nodes().0.len())
    };
    let rows: String = services
        .keys()
        .map(|s| {
            let e = html_escape(s);
            format!("<li><a href=\"/v1/health/service/{e}?pretty\">{e}</a></li>")
        })
        .collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn</title></head><body>\
         <h1>Cairn agent {}</h1><p>Datacenter {}, {} node(s), {} service(s). \
         This page stands in for a web UI; the API is under <a href=\"/v1/agent/self?pretty\">/v1/</a>.</p>\
         <ul>{rows}</ul></body></html>",
        html_escape(app.node_name()),
        html_escape(app.datacenter()),
        nodes,
        services.len()
    );
    ([("content-type", "text/html; charset=utf-8")], body).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn not_found(req: Request) -> HttpError {
    HttpError::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// Headers every Consul response carries, and request metrics.
async fn common_headers(
    axum::extract::State(app): axum::extract::State<App>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let policy = app.acl().map_or("allow", |a| a.default_policy().as_str());
    h.insert(
        "x-consul-default-acl-policy",
        axum::http::HeaderValue::from_static(policy),
    );
    if resp.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        // axum's 405 has an empty body; Consul users expect a message.
        let msg = format!("method {method} not allowed");
        return HttpError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, msg)
            .into_response_with_headers(resp);
    }
    metrics::global().observe_request(method.as_str(), resp.status().as_u16(), started.elapsed());
    resp
}

/// Serves the API on an already bound listener, within `limits`, until `shutdown`
/// resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve_router(listener, router(app), limits, shutdown).await
}

/// [`serve`] with a [`Handshake`] (TLS) on every connection: the HTTPS listener.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: App,
    limits: ServeLimits,
    handshake: Arc<dyn Handshake>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve_router_with(listener, router(app), limits, Some(handshake), shutdown).await
}
