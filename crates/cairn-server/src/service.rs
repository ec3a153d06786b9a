//! The server side of the catalog protocol ([`crate::protocol`]), over the local Raft
//! node: forwarded writes and session renewals, the consistency barrier, and the stream of
//! applied entries that client agents follow into their replicas.

use std::sync::Arc;

use cairn_gossip::Gossip;
use cairn_rpc::{CallContext, ItemStream, Service, Status};
use cairn_state::State;
use futures::StreamExt;
use parking_lot::RwLock;

use crate::catalog::{Catalog, CatalogError, ServerCatalog};
use crate::protocol::{CatalogRequest, CatalogResponse, CatalogRpc, ReplicaItem};

/// Serves writes, barriers and the applied-entry stream of one server. Requests from
/// client agents go through the server's [`ServerCatalog`], which forwards them to the
/// leader when this server does not lead; requests another server forwarded are handled
/// here or refused with `NotLeader`.
pub struct CatalogService {
    pub catalog: Arc<ServerCatalog>,
    pub state: Arc<RwLock<State>>,
    /// The LAN pool, hinted when a follower's stream breaks (none in some tests).
    pub gossip: Option<Arc<Gossip>>,
}

/// How often a follower's stream checks whether the leader changed.
const LEADER_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// The longest a follower's stream stays silent: after that it carries a `Leader` item
/// even if nothing changed, so the follower can tell a quiet catalog from a dead link
/// (its `X-Consul-LastContact` and `max_stale` rest on it).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// The state of one follower's stream.
struct Follow {
    rx: tokio::sync::broadcast::Receiver<cairn_raft::AppliedEntry>,
    _guard: HintOnDrop,
    catalog: Arc<ServerCatalog>,
    /// The leader and peers last sent.
    told: Option<(Option<String>, Vec<String>)>,
    tick: tokio::time::Interval,
    /// When the stream last carried anything.
    sent: tokio::time::Instant,
}

/// Dropped with a follower's stream: the connection to that node broke (or it left), so
/// the pool probes it at once rather than at its turn.
struct HintOnDrop {
    gossip: Option<Arc<Gossip>>,
    node: String,
}

impl Drop for HintOnDrop {
    fn drop(&mut self) {
        let (Some(gossip), false) = (self.gossip.clone(), self.node.is_empty()) else {
            return;
        };
        let node = std::mem::take(&mut self.node);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = gossip.hint_suspect(&node).await;
            });
        }
    }
}

fn status(e: CatalogError) -> Status {
    match e {
        CatalogError::NotLeader(leader) => Status::not_leader(leader),
        CatalogError::NoLeader => Status::unavailable("No cluster leader"),
        other => Status::unavailable(other.to_string()),
    }
}

impl CatalogService {
    async fn handle(
        &self,
        req: CatalogRequest,
        forwarded: bool,
    ) -> Result<CatalogResponse, CatalogError> {
        let c = &self.catalog;
        match req {
            CatalogRequest::Write(cmd) => {
                let (index, outcome) = if forwarded {
                    c.write_here(*cmd).await?
                } else {
                    c.write(*cmd).await?
                };
                Ok(CatalogResponse::Written { index, outcome })
            }
            CatalogRequest::Barrier(mode) => {
                if forwarded {
                    Ok(CatalogResponse::Index(c.barrier_here(mode).await?))
                } else {
                    c.barrier(mode).await?;
                    Ok(CatalogResponse::Index(self.state.read().index))
                }
            }
            CatalogRequest::RenewSession(id) => {
                if forwarded {
                    c.renew_here(&id)?;
                } else {
                    c.session_renewed(&id);
                }
                Ok(CatalogResponse::Done)
            }
            CatalogRequest::Forwarded(_) => Err(CatalogError::Unavailable(
                "a forwarded request cannot be forwarded again".into(),
            )),
            CatalogRequest::Follow { .. } => {
                Err(CatalogError::Unavailable("Follow is a stream call".into()))
            }
        }
    }
}

impl Service<CatalogRpc> for CatalogService {
    async fn unary(
        &self,
        _ctx: CallContext,
        req: CatalogRequest,
    ) -> Result<CatalogResponse, Status> {
        match req {
            CatalogRequest::Follow { .. } => {
                Err(Status::invalid_argument("Follow is a stream call"))
            }
            CatalogRequest::Forwarded(inner) => self.handle(*inner, true).await.map_err(status),
            other => self.handle(other, false).await.map_err(status),
        }
    }

    async fn stream(
        &self,
        _ctx: CallContext,
        req: CatalogRequest,
    ) -> Result<ItemStream<ReplicaItem>, Status> {
        let CatalogRequest::Follow { node } = req else {
            return Err(Status::invalid_argument("only Follow is a stream call"));
        };
        let guard = HintOnDrop {
            gossip: self.gossip.clone(),
            node,
        };
        // Subscribe first, then copy: every entry after the copy is in the channel.
        let rx = self.catalog.raft.subscribe_applied();
        let copy = self.state.read().clone();
        let from = copy.index;
        let head = futures::stream::once(async move { Ok(ReplicaItem::State(Box::new(copy))) });
        let follow = Follow {
            rx,
            _guard: guard,
            catalog: self.catalog.clone(),
            told: None,
            tick: tokio::time::interval(LEADER_CHECK),
            sent: tokio::time::Instant::now(),
        };
        let entries = futures::stream::unfold(follow, move |mut f| async move {
            loop {
                tokio::select! {
                    got = f.rx.recv() => match got {
                        Ok((index, _)) if index <= from => continue,
                        Ok((index, cmd)) => {
                            let item = ReplicaItem::Entry {
                                index,
                                command: Box::new((*cmd).clone()),
                            };
                            f.sent = tokio::time::Instant::now();
                            return Some((Ok(item), f));
                        }
                        // Too far behind: end the stream; the follower starts over from a copy.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            return Some((
                                Err(Status::unavailable(format!(
                                    "follower fell {n} entries behind; resubscribe"
                                ))),
                                f,
                            ))
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = f.tick.tick() => {
                        // Tell the follower who leads whenever that changes, and that
                        // the link is alive when it has been quiet for a while.
                        let st = f.catalog.status();
                        let now = (st.leader.clone(), st.peers.clone());
                        if f.told.as_ref() != Some(&now) || f.sent.elapsed() >= HEARTBEAT {
                            f.told = Some(now);
                            f.sent = tokio::time::Instant::now();
                            let item = ReplicaItem::Leader {
                                leader: st.leader,
                                peers: st.peers,
                                last_contact_ms: st.last_contact_ms,
                            };
                            return Some((Ok(item), f));
                        }
                    }
                }
            }
        });
        Ok(head.chain(entries).boxed())
    }
}
