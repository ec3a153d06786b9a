//! The HTTP conventions the sample apps share: errors as JSON
//! `{"error": "..."}`, and one stderr line per request
//! (`METHOD URI STATUS <micros>us`, optionally ` via <header value>`), so
//! every app logs and fails alike.

use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

/// A JSON error answer: `{"error": message}` with `status`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `app` with the request log layer when `enabled`.
pub fn with_request_log(app: Router, enabled: bool) -> Router {
    if enabled {
        app.layer(middleware::from_fn(log_request))
    } else {
        app
    }
}

/// `app` with the request log layer when `enabled`; each line ends with
/// ` via <value>` when the response carries the header `via_header`.
pub fn with_request_log_via(app: Router, enabled: bool, via_header: &'static str) -> Router {
    if enabled {
        app.layer(middleware::from_fn(move |req: Request, next: Next| {
            log(req, next, Some(via_header))
        }))
    } else {
        app
    }
}

/// The request log middleware: one line per request on stderr.
pub async fn log_request(req: Request, next: Next) -> Response {
    log(req, next, None).await
}

async fn log(req: Request, next: Next, via_header: Option<&'static str>) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.run(req).await;
    let via = via_header
        .and_then(|h| resp.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .map(|v| format!(" via {v}"))
        .unwrap_or_default();
    eprintln!(
        "{method} {uri} {} {}us{via}",
        resp.status().as_u16(),
        started.elapsed().as_micros()
    );
    resp
}
