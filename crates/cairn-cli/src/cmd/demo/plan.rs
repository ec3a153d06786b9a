//! The demo's topology as data: which agents run where, which task instances go on which
//! client, and which ports each agent asks for. Pure (no sockets, no processes), so the
//! placement and flag rules are unit-tested; `run` carries the plan out.

use std::collections::BTreeMap;

/// The article's three task definitions, in start order (back ends before the portal).
pub const FAMILIES: [&str; 3] = ["stock-price", "weather", "portal"];

/// Most copies of one task the demo starts (each is a process or a container).
pub const MAX_SCALE: usize = 20;

/// Consul's default ports, which the demo asks for when they are free.
pub const HTTP_PORT: u16 = 8500;
pub const DNS_PORT: u16 = 8600;
pub const SERF_LAN_PORT: u16 = 8301;
pub const SERVER_PORT: u16 = 8300;

/// The portal's default host port.
pub const PORTAL_PORT: u16 = 8080;

/// What an agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// The ports an agent binds: Consul's defaults, or all ephemeral (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    Default,
    Ephemeral,
}

/// One agent of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub name: String,
    pub ip: String,
    pub role: Role,
    pub ports: Ports,
    /// Servers only: how many servers form the cluster (`-bootstrap-expect`).
    pub expect: u32,
}

impl NodePlan {
    /// `cairn agent` arguments for this node; `join` is the server's serf address for clients.
    pub fn agent_args(&self, data_dir: &str, join: Option<&str>) -> Vec<String> {
        let mut a = vec!["agent".to_string()];
        if self.role == Role::Server {
            a.push("-server".into());
            a.push(format!("-bootstrap-expect={}", self.expect.max(1)));
        }
        a.push(format!("-node={}", self.name));
        a.push(format!("-bind={}", self.ip));
        a.push(format!("-client={}", self.ip));
        a.push(format!("-data-dir={data_dir}"));
        let (http, dns, serf, server) = match self.ports {
            Ports::Default => (HTTP_PORT, DNS_PORT, SERF_LAN_PORT, SERVER_PORT),
            Ports::Ephemeral => (0, 0, 0, 0),
        };
        a.push(format!("-http-port={http}"));
        a.push(format!("-dns-port={dns}"));
        a.push(format!("-serf-lan-port={serf}"));
        if self.role == Role::Server {
            a.push(format!("-server-port={server}"));
        }
        if let Some(j) = join {
            a.push(format!("-retry-join={j}"));
            a.push("-retry-interval=1s".into());
        }
        a
    }
}

/// One copy of a task definition, placed on a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `stock-price`, `weather` or `portal`.
    pub family: String,
    /// 1-based copy number across all clients.
    pub copy: usize,
    /// Index into the client list.
    pub client: usize,
}

impl Instance {
    /// The family of the generated per-instance task definition (`stock-price-2`): each
    /// instance gets its own runner, so killing one leaves the others untouched.
    pub fn name(&self) -> String {
        format!("{}-{}", self.family, self.copy)
    }
}

/// The demo's shape before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The first server (the others join it).
    pub server: NodePlan,
    /// The other servers of a replicated cluster (`--servers 3`: s2, s3 on 127.0.0.4-5).
    pub extra_servers: Vec<NodePlan>,
    pub clients: Vec<NodePlan>,
    pub instances: Vec<Instance>,
}

/// Parses one `--scale NAME=N`.
pub fn parse_scale(s: &str) -> Result<(String, usize), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("--scale {s:?} must be NAME=N, e.g. stock-price=3"))?;
    let name = name.trim();
    if !FAMILIES.contains(&name) {
        return Err(format!(
            "--scale {s:?}: unknown task {name:?}; the tasks are {}",
            FAMILIES.join(", ")
        ));
    }
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("--scale {s:?}: {:?} is not a number", n.trim()))?;
    if name == "portal" && n != 1 {
        return Err(format!(
            "--scale {s:?}: the portal runs once, on its fixed port (use --portal-port to move it)"
        ));
    }
    if n == 0 || n > MAX_SCALE {
        return Err(format!("--scale {s:?}: N must be 1 to {MAX_SCALE}"));
    }
    Ok((name.to_string(), n))
}

/// Copies per family: one per client for the back ends and one portal, then `--scale`.
pub fn scale(clients: usize, overrides: &[(String, usize)]) -> BTreeMap<String, usize> {
    let mut m: BTreeMap<String, usize> = FAMILIES
        .iter()
        .map(|f| (f.to_string(), if *f == "portal" { 1 } else { clients }))
        .collect();
    for (k, v) in overrides {
        m.insert(k.clone(), *v);
    }
    m
}

/// Spreads the copies over the clients round-robin (the portal on the first client), in
/// [`FAMILIES`] order.
pub fn place(clients: usize, scale: &BTreeMap<String, usize>) -> Vec<Instance> {
    let mut out = Vec::new();
    for f in FAMILIES {
        let n = scale.get(f).copied().unwrap_or(0);
        for copy in 1..=n {
            out.push(Instance {
                family: f.to_string(),
                copy,
                client: (copy - 1) % clients.max(1),
            });
        }
    }
    out
}

/// The servers the demo can start: 1, 3 or 5 (a Raft quorum needs an odd number).
pub fn check_servers(n: &str) -> Result<u32, String> {
    match n.trim().parse::<u32>() {
        Ok(n @ (1 | 3 | 5)) => Ok(n),
        Ok(n) => Err(format!(
            "--servers {n}: use 1, 3 or 5 (a Raft cluster of an even size tolerates no more \
             failures than the odd size below it)"
        )),
        Err(_) => Err(format!("--servers {n:?} is not a number")),
    }
}

