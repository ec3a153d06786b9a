//! The agent's side of the DNS interface: [`cairn_dns::Catalog`] over the agent's
//! replicated state, and the DNS listeners.
//!
//! DNS answers come from the local in-memory state (the same state the HTTP API reads),
//! with no round trip to the leader: on a server, staleness is bounded by Raft
//! replication lag (zero on the leader); Consul allows the same for DNS (`allow_stale`).
//!
//! With ACLs on, answers hold only what the agent's `dns` token (else its `default` token,
//! else the anonymous token) may read: `service:read` on the service and `node:read` on the node, as Consul
//! filters its DNS answers. An agent that has not heard from the leader for longer than
//! `acl.token_ttl` answers as its `acl.down_policy` says: `deny` answers nothing, `allow`
//! everything, `extend-cache` and `async-cache` go on with the token as the replica has it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_dns::{Catalog, Health, Instance, NodeInfo};
use cairn_http::WhenDown;
use cairn_state::{aggregate, State};
use cairn_types::{HealthCheck, Node, NodeService};
use parking_lot::RwLock;

/// A [`Catalog`] reading the agent's state.
pub struct StateCatalog {
    pub state: Arc<RwLock<State>>,
    pub datacenter: String,
    /// ACL enforcement (`None`: ACLs off, everything is answered).
    pub acl: Option<Arc<cairn_http::AclRuntime>>,
    /// Milliseconds since this agent last heard from the leader (`acl.down_policy`).
    pub last_contact_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// What answers were last computed under (see [`StateCatalog::generation`]).
    pub view: ViewEpoch,
}

/// Counts the changes of what DNS may show that no Raft entry announces: the `dns`
/// (or `default`) token set through `/v1/agent/token/*`, and `down_policy` taking over
/// or handing back. Added to the Raft index, it makes the resolver's cache generation
/// move on those too.
#[derive(Default)]
pub struct ViewEpoch {
    /// A fingerprint of the last (token, down decision) seen.
    last: AtomicU64,
    epoch: AtomicU64,
}

impl ViewEpoch {
    /// The epoch for `fingerprint`: one more than before when it differs from the last.
    fn at(&self, fingerprint: u64) -> u64 {
        if self.last.swap(fingerprint, Ordering::AcqRel) != fingerprint {
            self.epoch.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.epoch.load(Ordering::Acquire)
        }
    }
}

/// What DNS may show: every node and service when ACLs are off, else what the agent's
/// DNS (else default) token may read (nothing when that token does not resolve).
enum Visibility {
    All,
    Token(Option<cairn_http::Authz>),
}

impl Visibility {
    fn node(&self, node: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Token(a) => a
                .as_ref()
                .is_some_and(|a| a.authorizer().node_read(node).is_allow()),
        }
    }

    fn instance(&self, node: &str, service: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Token(a) => a.as_ref().is_some_and(|a| {
                a.authorizer().node_read(node).is_allow()
                    && a.authorizer().service_read(service).is_allow()
            }),
        }
    }
}

fn health_of<'a>(checks: impl Iterator<Item = &'a HealthCheck>) -> Health {
    match aggregate(checks.map(|c| c.status.as_str())) {
        cairn_types::PASSING => Health::Passing,
        cairn_types::WARNING => Health::Warning,
        _ => Health::Critical,
    }
}

fn weight(w: i64) -> u16 {
    w.clamp(0, u16::MAX as i64) as u16
}

fn instance(node: &Node, s: &NodeService, health: Health) -> Instance {
    Instance {
        node: node.node.clone(),
        node_address: node.address.clone(),
        datacenter: node.datacenter.clone(),
        service_id: s.id.clone(),
        service: s.service.clone(),
        service_address: s.address.clone(),
        port: s.port,
        tags: s.tags.clone(),
        health,
        weight_passing: weight(s.weights.passing),
        weight_warning: weight(s.weights.warning),
        node_meta: node.meta.clone(),
    }
}

