//! portal: the sample application's web page and its two proxies, which find
//! stock-price and weather by a DNS SRV query on every request, against any
//! Consul-compatible agent, and say which instance answered.

pub mod coalesce;
pub mod config;
pub mod discovery;
pub mod dns_client;
pub mod dns_wire;
pub mod http;
pub mod plan;
pub mod proxy;
pub mod resolv_conf;

use std::sync::Arc;
use std::time::Duration;

pub use config::{Backend, Config, ConfigError};
pub use discovery::{AnyDiscovery, Candidate, Discovery, DnsDiscovery, StaticDiscovery};
pub use http::{router, AppState, Route};

/// The per-call timeout for back ends.
pub const BACKEND_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the state for `config`.
pub fn state_from(config: &Config) -> AppState {
    let route = |b: &Backend, default_name: &str| -> Route {
        match (b, config.dns) {
            (Backend::Fixed(list), _) => Route {
                discovery: Arc::new(AnyDiscovery::Static(StaticDiscovery::new(list.clone()))),
                service: default_name.to_string(),
            },
            (Backend::Srv(name), Some(dns)) => Route {
                discovery: Arc::new(AnyDiscovery::Dns(DnsDiscovery::new(
                    dns,
                    config.dns_timeout,
                ))),
                service: name.clone(),
            },
            // Config::parse always sets dns when a back end uses SRV; an
            // empty fixed list answers "no healthy instance" if not.
            (Backend::Srv(name), None) => Route {
                discovery: Arc::new(AnyDiscovery::Static(StaticDiscovery::default())),
                service: name.clone(),
            },
        }
    };
    AppState {
        stock: route(&config.stock, "stock-price"),
        weather: route(&config.weather, "weather"),
        caller: proxy::Caller::new(BACKEND_TIMEOUT),
        log_requests: config.log_requests,
    }
}
