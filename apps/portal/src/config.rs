//! Settings from flags and the environment. The resolver: `-dns ADDR` (or
//! `--dns`, `-dns=ADDR`), else `DNS_SERVER`, else the first nameserver of
//! `/etc/resolv.conf`. Service names: `-stock-service` / `STOCK_SERVICE`
//! (default `stock-price.service.consul`), `-weather-service` /
//! `WEATHER_SERVICE` (default `weather.service.consul`). `-stock-backend` /
//! `STOCK_BACKEND` and `-weather-backend` / `WEATHER_BACKEND` (`host:port`,
//! comma-separated) bypass DNS with a fixed list. Also `PORT` (4567), `BIND`
//! (0.0.0.0), `LOG_REQUESTS` (on), `DNS_TIMEOUT_MS` (1000).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sample_common::config::ListenConfig;

/// Why the settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value is malformed.
    #[error("{name}={value:?}: {why}")]
    Bad {
        /// The flag or variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A flag that is not known, or lacks its value.
    #[error("{0}\nusage: portal [-dns ADDR] [-stock-service NAME] [-weather-service NAME] [-stock-backend HOST:PORT,...] [-weather-backend HOST:PORT,...]")]
    Usage(String),
    /// No resolver was given and resolv.conf has none.
    #[error(
        "no DNS server: pass -dns ADDR or DNS_SERVER, or list a nameserver in /etc/resolv.conf"
    )]
    NoResolver,
}

/// How one back-end service is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// DNS SRV for this name.
    Srv(String),
    /// A fixed list of instances.
    Fixed(Vec<SocketAddr>),
}

/// The portal's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The DNS server asked (when any back end uses SRV).
    pub dns: Option<SocketAddr>,
    /// Per-try DNS timeout.
    pub dns_timeout: Duration,
    /// How stock-price is found.
    pub stock: Backend,
    /// How weather is found.
    pub weather: Backend,
    /// Whether to log one line per request.
    pub log_requests: bool,
}

fn bad(name: &str, value: &str, why: &'static str) -> ConfigError {
    ConfigError::Bad {
        name: name.to_string(),
        value: value.to_string(),
        why,
    }
}

/// `127.0.0.1:8600`, or a bare IP meaning port 53.
pub fn parse_dns_server(name: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    let v = v.trim();
    v.parse::<SocketAddr>()
        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| bad(name, v, "not an IP address or IP:port"))
}

fn parse_fixed(name: &str, v: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let list: Result<Vec<SocketAddr>, _> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<SocketAddr>())
        .collect();
    match list {
        Ok(l) if !l.is_empty() && l.len() <= 64 => Ok(l),
        _ => Err(bad(
            name,
            v,
            "not a comma-separated list of IP:port (at most 64)",
        )),
    }
}

