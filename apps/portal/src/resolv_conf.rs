//! Reads the nameservers of `/etc/resolv.conf`, the resolver a process is
//! given when no `-dns` flag or `DNS_SERVER` says otherwise.

use std::net::{IpAddr, SocketAddr};

/// The most bytes of resolv.conf read.
pub const MAX_LEN: u64 = 64 * 1024;

/// The `nameserver` addresses of a resolv.conf text, port 53, in order.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .map(|l| l.split(['#', ';']).next().unwrap_or("").trim())
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|rest| {
            // An IPv6 address may carry a zone (`fe80::1%eth0`): drop it.
            let addr = rest.trim().split('%').next()?;
            addr.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The first nameserver of `/etc/resolv.conf`, if it is readable.
pub fn system_nameserver() -> Option<SocketAddr> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/etc/resolv.conf")
        .ok()?
        .take(MAX_LEN)
        .read_to_string(&mut text)
        .ok()?;
    nameservers(&text).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_and_ignores_the_rest() {
        let text = "# comment\nsearch service.consul\nnameserver 127.0.0.1\n\
                    nameserver   10.0.0.2 # trailing\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\n";
        assert_eq!(
            nameservers(text),
            vec![
                "127.0.0.1:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert!(nameservers("").is_empty());
    }
}
