//! The HTTP surface: `GET /stock/:symbol`, `GET /health`, a JSON 404 for
//! anything unknown, one log line per request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sample_common::http::{json_error as error, with_request_log};
use serde::Serialize;
use serde_json::json;

use crate::companies::{normalise, Companies};
use crate::price::{format_cents, simulated_cents, Day};
use crate::upstream::{Upstream, UpstreamError};

pub use sample_common::clock::{system_clock, Clock};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The built-in company table.
    pub companies: Arc<Companies>,
    /// Where today comes from.
    pub clock: Clock,
    /// The optional upstream quote provider.
    pub upstream: Option<Upstream>,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

/// The answer of `GET /stock/:symbol`.
#[derive(Debug, Serialize)]
pub struct StockAnswer {
    /// The symbol, upper-case.
    pub symbol: String,
    /// The company name.
    pub name: String,
    /// The price, a string with two decimals.
    pub price: String,
}

/// The service's router.
pub fn router(state: AppState) -> Router {
    let log = state.log_requests;
    let app = Router::new()
        .route("/stock/{symbol}", get(stock))
        .route("/health", get(|| async { "OK" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state);
    with_request_log(app, log)
}

async fn stock(State(st): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(symbol) = normalise(&raw) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a symbol is 1-16 letters, digits, '.' or '-'",
        );
    };
    let builtin = st.companies.name(&symbol).map(str::to_string);
    let (name, cents) = match &st.upstream {
        None => match builtin {
            Some(name) => {
                let day = Day::from_unix((st.clock)());
                (name, simulated_cents(&symbol, day))
            }
            None => return unknown(&symbol),
        },
        Some(up) => match up.quote(&symbol).await {
            Ok(q) => match q.name.or(builtin) {
                Some(name) => (name, q.cents),
                None => (symbol.clone(), q.cents),
            },
            Err(UpstreamError::NotFound) => return unknown(&symbol),
            Err(e) => return error(StatusCode::BAD_GATEWAY, &e.to_string()),
        },
    };
    Json(StockAnswer {
        symbol,
        name,
        price: format_cents(cents),
    })
    .into_response()
}

fn unknown(symbol: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "unknown symbol", "symbol": symbol })),
    )
        .into_response()
}
