//! [`RemoteCatalog`]: the [`Catalog`] seam of an agent that holds no Raft log. Writes and
//! barriers go to a server over the catalog protocol; a follower task keeps the local
//! state replica in step with the server's stream of applied entries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_rpc::{Client, Code, RpcError};
use cairn_state::{Command, Outcome, State};
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::servers::{Server, Servers};
use crate::catalog::{BoxFut, Catalog, CatalogError, ClusterStatus, ReadMode};
use cairn_server::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};

/// How long a write or barrier waits for the local replica to reach its index.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The catalog of a client agent, reached through one server at a time.
pub(crate) struct RemoteCatalog {
    client: Client<CatalogRpc>,
    servers: Arc<dyn Servers>,
    applied: watch::Receiver<u64>,
    link: Arc<Link>,
    follower: tokio::task::JoinHandle<()>,
}

/// The follower's view of its server, shared with the seam.
#[derive(Default)]
struct Link {
    /// The server whose stream feeds the replica, while that stream is up.
    following: Mutex<Option<Server>>,
    /// When the stream last delivered something, and how long before that the server
    /// had last heard from the leader (0 for entries: they come from the leader).
    last_contact: Mutex<Option<(Instant, u64)>>,
    /// The leader and voters as the followed server last told.
    leader: Mutex<(Option<String>, Vec<String>)>,
}

const NO_SERVERS: &str = "No known Consul servers";

impl RemoteCatalog {
    /// Starts following a server from `servers` into `state` as node `node` (publishing
    /// applied indexes on `applied_tx`) and returns the seam.
    pub(crate) fn start(
        client: Client<CatalogRpc>,
        servers: Arc<dyn Servers>,
        node: String,
        state: Arc<RwLock<State>>,
        applied_tx: watch::Sender<u64>,
    ) -> Self {
        let applied = applied_tx.subscribe();
        let link = Arc::new(Link::default());
        let follower = tokio::spawn(follow(
            client.clone(),
            servers.clone(),
            node,
            state,
            applied_tx,
            link.clone(),
        ));
        Self {
            client,
            servers,
            applied,
            link,
            follower,
        }
    }

    /// Waits until the local replica has applied `index`.
    async fn caught_up(&self, index: u64) -> Result<(), CatalogError> {
        cairn_server::catalog::applied_reaches(&self.applied, index, CATCH_UP).await
    }

    async fn call(&self, req: CatalogRequest) -> Result<CatalogResponse, CatalogError> {
        call(&self.client, &*self.servers, req).await
    }

    /// Milliseconds since the followed server last heard from the leader, as it reported
    /// then plus the time since (`u64::MAX` before the first report).
    fn last_contact_ms(&self) -> u64 {
        self.link
            .last_contact
            .lock()
            .map(|(t, before)| {
                let since = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                since.saturating_add(before)
            })
            .unwrap_or(u64::MAX)
    }
}

/// Sends a unary request to the current server; a request that was not delivered (the
/// server is gone) is tried once more on another server. When no server is left, the
/// error says why the last one failed (unreachable, or refused by TLS).
async fn call(
    client: &Client<CatalogRpc>,
    servers: &dyn Servers,
    req: CatalogRequest,
) -> Result<CatalogResponse, CatalogError> {
    let mut last = None;
    loop {
        let Some(server) = servers.pick() else {
            return Err(match last {
                Some(e) => rpc_error(e),
                None => CatalogError::Unavailable(NO_SERVERS.into()),
            });
        };
        match client.call(server.1, req.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_not_delivered() && last.is_none() => {
                tracing::debug!(server = %server.0, error = %e, "server unreachable; trying another");
                servers.failed(&server);
                last = Some(e);
            }
            Err(e) => {
                if e.is_not_delivered() {
                    servers.failed(&server);
                }
                return Err(rpc_error(e));
            }
        }
    }
}

fn rpc_error(e: RpcError) -> CatalogError {
    match e.status().map(|s| &s.code) {
        Some(Code::NotLeader { leader }) => CatalogError::NotLeader(leader.clone()),
        _ if e.is_not_delivered() => CatalogError::Unavailable(format!("{NO_SERVERS} ({e})")),
        _ => CatalogError::Unavailable(e.to_string()),
    }
}