/// The plan for one server on 127.0.0.1 and two clients on 127.0.0.2-3. `ports_of` says,
/// per IP, which ports to ask for (the runtime checks whether the defaults are free).
pub fn plan(
    overrides: &[(String, usize)],
    servers: u32,
    mut ports_of: impl FnMut(&str, Role) -> Ports,
) -> Plan {
    let node = |name: &str, ip: &str, role: Role, ports: Ports| NodePlan {
        name: name.into(),
        ip: ip.into(),
        role,
        ports,
        expect: if role == Role::Server { servers } else { 0 },
    };
    let server = node(
        "s1",
        "127.0.0.1",
        Role::Server,
        ports_of("127.0.0.1", Role::Server),
    );
    // More servers go after the clients' addresses: s2 on 127.0.0.4, s3 on 127.0.0.5, ...
    let extra_servers: Vec<NodePlan> = (2..=servers)
        .map(|i| {
            let ip = format!("127.0.0.{}", i + 2);
            let ports = ports_of(&ip, Role::Server);
            node(&format!("s{i}"), &ip, Role::Server, ports)
        })
        .collect();
    let clients: Vec<NodePlan> = [("c2", "127.0.0.2"), ("c3", "127.0.0.3")]
        .iter()
        .map(|(n, ip)| node(n, ip, Role::Client, ports_of(ip, Role::Client)))
        .collect();
    let instances = place(clients.len(), &scale(clients.len(), overrides));
    Plan {
        server,
        extra_servers,
        clients,
        instances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_flags() {
        assert_eq!(
            parse_scale("stock-price=3").unwrap(),
            ("stock-price".into(), 3)
        );
        assert_eq!(parse_scale(" weather = 1 ").unwrap(), ("weather".into(), 1));
        assert!(parse_scale("stock-price").unwrap_err().contains("NAME=N"));
        assert!(parse_scale("nope=2").unwrap_err().contains("unknown task"));
        assert!(parse_scale("weather=x")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_scale("weather=0").unwrap_err().contains("1 to"));
        assert!(parse_scale("weather=21").unwrap_err().contains("1 to"));
        assert!(parse_scale("portal=2").unwrap_err().contains("runs once"));
        assert!(parse_scale("portal=1").is_ok());
    }

    #[test]
    fn servers_flag() {
        assert_eq!(check_servers("1"), Ok(1));
        assert_eq!(check_servers("3"), Ok(3));
        assert_eq!(check_servers("5"), Ok(5));
        assert!(check_servers("2").unwrap_err().contains("1, 3 or 5"));
        assert!(check_servers("x").is_err());
    }

    #[test]
    fn three_servers_take_the_addresses_after_the_clients() {
        let p = plan(&[], 3, |_, _| Ports::Default);
        let names: Vec<_> = p
            .extra_servers
            .iter()
            .map(|n| (n.name.as_str(), n.ip.as_str()))
            .collect();
        assert_eq!(names, vec![("s2", "127.0.0.4"), ("s3", "127.0.0.5")]);
        let a = p.extra_servers[0].agent_args("/d/s2", Some("127.0.0.1:8301"));
        assert!(a.contains(&"-bootstrap-expect=3".to_string()), "{a:?}");
        assert!(p
            .server
            .agent_args("/d/s1", None)
            .contains(&"-bootstrap-expect=3".to_string()));
        assert!(plan(&[], 1, |_, _| Ports::Default).extra_servers.is_empty());
    }

    #[test]
    fn placement_is_round_robin_with_the_portal_on_the_first_client() {
        let p = plan(&[("stock-price".into(), 3)], 1, |_, _| Ports::Default);
        let on = |f: &str| -> Vec<usize> {
            p.instances
                .iter()
                .filter(|i| i.family == f)
                .map(|i| i.client)
                .collect()
        };
        assert_eq!(on("stock-price"), [0, 1, 0]);
        assert_eq!(on("weather"), [0, 1]);
        assert_eq!(on("portal"), [0]);
        let names: Vec<String> = p.instances.iter().map(Instance::name).collect();
        assert_eq!(
            names,
            [
                "stock-price-1",
                "stock-price-2",
                "stock-price-3",
                "weather-1",
                "weather-2",
                "portal-1"
            ]
        );
    }

    #[test]
    fn agent_arguments() {
        let p = plan(&[], 1, |ip, _| {
            if ip == "127.0.0.3" {
                Ports::Ephemeral
            } else {
                Ports::Default
            }
        });
        let s = p.server.agent_args("/d/s1", None);
        assert!(s.contains(&"-server".to_string()));
        assert!(s.contains(&"-server-port=8300".to_string()));
        assert!(s.contains(&"-http-port=8500".to_string()));
        assert!(!s.iter().any(|a| a.starts_with("-retry-join")));
        let c = p.clients[1].agent_args("/d/c3", Some("127.0.0.1:8301"));
        assert!(!c.contains(&"-server".to_string()));
        assert!(c.contains(&"-bind=127.0.0.3".to_string()));
        assert!(c.contains(&"-http-port=0".to_string()));
        assert!(c.contains(&"-dns-port=0".to_string()));
        assert!(c.contains(&"-retry-join=127.0.0.1:8301".to_string()));
    }
}
