//! sample-common: the pieces the three sample apps (stock-price, weather,
//! portal) would otherwise each repeat: listen settings from the
//! environment, the request-log layer and JSON error replies, the
//! "<name> listening on IP:PORT" start-up, the wall clock, the upstream
//! fetcher by URL template and helpers for the apps' tests. It depends on no
//! Cairn crate, so the apps stay independent of Cairn.

pub mod clock;
pub mod config;
pub mod http;
pub mod serve;
#[cfg(feature = "test-support")]
pub mod test_support;
#[cfg(feature = "upstream")]
pub mod upstream;
