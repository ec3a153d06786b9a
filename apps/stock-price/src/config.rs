//! Settings from the environment: `PORT` (default 4567), `BIND` (default
//! 0.0.0.0), `STOCK_UPSTREAM_URL`, `LOG_REQUESTS` (default on).

use std::net::SocketAddr;

pub use sample_common::config::ConfigError;
use sample_common::config::ListenConfig;

/// The service's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The upstream URL template, if any.
    pub upstream: Option<String>,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

impl Config {
    /// Reads the settings through `get` (the process environment in `main`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ListenConfig {
            listen,
            log_requests,
        } = ListenConfig::from_env(&get)?;
        Ok(Config {
            listen,
            upstream: get("STOCK_UPSTREAM_URL").filter(|s| !s.trim().is_empty()),
            log_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:4567".parse().unwrap());
        assert_eq!(c.upstream, None);
        assert!(c.log_requests);
    }

    #[test]
    fn overrides_and_errors() {
        let c = cfg(&[("PORT", "0"), ("BIND", "127.0.0.1"), ("LOG_REQUESTS", "0")]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert!(!c.log_requests);
        assert!(cfg(&[("PORT", "99999")]).is_err());
        assert!(cfg(&[("BIND", "localhost")]).is_err());
    }
}
