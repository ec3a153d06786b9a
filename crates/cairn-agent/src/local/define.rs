//! What a service or check definition becomes on this agent, decided without touching
//! the agent: validation (Consul's limits and messages), default IDs and names, the
//! catalog entries, and what a re-registration carries over from the checks already
//! there (for a service's checks and for a standalone check). Functions of the
//! definition, the agent's configuration and its local state (and the clock, for a TTL
//! check's first deadline), so registration, config reload and tests share the rules.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::duration::parse_duration;
use cairn_types::{
    CheckDefinition as StoredDefinition, HealthCheck, NodeService, Weights, CRITICAL,
};
use tokio::time::Instant;

use super::{LocalCheck, LocalError, LocalState};
use crate::config::Config;

/// Whether this agent runs a script check from this source, as Consul decides it:
/// `enable_script_checks` allows scripts from anywhere, including the HTTP API (so anyone
/// who can reach the API can run commands on the node); `enable_local_script_checks`
/// allows only those in the agent's own configuration files.
pub(crate) fn script_allowed(cfg: &Config, from_config: bool) -> Result<(), &'static str> {
    if cfg.enable_script_checks || (cfg.enable_local_script_checks && from_config) {
        Ok(())
    } else if from_config {
        Err("Scripts are disabled on this agent from local sources; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true")
    } else {
        Err("Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true")
    }
}

/// Node meta / service meta limits (Consul's structs.go).
const MAX_META_PAIRS: usize = 64;
const MAX_META_KEY: usize = 128;
const MAX_META_VALUE: usize = 512;

pub(super) fn bad(m: impl Into<String>) -> LocalError {
    LocalError::Invalid(m.into())
}

fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), LocalError> {
    if meta.len() > MAX_META_PAIRS {
        return Err(bad(format!(
            "Invalid Meta: more than {MAX_META_PAIRS} pairs"
        )));
    }
    for (k, v) in meta {
        if k.is_empty() || k.len() > MAX_META_KEY {
            return Err(bad(format!(
                "Invalid Meta key {k:?}: must be 1-{MAX_META_KEY} characters"
            )));
        }
        if k.starts_with("consul-") {
            return Err(bad(format!(
                "Invalid Meta key {k:?}: the consul- prefix is reserved"
            )));
        }
        if v.len() > MAX_META_VALUE {
            return Err(bad(format!(
                "Invalid Meta value for {k:?}: longer than {MAX_META_VALUE} characters"
            )));
        }
    }
    Ok(())
}

pub(super) fn dur(field: &str, s: &str) -> Result<Option<Duration>, LocalError> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_duration(s)
        .map(Some)
        .map_err(|e| bad(format!("Invalid {field}: {e}")))
}

/// Turns a check definition into the catalog check, validating it.
/// `from_config`: the definition comes from the agent's own configuration files
/// (which `enable_local_script_checks` trusts), not from an API call.
fn build_check(
    cfg: &Config,
    def: &CheckDefinition,
    default_id: String,
    default_name: String,
    from_config: bool,
) -> Result<LocalCheck, LocalError> {
    let kind = def.check_type().ok_or_else(|| {
        bad("Invalid check: one of TTL, HTTP, TCP, UDP, GRPC, H2PING, Args (script) or AliasService/AliasNode must be set")
    })?;
    let interval = dur("Interval", &def.interval)?;
    let _timeout = dur("Timeout", &def.timeout)?;
    dur(
        "DeregisterCriticalServiceAfter",
        &def.deregister_critical_service_after,
    )?;
    let ttl = dur("TTL", &def.ttl)?;
    if matches!(kind, "http" | "tcp" | "udp" | "grpc" | "h2ping" | "script")
        && interval.is_none_or(|i| i.is_zero())
    {
        return Err(bad(format!(
            "Invalid check: Interval must be > 0 for {} checks",
            kind.to_uppercase()
        )));
    }
    if kind == "script" {
        script_allowed(cfg, from_config).map_err(bad)?;
    }
    if !def.status.is_empty() && !cairn_types::is_valid_status(&def.status) {
        return Err(bad(format!("Invalid check status {:?}", def.status)));
    }
    let id = if def.id.is_empty() {
        default_id
    } else {
        def.id.clone()
    };
    let name = if def.name.is_empty() {
        default_name
    } else {
        def.name.clone()
    };
    let status = if def.status.is_empty() {
        CRITICAL.to_string()
    } else {
        def.status.clone()
    };
    let check = HealthCheck {
        node: cfg.node_name.clone(),
        check_id: id,
        name,
        status,
        notes: def.notes.clone(),
        output: String::new(),
        service_id: def.service_id.clone(),
        check_type: kind.to_string(),
        interval: def.interval.clone(),
        timeout: def.timeout.clone(),
        definition: StoredDefinition {
            interval: def.interval.clone(),
            timeout: def.timeout.clone(),
            deregister_critical_service_after: def.deregister_critical_service_after.clone(),
            http: def.http.clone(),
            header: def.header.clone(),
            method: def.method.clone(),
            body: def.body.clone(),
            tls_server_name: def.tls_server_name.clone(),
            tls_skip_verify: def.tls_skip_verify,
            tcp: def.tcp.clone(),
        },
        ..Default::default()
    };
    Ok(LocalCheck {
        check,
        ttl,
        deadline: ttl.map(|t| Instant::now() + t),
        from_config: false,
        def: def.clone(),
        runner: None,
        critical_since: None,
    })
}

