//! The agent's local services and checks: what this node runs, as the agent was told
//! by its API and config files. The agent is the source of truth for its node's entries
//! in the catalog; every local change is written to the catalog through Raft, and TTL
//! checks that are not renewed in time turn critical here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cairn_http::HttpError;
use cairn_state::{CheckUpdate, Command, Deregistration, Outcome, Registration};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::duration::parse_duration;
use cairn_types::{
    CheckDefinition as StoredDefinition, HealthCheck, NodeService, Weights, CRITICAL,
    NODE_MAINT_CHECK_ID, SERVICE_MAINT_PREFIX,
};
use tokio::time::Instant;

use crate::node::{now_ms, Agent};

/// Whether this agent runs a script check from this source, as Consul decides it:
/// `enable_script_checks` allows scripts from anywhere, including the HTTP API (so anyone
/// who can reach the API can run commands on the node); `enable_local_script_checks`
/// allows only those in the agent's own configuration files.
pub(crate) fn script_allowed(
    cfg: &crate::config::Config,
    from_config: bool,
) -> Result<(), &'static str> {
    if cfg.enable_script_checks || (cfg.enable_local_script_checks && from_config) {
        Ok(())
    } else if from_config {
        Err("Scripts are disabled on this agent from local sources; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true")
    } else {
        Err("Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true")
    }
}

/// Longest check output kept (Consul's default `check_output_max_size`).
pub const MAX_CHECK_OUTPUT: usize = 4096;
/// Node meta / service meta limits (Consul's structs.go).
const MAX_META_PAIRS: usize = 64;
const MAX_META_KEY: usize = 128;
const MAX_META_VALUE: usize = 512;

/// A local check and its runtime state.
#[derive(Debug)]
pub struct LocalCheck {
    pub check: HealthCheck,
    /// For TTL checks: the TTL and when it runs out.
    pub ttl: Option<Duration>,
    pub deadline: Option<Instant>,
    /// Registered from a config file (reload replaces these).
    pub from_config: bool,
    /// The definition, for the check runner.
    pub def: CheckDefinition,
    /// The task running this check (HTTP, TCP, script, ...); aborted on removal.
    pub runner: Option<tokio::task::AbortHandle>,
    /// Since when the check has been critical (for `DeregisterCriticalServiceAfter`).
    pub critical_since: Option<Instant>,
}

impl Drop for LocalCheck {
    fn drop(&mut self) {
        if let Some(r) = self.runner.take() {
            r.abort();
        }
    }
}

impl LocalCheck {
    /// Whether the timer loop must watch this check: a TTL to expire, or a service to
    /// reap once critical for `DeregisterCriticalServiceAfter`. Decided by fields fixed
    /// when the check is built.
    fn is_timed(&self) -> bool {
        self.ttl.is_some()
            || (!self.def.deregister_critical_service_after.is_empty()
                && !self.check.service_id.is_empty())
    }

    /// `DeregisterCriticalServiceAfter`, when set to a positive duration.
    fn reap_after(&self) -> Option<Duration> {
        match dur(
            "DeregisterCriticalServiceAfter",
            &self.def.deregister_critical_service_after,
        ) {
            Ok(Some(d)) if !d.is_zero() => Some(d),
            _ => None,
        }
    }
}

/// The agent's local checks by ID, plus the IDs of the few the timer loop watches
/// ([`LocalCheck::is_timed`]), so that loop costs nothing per HTTP/TCP check: with
/// 10,000 checks, scanning them all four times a second was 5% of the agent's CPU.
#[derive(Debug, Default)]
pub struct Checks {
    map: BTreeMap<String, LocalCheck>,
    timed: BTreeSet<String>,
}

