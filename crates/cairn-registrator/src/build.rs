//! Naming, IDs, addresses and ports: one container in, the services it should have out.
//! Registrator's rules (image basename, `-<port>` suffix for several ports, ID
//! `<host>:<container>:<port>[:udp]`, host port unless `-internal`) with its bugs fixed: the
//! suffix counts *published* ports, the host part is the agent's node name rather than the
//! registrator's own hostname, and the address is chosen explicitly and reported.

use crate::checks::checks_for;
use crate::container::{Container, PortBinding, Proto};
use crate::metadata::{for_port, split_tags};
use cairn_api::ServiceDefinition;
use std::collections::BTreeMap;

/// Meta key naming the owner (`<node>` or `<node>/<scope>`) of a registration.
pub const META_OWNER: &str = "registrator-owner";
/// Meta key naming the container a registration belongs to.
pub const META_CONTAINER: &str = "registrator-container";
/// Meta key holding a fingerprint of everything else that was registered.
pub const META_SPEC: &str = "registrator-spec";

/// Longest service name or ID accepted from metadata.
const MAX_NAME_LEN: usize = 256;
/// Most user Meta pairs (Consul allows 64; three are ours).
const MAX_USER_META: usize = 60;

/// What the registrator was told (flags) and learnt (the agent's identity).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The agent's node name: the host part of IDs.
    pub node: String,
    /// The owner value written to [`META_OWNER`].
    pub owner: String,
    /// The agent's advertise address, the fallback service address.
    pub advertise: String,
    /// `-ip`: forces the address of every service (unless a container label names one).
    pub ip: Option<String>,
    /// `-useIpFromLabel`: a container label holding the address (a `/prefix` is stripped).
    pub ip_label: Option<String>,
    /// `-internal`: container IP and exposed port instead of host address and port.
    pub internal: bool,
    /// `-explicit`: only containers that name their services.
    pub explicit: bool,
    /// `-tags`: added to every service.
    pub tags: Vec<String>,
}

/// Where a service's address came from (logged, so a wrong IP is explainable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSource {
    Label(String),
    Flag,
    Binding,
    Advertise,
    Container,
}

impl std::fmt::Display for IpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpSource::Label(l) => write!(f, "label {l}"),
            IpSource::Flag => write!(f, "-ip"),
            IpSource::Binding => write!(f, "the port binding's host IP"),
            IpSource::Advertise => write!(f, "the agent's advertise address"),
            IpSource::Container => write!(f, "the container's network IP (-internal)"),
        }
    }
}

/// One service a container should have.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub def: ServiceDefinition,
    pub container_id: String,
    pub container_name: String,
    pub ip_source: IpSource,
}

/// The image basename without registry, repository, tag or digest:
/// `registry:5000/org/stock-price:1.2@sha256:...` → `stock-price`.
pub fn image_basename(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let name = last.split(':').next().unwrap_or(last);
    name.to_string()
}

/// Whether an address is a wildcard (bind-all) rather than a usable address.
fn is_wildcard(ip: &str) -> bool {
    matches!(ip.trim(), "" | "0.0.0.0" | "::" | "[::]")
}