/// Validates a service definition and builds its catalog entry and checks, without
/// changing anything (used by registration and to vet a reload before applying it).
pub(crate) fn prepare_service(
    cfg: &Config,
    def: &ServiceDefinition,
    from_config: bool,
) -> Result<(NodeService, Vec<LocalCheck>), LocalError> {
    if def.name.is_empty() {
        return Err(bad("Missing service name"));
    }
    let meta = def.meta.clone().unwrap_or_default();
    validate_meta(&meta)?;
    let id = if def.id.is_empty() {
        def.name.clone()
    } else {
        def.id.clone()
    };
    let svc = NodeService {
        id: id.clone(),
        service: def.name.clone(),
        tags: def.tags.clone().unwrap_or_default(),
        address: def.address.clone(),
        tagged_addresses: def.tagged_addresses.clone(),
        meta,
        port: def.port,
        weights: def.weights.clone().unwrap_or(Weights {
            passing: 1,
            warning: 1,
        }),
        enable_tag_override: def.enable_tag_override,
        kind: def.kind.clone(),
        proxy: def.proxy.clone(),
        connect: def.connect.clone(),
        locality: def.locality.clone(),
        create_index: 0,
        modify_index: 0,
    };
    let defs: Vec<CheckDefinition> = def
        .check
        .iter()
        .cloned()
        .chain(def.checks.clone().unwrap_or_default())
        .collect();
    let many = defs.len() > 1;
    let mut checks = Vec::new();
    for (i, mut d) in defs.into_iter().enumerate() {
        d.service_id = id.clone();
        let default_id = if many {
            format!("service:{id}:{}", i + 1)
        } else {
            format!("service:{id}")
        };
        let mut c = build_check(
            cfg,
            &d,
            default_id,
            format!("Service '{}' check", def.name),
            from_config,
        )?;
        c.check.service_name = svc.service.clone();
        c.check.service_tags = svc.tags.clone();
        c.from_config = from_config;
        checks.push(c);
    }
    Ok((svc, checks))
}

/// Validates a standalone check definition (see [`prepare_service`]).
pub(crate) fn prepare_check(
    cfg: &Config,
    def: &CheckDefinition,
    from_config: bool,
) -> Result<LocalCheck, LocalError> {
    if def.name.is_empty() {
        return Err(bad("Missing check name"));
    }
    let id = if def.id.is_empty() {
        def.name.clone()
    } else {
        def.id.clone()
    };
    let mut c = build_check(cfg, def, id, def.name.clone(), from_config)?;
    c.from_config = from_config;
    Ok(c)
}

/// Prepares a re-registration of service `id` with `checks`: a check that exists
/// already for the same service keeps its status, output and TTL deadline (registering
/// again must not reset health). Returns the service's checks that the new definition
/// drops, which go when `replace_checks` is set (and are kept otherwise).
pub(super) fn carry_over(
    local: &LocalState,
    id: &str,
    checks: &mut [LocalCheck],
    replace_checks: bool,
) -> Vec<String> {
    for c in checks.iter_mut() {
        if let Some(old) = local.checks.get(&c.check.check_id) {
            if old.check.service_id == c.check.service_id {
                c.check.status = old.check.status.clone();
                c.check.output = old.check.output.clone();
                c.deadline = old.deadline.or(c.deadline);
            }
        }
    }
    if !replace_checks {
        return Vec::new();
    }
    local
        .checks
        .values()
        .filter(|c| {
            c.check.service_id == id && !checks.iter().any(|n| n.check.check_id == c.check.check_id)
        })
        .map(|c| c.check.check_id.clone())
        .collect()
}

