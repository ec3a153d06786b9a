//! Changes to the agent's local services and checks, carried out, one at a time
//! (`local_lock`), after `define` has validated them:
//! - a registration is saved in the data directory first, then written to the catalog,
//!   then applied to the local state; a failed save or catalog write puts the files back
//!   as the local state has them, so a refused registration leaves nothing behind. The
//!   checks a replacing registration drops go last, from the catalog too;
//! - a deregistration is written to the catalog first, then the local state and the
//!   files follow;
//! - a status (a TTL update, a check runner's result) changes the local state first and
//!   then the catalog: the local state is the truth, and a failed write is retried by
//!   the check runner or made by anti-entropy.
//!
//! On a client agent or a server of a cluster, a catalog write that no server can take
//! now is left to anti-entropy rather than failed (`Agent::write_local`).

use cairn_state::{CheckUpdate, Command, Deregistration, Outcome, Registration};
use cairn_types::definition::{CheckDefinition, ServiceDefinition};
use cairn_types::{HealthCheck, CRITICAL, NODE_MAINT_CHECK_ID, SERVICE_MAINT_PREFIX};
use tokio::time::Instant;

use super::define::{bad, carry_over, carry_over_check, prepare_check, prepare_service};
use super::{truncate_output, LocalCheck, LocalError};
use crate::node::{now_ms, Agent};

impl Agent {
    pub(crate) async fn do_register_service(
        &self,
        def: ServiceDefinition,
        replace_checks: bool,
        from_config: bool,
    ) -> Result<(), LocalError> {
        let (svc, mut checks) = prepare_service(&self.inner.cfg, &def, from_config)?;
        let id = svc.id.clone();
        let _guard = self.inner.local_lock.lock().await;
        let stale = carry_over(&self.inner.local.lock(), &id, &mut checks, replace_checks);
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
        let written = self.write_own(Command::Register(reg)).await;
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
        {
            let mut local = self.inner.local.lock();
            for cid in &stale {
                local.checks.remove(cid);
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
        }
        self.inner.ttl_changed.notify_one();
        // The registration stands; the checks it drops are gone locally, so a catalog
        // write that fails here is made by anti-entropy.
        for cid in &stale {
            self.unpersist_check(cid);
            if let Err(e) = self.deregister_check_catalog(cid).await {
                tracing::warn!(check = %cid, "check dropped by a re-registration is still in the catalog; anti-entropy will remove it: {e}");
            }
        }
        Ok(())
    }

    pub(crate) async fn do_deregister_service(&self, id: String) -> Result<(), LocalError> {
        let _guard = self.inner.local_lock.lock().await;
        if !self.inner.local.lock().services.contains_key(&id) {
            return Err(LocalError::Unknown(format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name.")));
        }
        let d = Deregistration {
            node: self.inner.cfg.node_name.clone(),
            service_id: Some(id.clone()),
            check_id: None,
            now_ms: now_ms(),
        };
        self.write_own(Command::Deregister(d)).await?;
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
    ) -> Result<(), LocalError> {
        let mut c = prepare_check(&self.inner.cfg, &def, from_config)?;
        let _guard = self.inner.local_lock.lock().await;
        if !c.check.service_id.is_empty() {
            let local = self.inner.local.lock();
            let Some(svc) = local.services.get(&c.check.service_id) else {
                // Consul answers 404 here (clients treat it as "not registered").
                return Err(LocalError::Unknown(format!(
                    "ServiceID {:?} does not exist",
                    c.check.service_id
                )));
            };
            c.check.service_name = svc.service.clone();
            c.check.service_tags = svc.tags.clone();
        }
        carry_over_check(&self.inner.local.lock(), &mut c, !def.status.is_empty());
        let reg = Registration {
            node: self.self_node(),
            service: None,
            checks: vec![c.check.clone()],
            skip_node_update: true,
            now_ms: now_ms(),
        };
        self.save_check(&c)?;
        if let Err(e) = self.write_own(Command::Register(reg)).await {
            self.persist_check(&c.check.check_id);
            return Err(e);
        }
        c.runner = crate::checks::spawn_runner(self, &c);
        let cid = c.check.check_id.clone();
        self.inner.local.lock().checks.insert(cid, c);
        self.inner.ttl_changed.notify_one();
        Ok(())
    }

    async fn deregister_check_catalog(&self, id: &str) -> Result<(), LocalError> {
        let d = Deregistration {
            node: self.inner.cfg.node_name.clone(),
            service_id: None,
            check_id: Some(id.to_string()),
            now_ms: now_ms(),
        };
        self.write_own(Command::Deregister(d)).await?;
        Ok(())
    }

    pub(crate) async fn do_deregister_check(&self, id: String) -> Result<(), LocalError> {
        let _guard = self.inner.local_lock.lock().await;
        if !self.inner.local.lock().checks.contains_key(&id) {
            return Err(LocalError::Unknown(format!(
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
    ) -> Result<(), LocalError> {
        let output = truncate_output(output);
        {
            let mut local = self.inner.local.lock();
            let c = local
                .checks
                .get_mut(id)
                .ok_or_else(|| LocalError::Unknown(format!("Unknown check ID {id:?}")))?;
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
        self.write_own(Command::UpdateCheck(u)).await?;
        Ok(())
    }

    pub(crate) async fn do_update_ttl(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> Result<(), LocalError> {
        let _guard = self.inner.local_lock.lock().await;
        {
            let local = self.inner.local.lock();
            let c = local
                .checks
                .get(&id)
                .ok_or_else(|| LocalError::Unknown(format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name.")))?;
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
    ) -> Result<(), LocalError> {
        if !self.inner.local.lock().services.contains_key(&id) {
            return Err(LocalError::Unknown(format!(
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
    ) -> Result<(), LocalError> {
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
    ) -> Result<(), LocalError> {
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
        if let Err(e) = self.write_own(Command::Register(reg)).await {
            self.persist_check(&check_id);
            return Err(e);
        }
        self.inner.local.lock().checks.insert(check_id, local_check);
        Ok(())
    }

    /// Writes a change to this node's own entries in the catalog; a refusal of the
    /// state machine is an error.
    async fn write_own(&self, cmd: Command) -> Result<Outcome, LocalError> {
        match self.write_local(cmd).await? {
            (_, Outcome::Error(e)) => Err(LocalError::Refused(e.to_string())),
            (_, o) => Ok(o),
        }
    }
}
