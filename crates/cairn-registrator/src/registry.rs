//! The seam to the catalog: the node's agent over the HTTP API ([`AgentRegistry`], through
//! `cairn-api`, so it works against Consul too) or an in-memory stand-in ([`MemoryRegistry`])
//! that counts writes and can be made to fail, for testing the runtime.

use crate::error::RegistryError;
use cairn_api::{AgentService, Client, ServiceDefinition};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Who the agent is: the identity registrations are owned by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node name (unique in a cluster).
    pub node: String,
    /// The address the agent advertises.
    pub advertise: String,
}

/// Where services are registered.
pub trait Registry: Send + Sync {
    /// The agent's identity.
    fn identity(&self) -> impl Future<Output = Result<Identity, RegistryError>> + Send;
    /// Every service on the agent, by ID.
    fn services(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, AgentService>, RegistryError>> + Send;
    /// Registers (or replaces) a service.
    fn register(
        &self,
        def: &ServiceDefinition,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
    /// Removes a service (no error if it is already gone).
    fn deregister(&self, id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

/// The node's agent.
#[derive(Debug, Clone)]
pub struct AgentRegistry {
    client: Client,
}

impl AgentRegistry {
    pub fn new(client: Client) -> Self {
        AgentRegistry { client }
    }

    /// The agent's base URL.
    pub fn base(&self) -> &str {
        self.client.base()
    }
}

impl Registry for AgentRegistry {
    async fn identity(&self) -> Result<Identity, RegistryError> {
        let v = self.client.agent_self().await?;
        let node = v["Config"]["NodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if node.is_empty() {
            return Err(RegistryError::Invalid(
                "/v1/agent/self has no Config.NodeName".into(),
            ));
        }
        let advertise = v["Member"]["Addr"]
            .as_str()
            .or_else(|| v["Config"]["AdvertiseAddr"].as_str())
            .unwrap_or_default()
            .to_string();
        Ok(Identity { node, advertise })
    }

    async fn services(&self) -> Result<BTreeMap<String, AgentService>, RegistryError> {
        Ok(self.client.agent_services().await?)
    }

    async fn register(&self, def: &ServiceDefinition) -> Result<(), RegistryError> {
        Ok(self.client.agent_service_register(def).await?)
    }

    async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
        match self.client.agent_service_deregister(id).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => Ok(other?),
        }
    }
}

/// An in-memory registry for tests.
#[derive(Debug, Clone)]
pub struct MemoryRegistry {
    inner: Arc<Mutex<Memory>>,
    identity: Identity,
}

#[derive(Debug, Default)]
struct Memory {
    services: BTreeMap<String, AgentService>,
    writes: u64,
    down: bool,
    refused: u64,
}

impl MemoryRegistry {
    /// An empty registry for node `node` advertising `advertise`.
    pub fn new(node: &str, advertise: &str) -> Self {
        MemoryRegistry {
            inner: Arc::new(Mutex::new(Memory::default())),
            identity: Identity {
                node: node.into(),
                advertise: advertise.into(),
            },
        }
    }

    /// The same store seen by another node (two registrators, one catalog).
    pub fn as_node(&self, node: &str, advertise: &str) -> Self {
        MemoryRegistry {
            inner: self.inner.clone(),
            identity: Identity {
                node: node.into(),
                advertise: advertise.into(),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers writes made so far.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// A copy of the services.
    pub fn snapshot(&self) -> BTreeMap<String, AgentService> {
        self.lock().services.clone()
    }

    /// Calls refused while down.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// Makes every call fail (agent down) or succeed again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Inserts a service directly (as another client would), without counting a write.
    pub fn insert(&self, s: AgentService) {
        self.lock().services.insert(s.id.clone(), s);
    }

    fn check_up(&self) -> Result<(), RegistryError> {
        let mut m = self.lock();
        if m.down {
            m.refused += 1;
            Err(RegistryError::Invalid(
                "connection refused (memory registry is down)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl Registry for MemoryRegistry {
    async fn identity(&self) -> Result<Identity, RegistryError> {
        self.check_up()?;
        Ok(self.identity.clone())
    }

    async fn services(&self) -> Result<BTreeMap<String, AgentService>, RegistryError> {
        self.check_up()?;
        Ok(self.snapshot())
    }

    async fn register(&self, def: &ServiceDefinition) -> Result<(), RegistryError> {
        self.check_up()?;
        let s = AgentService {
            id: def.effective_id().to_string(),
            service: def.name.clone(),
            tags: def.tags.clone(),
            meta: def.meta.clone(),
            port: def.port.unwrap_or(0),
            address: def.address.clone(),
            ..Default::default()
        };
        let mut m = self.lock();
        m.writes += 1;
        m.services.insert(s.id.clone(), s);
        Ok(())
    }

    async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
        self.check_up()?;
        let mut m = self.lock();
        m.writes += 1;
        m.services.remove(id);
        Ok(())
    }
}