/// Prepares a re-registration of the standalone check `c`: when its definition gives no
/// `Status`, an existing check with the same ID keeps its status and output (Consul's
/// rule; a TTL check still starts a fresh TTL).
pub(super) fn carry_over_check(local: &LocalState, c: &mut LocalCheck, status_given: bool) {
    if status_given {
        return;
    }
    if let Some(old) = local.checks.get(&c.check.check_id) {
        c.check.status = old.check.status.clone();
        c.check.output = old.check.output.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::tests::check;

    fn cfg(extra: &[&str]) -> Config {
        let mut a: Vec<String> = ["-dev", "-node", "n1"].map(String::from).to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        crate::config::load(&a).expect("config")
    }

    fn http_check(interval: &str) -> CheckDefinition {
        CheckDefinition {
            http: "http://127.0.0.1:1/health".into(),
            interval: interval.into(),
            ..Default::default()
        }
    }

    fn web(checks: Vec<CheckDefinition>) -> ServiceDefinition {
        ServiceDefinition {
            name: "web".into(),
            port: 80,
            tags: Some(vec!["v1".into()]),
            checks: Some(checks),
            ..Default::default()
        }
    }

    fn message<T: std::fmt::Debug>(r: Result<T, LocalError>) -> String {
        match r.expect_err("refused") {
            LocalError::Invalid(m) => m,
            other => panic!("not a bad definition: {other:?}"),
        }
    }

    #[test]
    fn a_service_s_checks_get_default_ids_names_and_a_critical_start() {
        let cfg = cfg(&[]);
        let (svc, checks) = prepare_service(&cfg, &web(vec![http_check("10s")]), false).unwrap();
        assert_eq!((svc.id.as_str(), svc.port), ("web", 80));
        assert_eq!(svc.weights.passing, 1);
        let [c] = &checks[..] else {
            panic!("{checks:?}")
        };
        assert_eq!(c.check.check_id, "service:web");
        assert_eq!(c.check.name, "Service 'web' check");
        assert_eq!(c.check.status, CRITICAL);
        assert_eq!(
            (c.check.node.as_str(), c.check.service_id.as_str()),
            ("n1", "web")
        );
        assert_eq!(c.check.service_tags, ["v1"]);
        assert_eq!(c.check.check_type, "http");

        let two = web(vec![http_check("10s"), http_check("20s")]);
        let (_, checks) = prepare_service(&cfg, &two, true).unwrap();
        let ids: Vec<_> = checks.iter().map(|c| c.check.check_id.as_str()).collect();
        assert_eq!(ids, ["service:web:1", "service:web:2"]);
        assert!(checks.iter().all(|c| c.from_config));
    }

    #[test]
    fn bad_definitions_are_refused_with_consul_s_messages() {
        let cfg = cfg(&[]);
        let unnamed = ServiceDefinition::default();
        assert_eq!(
            message(prepare_service(&cfg, &unnamed, false)),
            "Missing service name"
        );
        let m = message(prepare_service(&cfg, &web(vec![http_check("")]), false));
        assert!(m.contains("Interval must be > 0 for HTTP checks"), "{m}");
        let m = message(prepare_service(&cfg, &web(vec![http_check("soon")]), false));
        assert!(m.starts_with("Invalid Interval"), "{m}");
        let m = message(prepare_service(
            &cfg,
            &web(vec![CheckDefinition::default()]),
            false,
        ));
        assert!(m.contains("one of TTL, HTTP"), "{m}");
        let mut reserved = web(vec![]);
        reserved.meta = Some([("consul-x".to_string(), "v".to_string())].into());
        assert!(message(prepare_service(&cfg, &reserved, false)).contains("reserved"));
        let mut many = web(vec![]);
        many.meta = Some(
            (0..=MAX_META_PAIRS)
                .map(|i| (format!("k{i}"), "v".into()))
                .collect(),
        );
        assert!(message(prepare_service(&cfg, &many, false)).contains("more than 64 pairs"));
        let status = CheckDefinition {
            name: "c".into(),
            ttl: "10s".into(),
            status: "sideways".into(),
            ..Default::default()
        };
        assert!(message(prepare_check(&cfg, &status, false)).contains("Invalid check status"));
        assert_eq!(
            message(prepare_check(&cfg, &CheckDefinition::default(), false)),
            "Missing check name"
        );
    }

    #[test]
    fn scripts_run_only_where_the_configuration_allows_them() {
        let script = CheckDefinition {
            name: "s".into(),
            args: vec!["/bin/true".into()],
            interval: "10s".into(),
            ..Default::default()
        };
        let none = cfg(&[]);
        assert!(message(prepare_check(&none, &script, false)).contains("from remote calls"));
        assert!(message(prepare_check(&none, &script, true)).contains("from local sources"));
        let local = cfg(&["-enable-local-script-checks"]);
        assert!(message(prepare_check(&local, &script, false)).contains("from remote calls"));
        assert!(prepare_check(&local, &script, true).is_ok());
        let all = cfg(&["-enable-script-checks"]);
        assert!(prepare_check(&all, &script, false).is_ok());
    }

    #[test]
    fn re_registration_keeps_health_and_lists_the_checks_it_drops() {
        let mut local = LocalState::default();
        let mut old = check("service:web:1", "web", Some(30), "");
        old.check.status = "passing".into();
        old.check.output = "fine".into();
        let deadline = Instant::now() + Duration::from_secs(30);
        old.deadline = Some(deadline);
        local.checks.insert("service:web:1".into(), old);
        local.checks.insert(
            "service:web:2".into(),
            check("service:web:2", "web", None, ""),
        );
        // Same ID, another service: nothing carried over from it.
        let mut other = check("shared", "db", None, "");
        other.check.status = "passing".into();
        local.checks.insert("shared".into(), other);

        // A TTL check whose TTL had run out (no deadline left) starts a fresh one.
        let mut expired = check("service:web:3", "web", Some(10), "");
        expired.check.status = CRITICAL.into();
        local.checks.insert("service:web:3".into(), expired);

        let fresh = Instant::now() + Duration::from_secs(10);
        let mut new = vec![
            check("service:web:1", "web", Some(30), ""),
            check("shared", "web", None, ""),
            check("service:web:3", "web", Some(10), ""),
        ];
        new[1].check.status = CRITICAL.into();
        new[2].check.status = "passing".into();
        new[2].deadline = Some(fresh);
        let stale = carry_over(&local, "web", &mut new, true);
        assert_eq!(stale, ["service:web:2"]);
        assert_eq!(new[0].check.status, "passing");
        assert_eq!(new[0].check.output, "fine");
        assert_eq!(new[0].deadline, Some(deadline));
        assert_eq!(new[1].check.status, CRITICAL);
        assert_eq!(new[1].check.output, "");
        assert_eq!(new[2].check.status, CRITICAL, "health is kept");
        assert_eq!(new[2].deadline, Some(fresh), "but the TTL starts again");
        assert!(carry_over(&local, "web", &mut new, false).is_empty());
    }

    #[test]
    fn a_standalone_check_keeps_its_health_unless_a_status_is_given() {
        let mut local = LocalState::default();
        let mut old = check("disk", "", None, "");
        old.check.status = "warning".into();
        old.check.output = "80% full".into();
        local.checks.insert("disk".into(), old);
        let mut again = check("disk", "", None, "");
        again.check.status = CRITICAL.into();
        carry_over_check(&local, &mut again, false);
        assert_eq!(
            (again.check.status.as_str(), again.check.output.as_str()),
            ("warning", "80% full")
        );
        let mut given = check("disk", "", None, "");
        given.check.status = "passing".into();
        carry_over_check(&local, &mut given, true);
        assert_eq!(
            (given.check.status.as_str(), given.check.output.as_str()),
            ("passing", "")
        );
        let mut new = check("new", "", None, "");
        new.check.status = CRITICAL.into();
        carry_over_check(&local, &mut new, false);
        assert_eq!(new.check.status, CRITICAL);
    }
}
