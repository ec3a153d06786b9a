//! weather: the sample application's weather service. `GET /weather/:city`
//! answers `{"city","country","temp","format"}` from a built-in table of
//! GeoNames cities and a deterministic temperature model (or an upstream).

pub mod cities;
pub mod climate;
pub mod config;
pub mod http;
pub mod upstream;

use std::sync::Arc;

pub use config::{Config, TempScale};
pub use http::{router, system_clock, AppState, Clock};

/// Builds the state for `config` with the wall clock.
pub fn state_from(config: &Config) -> Result<AppState, upstream::UpstreamError> {
    let upstream = config
        .upstream
        .as_deref()
        .map(upstream::Upstream::new)
        .transpose()?;
    Ok(AppState {
        cities: Arc::new(cities::Cities::builtin()),
        clock: system_clock(),
        scale: config.scale,
        upstream,
        log_requests: config.log_requests,
    })
}
