//! The settings every sample app reads the same way: `PORT` (default 4567),
//! `BIND` (default 0.0.0.0) and `LOG_REQUESTS` (default on; `0`, `false`,
//! `off` or `no` turn it off). Kept in one place so the three apps agree.

use std::net::{IpAddr, SocketAddr};

/// Why the environment is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a bad value.
    #[error("{name}={value:?}: {why}")]
    Bad {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Where to listen and whether to log requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

impl ListenConfig {
    /// Reads `PORT`, `BIND` and `LOG_REQUESTS` through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let port = match get("PORT") {
            None => 4567,
            Some(v) => v.trim().parse::<u16>().map_err(|_| ConfigError::Bad {
                name: "PORT",
                value: v,
                why: "not a port number",
            })?,
        };
        let ip = match get("BIND") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v.trim().parse::<IpAddr>().map_err(|_| ConfigError::Bad {
                name: "BIND",
                value: v,
                why: "not an IP address",
            })?,
        };
        let log_requests = !matches!(
            get("LOG_REQUESTS").as_deref().map(str::trim),
            Some("0" | "false" | "off" | "no")
        );
        Ok(ListenConfig {
            listen: SocketAddr::new(ip, port),
            log_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ListenConfig, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListenConfig::from_env(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_overrides_and_errors() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:4567".parse().unwrap());
        assert!(c.log_requests);
        let c = cfg(&[("PORT", "0"), ("BIND", "::1"), ("LOG_REQUESTS", " off ")]).unwrap();
        assert_eq!(c.listen, "[::1]:0".parse().unwrap());
        assert!(!c.log_requests);
        let e = cfg(&[("PORT", "x")]).unwrap_err();
        assert_eq!(e.to_string(), "PORT=\"x\": not a port number");
        assert!(cfg(&[("BIND", "localhost")]).is_err());
    }
}