fn node_info(rec: &cairn_state::NodeRecord) -> NodeInfo {
    NodeInfo {
        name: rec.node.node.clone(),
        address: rec.node.address.clone(),
        datacenter: rec.node.datacenter.clone(),
        tagged_addresses: rec.node.tagged_addresses.clone(),
        meta: rec.node.meta.clone(),
        health: health_of(rec.checks.values().filter(|c| c.service_id.is_empty())),
    }
}

impl StateCatalog {
    /// The token DNS answers with and how it resolves now.
    fn view(rt: &cairn_http::AclRuntime, last_contact_ms: u64) -> (String, WhenDown) {
        let secret = {
            let tokens = rt.tokens().read();
            tokens.dns.clone().or_else(|| tokens.default.clone())
        }
        .unwrap_or_else(|| cairn_state::acl::ANONYMOUS_SECRET.to_string());
        (secret, rt.down_decision(last_contact_ms))
    }

    fn visibility(&self, st: &State) -> Visibility {
        let Some(rt) = &self.acl else {
            return Visibility::All;
        };
        match Self::view(rt, (self.last_contact_ms)()) {
            (_, WhenDown::AllowAll) => Visibility::All,
            (_, WhenDown::DenyAll) => Visibility::Token(None),
            (secret, WhenDown::Replica) => {
                Visibility::Token(rt.resolve_in(st, &secret, crate::node::now_ms()))
            }
        }
    }

    fn instances_where(&self, pred: impl Fn(&Node, &NodeService) -> bool) -> Vec<Instance> {
        let st = self.state.read();
        let vis = self.visibility(&st);
        let mut out = Vec::new();
        for rec in st.node_records() {
            let visible = rec
                .services
                .values()
                .filter(|s| vis.instance(&rec.node.node, &s.service));
            for s in visible.filter(|s| pred(&rec.node, s)) {
                let checks = rec
                    .checks
                    .values()
                    .filter(|c| c.service_id.is_empty() || c.service_id == s.id);
                out.push(instance(&rec.node, s, health_of(checks)));
            }
        }
        out
    }
}

fn same_ip(text: &str, ip: IpAddr) -> bool {
    text.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

impl Catalog for StateCatalog {
    fn datacenter(&self) -> String {
        self.datacenter.clone()
    }

    /// The last applied Raft index, which moves on every change to the catalog, plus the
    /// [`ViewEpoch`], which moves when the token or the down decision does: the
    /// resolver's answer cache is exact. (A token that expires takes effect at the next
    /// Raft entry.)
    fn generation(&self) -> u64 {
        let index = self.state.read().last_index();
        let Some(rt) = &self.acl else {
            return index;
        };
        let (secret, decision) = Self::view(rt, (self.last_contact_ms)());
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&secret, &mut h);
        std::hash::Hash::hash(&(decision as u8), &mut h);
        index + self.view.at(std::hash::Hasher::finish(&h))
    }

    fn service_instances(&self, service: &str) -> Vec<Instance> {
        let st = self.state.read();
        let vis = self.visibility(&st);
        st.service_health_ignore_case(service)
            .into_iter()
            .filter(|h| vis.instance(&h.node.node, &h.service.service))
            .map(|h| instance(h.node, h.service, health_of(h.checks.into_iter())))
            .collect()
    }

    fn node(&self, name: &str) -> Option<NodeInfo> {
        let st = self.state.read();
        let vis = self.visibility(&st);
        let found = st
            .node_records()
            .find(|r| r.node.node.eq_ignore_ascii_case(name))
            .filter(|r| vis.node(&r.node.node))
            .map(node_info);
        found
    }

    fn nodes_by_address(&self, ip: IpAddr) -> Vec<NodeInfo> {
        let st = self.state.read();
        let vis = self.visibility(&st);
        let found = st
            .node_records()
            .filter(|r| same_ip(&r.node.address, ip) && vis.node(&r.node.node))
            .map(node_info)
            .collect();
        found
    }

    fn services_by_address(&self, ip: IpAddr) -> Vec<Instance> {
        self.instances_where(|_, s| same_ip(&s.address, ip))
    }
}

