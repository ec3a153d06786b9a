//! Settings from the environment: `PORT` (default 4567), `BIND` (default
//! 0.0.0.0), `TEMP_SCALE` (`C` or `F`; anything else means Celsius, as in the
//! original), `WEATHER_UPSTREAM_URL`, `LOG_REQUESTS` (default on).

use std::net::SocketAddr;

pub use sample_common::config::ConfigError;
use sample_common::config::ListenConfig;

/// The temperature scale answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempScale {
    /// Degrees Celsius.
    Celsius,
    /// Degrees Fahrenheit.
    Fahrenheit,
}

impl TempScale {
    /// `TEMP_SCALE`: `F`/`f` is Fahrenheit, anything else Celsius.
    pub fn from_setting(v: Option<&str>) -> Self {
        match v.map(str::trim) {
            Some("F" | "f") => TempScale::Fahrenheit,
            _ => TempScale::Celsius,
        }
    }

    /// The `format` field of the answer. "Farenheit" is the original
    /// sample's spelling, kept so clients of the original keep working.
    pub fn wire_name(self) -> &'static str {
        match self {
            TempScale::Celsius => "Celsius",
            TempScale::Fahrenheit => "Farenheit",
        }
    }
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The scale answered.
    pub scale: TempScale,
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
            scale: TempScale::from_setting(get("TEMP_SCALE").as_deref()),
            upstream: get("WEATHER_UPSTREAM_URL").filter(|s| !s.trim().is_empty()),
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
    fn defaults_and_scales() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:4567".parse().unwrap());
        assert_eq!(c.scale, TempScale::Celsius);
        assert_eq!(
            cfg(&[("TEMP_SCALE", "F")]).unwrap().scale,
            TempScale::Fahrenheit
        );
        assert_eq!(
            cfg(&[("TEMP_SCALE", "C")]).unwrap().scale,
            TempScale::Celsius
        );
        assert_eq!(
            cfg(&[("TEMP_SCALE", "K")]).unwrap().scale,
            TempScale::Celsius
        );
        assert!(cfg(&[("PORT", "-1")]).is_err());
        assert!(cfg(&[("BIND", "x")]).is_err());
    }
}
