//! The seam between the portal and service discovery: find the instances of
//! a service, then the address of the one chosen. Two implementations: DNS
//! SRV against an agent ([`DnsDiscovery`], asked on every request, with
//! concurrent requests sharing a query sent after they arrived) and a fixed
//! list ([`StaticDiscovery`], for a direct baseline and tests).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::coalesce::{Abandoned, Coalescer, Lookup};
use crate::dns_client::DnsClient;
use crate::dns_wire::{display_node, fqdn, DnsError, TYPE_A, TYPE_SRV};

/// One instance of a service as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The SRV target (or a label for a static instance), fully qualified.
    pub target: String,
    /// The instance's port.
    pub port: u16,
    /// SRV priority (lower first).
    pub priority: u16,
    /// SRV weight within a priority.
    pub weight: u16,
    /// The address, when the answer already carried it.
    pub known: Option<IpAddr>,
}

impl Candidate {
    /// What the page shows for this instance: node (or address) and port.
    pub fn node(&self, addr: Option<IpAddr>) -> String {
        display_node(&self.target, addr.or(self.known))
    }
}

/// Why discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The DNS exchange failed.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// The target has no address.
    #[error("no address for {0}")]
    NoAddress(String),
    /// The shared SRV lookup this request joined ended without an answer.
    #[error(transparent)]
    Abandoned(#[from] Abandoned),
}

/// Finds instances and their addresses.
pub trait Discovery: Send + Sync + 'static {
    /// The instances of `service` (empty when there are none).
    fn candidates(
        &self,
        service: &str,
    ) -> impl Future<Output = Result<Vec<Candidate>, DiscoveryError>> + Send;

    /// The address to call for `candidate`.
    fn address(
        &self,
        candidate: &Candidate,
    ) -> impl Future<Output = Result<IpAddr, DiscoveryError>> + Send;
}

/// One SRV lookup, as the coalescer makes it: the instances of a service.
#[derive(Debug, Clone)]
pub struct SrvLookup {
    client: DnsClient,
}

impl Lookup for SrvLookup {
    type Output = Result<Arc<[Candidate]>, DiscoveryError>;

    fn lookup(&self, service: &str) -> impl Future<Output = Self::Output> + Send + 'static {
        let client = self.client.clone();
        let name = fqdn(service);
        async move {
            let answer = client.ask(&name?, TYPE_SRV).await?;
            Ok(answer
                .srv
                .into_iter()
                .map(|s| Candidate {
                    known: s.address,
                    target: s.target,
                    port: s.port,
                    priority: s.priority,
                    weight: s.weight,
                })
                .collect())
        }
    }
}

/// DNS SRV discovery through one resolver, no caching: every request gets
/// an answer from a query sent after it arrived, shared with the requests
/// that arrived with it (see [`crate::coalesce`]).
#[derive(Debug, Clone)]
pub struct DnsDiscovery {
    client: DnsClient,
    srv: Coalescer<SrvLookup>,
}

impl DnsDiscovery {
    /// Asks `server`, waiting `timeout` per try.
    pub fn new(server: SocketAddr, timeout: Duration) -> Self {
        let client = DnsClient::new(server, timeout);
        Self {
            srv: Coalescer::new(SrvLookup {
                client: client.clone(),
            }),
            client,
        }
    }

    /// The resolver asked.
    pub fn server(&self) -> SocketAddr {
        self.client.server()
    }

    /// How many service names have an SRV lookup being made or waiting to be
    /// sent: zero once every request has its answer.
    pub fn lookups_in_flight(&self) -> usize {
        self.srv.names_in_flight()
    }
}

impl Discovery for DnsDiscovery {
    async fn candidates(&self, service: &str) -> Result<Vec<Candidate>, DiscoveryError> {
        // A name that cannot be asked fails here, before it is shared.
        fqdn(service)?;
        Ok(self.srv.get(service).await??.to_vec())
    }

    async fn address(&self, candidate: &Candidate) -> Result<IpAddr, DiscoveryError> {
        if let Some(ip) = candidate.known {
            return Ok(ip);
        }
        let name = fqdn(&candidate.target)?;
        let answer = self.client.ask(&name, TYPE_A).await?;
        answer
            .addresses
            .first()
            .copied()
            .ok_or_else(|| DiscoveryError::NoAddress(candidate.target.clone()))
    }
}

/// A fixed list of instances, the same for every service name.
#[derive(Debug, Clone, Default)]
pub struct StaticDiscovery {
    instances: Vec<SocketAddr>,
}

impl StaticDiscovery {
    /// Always answers `instances`.
    pub fn new(instances: Vec<SocketAddr>) -> Self {
        Self { instances }
    }
}

impl Discovery for StaticDiscovery {
    async fn candidates(&self, _service: &str) -> Result<Vec<Candidate>, DiscoveryError> {
        Ok(self
            .instances
            .iter()
            .map(|a| Candidate {
                target: format!("{}.", a.ip()),
                port: a.port(),
                priority: 1,
                weight: 1,
                known: Some(a.ip()),
            })
            .collect())
    }

    async fn address(&self, candidate: &Candidate) -> Result<IpAddr, DiscoveryError> {
        candidate
            .known
            .ok_or_else(|| DiscoveryError::NoAddress(candidate.target.clone()))
    }
}

/// Either implementation, chosen per back end at start-up.
#[derive(Debug, Clone)]
pub enum AnyDiscovery {
    /// DNS SRV.
    Dns(DnsDiscovery),
    /// A fixed list.
    Static(StaticDiscovery),
}

impl Discovery for AnyDiscovery {
    async fn candidates(&self, service: &str) -> Result<Vec<Candidate>, DiscoveryError> {
        match self {
            AnyDiscovery::Dns(d) => d.candidates(service).await,
            AnyDiscovery::Static(d) => d.candidates(service).await,
        }
    }

    async fn address(&self, candidate: &Candidate) -> Result<IpAddr, DiscoveryError> {
        match self {
            AnyDiscovery::Dns(d) => d.address(candidate).await,
            AnyDiscovery::Static(d) => d.address(candidate).await,
        }
    }
}