/// The services `c` should have now. Reasons for skipping or trimming go to `notes`.
pub fn services_for(c: &Container, s: &Settings, notes: &mut Vec<String>) -> Vec<Wanted> {
    if !c.is_serving() {
        return Vec::new();
    }
    let mut ports: Vec<&PortBinding> = c
        .ports
        .iter()
        .filter(|p| s.internal || p.host_port.is_some())
        .collect();
    ports.sort_by_key(|p| (p.exposed, p.proto));
    ports.dedup_by_key(|p| (p.exposed, p.proto));
    let is_group = ports.len() > 1;
    let label_ip = s.ip_label.as_ref().and_then(|l| {
        c.labels.get(l).map(|v| {
            let v = v.split('/').next().unwrap_or(v).trim().to_string();
            (l.clone(), v)
        })
    });
    let mut out = Vec::new();
    for p in ports {
        let meta = for_port(&c.env, &c.labels, p.exposed, notes);
        if meta.get("ignore").is_some() {
            continue;
        }
        let explicit_name = meta.get("name");
        if s.explicit && explicit_name.is_none() {
            continue;
        }
        let mut name = explicit_name
            .map(str::to_string)
            .unwrap_or_else(|| image_basename(&c.image));
        if is_group && !meta.is_from_port("name") {
            name = format!("{name}-{}", p.exposed);
        }
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(['/', '\0']) {
            notes.push(format!(
                "port {}: service name {name:?} is empty, too long or contains '/'; not registered",
                p.exposed
            ));
            continue;
        }
        let udp = if p.proto == Proto::Udp { ":udp" } else { "" };
        let id = match meta.get("id") {
            Some(id) => id.to_string(),
            None => format!("{}:{}:{}{udp}", s.node, c.name, p.exposed),
        };
        if id.len() > MAX_NAME_LEN || id.contains(['/', '\0']) {
            notes.push(format!(
                "port {}: service ID {id:?} is too long or contains '/'; not registered",
                p.exposed
            ));
            continue;
        }
        // Address and port.
        let (ip, ip_source, port) = if s.internal {
            match (&label_ip, &c.ip) {
                (Some((l, v)), _) if !v.is_empty() => {
                    (v.clone(), IpSource::Label(l.clone()), p.exposed)
                }
                (_, Some(ip)) if !ip.is_empty() => (ip.clone(), IpSource::Container, p.exposed),
                _ => {
                    notes.push(format!(
                        "port {}: -internal but the container has no network IP; not registered",
                        p.exposed
                    ));
                    continue;
                }
            }
        } else {
            let host_port = p.host_port.unwrap_or(p.exposed);
            let binding_ip = p.host_ip.as_deref().filter(|ip| !is_wildcard(ip));
            match (&label_ip, &s.ip, binding_ip) {
                (Some((l, v)), _, _) if !v.is_empty() => {
                    (v.clone(), IpSource::Label(l.clone()), host_port)
                }
                (_, Some(ip), _) => (ip.clone(), IpSource::Flag, host_port),
                (_, _, Some(b)) => (b.to_string(), IpSource::Binding, host_port),
                _ => (s.advertise.clone(), IpSource::Advertise, host_port),
            }
        };
        if port == 0 {
            notes.push(format!("port {}: host port 0; not registered", p.exposed));
            continue;
        }
        // Tags.
        let mut tags: Vec<String> = Vec::new();
        for t in meta
            .get("tags")
            .map(split_tags)
            .unwrap_or_default()
            .into_iter()
            .chain(s.tags.iter().cloned())
            .chain((p.proto == Proto::Udp).then(|| "udp".to_string()))
        {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        // User Meta: every key that is not consumed above.
        let mut user_meta = BTreeMap::new();
        for (k, v) in &meta.values {
            if matches!(k.as_str(), "name" | "id" | "tags" | "ignore") || k.starts_with("check_") {
                continue;
            }
            if let Err(why) = valid_meta(k, v) {
                notes.push(format!(
                    "SERVICE_{}: {why}; not added to Meta",
                    k.to_ascii_uppercase()
                ));
                continue;
            }
            if user_meta.len() >= MAX_USER_META {
                notes.push(format!(
                    "more than {MAX_USER_META} Meta keys; the rest are dropped"
                ));
                break;
            }
            user_meta.insert(k.clone(), v.clone());
        }
        user_meta.insert(META_OWNER.to_string(), s.owner.clone());
        user_meta.insert(META_CONTAINER.to_string(), c.name.clone());
        let checks = checks_for(&meta, &ip, port, notes);
        let mut def = ServiceDefinition {
            id,
            name,
            tags,
            address: ip,
            meta: user_meta,
            port: Some(port),
            checks,
            ..Default::default()
        };
        let spec = fingerprint(&def);
        def.meta.insert(META_SPEC.to_string(), spec);
        out.push(Wanted {
            def,
            container_id: c.id.clone(),
            container_name: c.name.clone(),
            ip_source,
        });
    }
    out
}

/// Consul's Meta rules: key of letters, digits, `-` and `_`, at most 128 bytes, not starting
/// with `consul-` and not one of ours; value at most 512 bytes.
fn valid_meta(k: &str, v: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > 128 {
        return Err("key must be 1 to 128 characters".into());
    }
    if !k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("key may contain only letters, digits, '-' and '_'".into());
    }
    if k.starts_with("consul-") || k.starts_with("registrator-") {
        return Err("key prefix is reserved".into());
    }
    if v.len() > 512 {
        return Err("value longer than 512 bytes".into());
    }
    Ok(())
}

