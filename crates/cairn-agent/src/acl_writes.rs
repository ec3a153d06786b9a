//! The agent's own catalog writes under ACLs: registering its node, its services and
//! checks, check statuses, and anti-entropy's repairs are made with the agent's tokens,
//! as Consul's agent makes them. Node-level writes need `node:write` on this node with the
//! `acl.tokens.agent` token (else `default`, else anonymous); a service's writes, and
//! those of its checks, need `service:write` with the token the service was registered
//! with, else the agent token.
//!
//! The core is pure: [`needs`] says which permission a command needs and whose token
//! must hold it, [`decide`] checks them against resolved tokens. The agent runs them on
//! every write it makes for itself; a denied write is logged with the missing permission
//! and left to the next sync.

use std::collections::BTreeMap;

use cairn_acl::Authorizer;
use cairn_state::Command;

/// Whose token a write is made with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Signer {
    /// The agent's own token.
    Agent,
    /// The token the service with this ID was registered with (else the agent's).
    Service(String),
}

/// A permission a write needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Perm {
    NodeWrite(String),
    ServiceWrite(String),
}

/// One permission and whose token must hold it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Need {
    pub signer: Signer,
    pub perm: Perm,
}

/// What [`needs`] looks up: this node's services by ID (name) and checks by ID (the
/// service ID they belong to, empty for node checks), from the local state and the
/// catalog.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub service_names: BTreeMap<String, String>,
    pub check_services: BTreeMap<String, String>,
}

impl Facts {
    fn service_need(&self, id: &str, name: Option<&str>) -> Need {
        let name = name
            .filter(|n| !n.is_empty())
            .or_else(|| self.service_names.get(id).map(String::as_str))
            .unwrap_or(id);
        Need {
            signer: Signer::Service(id.to_string()),
            perm: Perm::ServiceWrite(name.to_string()),
        }
    }

    fn check_need(&self, node: &str, check_id: &str, service_id: Option<&str>) -> Need {
        let sid = service_id
            .or_else(|| self.check_services.get(check_id).map(String::as_str))
            .unwrap_or("");
        if sid.is_empty() {
            Need {
                signer: Signer::Agent,
                perm: Perm::NodeWrite(node.to_string()),
            }
        } else {
            self.service_need(sid, None)
        }
    }
}