impl std::ops::Deref for Checks {
    type Target = BTreeMap<String, LocalCheck>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Checks {
    pub fn insert(&mut self, id: String, c: LocalCheck) -> Option<LocalCheck> {
        if c.is_timed() {
            self.timed.insert(id.clone());
        } else {
            self.timed.remove(&id);
        }
        self.map.insert(id, c)
    }

    pub fn remove(&mut self, id: &str) -> Option<LocalCheck> {
        self.timed.remove(id);
        self.map.remove(id)
    }

    pub fn retain(&mut self, f: impl FnMut(&String, &mut LocalCheck) -> bool) {
        self.map.retain(f);
        let map = &self.map;
        self.timed.retain(|id| map.contains_key(id));
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut LocalCheck> {
        self.map.get_mut(id)
    }

    pub fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, String, LocalCheck> {
        self.map.values_mut()
    }

    /// The checks with a TTL or a reap timeout.
    fn timed(&self) -> impl Iterator<Item = &LocalCheck> {
        self.timed.iter().filter_map(|id| self.map.get(id))
    }

    /// Applies `f` to every check with a TTL or a reap timeout.
    fn for_each_timed(&mut self, mut f: impl FnMut(&mut LocalCheck)) {
        for id in &self.timed {
            if let Some(c) = self.map.get_mut(id) {
                f(c);
            }
        }
    }
}

/// Local services and checks of this agent.
#[derive(Debug, Default)]
pub struct LocalState {
    pub services: BTreeMap<String, NodeService>,
    pub checks: Checks,
    /// IDs of services that came from config files (a reload replaces exactly these).
    pub config_services: std::collections::BTreeSet<String>,
    /// The ACL token each service was registered with (its catalog writes use it).
    pub service_tokens: BTreeMap<String, String>,
}

fn bad(m: impl Into<String>) -> HttpError {
    HttpError::bad_request(m)
}

/// Cuts a check output to [`MAX_CHECK_OUTPUT`] bytes (at a character boundary) plus a
/// marker. Idempotent, so runners can compare a fresh output with the stored one.
pub(crate) fn truncate_output(mut s: String) -> String {
    if s.len() > MAX_CHECK_OUTPUT {
        let mut cut = MAX_CHECK_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ... (output truncated)");
    }
    s
}

fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), HttpError> {
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

fn dur(field: &str, s: &str) -> Result<Option<Duration>, HttpError> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_duration(s)
        .map(Some)
        .map_err(|e| bad(format!("Invalid {field}: {e}")))
}

impl Agent {
    /// Turns a check definition into the catalog check, validating it.
    /// `from_config`: the definition comes from the agent's own configuration files
    /// (which `enable_local_script_checks` trusts), not from an API call.
    fn build_check(
        &self,
        def: &CheckDefinition,
        default_id: String,
        default_name: String,
        from_config: bool,
    ) -> Result<LocalCheck, HttpError> {
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
            script_allowed(&self.inner.cfg, from_config).map_err(bad)?;
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
            node: self.inner.cfg.node_name.clone(),
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
        &self,
        def: &ServiceDefinition,
        from_config: bool,
    ) -> Result<(NodeService, Vec<LocalCheck>), HttpError> {
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
            let mut c = self.build_check(
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

    /// Validates a standalone check definition (see [`Agent::prepare_service`]).
    pub(crate) fn prepare_check(
        &self,
        def: &CheckDefinition,
        from_config: bool,
    ) -> Result<LocalCheck, HttpError> {
        if def.name.is_empty() {
            return Err(bad("Missing check name"));
        }
        let id = if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        };
        let mut c = self.build_check(def, id, def.name.clone(), from_config)?;
        c.from_config = from_config;
        Ok(c)
    }

    pub(crate) async fn do_register_service(
        &self,
        def: ServiceDefinition,
        replace_checks: bool,
        from_config: bool,
    ) -> Result<(), HttpError> {
        let (svc, mut checks) = self.prepare_service(&def, from_config)?;
        let id = svc.id.clone();
        let _guard = self.inner.local_lock.lock().await;
        // Keep the status of checks that already exist (re-registration must not reset health).
        {
            let local = self.inner.local.lock();
            for c in checks.iter_mut() {
                if let Some(old) = local.checks.get(&c.check.check_id) {
                    if old.check.service_id == c.check.service_id {
                        c.check.status = old.check.status.clone();
                        c.check.output = old.check.output.clone();
                        c.deadline = old.deadline.or(c.deadline);
                    }
                }
            }
        }
        let stale: Vec<String> = if replace_checks {
            let local = self.inner.local.lock();
            local
                .checks
                .values()
                .filter(|c| {
                    c.check.service_id == id
                        && !checks.iter().any(|n| n.check.check_id == c.check.check_id)
                })
                .map(|c| c.check.check_id.clone())
                .collect()
        } else {
            Vec::new()
        };
        let reg = Registration {
            node: self.self_node(),
            service: Some(svc.clone()),
            checks: checks.iter().map(|c| c.check.clone()).collect(),
            skip_node_update: true,
            now_ms: now_ms(),
        };
        // Durable first: a registration that cannot be persisted is refused before the
        // catalog sees it; if the catalog write then fails, the files go back to what the
        // local state holds.
        self.save_service(&svc, from_config, &def.token)?;
        for c in &checks {
            if let Err(e) = self.save_check(c) {
                self.persist_service(&id);
                for done in checks
                    .iter()
                    .take_while(|d| d.check.check_id != c.check.check_id)
                {
                    self.persist_check(&done.check.check_id);
                }
                return Err(e);
            }
        }
        let previous_token = {
            let mut local = self.inner.local.lock();
            if def.token.is_empty() {
                local.service_tokens.remove(&id)
            } else {
                local.service_tokens.insert(id.clone(), def.token.clone())
            }
        };
        let written = self.write_local(Command::Register(reg)).await.and_then(ok);
        if let Err(e) = written {
            let mut local = self.inner.local.lock();
            match previous_token {
                Some(t) => local.service_tokens.insert(id.clone(), t),
                None => local.service_tokens.remove(&id),
            };
            drop(local);
            self.persist_service(&id);
            for c in &checks {
                self.persist_check(&c.check.check_id);
            }
            return Err(e);
        }
        for cid in &stale {
            self.deregister_check_catalog(cid).await?;
        }
        let persisted_stale = stale.clone();
        let mut local = self.inner.local.lock();
        for cid in stale {
            local.checks.remove(&cid);
        }
        for c in local
            .checks
            .values_mut()
            .filter(|c| c.check.service_id == id)
        {
            c.check.service_name = svc.service.clone();
            c.check.service_tags = svc.tags.clone();
        }
        if from_config {
            local.config_services.insert(id.clone());
        } else {
            local.config_services.remove(&id);
        }
        local.services.insert(id.clone(), svc);
        for mut c in checks {
            if c.check.status == CRITICAL {
                c.critical_since = local
                    .checks
                    .get(&c.check.check_id)
                    .and_then(|o| o.critical_since)
                    .or(Some(Instant::now()));
            }
            c.runner = crate::checks::spawn_runner(self, &c);
            local.checks.insert(c.check.check_id.clone(), c);
        }
        drop(local);
        self.inner.ttl_changed.notify_one();
        for cid in &persisted_stale {
            self.unpersist_check(cid);
        }
        Ok(())
    }

    pub(crate) async fn do_deregister_service(&self, id: String) -> Result<(), HttpError> {
        let _guard = self.inner.local_lock.lock().await;
        if !self.inner.local.lock().services.contains_key(&id) {
            return Err(HttpError::not_found(format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name.")));
        }
        let d = Deregistration {
            node: self.inner.cfg.node_name.clone(),
            service_id: Some(id.clone()),
            check_id: None,
            now_ms: now_ms(),
        };
        ok(self.write_local(Command::Deregister(d)).await?)?;
        let mut local = self.inner.local.lock();
        local.services.remove(&id);
        local.service_tokens.remove(&id);
        local.config_services.remove(&id);
        let gone: Vec<String> = local
            .checks
            .values()
            .filter(|c| c.check.service_id == id)
            .map(|c| c.check.check_id.clone())
            .collect();
        local.checks.retain(|_, c| c.check.service_id != id);
        drop(local);
        self.unpersist_service(&id);
        for cid in &gone {
            self.unpersist_check(cid);
        }
        Ok(())
    }

    pub(crate) async fn do_register_check(
        &self,
        def: CheckDefinition,
        from_config: bool,
    ) -> Result<(), HttpError> {
        let mut c = self.prepare_check(&def, from_config)?;
        let _guard = self.inner.local_lock.lock().await;
        if !c.check.service_id.is_empty() {
            let local = self.inner.local.lock();
            let Some(svc) = local.services.get(&c.check.service_id) else {
                // Consul answers 404 here (clients treat it as "not registered").
                return Err(HttpError::not_found(format!(
                    "ServiceID {:?} does not exist",
                    c.check.service_id
                )));
            };
            c.check.service_name = svc.service.clone();
            c.check.service_tags = svc.tags.clone();
        }
        if let Some(old) = self.inner.local.lock().checks.get(&c.check.check_id) {
            if def.status.is_empty() {
                c.check.status = old.check.status.clone();
                c.check.output = old.check.output.clone();
            }
        }
        let reg = Registration {
            node: self.self_node(),
            service: None,
            checks: vec![c.check.clone()],
            skip_node_update: true,
            now_ms: now_ms(),
        };
        self.save_check(&c)?;
        if let Err(e) = self.write_local(Command::Register(reg)).await.and_then(ok) {
            self.persist_check(&c.check.check_id);
            return Err(e);
        }
        c.runner = crate::checks::spawn_runner(self, &c);
        let cid = c.check.check_id.clone();
        self.inner.local.lock().checks.insert(cid, c);
        self.inner.ttl_changed.notify_one();
        Ok(())
    }

    async fn deregister_check_catalog(&self, id: &str) -> Result<(), HttpError> {
        let d = Deregistration {
            node: self.inner.cfg.node_name.clone(),
            service_id: None,
            check_id: Some(id.to_string()),
            now_ms: now_ms(),
        };
        ok(self.write_local(Command::Deregister(d)).await?)?;
        Ok(())
    }

    pub(crate) async fn do_deregister_check(&self, id: String) -> Result<(), HttpError> {
        let _guard = self.inner.local_lock.lock().await;
        if !self.inner.local.lock().checks.contains_key(&id) {
            return Err(HttpError::not_found(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            )));
        }
        self.deregister_check_catalog(&id).await?;
        self.inner.local.lock().checks.remove(&id);
        self.unpersist_check(&id);
        Ok(())
    }

    /// Sets a check's status and output locally and in the catalog.
    pub(crate) async fn set_check_status(
        &self,
        id: &str,
        status: &str,
        output: String,
        renew_ttl: bool,
    ) -> Result<(), HttpError> {
        let output = truncate_output(output);
        {
            let mut local = self.inner.local.lock();
            let c = local
                .checks
                .get_mut(id)
                .ok_or_else(|| HttpError::not_found(format!("Unknown check ID {id:?}")))?;
            c.check.status = status.to_string();
            c.check.output = output.clone();
            c.critical_since = match (status == CRITICAL, c.critical_since) {
                (true, since) => since.or(Some(Instant::now())),
                (false, _) => None,
            };
            if renew_ttl {
                c.deadline = c.ttl.map(|t| Instant::now() + t);
                self.inner.ttl_changed.notify_one();
            }
        }
        let u = CheckUpdate {
            node: self.inner.cfg.node_name.clone(),
            check_id: id.to_string(),
            status: status.to_string(),
            output,
            now_ms: now_ms(),
        };
        ok(self.write_local(Command::UpdateCheck(u)).await?)?;
        Ok(())
    }

    pub(crate) async fn do_update_ttl(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> Result<(), HttpError> {
        let _guard = self.inner.local_lock.lock().await;
        {
            let local = self.inner.local.lock();
            let c = local
                .checks
                .get(&id)
                .ok_or_else(|| HttpError::not_found(format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name.")))?;
            if c.ttl.is_none() {
                return Err(bad(format!("Check {id:?} is not a TTL check")));
            }
        }
        self.set_check_status(&id, &status, output, true).await
    }

    pub(crate) async fn do_service_maintenance(
        &self,
        id: String,
        enable: bool,
        reason: String,
    ) -> Result<(), HttpError> {
        if !self.inner.local.lock().services.contains_key(&id) {
            return Err(HttpError::not_found(format!(
                "No service registered with ID {id:?}"
            )));
        }
        let check_id = format!("{SERVICE_MAINT_PREFIX}{id}");
        let reason = if reason.is_empty() {
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.".to_string()
        } else {
            reason
        };
        self.maintenance(check_id, id, "Service Maintenance Mode", enable, reason)
            .await
    }

    pub(crate) async fn do_node_maintenance(
        &self,
        enable: bool,
        reason: String,
    ) -> Result<(), HttpError> {
        let reason = if reason.is_empty() {
            "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.".to_string()
        } else {
            reason
        };
        self.maintenance(
            NODE_MAINT_CHECK_ID.to_string(),
            String::new(),
            "Node Maintenance Mode",
            enable,
            reason,
        )
        .await
    }

    async fn maintenance(
        &self,
        check_id: String,
        service_id: String,
        name: &str,
        enable: bool,
        reason: String,
    ) -> Result<(), HttpError> {
        let _guard = self.inner.local_lock.lock().await;
        let exists = self.inner.local.lock().checks.contains_key(&check_id);
        if !enable {
            if exists {
                self.deregister_check_catalog(&check_id).await?;
                self.inner.local.lock().checks.remove(&check_id);
                self.unpersist_check(&check_id);
            }
            return Ok(());
        }
        let check = HealthCheck {
            node: self.inner.cfg.node_name.clone(),
            check_id: check_id.clone(),
            name: name.to_string(),
            status: CRITICAL.to_string(),
            notes: reason,
            service_id,
            check_type: "maintenance".into(),
            ..Default::default()
        };
        let reg = Registration {
            node: self.self_node(),
            service: None,
            checks: vec![check.clone()],
            skip_node_update: true,
            now_ms: now_ms(),
        };
        let local_check = LocalCheck {
            check,
            ttl: None,
            deadline: None,
            from_config: false,
            def: CheckDefinition::default(),
            runner: None,
            critical_since: None,
        };
        self.save_check(&local_check)?;
        if let Err(e) = self.write_local(Command::Register(reg)).await.and_then(ok) {
            self.persist_check(&check_id);
            return Err(e);
        }
        self.inner.local.lock().checks.insert(check_id, local_check);
        Ok(())
    }
}

fn ok((_, o): (u64, Outcome)) -> Result<Outcome, HttpError> {
    match o {
        Outcome::Error(e) => Err(HttpError::bad_request(e.to_string())),
        o => Ok(o),
    }
}

/// Turns TTL checks critical when their TTL runs out without an update.
/// Services whose check has been critical for longer than its
/// `DeregisterCriticalServiceAfter`. Consul reaps on a 30 s cycle with a one-minute
/// minimum; Cairn checks every tick and honours any positive value, so short timeouts
/// (useful for ephemeral containers) work as written.
fn services_to_reap(agent: &Agent, now: Instant) -> Vec<(String, String)> {
    let local = agent.inner.local.lock();
    let mut out: Vec<(String, String)> = Vec::new();
    for c in local.checks.timed() {
        let (Some(since), Some(after)) = (c.critical_since, c.reap_after()) else {
            continue;
        };
        if now.duration_since(since) >= after
            && !c.check.service_id.is_empty()
            && !out.iter().any(|(s, _)| *s == c.check.service_id)
        {
            out.push((c.check.service_id.clone(), c.check.check_id.clone()));
        }
    }
    out
}

/// Expires TTL checks at their deadline (woken early when a deadline moves) and reaps
/// services critical past `DeregisterCriticalServiceAfter`.
pub(crate) async fn ttl_loop(agent: Agent) {
    let mut reap = tokio::time::interval(Duration::from_millis(250));
    loop {
        let next = agent
            .inner
            .local
            .lock()
            .checks
            .timed()
            .filter_map(|c| c.deadline)
            .min();
        let far = Instant::now() + Duration::from_secs(1);
        tokio::select! {
            _ = reap.tick() => {}
            _ = agent.inner.ttl_changed.notified() => {}
            _ = tokio::time::sleep_until(next.unwrap_or(far).min(far)) => {}
        }
        for (service, check) in services_to_reap(&agent, Instant::now()) {
            tracing::info!(%service, %check, "check critical for longer than DeregisterCriticalServiceAfter; deregistering the service");
            if let Err(e) = agent.do_deregister_service(service.clone()).await {
                tracing::warn!(%service, "could not reap service: {}", e.message);
            }
        }
        let now = Instant::now();
        let mut expired: Vec<(String, Duration)> = Vec::new();
        agent.inner.local.lock().checks.for_each_timed(|c| {
            if let (Some(d), Some(ttl)) = (c.deadline, c.ttl) {
                if d <= now {
                    c.deadline = None;
                    expired.push((c.check.check_id.clone(), ttl));
                }
            }
        });
        for (id, ttl) in expired {
            let _guard = agent.inner.local_lock.lock().await;
            let out = format!(
                "TTL expired (no update for {})",
                cairn_types::duration::format_duration(ttl)
            );
            if let Err(e) = agent.set_check_status(&id, CRITICAL, out, false).await {
                tracing::warn!(check = %id, "could not mark TTL check critical: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, service: &str, ttl: Option<u64>, reap_after: &str) -> LocalCheck {
        LocalCheck {
            check: HealthCheck {
                check_id: id.into(),
                service_id: service.into(),
                ..Default::default()
            },
            ttl: ttl.map(Duration::from_secs),
            deadline: None,
            from_config: false,
            def: CheckDefinition {
                deregister_critical_service_after: reap_after.into(),
                ..Default::default()
            },
            runner: None,
            critical_since: None,
        }
    }

    fn timed_ids(c: &Checks) -> Vec<String> {
        c.timed().map(|c| c.check.check_id.clone()).collect()
    }

    #[test]
    fn timed_index_follows_inserts_removals_and_retain() {
        let mut c = Checks::default();
        c.insert("http".into(), check("http", "web", None, ""));
        c.insert("ttl".into(), check("ttl", "", Some(10), ""));
        c.insert("reap".into(), check("reap", "web", None, "1m"));
        // A reap timeout on a node-level check reaps nothing: not watched.
        c.insert("node".into(), check("node", "", None, "1m"));
        assert_eq!(c.len(), 4);
        assert_eq!(timed_ids(&c), ["reap", "ttl"]);
        assert_eq!(
            c.timed().next().unwrap().reap_after(),
            Some(Duration::from_secs(60))
        );

        // Replacing a watched check by an unwatched one with the same ID unwatches it.
        c.insert("ttl".into(), check("ttl", "", None, ""));
        assert_eq!(timed_ids(&c), ["reap"]);
        c.insert("http".into(), check("http", "web", Some(5), ""));
        assert_eq!(timed_ids(&c), ["http", "reap"]);

        c.remove("reap");
        assert_eq!(timed_ids(&c), ["http"]);
        c.retain(|_, x| x.check.service_id != "web");
        assert_eq!(timed_ids(&c), Vec::<String>::new());
        assert_eq!(c.keys().collect::<Vec<_>>(), ["node", "ttl"]);

        let mut seen = 0;
        c.insert("t2".into(), check("t2", "", Some(1), ""));
        c.for_each_timed(|x| {
            x.deadline = Some(Instant::now());
            seen += 1;
        });
        assert_eq!(seen, 1);
        assert!(c.get("t2").unwrap().deadline.is_some());
        assert!(c.get("ttl").unwrap().deadline.is_none());
    }

    #[test]
    fn zero_or_bad_reap_timeouts_never_reap() {
        assert_eq!(check("a", "s", None, "0s").reap_after(), None);
        assert_eq!(check("a", "s", None, "soon").reap_after(), None);
        assert_eq!(check("a", "s", None, "").reap_after(), None);
        assert_eq!(
            check("a", "s", None, "90s").reap_after(),
            Some(Duration::from_secs(90))
        );
    }
}
