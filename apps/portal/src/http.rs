//! The portal's HTTP surface: the page, `GET /stock/:symbol` and
//! `GET /weather/:city` proxied to an instance found by discovery (the JSON
//! answer gains an `instance` field, an `X-Instance` header and `X-Attempts`,
//! the number of instances tried), `/health`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use sample_common::http::{json_error as error, with_request_log_via};
use serde_json::{json, Value};

use crate::discovery::AnyDiscovery;
use crate::proxy::{forward, Caller, ProxyError};

/// The longest symbol or city forwarded, in bytes.
pub const MAX_PARAM: usize = 128;

const PAGE: &str = include_str!("../assets/index.html");

/// How one back-end service is reached.
#[derive(Debug, Clone)]
pub struct Route {
    /// The discovery used.
    pub discovery: Arc<AnyDiscovery>,
    /// The name asked (e.g. `stock-price.service.consul`).
    pub service: String,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// stock-price.
    pub stock: Route,
    /// weather.
    pub weather: Route,
    /// The HTTP client for back ends.
    pub caller: Caller,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

/// The portal's router.
pub fn router(state: AppState) -> Router {
    let log = state.log_requests;
    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/index.html") }))
        .route("/index.html", get(|| async { Html(PAGE) }))
        .route("/stock/{symbol}", get(stock))
        .route("/weather/{city}", get(weather))
        .route("/health", get(|| async { "OK" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state);
    with_request_log_via(app, log, "x-instance")
}

async fn stock(State(st): State<AppState>, Path(symbol): Path<String>) -> Response {
    proxy(&st.stock, &st.caller, "stock", &symbol).await
}

async fn weather(State(st): State<AppState>, Path(city): Path<String>) -> Response {
    proxy(&st.weather, &st.caller, "weather", &city).await
}

async fn proxy(route: &Route, caller: &Caller, prefix: &str, param: &str) -> Response {
    let param = param.trim();
    if param.is_empty() || param.len() > MAX_PARAM {
        return error(StatusCode::BAD_REQUEST, "expected 1-128 characters");
    }
    let path = format!("/{prefix}/{}", utf8_percent_encode(param, NON_ALPHANUMERIC));
    match forward(route.discovery.as_ref(), caller, &route.service, &path).await {
        Ok(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let shown = format!(
                "{} {}:{}",
                a.instance.node, a.instance.address, a.instance.port
            );
            let mut resp = match serde_json::from_slice::<Value>(&a.body) {
                Ok(Value::Object(mut obj)) => {
                    obj.insert("instance".into(), json!(a.instance));
                    (status, Json(Value::Object(obj))).into_response()
                }
                _ => (status, a.body).into_response(),
            };
            if let Ok(v) = HeaderValue::from_str(&shown) {
                resp.headers_mut().insert("x-instance", v);
            }
            resp.headers_mut()
                .insert("x-attempts", HeaderValue::from(a.failed.len() + 1));
            resp
        }
        Err(e @ (ProxyError::NoInstance(_) | ProxyError::Discovery { .. })) => {
            error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e @ ProxyError::AllFailed { .. }) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}
