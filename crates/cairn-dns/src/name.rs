//! Query-name parsing: which of Consul's name forms a question is.
//!
//! Names are compared case-insensitively. The forms, as in Consul's
//! `dispatch` (the rightmost kind label wins):
//!
//! - `<svc>.service[.<dc>[.dc]].<domain>` and `<tag>.<svc>.service...`
//! - RFC 2782 `_<svc>._<tag>[.service][.<dc>].<domain>` (`_tcp`/`_udp` = no tag)
//! - `<node>.node[.<dc>[.dc]].<domain>`
//! - `<hex>.addr[.<dc>[.dc]].<domain>` (8 hex digits = IPv4, 32 = IPv6)
//! - the apex `<domain>` and `ns.<domain>`
//! - reverse names under `in-addr.arpa.` and `ip6.arpa.`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// A question name inside one of our domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// The domain itself (SOA, NS).
    Apex,
    /// `ns.<domain>`: the name server of the apex NS record.
    NameServer,
    /// A service lookup.
    Service {
        service: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    /// A node lookup.
    Node { node: String, dc: Option<String> },
    /// A hex-encoded address.
    Addr { ip: IpAddr, dc: Option<String> },
    /// Inside the domain, but no form we answer: NXDOMAIN.
    Invalid,
}

/// Where a question name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Inside a domain of ours; `domain` is the configured domain it matched
    /// (lowercase, with the trailing dot), so answers echo the query's domain.
    Ours { form: Form, domain: String },
    /// A reverse-lookup name; `None` when it is not a complete address.
    Reverse(Option<IpAddr>),
    /// Anything else.
    Outside,
}

/// Splits a configured domain into lowercase labels.
pub(crate) fn domain_labels(domain: &str) -> Vec<String> {
    domain
        .split('.')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase())
        .collect()
}

/// Normalises a configured domain to `label.label.` (lowercase, final dot).
pub(crate) fn normalise_domain(domain: &str) -> String {
    let labels = domain_labels(domain);
    if labels.is_empty() {
        ".".to_string()
    } else {
        let mut s = labels.join(".");
        s.push('.');
        s
    }
}

/// Classifies `name` against the primary and alternative domains.
pub(crate) fn classify(name: &Name, domains: &[String]) -> Target {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();

    // The longest configured domain that is a suffix of the name.
    let mut best: Option<(usize, &String)> = None;
    for domain in domains {
        let dl = domain_labels(domain);
        if dl.len() <= labels.len()
            && labels[labels.len() - dl.len()..] == dl[..]
            && best.is_none_or(|(n, _)| dl.len() > n)
        {
            best = Some((dl.len(), domain));
        }
    }
    if let Some((n, domain)) = best {
        let rest = &labels[..labels.len() - n];
        return Target::Ours {
            form: parse_form(rest),
            domain: domain.clone(),
        };
    }

    let n = labels.len();
    if n >= 2 && labels[n - 1] == "arpa" {
        if labels[n - 2] == "in-addr" {
            return Target::Reverse(parse_in_addr(&labels[..n - 2]));
        }
        if labels[n - 2] == "ip6" {
            return Target::Reverse(parse_ip6(&labels[..n - 2]));
        }
    }
    Target::Outside
}