/// A stable 64-bit FNV-1a fingerprint (hex) of a definition's JSON form, so an unchanged
/// service is recognised from the agent's `Meta` alone.
pub fn fingerprint(def: &ServiceDefinition) -> String {
    let bytes = serde_json::to_vec(def).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Health, RunState};

    fn settings() -> Settings {
        Settings {
            node: "node-a".into(),
            owner: "node-a".into(),
            advertise: "10.0.1.93".into(),
            ..Default::default()
        }
    }

    fn container(image: &str, env: &[&str], ports: &[(u16, Proto, Option<u16>)]) -> Container {
        Container {
            id: "abc123".into(),
            name: "web.0".into(),
            image: image.into(),
            env: env.iter().map(|s| s.to_string()).collect(),
            labels: BTreeMap::new(),
            ports: ports
                .iter()
                .map(|&(exposed, proto, host_port)| PortBinding {
                    exposed,
                    proto,
                    host_ip: Some("0.0.0.0".into()),
                    host_port,
                })
                .collect(),
            ip: Some("172.17.0.2".into()),
            state: RunState::Running,
            health: None,
        }
    }

    fn build(c: &Container, s: &Settings) -> (Vec<Wanted>, Vec<String>) {
        let mut notes = vec![];
        let w = services_for(c, s, &mut notes);
        (w, notes)
    }

    #[test]
    fn the_article_stock_price_container() {
        let c = container(
            "my_docker_hub_repo/stock-price",
            &[
                "SERVICE_4567_NAME=stock-price",
                "SERVICE_4567_CHECK_HTTP=/health",
                "SERVICE_4567_CHECK_INTERVAL=10s",
                "SERVICE_TAGS=http",
            ],
            &[(4567, Proto::Tcp, Some(32768))],
        );
        let (w, notes) = build(&c, &settings());
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(w.len(), 1);
        let d = &w[0].def;
        assert_eq!(d.name, "stock-price");
        assert_eq!(d.id, "node-a:web.0:4567");
        assert_eq!(d.port, Some(32768));
        assert_eq!(d.address, "10.0.1.93");
        assert_eq!(w[0].ip_source, IpSource::Advertise);
        assert_eq!(d.tags, ["http"]);
        assert_eq!(d.checks.len(), 1);
        assert_eq!(d.checks[0].http, "http://10.0.1.93:32768/health");
        assert_eq!(d.meta[META_OWNER], "node-a");
        assert_eq!(d.meta[META_CONTAINER], "web.0");
        assert_eq!(d.meta.len(), 3, "{:?}", d.meta);
    }

    #[test]
    fn portal_without_metadata_uses_the_image_name() {
        let c = container(
            "my_docker_hub_repo/portal:latest",
            &[],
            &[(4567, Proto::Tcp, Some(80))],
        );
        let (w, _) = build(&c, &settings());
        assert_eq!(w[0].def.name, "portal");
        assert_eq!(w[0].def.port, Some(80));
        assert!(w[0].def.checks.is_empty());
    }

    #[test]
    fn naming_table() {
        struct Case {
            image: &'static str,
            env: &'static [&'static str],
            ports: &'static [(u16, Proto, Option<u16>)],
            want: &'static [(&'static str, &'static str, u16)],
        }
        let cases = [
            // registrator's worked examples
            Case {
                image: "progrium/redis",
                env: &[],
                ports: &[(6379, Proto::Tcp, Some(10000))],
                want: &[("redis", "node-a:web.0:6379", 10000)],
            },
            Case {
                image: "nginx",
                env: &[],
                ports: &[(80, Proto::Tcp, Some(1080)), (443, Proto::Tcp, Some(1443))],
                want: &[
                    ("nginx-80", "node-a:web.0:80", 1080),
                    ("nginx-443", "node-a:web.0:443", 1443),
                ],
            },
            Case {
                image: "nginx",
                env: &["SERVICE_443_NAME=https", "SERVICE_80_NAME=http"],
                ports: &[(80, Proto::Tcp, Some(1080)), (443, Proto::Tcp, Some(1443))],
                want: &[
                    ("http", "node-a:web.0:80", 1080),
                    ("https", "node-a:web.0:443", 1443),
                ],
            },
            // a generic SERVICE_NAME still gets the suffix in a group
            Case {
                image: "nginx",
                env: &["SERVICE_NAME=web"],
                ports: &[(80, Proto::Tcp, Some(1080)), (443, Proto::Tcp, Some(1443))],
                want: &[
                    ("web-80", "node-a:web.0:80", 1080),
                    ("web-443", "node-a:web.0:443", 1443),
                ],
            },
            // several exposed, one published: no suffix (registrator #380/#437)
            Case {
                image: "nginx",
                env: &[],
                ports: &[(80, Proto::Tcp, Some(1080)), (443, Proto::Tcp, None)],
                want: &[("nginx", "node-a:web.0:80", 1080)],
            },
            // udp gets :udp and the tag
            Case {
                image: "dns",
                env: &[],
                ports: &[(53, Proto::Udp, Some(1053))],
                want: &[("dns", "node-a:web.0:53:udp", 1053)],
            },
            // SERVICE_ID overrides; SERVICE_IGNORE per port and generic
            Case {
                image: "x",
                env: &["SERVICE_ID=custom"],
                ports: &[(1, Proto::Tcp, Some(2))],
                want: &[("x", "custom", 2)],
            },
            Case {
                image: "x",
                env: &["SERVICE_80_IGNORE=yes"],
                ports: &[(80, Proto::Tcp, Some(1)), (81, Proto::Tcp, Some(2))],
                want: &[("x-81", "node-a:web.0:81", 2)],
            },
            Case {
                image: "x",
                env: &["SERVICE_IGNORE=1"],
                ports: &[(80, Proto::Tcp, Some(1))],
                want: &[],
            },
            // image references
            Case {
                image: "registry:5000/org/app:1.2@sha256:00",
                env: &[],
                ports: &[(1, Proto::Tcp, Some(2))],
                want: &[("app", "node-a:web.0:1", 2)],
            },
            // nothing published
            Case {
                image: "x",
                env: &[],
                ports: &[(80, Proto::Tcp, None)],
                want: &[],
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let c = container(case.image, case.env, case.ports);
            let (w, _) = build(&c, &settings());
            let got: Vec<(String, String, u16)> = w
                .iter()
                .map(|w| (w.def.name.clone(), w.def.id.clone(), w.def.port.unwrap()))
                .collect();
            let want: Vec<(String, String, u16)> = case
                .want
                .iter()
                .map(|(n, id, p)| (n.to_string(), id.to_string(), *p))
                .collect();
            assert_eq!(got, want, "case {i}");
        }
        let c = container("dns", &[], &[(53, Proto::Udp, Some(1053))]);
        assert_eq!(build(&c, &settings()).0[0].def.tags, ["udp"]);
    }

    #[test]
    fn explicit_internal_and_addresses() {
        let c = container("x", &[], &[(80, Proto::Tcp, Some(8080))]);
        let mut s = settings();
        s.explicit = true;
        assert!(build(&c, &s).0.is_empty());
        let named = container("x", &["SERVICE_NAME=y"], &[(80, Proto::Tcp, Some(8080))]);
        assert_eq!(build(&named, &s).0.len(), 1);

        let mut s = settings();
        s.internal = true;
        let w = build(&container("x", &[], &[(80, Proto::Tcp, None)]), &s).0;
        assert_eq!(
            (w[0].def.address.as_str(), w[0].def.port),
            ("172.17.0.2", Some(80))
        );
        assert_eq!(w[0].ip_source, IpSource::Container);
        let mut no_ip = container("x", &[], &[(80, Proto::Tcp, None)]);
        no_ip.ip = None;
        let (w, notes) = build(&no_ip, &s);
        assert!(
            w.is_empty() && notes[0].contains("no network IP"),
            "{notes:?}"
        );

        // -ip beats the binding; a label beats -ip; a specific binding beats the advertise address.
        let mut s = settings();
        let mut c = container("x", &[], &[(80, Proto::Tcp, Some(8080))]);
        c.ports[0].host_ip = Some("192.168.1.7".into());
        assert_eq!(build(&c, &s).0[0].ip_source, IpSource::Binding);
        assert_eq!(build(&c, &s).0[0].def.address, "192.168.1.7");
        s.ip = Some("10.9.9.9".into());
        assert_eq!(build(&c, &s).0[0].def.address, "10.9.9.9");
        s.ip_label = Some("svc.ip".into());
        c.labels.insert("svc.ip".into(), "10.1.1.1/24".into());
        let w = build(&c, &s).0;
        assert_eq!(w[0].def.address, "10.1.1.1");
        assert_eq!(w[0].ip_source, IpSource::Label("svc.ip".into()));
    }

    #[test]
    fn states_tags_and_meta() {
        let mut c = container(
            "x",
            &[
                "SERVICE_TAGS=a,b",
                "SERVICE_REGION=us2",
                "SERVICE_bad key=v",
                "SERVICE_CONSUL-X=v",
            ],
            &[(80, Proto::Tcp, Some(8080))],
        );
        let mut s = settings();
        s.tags = vec!["b".into(), "c".into()];
        let (w, notes) = build(&c, &s);
        assert_eq!(w[0].def.tags, ["a", "b", "c"]);
        assert_eq!(w[0].def.meta["region"], "us2");
        assert!(!w[0].def.meta.contains_key("bad key"));
        assert!(!w[0].def.meta.contains_key("consul-x"));
        assert_eq!(notes.len(), 2, "{notes:?}");
        for state in [
            RunState::Paused,
            RunState::Stopping,
            RunState::Exited(Some(0)),
        ] {
            c.state = state;
            assert!(build(&c, &s).0.is_empty(), "{state:?}");
        }
        c.state = RunState::Running;
        c.health = Some(Health::Unhealthy);
        assert!(build(&c, &s).0.is_empty());
        c.health = Some(Health::Starting);
        assert_eq!(build(&c, &s).0.len(), 1);
    }

    #[test]
    fn fingerprint_tracks_content() {
        let c = container(
            "x",
            &["SERVICE_CHECK_TCP=1"],
            &[(80, Proto::Tcp, Some(8080))],
        );
        let a = build(&c, &settings()).0[0].def.meta[META_SPEC].clone();
        assert_eq!(a, build(&c, &settings()).0[0].def.meta[META_SPEC]);
        let c2 = container(
            "x",
            &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_INTERVAL=3s"],
            &[(80, Proto::Tcp, Some(8080))],
        );
        assert_ne!(a, build(&c2, &settings()).0[0].def.meta[META_SPEC]);
    }
}
