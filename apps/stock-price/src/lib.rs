//! stock-price: the sample application's quote service. `GET /stock/:symbol`
//! answers `{"symbol","name","price"}` from a built-in table of real listed
//! companies and deterministic simulated prices (or an upstream provider).

pub mod companies;
pub mod config;
pub mod http;
pub mod price;
pub mod upstream;

use std::sync::Arc;

pub use config::Config;
pub use http::{router, system_clock, AppState, Clock};

/// Builds the state for `config` with the wall clock.
pub fn state_from(config: &Config) -> Result<AppState, upstream::UpstreamError> {
    let upstream = config
        .upstream
        .as_deref()
        .map(upstream::Upstream::new)
        .transpose()?;
    Ok(AppState {
        companies: Arc::new(companies::Companies::builtin()),
        clock: system_clock(),
        upstream,
        log_requests: config.log_requests,
    })
}
