//! The HTTP surface: `GET /weather/:city`, `GET /health`, a JSON 404 for
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

use crate::cities::{Cities, LookupError};
use crate::climate::{celsius, to_fahrenheit, Sample};
use crate::config::TempScale;
use crate::upstream::{Upstream, UpstreamError};

pub use sample_common::clock::{system_clock, Clock};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The built-in city table.
    pub cities: Arc<Cities>,
    /// Where now comes from.
    pub clock: Clock,
    /// The scale answered.
    pub scale: TempScale,
    /// The optional upstream provider.
    pub upstream: Option<Upstream>,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

/// The answer of `GET /weather/:city`.
#[derive(Debug, Serialize)]
pub struct WeatherAnswer {
    /// The city's name.
    pub city: String,
    /// Its ISO country code.
    pub country: String,
    /// The temperature, in `format`.
    pub temp: f64,
    /// "Celsius" or "Farenheit" (sic, as the original).
    pub format: &'static str,
}

/// The service's router.
pub fn router(state: AppState) -> Router {
    let log = state.log_requests;
    let app = Router::new()
        .route("/weather/{city}", get(weather))
        .route("/health", get(|| async { "OK" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state);
    with_request_log(app, log)
}

fn unknown(city: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "unknown city", "city": city })),
    )
        .into_response()
}

async fn weather(State(st): State<AppState>, Path(query): Path<String>) -> Response {
    let found = match st.cities.find(&query) {
        Ok(c) => Some(c),
        Err(LookupError::Invalid) => {
            return error(StatusCode::BAD_REQUEST, &LookupError::Invalid.to_string())
        }
        Err(LookupError::Unknown) => None,
    };
    let (city, country, c) = match &st.upstream {
        None => match found {
            Some(city) => {
                let key = format!("{}|{}", city.name, city.country);
                let c = celsius(Sample {
                    lat: city.lat,
                    lon: city.lon,
                    unix_seconds: (st.clock)(),
                    key: &key,
                });
                (city.name.clone(), city.country.clone(), c)
            }
            None => return unknown(query.trim()),
        },
        Some(up) => match up.reading(query.trim()).await {
            Ok(r) => (
                r.city
                    .or(found.map(|c| c.name.clone()))
                    .unwrap_or_else(|| query.trim().to_string()),
                r.country
                    .or(found.map(|c| c.country.clone()))
                    .unwrap_or_default(),
                r.temp,
            ),
            Err(UpstreamError::NotFound) => return unknown(query.trim()),
            Err(e) => return error(StatusCode::BAD_GATEWAY, &e.to_string()),
        },
    };
    let temp = match st.scale {
        TempScale::Celsius => (c * 10.0).round() / 10.0,
        TempScale::Fahrenheit => to_fahrenheit(c),
    };
    Json(WeatherAnswer {
        city,
        country,
        temp,
        format: st.scale.wire_name(),
    })
    .into_response()
}