impl Config {
    /// Reads `args` (without the program name), the environment through
    /// `env`, and `resolv` (the system nameserver, asked only when needed).
    pub fn parse(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
        resolv: impl FnOnce() -> Option<SocketAddr>,
    ) -> Result<Self, ConfigError> {
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].trim_start_matches('-');
            if a.len() == args[i].len() || a.is_empty() {
                return Err(ConfigError::Usage(format!(
                    "unexpected argument {:?}",
                    args[i]
                )));
            }
            let (k, v) = match a.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let v = args
                        .get(i + 1)
                        .ok_or_else(|| ConfigError::Usage(format!("{} needs a value", args[i])))?;
                    i += 1;
                    (a.to_string(), v.clone())
                }
            };
            if !matches!(
                k.as_str(),
                "dns" | "stock-service" | "weather-service" | "stock-backend" | "weather-backend"
            ) {
                return Err(ConfigError::Usage(format!("unknown flag -{k}")));
            }
            flags.push((k, v));
            i += 1;
        }
        let flag = |k: &str| {
            flags
                .iter()
                .rev()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
        };

        let listen = ListenConfig::from_env(&env).map_err(|e| match e {
            sample_common::config::ConfigError::Bad { name, value, why } => bad(name, &value, why),
        })?;
        let dns_timeout = match env("DNS_TIMEOUT_MS") {
            None => Duration::from_millis(1000),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (1..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => return Err(bad("DNS_TIMEOUT_MS", &v, "not 1..60000")),
            },
        };
        let backend =
            |svc_flag: &str, svc_env: &str, fixed_flag: &str, fixed_env: &str, default: &str| {
                match flag(fixed_flag)
                    .map(|v| (fixed_flag.to_string(), v))
                    .or_else(|| env(fixed_env).map(|v| (fixed_env.to_string(), v)))
                {
                    Some((name, v)) => parse_fixed(&name, &v).map(Backend::Fixed),
                    None => {
                        let name = flag(svc_flag)
                            .or_else(|| env(svc_env))
                            .unwrap_or_else(|| default.to_string());
                        crate::dns_wire::fqdn(&name)
                            .map(|_| Backend::Srv(name.clone()))
                            .map_err(|_| bad(svc_flag, &name, "not a DNS name"))
                    }
                }
            };
        let stock = backend(
            "stock-service",
            "STOCK_SERVICE",
            "stock-backend",
            "STOCK_BACKEND",
            "stock-price.service.consul",
        )?;
        let weather = backend(
            "weather-service",
            "WEATHER_SERVICE",
            "weather-backend",
            "WEATHER_BACKEND",
            "weather.service.consul",
        )?;
        let needs_dns = matches!(stock, Backend::Srv(_)) || matches!(weather, Backend::Srv(_));
        let dns = match flag("dns")
            .map(|v| ("-dns", v))
            .or_else(|| env("DNS_SERVER").map(|v| ("DNS_SERVER", v)))
        {
            Some((name, v)) => Some(parse_dns_server(name, &v)?),
            None if needs_dns => Some(resolv().ok_or(ConfigError::NoResolver)?),
            None => None,
        };
        Ok(Config {
            listen: listen.listen,
            dns,
            dns_timeout,
            stock,
            weather,
            log_requests: listen.log_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(
        args: &[&str],
        env: &[(&str, &str)],
        resolv: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(
            &args,
            |k| env.get(k).cloned(),
            || resolv.map(|r| r.parse().unwrap()),
        )
    }

    #[test]
    fn defaults_use_resolv_conf_and_consul_names() {
        let c = parse(&[], &[], Some("10.0.0.2:53")).unwrap();
        assert_eq!(c.listen, "0.0.0.0:4567".parse().unwrap());
        assert_eq!(c.dns, Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(c.stock, Backend::Srv("stock-price.service.consul".into()));
        assert_eq!(c.weather, Backend::Srv("weather.service.consul".into()));
        assert_eq!(parse(&[], &[], None), Err(ConfigError::NoResolver));
    }

    #[test]
    fn flag_beats_env_beats_resolv_conf() {
        let c = parse(
            &["-dns", "127.0.0.1:8600"],
            &[("DNS_SERVER", "127.0.0.2:53")],
            Some("10.0.0.2:53"),
        )
        .unwrap();
        assert_eq!(c.dns, Some("127.0.0.1:8600".parse().unwrap()));
        let c = parse(&["--dns=127.0.0.3"], &[], None).unwrap();
        assert_eq!(c.dns, Some("127.0.0.3:53".parse().unwrap()));
        let c = parse(&[], &[("DNS_SERVER", "127.0.0.2:5353")], None).unwrap();
        assert_eq!(c.dns, Some("127.0.0.2:5353".parse().unwrap()));
    }

    #[test]
    fn names_and_fixed_backends() {
        let c = parse(
            &[
                "-stock-service",
                "quotes.service.dc2.consul",
                "-weather-backend",
                "127.0.0.1:1,127.0.0.1:2",
            ],
            &[],
            Some("10.0.0.2:53"),
        )
        .unwrap();
        assert_eq!(c.stock, Backend::Srv("quotes.service.dc2.consul".into()));
        assert_eq!(
            c.weather,
            Backend::Fixed(vec![
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap()
            ])
        );
        // Both fixed: no resolver needed.
        let c = parse(
            &[],
            &[
                ("STOCK_BACKEND", "127.0.0.1:1"),
                ("WEATHER_BACKEND", "127.0.0.1:2"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.dns, None);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(
            parse(&["-dns"], &[], None),
            Err(ConfigError::Usage(_))
        ));
        assert!(matches!(
            parse(&["-nope", "x"], &[], None),
            Err(ConfigError::Usage(_))
        ));
        assert!(matches!(
            parse(&["stray"], &[], None),
            Err(ConfigError::Usage(_))
        ));
        assert!(matches!(
            parse(&["-dns", "localhost"], &[], None),
            Err(ConfigError::Bad { .. })
        ));
        assert!(matches!(
            parse(&["-stock-backend", "x"], &[], Some("1.1.1.1:53")),
            Err(ConfigError::Bad { .. })
        ));
        assert!(matches!(
            parse(&["-stock-service", "a..b"], &[], Some("1.1.1.1:53")),
            Err(ConfigError::Bad { .. })
        ));
        assert!(matches!(
            parse(&[], &[("DNS_TIMEOUT_MS", "0")], Some("1.1.1.1:53")),
            Err(ConfigError::Bad { .. })
        ));
    }
}
