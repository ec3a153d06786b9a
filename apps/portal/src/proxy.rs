//! Carries out one proxied request: discover the instances, order them
//! ([`crate::plan`]), call them one after another until one answers, and
//! report which instance did.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::discovery::{Discovery, DiscoveryError};
use crate::plan::attempt_order;

/// The most bytes read from a back end's answer.
pub const MAX_BODY: usize = 256 * 1024;

/// The instance that answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// The node name (or address) of the SRV target.
    pub node: String,
    /// The address called.
    pub address: String,
    /// The port called.
    pub port: u16,
}

/// A back end's answer.
#[derive(Debug)]
pub struct Answered {
    /// Its HTTP status (below 500).
    pub status: u16,
    /// Its body.
    pub body: bytes::Bytes,
    /// Who answered.
    pub instance: Instance,
    /// The instances that failed before it, as `address:port: error`.
    pub failed: Vec<String>,
}

/// Why no back end answered.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Discovery itself failed.
    #[error("discovery of {service} failed: {source}")]
    Discovery {
        /// The service name asked.
        service: String,
        /// The cause.
        source: DiscoveryError,
    },
    /// Discovery found no instance.
    #[error("no healthy instance of {0}")]
    NoInstance(String),
    /// Every instance tried failed.
    #[error("no instance of {service} answered: {}", failed.join("; "))]
    AllFailed {
        /// The service name asked.
        service: String,
        /// What went wrong with each.
        failed: Vec<String>,
    },
}

/// Calls back ends over HTTP/1.1 with pooled keep-alive connections
/// (hyper's client: the proxy hop is on every request's path).
#[derive(Debug, Clone)]
pub struct Caller {
    client: Client<HttpConnector, Empty<bytes::Bytes>>,
    timeout: Duration,
}

impl Caller {
    /// A pooled keep-alive client with the given per-call timeout.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Self { client, timeout }
    }

    async fn call(&self, addr: SocketAddr, path: &str) -> Result<(u16, bytes::Bytes), String> {
        let uri: hyper::Uri = format!("http://{addr}{path}")
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
        let exchange = async {
            let resp = self.client.get(uri).await.map_err(|e| format!("{e:?}"))?;
            let status = resp.status().as_u16();
            if status >= 500 {
                return Err(format!("status {status}"));
            }
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("answer unreadable or larger than {MAX_BODY} bytes: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}

/// Finds `service` through `discovery` and GETs `path` from its instances
/// until one answers below 500.
pub async fn forward<D: Discovery>(
    discovery: &D,
    caller: &Caller,
    service: &str,
    path: &str,
) -> Result<Answered, ProxyError> {
    let candidates =
        discovery
            .candidates(service)
            .await
            .map_err(|source| ProxyError::Discovery {
                service: service.to_string(),
                source,
            })?;
    if candidates.is_empty() {
        return Err(ProxyError::NoInstance(service.to_string()));
    }
    let plan = attempt_order(candidates, &mut rand::rng());
    let mut failed = Vec::new();
    for cand in plan {
        let ip = match discovery.address(&cand).await {
            Ok(ip) => ip,
            Err(e) => {
                failed.push(format!("{}:{}: {e}", cand.target, cand.port));
                continue;
            }
        };
        let addr = SocketAddr::new(ip, cand.port);
        match caller.call(addr, path).await {
            Ok((status, body)) => {
                return Ok(Answered {
                    status,
                    body,
                    instance: Instance {
                        node: cand.node(Some(ip)),
                        address: ip.to_string(),
                        port: cand.port,
                    },
                    failed,
                })
            }
            Err(e) => failed.push(format!("{addr}: {e}")),
        }
    }
    Err(ProxyError::AllFailed {
        service: service.to_string(),
        failed,
    })
}