/// Applies a server's stream to the replica, starting over from a fresh copy (from the
/// same server or, if it is gone, another) after any break, with a growing pause
/// between attempts.
async fn follow(
    client: Client<CatalogRpc>,
    servers: Arc<dyn Servers>,
    node: String,
    state: Arc<RwLock<State>>,
    applied_tx: watch::Sender<u64>,
    link: Arc<Link>,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(server) = servers.pick() else {
            // Nobody to follow yet: wait for the pool to show a server.
            let _ = tokio::time::timeout(Duration::from_secs(1), servers.changed()).await;
            continue;
        };
        let req = CatalogRequest::Follow { node: node.clone() };
        match client.subscribe(server.1, req).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    let index = match item {
                        Ok(ReplicaItem::State(copy)) => {
                            let index = copy.index;
                            state.write().restore(*copy);
                            *link.following.lock() = Some(server.clone());
                            tracing::info!(server = %server.0, index, "following the catalog");
                            index
                        }
                        Ok(ReplicaItem::Entry { index, command }) => {
                            let mut st = state.write();
                            if index > st.index {
                                st.apply(index, &command);
                            }
                            index
                        }
                        Ok(ReplicaItem::Leader {
                            leader,
                            peers,
                            last_contact_ms,
                        }) => {
                            *link.leader.lock() = (leader, peers);
                            *link.last_contact.lock() = Some((Instant::now(), last_contact_ms));
                            continue;
                        }
                        Err(e) => {
                            tracing::debug!(server = %server.0, error = %e, "replica stream ended");
                            break;
                        }
                    };
                    *link.last_contact.lock() = Some((Instant::now(), 0));
                    pause = Duration::from_millis(50);
                    applied_tx.send_if_modified(|cur| {
                        let moved = index != *cur;
                        *cur = index;
                        moved
                    });
                }
                // The stream broke: the server may be gone. Look elsewhere next time
                // (the pool is hinted, so a dead server is known within a second or so).
                *link.following.lock() = None;
                tracing::warn!(server = %server.0, "lost the catalog stream from the server; reconnecting");
                servers.failed(&server);
            }
            Err(e) => {
                tracing::debug!(server = %server.0, error = %e, "cannot follow the catalog");
                if e.is_not_delivered() {
                    servers.failed(&server);
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

impl Catalog for RemoteCatalog {
    fn write(&self, cmd: Command) -> BoxFut<'_, Result<(u64, Outcome), CatalogError>> {
        Box::pin(async move {
            match self.call(CatalogRequest::Write(Box::new(cmd))).await? {
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

    fn barrier(&self, mode: ReadMode) -> BoxFut<'_, Result<(), CatalogError>> {
        Box::pin(async move {
            match self.call(CatalogRequest::Barrier(mode)).await? {
                CatalogResponse::Index(index) => self.caught_up(index).await,
                other => Err(CatalogError::Unavailable(format!(
                    "unexpected answer to a barrier: {other:?}"
                ))),
            }
        })
    }

    fn ready(&self) -> Result<(), CatalogError> {
        if self.link.following.lock().is_some() {
            Ok(())
        } else {
            Err(CatalogError::Unavailable(NO_SERVERS.into()))
        }
    }

    fn status(&self) -> ClusterStatus {
        let following = self.link.following.lock().clone();
        let (leader, peers) = match following {
            Some(_) => self.link.leader.lock().clone(),
            None => (None, Vec::new()),
        };
        ClusterStatus {
            leader,
            peers,
            is_leader: false,
            last_contact_ms: self.last_contact_ms(),
        }
    }

    fn leader_contact(&self) -> (bool, u64) {
        let known = self.link.following.lock().is_some() && self.link.leader.lock().0.is_some();
        (known, self.last_contact_ms())
    }

    fn session_renewed(&self, id: &str) {
        // Fire and forget: a lost renewal is caught by the client's next one, as with
        // any TTL.
        let (client, servers) = (self.client.clone(), self.servers.clone());
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(e) = call(&client, &*servers, CatalogRequest::RenewSession(id.clone())).await
            {
                tracing::warn!(session = %id, "forwarding a session renewal failed: {e}");
            }
        });
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

    fn operator(
        &self,
        req: cairn_server::OperatorRequest,
    ) -> BoxFut<'_, Result<cairn_server::OperatorResponse, CatalogError>> {
        Box::pin(async move {
            match self.call(CatalogRequest::Operator(req)).await? {
                CatalogResponse::Operator(r) => Ok(r),
                other => Err(CatalogError::Unavailable(format!(
                    "unexpected answer to an operator request: {other:?}"
                ))),
            }
        })
    }
}