/// Binds the DNS listeners: one UDP socket per core (SO_REUSEPORT, so the kernel spreads
/// queries over them) and TCP on the same port. With port 0 the first UDP socket picks the
/// port; TCP then takes it too (retried a few times in the rare case it is taken on TCP).
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
) -> anyhow::Result<(Vec<std::net::UdpSocket>, tokio::net::TcpListener)> {
    use anyhow::Context;
    let mut last_err = None;
    for _ in 0..16 {
        let udp = cairn_dns::bind_udp_reuseport(addr, cairn_dns::udp_socket_count())
            .with_context(|| format!("binding DNS (udp) to {addr}"))?;
        let port = udp[0].local_addr()?.port();
        match tokio::net::TcpListener::bind((addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e).with_context(|| format!("binding DNS (tcp) to {addr}")),
        }
    }
    Err(anyhow::anyhow!(
        "binding DNS (tcp) next to an ephemeral udp port: {last_err:?}"
    ))
}

/// The resolver settings from the agent configuration.
pub(crate) fn config(cfg: &crate::config::Config, agent: &crate::Agent) -> cairn_dns::DnsConfig {
    let d = &cfg.dns;
    cairn_dns::DnsConfig {
        domain: cfg.domain.clone(),
        alt_domain: cfg.alt_domain.clone(),
        node_ttl: d.node_ttl,
        service_ttl: d.service_ttl.clone(),
        only_passing: d.only_passing,
        udp_answer_limit: d.udp_answer_limit as usize,
        enable_truncate: d.enable_truncate,
        a_record_limit: d.a_record_limit as usize,
        enable_additional_node_meta_txt: d.enable_additional_node_meta_txt,
        recursors: cfg.recursors.clone(),
        recursor_timeout: std::time::Duration::from_secs(2),
        agent_address: agent.address().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_acl::DefaultPolicy;
    use cairn_http::{AclRuntime, AgentTokens};
    use cairn_state::{AclBootstrap, AclPolicy, AclToken, Command, Registration};

    fn state() -> State {
        let mut st = State::new();
        st.apply(
            1,
            &Command::Register(Registration {
                node: Node {
                    node: "n1".into(),
                    address: "10.0.0.1".into(),
                    ..Default::default()
                },
                service: Some(NodeService {
                    id: "web".into(),
                    service: "web".into(),
                    port: 80,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        st.apply(
            2,
            &Command::AclBootstrap(AclBootstrap {
                token: AclToken {
                    accessor_id: "m".into(),
                    secret_id: "root".into(),
                    ..Default::default()
                },
                initial: true,
            }),
        );
        st
    }

    fn catalog(st: State, default: DefaultPolicy, token: Option<&str>) -> StateCatalog {
        let tokens = AgentTokens {
            default: token.map(str::to_string),
            ..Default::default()
        };
        StateCatalog {
            state: Arc::new(RwLock::new(st)),
            datacenter: "dc1".into(),
            acl: Some(Arc::new(AclRuntime::new(default, "dc1", tokens))),
            last_contact_ms: Arc::new(|| 0),
            view: ViewEpoch::default(),
        }
    }

    #[test]
    fn dns_answers_only_what_the_default_token_may_read() {
        let open = StateCatalog {
            acl: None,
            ..catalog(state(), DefaultPolicy::Deny, None)
        };
        assert_eq!(open.service_instances("web").len(), 1, "ACLs off");
        let denied = catalog(state(), DefaultPolicy::Deny, None);
        assert!(denied.service_instances("web").is_empty());
        assert!(denied.node("n1").is_none());
        assert!(denied
            .nodes_by_address("10.0.0.1".parse().unwrap())
            .is_empty());
        let allowed = catalog(state(), DefaultPolicy::Allow, None);
        assert_eq!(allowed.service_instances("web").len(), 1);
        assert!(allowed.node("n1").is_some());
        // Under deny, a default token with service and node read sees them.
        let mut st = state();
        st.apply(
            3,
            &Command::AclPolicySet {
                policy: AclPolicy {
                    id: "p".into(),
                    name: "dns".into(),
                    rules: "service_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }".into(),
                    ..Default::default()
                },
                create: true,
            },
        );
        st.apply(
            4,
            &Command::AclTokenSet {
                token: AclToken {
                    accessor_id: "d".into(),
                    secret_id: "dns-secret".into(),
                    policies: vec![cairn_state::AclLink {
                        id: "p".into(),
                        name: String::new(),
                    }],
                    ..Default::default()
                },
                create: true,
            },
        );
        let with_token = catalog(st.clone(), DefaultPolicy::Deny, Some("dns-secret"));
        assert_eq!(with_token.service_instances("web").len(), 1);
        assert!(with_token.node("n1").is_some());
        // The dns token wins over the default token, in both directions.
        let dns_first = catalog(st.clone(), DefaultPolicy::Deny, None);
        dns_first.acl.as_ref().unwrap().tokens().write().dns = Some("dns-secret".into());
        assert_eq!(dns_first.service_instances("web").len(), 1);
        let narrower = catalog(st, DefaultPolicy::Deny, Some("dns-secret"));
        narrower.acl.as_ref().unwrap().tokens().write().dns = Some("nope".into());
        assert!(narrower.service_instances("web").is_empty());
        // A default token that does not resolve shows nothing.
        let unknown = catalog(state(), DefaultPolicy::Allow, Some("nope"));
        assert!(unknown.service_instances("web").is_empty());
    }

    /// `catalog` with `down_policy` and a 30 s `token_ttl`, whose last contact with the
    /// leader is what `contact` holds.
    fn down(
        st: State,
        default: DefaultPolicy,
        policy: cairn_http::DownPolicy,
        contact: &Arc<AtomicU64>,
    ) -> StateCatalog {
        let c = catalog(st, default, None);
        let rt = AclRuntime::new(default, "dc1", AgentTokens::default())
            .with_down_policy(policy, std::time::Duration::from_secs(30));
        let contact = contact.clone();
        StateCatalog {
            acl: Some(Arc::new(rt)),
            last_contact_ms: Arc::new(move || contact.load(Ordering::Relaxed)),
            ..c
        }
    }

    #[test]
    fn down_policy_decides_answers_once_the_leader_is_silent_past_the_ttl() {
        use cairn_http::DownPolicy;
        let contact = Arc::new(AtomicU64::new(0));
        // The anonymous token may read everything under default allow, nothing under deny.
        let deny = down(state(), DefaultPolicy::Allow, DownPolicy::Deny, &contact);
        let allow = down(state(), DefaultPolicy::Deny, DownPolicy::Allow, &contact);
        let extend = down(
            state(),
            DefaultPolicy::Allow,
            DownPolicy::ExtendCache,
            &contact,
        );
        let seen = |c: &StateCatalog| c.service_instances("web").len();
        assert_eq!((seen(&deny), seen(&allow), seen(&extend)), (1, 0, 1));
        let before = (deny.generation(), allow.generation(), extend.generation());
        contact.store(30_000, Ordering::Relaxed);
        assert_eq!(
            (seen(&deny), seen(&allow), seen(&extend)),
            (1, 0, 1),
            "within the TTL nothing changes"
        );
        assert_eq!(
            before,
            (deny.generation(), allow.generation(), extend.generation())
        );
        contact.store(30_001, Ordering::Relaxed);
        assert_eq!((seen(&deny), seen(&allow), seen(&extend)), (0, 1, 1));
        assert!(deny.node("n1").is_none() && allow.node("n1").is_some());
        assert!(
            deny.generation() > before.0,
            "deny: cached answers are dropped"
        );
        assert!(
            allow.generation() > before.1,
            "allow: cached answers are dropped"
        );
        assert_eq!(extend.generation(), before.2, "extend-cache: the same view");
        // The leader is back: the token's own view again, under a newer generation.
        let during = deny.generation();
        contact.store(0, Ordering::Relaxed);
        assert_eq!(seen(&deny), 1);
        assert!(deny.generation() > during);
    }

    #[test]
    fn a_new_dns_token_moves_the_generation_without_a_raft_entry() {
        let c = catalog(state(), DefaultPolicy::Deny, None);
        let g = c.generation();
        assert_eq!(c.generation(), g, "nothing changed");
        c.acl.as_ref().unwrap().tokens().write().dns = Some("other".into());
        let moved = c.generation();
        assert!(moved > g, "a cached answer for the old token is not served");
        assert_eq!(c.generation(), moved);
    }
}