fn parse_in_addr(labels: &[String]) -> Option<IpAddr> {
    if labels.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, l) in labels.iter().rev().enumerate() {
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = l.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn parse_ip6(labels: &[String]) -> Option<IpAddr> {
    if labels.len() != 32 {
        return None;
    }
    let mut value: u128 = 0;
    for l in labels.iter().rev() {
        if l.len() != 1 {
            return None;
        }
        let digit = u128::from(char::from(l.as_bytes()[0]).to_digit(16)?);
        value = (value << 4) | digit;
    }
    Some(IpAddr::V6(Ipv6Addr::from(value)))
}

/// Parses `<hex>` of an `.addr.` name.
pub(crate) fn parse_hex_ip(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        8 => u32::from_str_radix(hex, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(hex, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// Encodes an address as the `<hex>` of an `.addr.` name.
pub(crate) fn hex_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

/// `[]`, `[<dc>]` or `[<dc>, "dc"]` -> `Some(dc)`; anything else -> `None`.
fn parse_dc_suffix(suffix: &[String]) -> Option<Option<String>> {
    match suffix {
        [] => Some(None),
        [dc] => Some(Some(dc.clone())),
        [dc, kind] if kind == "dc" => Some(Some(dc.clone())),
        _ => None,
    }
}

fn parse_form(labels: &[String]) -> Form {
    if labels.is_empty() {
        return Form::Apex;
    }
    if labels.len() == 1 && labels[0] == "ns" {
        return Form::NameServer;
    }
    for i in (0..labels.len()).rev() {
        let kind = labels[i].as_str();
        if !matches!(kind, "service" | "node" | "addr") {
            continue;
        }
        let parts = &labels[..i];
        let Some(dc) = parse_dc_suffix(&labels[i + 1..]) else {
            return Form::Invalid;
        };
        return match kind {
            "service" => service_form(parts, dc),
            "node" => {
                if parts.is_empty() {
                    Form::Invalid
                } else {
                    Form::Node {
                        node: parts.join("."),
                        dc,
                    }
                }
            }
            _ => match parts {
                [hex] => match parse_hex_ip(hex) {
                    Some(ip) => Form::Addr { ip, dc },
                    None => Form::Invalid,
                },
                _ => Form::Invalid,
            },
        };
    }
    // RFC 2782 without the `.service` label: `_svc._tag[.<dc>]`.
    if labels.len() >= 2 && labels[0].starts_with('_') && labels[1].starts_with('_') {
        if let Some(dc) = parse_dc_suffix(&labels[2..]) {
            return service_form(&labels[..2], dc);
        }
    }
    Form::Invalid
}

fn service_form(parts: &[String], dc: Option<String>) -> Form {
    let (service, tag) = match parts {
        [svc] => (svc.clone(), None),
        [a, b] if a.len() > 1 && b.len() > 1 && a.starts_with('_') && b.starts_with('_') => {
            let tag = &b[1..];
            let tag = if tag == "tcp" || tag == "udp" {
                None
            } else {
                Some(tag.to_string())
            };
            (a[1..].to_string(), tag)
        }
        [tag, svc] => (svc.clone(), Some(tag.clone())),
        _ => return Form::Invalid,
    };
    if service.is_empty() {
        return Form::Invalid;
    }
    Form::Service { service, tag, dc }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Target {
        let domains = vec!["consul.".to_string(), "cairn.example.".to_string()];
        classify(&Name::from_ascii(name).unwrap(), &domains)
    }

    fn ours(name: &str) -> Form {
        match c(name) {
            Target::Ours { form, .. } => form,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn svc(service: &str, tag: Option<&str>, dc: Option<&str>) -> Form {
        Form::Service {
            service: service.into(),
            tag: tag.map(Into::into),
            dc: dc.map(Into::into),
        }
    }

    #[test]
    fn service_forms() {
        assert_eq!(ours("web.service.consul."), svc("web", None, None));
        assert_eq!(ours("WEB.Service.CONSUL"), svc("web", None, None));
        assert_eq!(
            ours("web.service.dc1.consul."),
            svc("web", None, Some("dc1"))
        );
        assert_eq!(
            ours("web.service.dc1.dc.consul."),
            svc("web", None, Some("dc1"))
        );
        assert_eq!(ours("v1.web.service.consul."), svc("web", Some("v1"), None));
        assert_eq!(ours("_web._tcp.service.consul."), svc("web", None, None));
        assert_eq!(ours("_web._udp.service.consul."), svc("web", None, None));
        assert_eq!(
            ours("_web._v1.service.dc1.consul."),
            svc("web", Some("v1"), Some("dc1"))
        );
        assert_eq!(ours("_web._tcp.consul."), svc("web", None, None));
        assert_eq!(ours("_web._tcp.dc1.consul."), svc("web", None, Some("dc1")));
        assert_eq!(ours("web.service.cairn.example."), svc("web", None, None));
        assert_eq!(ours("a.b.web.service.consul."), Form::Invalid);
        assert_eq!(ours("service.consul."), Form::Invalid);
        assert_eq!(ours("web.service.dc1.x.y.consul."), Form::Invalid);
    }

    #[test]
    fn node_addr_apex() {
        assert_eq!(
            ours("foo.node.consul."),
            Form::Node {
                node: "foo".into(),
                dc: None
            }
        );
        assert_eq!(
            ours("Foo.node.DC1.consul."),
            Form::Node {
                node: "foo".into(),
                dc: Some("dc1".into())
            }
        );
        assert_eq!(
            ours("c000020a.addr.dc1.consul."),
            Form::Addr {
                ip: "192.0.2.10".parse().unwrap(),
                dc: Some("dc1".into())
            }
        );
        assert_eq!(
            ours("20010db8000000000000000000000001.addr.dc1.consul."),
            Form::Addr {
                ip: "2001:db8::1".parse().unwrap(),
                dc: Some("dc1".into())
            }
        );
        assert_eq!(ours("c00002.addr.dc1.consul."), Form::Invalid);
        assert_eq!(ours("zz00020a.addr.dc1.consul."), Form::Invalid);
        assert_eq!(ours("consul."), Form::Apex);
        assert_eq!(ours("ns.consul."), Form::NameServer);
        assert_eq!(ours("whatever.consul."), Form::Invalid);
        assert_eq!(c("example.com."), Target::Outside);
        assert_eq!(c("consul.example.com."), Target::Outside);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            c("10.2.0.192.in-addr.arpa."),
            Target::Reverse(Some("192.0.2.10".parse().unwrap()))
        );
        assert_eq!(c("2.0.192.in-addr.arpa."), Target::Reverse(None));
        assert_eq!(c("300.2.0.192.in-addr.arpa."), Target::Reverse(None));
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_eq!(c(v6), Target::Reverse(Some("2001:db8::1".parse().unwrap())));
        assert_eq!(hex_ip("192.0.2.10".parse().unwrap()), "c000020a");
        assert_eq!(
            parse_hex_ip(&hex_ip("2001:db8::1".parse().unwrap())),
            Some("2001:db8::1".parse().unwrap())
        );
    }
}
