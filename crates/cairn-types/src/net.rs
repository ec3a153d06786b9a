//! `host[:port]` as users write addresses (a join address, an agent address, a TLS
//! server name): one rule for when a port is already there, so every caller adds its
//! default port the same way. Parsing only; looking the host up is the caller's.

use std::net::{IpAddr, SocketAddr};

/// `addr` with `default_port` added when it names none: `host`, `host:port`, an IP, an
/// IPv6 address bare or in brackets (`::1`, `[::1]`, `[::1]:8301`).
pub fn with_default_port(addr: &str, default_port: u16) -> String {
    let a = addr.trim();
    if a.parse::<SocketAddr>().is_ok() {
        return a.to_string();
    }
    if let Ok(ip) = a.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return SocketAddr::new(ip, default_port).to_string();
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => a.to_string(),
        _ => format!("{a}:{default_port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_added_only_when_missing() {
        for (addr, want) in [
            ("10.0.0.1", "10.0.0.1:8301"),
            ("10.0.0.1:9", "10.0.0.1:9"),
            ("consul.local", "consul.local:8301"),
            ("consul.local:9", "consul.local:9"),
            ("::1", "[::1]:8301"),
            ("[::1]", "[::1]:8301"),
            ("[::1]:9", "[::1]:9"),
            (" host ", "host:8301"),
        ] {
            assert_eq!(with_default_port(addr, 8301), want, "{addr}");
        }
    }
}
