//! Alias checks: mirror the health of a service instance (`AliasService`, a service
//! **ID**) and/or a node (`AliasNode`, default this agent's node), as Consul's
//! agent/checks/alias.go does: the node's own checks and the instance's checks count;
//! any critical makes the alias critical, else any warning makes it warning, else it is
//! passing; an instance that does not exist is critical.
//!
//! The catalog (the locally applied replicated state) is the source for local and remote
//! targets alike; it is re-read after every applied Raft index.

use cairn_state::NodeRecord;
use cairn_types::{CRITICAL, PASSING, WARNING};

use super::{Outcome, Reporter};
use crate::node::Agent;

/// Runs an alias check until it is removed.
pub(crate) async fn run(agent: Agent, id: String, node: String, service: String) {
    let mut reporter = Reporter::new(agent.clone(), id.clone());
    if !reporter.wait_registered().await {
        return;
    }
    let local = agent.inner.cfg.node_name.clone();
    let node = if node.is_empty() { local.clone() } else { node };
    // Our own check lives on the local node; never let it alias itself.
    let own = (node == local).then_some(id.as_str());
    let mut applied = agent.inner.applied.clone();
    loop {
        applied.borrow_and_update();
        let outcome = {
            let st = agent.inner.state.read();
            let (rec, _) = st.node(&node);
            evaluate(rec, &node, &service, own)
        };
        if !reporter.report(outcome).await {
            return;
        }
        if applied.changed().await.is_err() {
            return;
        }
    }
}

/// The alias status for the node record `rec` (None: the node is not in the catalog).
pub(crate) fn evaluate(
    rec: Option<&NodeRecord>,
    node: &str,
    service_id: &str,
    own: Option<&str>,
) -> Outcome {
    let Some(rec) = rec else {
        return Outcome::critical(format!("Node {node:?} not found"));
    };
    let mut status = PASSING;
    let mut msg = "No checks found.".to_string();
    let mut service_found = false;
    for c in rec.checks.values() {
        if Some(c.check_id.as_str()) == own {
            continue;
        }
        let matches = c.service_id == service_id;
        if !c.service_id.is_empty() && !matches {
            continue;
        }
        service_found |= matches;
        if c.status == CRITICAL || c.status == WARNING {
            status = if c.status == CRITICAL {
                CRITICAL
            } else {
                WARNING
            };
            msg = format!("Aliased check {:?} failing: {}", c.name, c.output);
            if status == CRITICAL {
                break;
            }
        } else if status == PASSING {
            msg = "All checks passing.".to_string();
        }
    }
    if !service_id.is_empty() && !service_found && !rec.services.contains_key(service_id) {
        return Outcome::critical("Service not found".to_string());
    }
    Outcome::new(status, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_types::{HealthCheck, NodeService};

    fn check(id: &str, svc: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            name: format!("{id} name"),
            service_id: svc.into(),
            status: status.into(),
            output: format!("{id} out"),
            ..Default::default()
        }
    }

    fn rec(checks: &[HealthCheck], services: &[&str]) -> NodeRecord {
        let mut r = NodeRecord::default();
        for c in checks {
            r.checks.insert(c.check_id.clone(), c.clone());
        }
        for s in services {
            r.services.insert(
                s.to_string(),
                NodeService {
                    id: s.to_string(),
                    service: s.to_string(),
                    ..Default::default()
                },
            );
        }
        r
    }

    #[test]
    fn service_alias() {
        let r = rec(
            &[
                check("serfHealth", "", PASSING),
                check("a", "web", PASSING),
                check("b", "db", CRITICAL),
            ],
            &["web", "db"],
        );
        assert_eq!(
            evaluate(Some(&r), "n", "web", None),
            Outcome::passing("All checks passing.".into())
        );
        assert_eq!(
            evaluate(Some(&r), "n", "db", None),
            Outcome::critical("Aliased check \"b name\" failing: b out".into())
        );
        assert_eq!(
            evaluate(Some(&r), "n", "nope", None),
            Outcome::critical("Service not found".into())
        );
        // A service without checks, on a healthy node, is passing.
        let r = rec(&[check("serfHealth", "", PASSING)], &["web"]);
        assert_eq!(evaluate(Some(&r), "n", "web", None).status, PASSING);
    }

    #[test]
    fn node_checks_count_and_critical_wins() {
        let r = rec(
            &[
                check("a", "", WARNING),
                check("b", "web", PASSING),
                check("c", "web", CRITICAL),
            ],
            &["web"],
        );
        assert_eq!(evaluate(Some(&r), "n", "web", None).status, CRITICAL);
        let r = rec(
            &[check("a", "", WARNING), check("b", "web", PASSING)],
            &["web"],
        );
        assert_eq!(evaluate(Some(&r), "n", "web", None).status, WARNING);
        // Node alias: service checks are ignored.
        let r = rec(
            &[check("a", "", PASSING), check("c", "web", CRITICAL)],
            &["web"],
        );
        assert_eq!(evaluate(Some(&r), "n", "", None).status, PASSING);
        assert_eq!(
            evaluate(None, "gone", "", None),
            Outcome::critical("Node \"gone\" not found".into())
        );
    }

    #[test]
    fn never_aliases_itself() {
        let r = rec(
            &[check("me", "", CRITICAL), check("b", "web", PASSING)],
            &["web"],
        );
        assert_eq!(evaluate(Some(&r), "n", "web", Some("me")).status, PASSING);
    }
}
