//! [`RemoteCatalog`]: the [`Catalog`] seam of an agent that holds no Raft log. Writes and
//! barriers go to a server over the catalog protocol; a follower task keeps the local
//! state replica in step with the server's stream of applied entries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_rpc::{Client, Code, RpcError};
use cairn_state::{Command, Outcome, State};
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::protocol::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};
use crate::catalog::{BoxFut, Catalog, CatalogError, ClusterStatus};

/// How long a write or barrier waits for the local replica to reach its index.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The catalog of a client agent, reached through one server.
pub(crate) struct RemoteCatalog {
    client: Client<CatalogRpc>,
    server: SocketAddr,
    applied: watch::Receiver<u64>,
    last_contact: Arc<Mutex<Option<Instant>>>,
    follower: tokio::task::JoinHandle<()>,
}

impl RemoteCatalog {
    /// Starts following `server` into `state` (publishing applied indexes on `applied_tx`)
    /// and returns the seam.
    pub(crate) fn start(
        client: Client<CatalogRpc>,
        server: SocketAddr,
        state: Arc<RwLock<State>>,
        applied_tx: watch::Sender<u64>,
    ) -> Self {
        let applied = applied_tx.subscribe();
        let last_contact = Arc::new(Mutex::new(None));
        let follower = tokio::spawn(follow(
            client.clone(),
            server,
            state,
            applied_tx,
            last_contact.clone(),
        ));
        Self {
            client,
            server,
            applied,
            last_contact,
            follower,
        }
    }

    /// Waits until the local replica has applied `index`.
    async fn caught_up(&self, index: u64) -> Result<(), CatalogError> {
        let mut rx = self.applied.clone();
        let reached = tokio::time::timeout(CATCH_UP, async {
            rx.wait_for(|i| *i >= index).await.is_ok()
        })
        .await;
        if reached == Ok(true) {
            return Ok(());
        }
        Err(CatalogError::Unavailable(format!(
            "the local replica did not reach index {index} within {CATCH_UP:?}"
        )))
    }
}

fn rpc_error(e: RpcError) -> CatalogError {
    match e.status().map(|s| &s.code) {
        Some(Code::NotLeader { leader }) => CatalogError::NotLeader(leader.clone()),
        _ if e.is_not_delivered() => {
            CatalogError::Unavailable(format!("No known Consul servers ({e})"))
        }
        _ => CatalogError::Unavailable(e.to_string()),
    }
}

/// Applies the server's stream to the replica, starting over from a fresh copy after any
/// break (server restart, lag, network), with a growing pause between attempts.
async fn follow(
    client: Client<CatalogRpc>,
    server: SocketAddr,
    state: Arc<RwLock<State>>,
    applied_tx: watch::Sender<u64>,
    last_contact: Arc<Mutex<Option<Instant>>>,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        match client.subscribe(server, CatalogRequest::Follow).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    let index = match item {
                        Ok(ReplicaItem::State(copy)) => {
                            let index = copy.index;
                            state.write().restore(*copy);
                            index
                        }
                        Ok(ReplicaItem::Entry { index, command }) => {
                            let mut st = state.write();
                            if index > st.index {
                                st.apply(index, &command);
                            }
                            index
                        }
                        Err(e) => {
                            tracing::debug!(%server, error = %e, "replica stream ended");
                            break;
                        }
                    };
                    *last_contact.lock() = Some(Instant::now());
                    pause = Duration::from_millis(50);
                    applied_tx.send_if_modified(|cur| {
                        let moved = index != *cur;
                        *cur = index;
                        moved
                    });
                }
            }
            Err(e) => tracing::debug!(%server, error = %e, "cannot follow the catalog"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

impl Catalog for RemoteCatalog {
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), CatalogError>> {
        Box::pin(async move {
            match self
                .client
                .call(self.server, CatalogRequest::Write(Box::new(cmd)))
                .await
                .map_err(rpc_error)?
            {
                CatalogResponse::Written { index, outcome } => {
                    self.caught_up(index).await?;
                    Ok((index, outcome))
                }
                other => Err(CatalogError::Unavailable(format!(
                    "unexpected answer to a write: {other:?}"
                ))),
            }
        })
    }

    fn barrier(&self) -> BoxFut<'_, Result<(), CatalogError>> {
        Box::pin(async move {
            match self
                .client
                .call(self.server, CatalogRequest::Barrier)
                .await
                .map_err(rpc_error)?
            {
                CatalogResponse::Index(index) => self.caught_up(index).await,
                other => Err(CatalogError::Unavailable(format!(
                    "unexpected answer to a barrier: {other:?}"
                ))),
            }
        })
    }

    fn status(&self) -> ClusterStatus {
        let contact = *self.last_contact.lock();
        ClusterStatus {
            leader: contact.map(|_| self.server.to_string()),
            peers: vec![self.server.to_string()],
            is_leader: false,
            last_contact_ms: contact
                .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(u64::MAX),
        }
    }

    fn leadership_is(&self, leader: bool) -> BoxFut<'_, ()> {
        // A client agent never leads.
        Box::pin(async move {
            if leader {
                std::future::pending::<()>().await;
            }
        })
    }

    fn stopped(&self) -> BoxFut<'_, String> {
        Box::pin(std::future::pending())
    }

    fn shutdown(&self) -> BoxFut<'_, ()> {
        self.follower.abort();
        Box::pin(async {})
    }
}