/// The permissions writing `cmd` needs (none for commands the agent does not make for
/// itself).
pub(crate) fn needs(cmd: &Command, facts: &Facts) -> Vec<Need> {
    let mut out = Vec::new();
    match cmd {
        Command::Register(r) => {
            let node = r.node.node.as_str();
            if !r.skip_node_update {
                out.push(Need {
                    signer: Signer::Agent,
                    perm: Perm::NodeWrite(node.to_string()),
                });
            }
            if let Some(s) = &r.service {
                out.push(facts.service_need(&s.id, Some(&s.service)));
            }
            for c in &r.checks {
                let own = r.service.as_ref().is_some_and(|s| s.id == c.service_id);
                if !own {
                    out.push(facts.check_need(node, &c.check_id, Some(&c.service_id)));
                }
            }
        }
        Command::Deregister(d) => {
            if let Some(id) = &d.service_id {
                out.push(facts.service_need(id, None));
            }
            if let Some(id) = &d.check_id {
                out.push(facts.check_need(&d.node, id, None));
            }
        }
        Command::UpdateCheck(u) => out.push(facts.check_need(&u.node, &u.check_id, None)),
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// A resolved token: its AccessorID (for the denial's text) and its permissions.
pub(crate) trait Grants {
    fn accessor(&self) -> &str;
    fn authorizer(&self) -> &Authorizer;
}

impl Grants for cairn_http::Authz {
    fn accessor(&self) -> &str {
        self.accessor_id()
    }
    fn authorizer(&self) -> &Authorizer {
        cairn_http::Authz::authorizer(self)
    }
}

/// Whether every need is granted by the token `resolve` gives for its signer (`None`:
/// the token does not exist). `Err` is the first denial, in Consul's words.
pub(crate) fn decide<G: Grants>(
    needs: &[Need],
    resolve: impl Fn(&Signer) -> Option<G>,
) -> Result<(), String> {
    for n in needs {
        let Some(g) = resolve(&n.signer) else {
            let whose = match &n.signer {
                Signer::Agent => "the agent's token".to_string(),
                Signer::Service(id) => format!("the token of service {id:?}"),
            };
            return Err(format!("ACL not found: {whose} does not exist"));
        };
        let decision = match &n.perm {
            Perm::NodeWrite(node) => g.authorizer().node_write(node),
            Perm::ServiceWrite(name) => g.authorizer().service_write(name),
        };
        decision.check(g.accessor()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_acl::{AccessLevel, DefaultPolicy, Rules, SegmentKind};
    use cairn_state::{CheckUpdate, Deregistration, Registration};
    use cairn_types::{HealthCheck, Node, NodeService};

    fn facts() -> Facts {
        Facts {
            service_names: [("web-1".to_string(), "web".to_string())].into(),
            check_services: [
                ("chk-web".to_string(), "web-1".to_string()),
                ("mem".to_string(), String::new()),
            ]
            .into(),
        }
    }

    fn node() -> Node {
        Node {
            node: "c1".into(),
            ..Default::default()
        }
    }

    fn agent_node() -> Need {
        Need {
            signer: Signer::Agent,
            perm: Perm::NodeWrite("c1".into()),
        }
    }

    fn web() -> Need {
        Need {
            signer: Signer::Service("web-1".into()),
            perm: Perm::ServiceWrite("web".into()),
        }
    }

    #[test]
    fn node_registration_needs_node_write_with_the_agent_token() {
        let cmd = Command::Register(Registration {
            node: node(),
            checks: vec![HealthCheck {
                check_id: "mem".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(needs(&cmd, &facts()), vec![agent_node()]);
    }

    #[test]
    fn a_service_and_its_checks_need_service_write_with_its_token() {
        let cmd = Command::Register(Registration {
            node: node(),
            service: Some(NodeService {
                id: "web-1".into(),
                service: "web".into(),
                ..Default::default()
            }),
            checks: vec![HealthCheck {
                check_id: "chk-web".into(),
                service_id: "web-1".into(),
                ..Default::default()
            }],
            skip_node_update: true,
            ..Default::default()
        });
        assert_eq!(needs(&cmd, &facts()), vec![web()]);
    }

    #[test]
    fn status_updates_and_removals_follow_the_check_or_service() {
        let f = facts();
        let update = |id: &str| {
            Command::UpdateCheck(CheckUpdate {
                node: "c1".into(),
                check_id: id.into(),
                ..Default::default()
            })
        };
        assert_eq!(needs(&update("chk-web"), &f), vec![web()]);
        assert_eq!(needs(&update("mem"), &f), vec![agent_node()]);
        let gone = Command::Deregister(Deregistration {
            node: "c1".into(),
            service_id: Some("web-1".into()),
            ..Default::default()
        });
        assert_eq!(needs(&gone, &f), vec![web()]);
        // A service only the catalog still names: its ID stands for its name.
        let unknown = Command::Deregister(Deregistration {
            node: "c1".into(),
            service_id: Some("old".into()),
            ..Default::default()
        });
        assert_eq!(
            needs(&unknown, &f),
            vec![Need {
                signer: Signer::Service("old".into()),
                perm: Perm::ServiceWrite("old".into()),
            }]
        );
        assert!(needs(&Command::Noop, &f).is_empty());
    }

    struct Token(Authorizer);

    impl Grants for Token {
        fn accessor(&self) -> &str {
            "acc-1"
        }
        fn authorizer(&self) -> &Authorizer {
            &self.0
        }
    }

    fn token(kind: SegmentKind, name: &str) -> Token {
        let rules = Rules::new().with(kind, name, false, AccessLevel::Write);
        Token(Authorizer::new([&rules], DefaultPolicy::Deny))
    }

    #[test]
    fn decisions_use_each_signers_token_and_name_the_missing_permission() {
        let needs = vec![agent_node(), web()];
        let both = |s: &Signer| {
            Some(match s {
                Signer::Agent => token(SegmentKind::Node, "c1"),
                Signer::Service(_) => token(SegmentKind::Service, "web"),
            })
        };
        assert_eq!(decide(&needs, both), Ok(()));
        let agent_lacks_node = |s: &Signer| {
            Some(match s {
                Signer::Agent => token(SegmentKind::Node, "c2"),
                Signer::Service(_) => token(SegmentKind::Service, "web"),
            })
        };
        let err = decide(&needs, agent_lacks_node).unwrap_err();
        assert!(
            err.contains("'node:write'") && err.contains("\"c1\""),
            "{err}"
        );
        let neighbour = |_: &Signer| Some(token(SegmentKind::Service, "web2"));
        let err = decide(&[web()], neighbour).unwrap_err();
        assert!(
            err.contains("'service:write'") && err.contains("\"web\""),
            "{err}"
        );
        let missing = decide(&[web()], |_: &Signer| None::<Token>).unwrap_err();
        assert!(missing.contains("ACL not found"), "{missing}");
    }
}

/// The agent's side: its tokens, its local state and its replica put to [`decide`].
mod gate {
    use std::sync::atomic::Ordering;

    use cairn_state::Command;

    use super::{decide, needs, Facts, Signer};
    use crate::node::{now_ms, Agent};

    impl Agent {
        /// Whether this agent's tokens allow it to write `cmd` for itself. A denial is
        /// logged with the missing permission and remembered, so anti-entropy retries
        /// once the tokens or the ACL tables change (and on its timer).
        pub(crate) fn acl_allows(&self, cmd: &Command) -> bool {
            let Some(rt) = self.inner.acl.as_deref() else {
                return true;
            };
            let st = self.inner.state.read();
            let (facts, service_tokens) = {
                let local = self.inner.local.lock();
                let mut f = Facts::default();
                if let (Some(rec), _) = st.node(&self.inner.cfg.node_name) {
                    for (id, s) in &rec.services {
                        f.service_names.insert(id.clone(), s.service.clone());
                    }
                    for (id, c) in &rec.checks {
                        f.check_services.insert(id.clone(), c.service_id.clone());
                    }
                }
                for (id, s) in &local.services {
                    f.service_names.insert(id.clone(), s.service.clone());
                }
                for (id, c) in local.checks.iter() {
                    f.check_services
                        .insert(id.clone(), c.check.service_id.clone());
                }
                (f, local.service_tokens.clone())
            };
            let needs = needs(cmd, &facts);
            if needs.is_empty() {
                return true;
            }
            let agent_secret = rt.agent_secret();
            let now = now_ms();
            let verdict = decide(&needs, |s| {
                let secret = match s {
                    Signer::Agent => &agent_secret,
                    Signer::Service(id) => service_tokens
                        .get(id)
                        .filter(|t| !t.is_empty())
                        .unwrap_or(&agent_secret),
                };
                rt.resolve_in(&st, secret, now)
            });
            match verdict {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(
                        "catalog write for this node blocked by ACLs, retried at the next sync: {why}"
                    );
                    self.inner.acl_blocked.store(true, Ordering::Relaxed);
                    false
                }
            }
        }
    }
}
