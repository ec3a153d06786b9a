//! Server-to-server Raft RPC: openraft's network over a [`cairn_rpc::Client`] of
//! [`RaftRpc`], so the same code runs over TCP and over the in-process network.
//!
//! [`NetworkFactory`] creates one [`PeerClient`] per target from its membership
//! [`BasicNode::addr`] (a socket address). Without a client (a single server started with
//! [`crate::RaftNode::start`]) every peer is unreachable, which a one-member cluster never
//! notices.
//!
//! Bounded sizes: a batch of entries whose encoding exceeds the request limit is cut to the
//! prefix that fits, and openraft is told of the partial success (it sends the rest next);
//! snapshots go in chunks (see [`crate::protocol`]).
//!
//! Errors map onto what openraft does with them: a broken connection is a `NetworkError`
//! (retried at once), a deadline is `Timeout`, and the rest (nobody there, a partition, a
//! peer that refused or could not read the call) is `Unreachable`, so openraft backs off.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use cairn_rpc::{CallOptions, Client, Codec, Direction, PostcardCodec, RpcError};
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};

use crate::protocol::{
    RaftRequest, RaftResponse, RaftRpc, SnapshotChunk, MAX_MESSAGE_BYTES, SNAPSHOT_CHUNK_BYTES,
};
use crate::snapshot_transfer::split;
use crate::types::{NodeId, SnapshotData, TypeConfig};

type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// The least time given to a call that carries data (entries, a snapshot chunk). openraft's
/// budget for an AppendEntries is the heartbeat interval (50-500 ms), fine for a heartbeat but
/// too short to encode, ship, decode and fsync megabytes on a busy host: a batch that always
/// times out would be retried for ever and the follower would never catch up. openraft does
/// not cut calls itself, so the transport's deadline is the only one.
pub const MIN_TRANSFER_TIMEOUT: Duration = Duration::from_secs(10);
type Vote = openraft::alias::VoteOf<TypeConfig>;

/// Creates RPC clients for peers.
#[derive(Clone, Default)]
pub struct NetworkFactory {
    me: NodeId,
    client: Option<Client<RaftRpc>>,
}

impl NetworkFactory {
    /// Peers are reached through `client`; `me` is this node's id (for error reports).
    pub fn new(me: NodeId, client: Client<RaftRpc>) -> Self {
        NetworkFactory {
            me,
            client: Some(client),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerClient {
            me: self.me,
            target,
            addr: node.addr.clone(),
            client: self.client.clone(),
        }
    }
}

/// An RPC client for one peer.
#[derive(Clone)]
pub struct PeerClient {
    me: NodeId,
    target: NodeId,
    addr: String,
    client: Option<Client<RaftRpc>>,
}

/// Why a call did not produce a usable answer, before it is shaped into openraft's error
/// types (which differ per call).
enum Failure {
    Unreachable(String),
    /// The request was over the size limit of `limit` bytes (refused before it was
    /// processed).
    TooLarge {
        message: String,
        limit: usize,
    },
    Timeout,
    Network(String),
}

impl Failure {
    fn from_rpc(e: RpcError) -> Self {
        match &e {
            RpcError::Timeout { .. } => Failure::Timeout,
            RpcError::TooLarge {
                direction: Direction::Request,
                limit,
                ..
            } => Failure::TooLarge {
                message: e.to_string(),
                limit: usize::try_from(*limit).unwrap_or(usize::MAX),
            },
            // A transient break: the next attempt may well succeed.
            RpcError::ConnectionLost { .. } => Failure::Network(e.to_string()),
            // Nobody there, or a peer that refused (its Raft stopped, it does not serve this
            // protocol, it could not read us): retrying at once would spin, so back off.
            RpcError::Unreachable { .. }
            | RpcError::Remote(_)
            | RpcError::Decode { .. }
            | RpcError::TooLarge { .. } => Failure::Unreachable(e.to_string()),
        }
    }

    fn rpc(self, p: &PeerClient, action: RPCTypes, option: &RPCOption) -> RPCError<TypeConfig> {
        match self {
            Failure::Unreachable(m) => RPCError::Unreachable(Unreachable::from_string(m)),
            Failure::Timeout => RPCError::Timeout(p.timeout(action, option)),
            Failure::Network(m) | Failure::TooLarge { message: m, .. } => {
                RPCError::Network(NetworkError::from_string(m))
            }
        }
    }

    fn streaming(self, p: &PeerClient, option: &RPCOption) -> StreamingError<TypeConfig> {
        match self {
            Failure::Unreachable(m) => StreamingError::Unreachable(Unreachable::from_string(m)),
            Failure::Timeout => {
                StreamingError::Timeout(p.timeout(RPCTypes::InstallSnapshot, option))
            }
            Failure::Network(m) | Failure::TooLarge { message: m, .. } => {
                StreamingError::Network(NetworkError::from_string(m))
            }
        }
    }
}

fn unexpected(resp: &RaftResponse, wanted: &str) -> Failure {
    Failure::Network(format!(
        "peer answered {} to {wanted} (protocol mismatch)",
        resp.kind()
    ))
}

impl PeerClient {
    fn timeout(&self, action: RPCTypes, option: &RPCOption) -> Timeout<TypeConfig> {
        Timeout {
            action,
            id: self.me,
            target: self.target,
            timeout: option.hard_ttl(),
        }
    }

    async fn call(&self, req: RaftRequest, timeout: Duration) -> Result<RaftResponse, Failure> {
        let Some(client) = &self.client else {
            return Err(Failure::Unreachable(format!(
                "this server has no server-to-server transport (node {} at {})",
                self.target, self.addr
            )));
        };
        let addr: SocketAddr = self.addr.parse().map_err(|e| {
            Failure::Unreachable(format!(
                "node {} has an invalid RPC address {:?}: {e}",
                self.target, self.addr
            ))
        })?;
        client
            .call_with(addr, req, CallOptions::timeout(timeout))
            .await
            .map_err(Failure::from_rpc)
    }

    async fn send_append(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: &RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, Failure> {
        // A heartbeat gets openraft's budget; a batch at least MIN_TRANSFER_TIMEOUT.
        let timeout = if rpc.entries.is_empty() {
            option.hard_ttl()
        } else {
            option.hard_ttl().max(MIN_TRANSFER_TIMEOUT)
        };
        match self
            .call(RaftRequest::AppendEntries(Box::new(rpc)), timeout)
            .await?
        {
            RaftResponse::AppendEntries(r) => Ok(r),
            other => Err(unexpected(&other, "AppendEntries")),
        }
    }
}

/// The longest prefix of `entries` whose encoding fits in `budget` bytes (at least one entry
/// is always returned; the transport refuses it if that alone is too big).
fn prefix_that_fits(rpc: &AppendEntriesRequest<TypeConfig>, budget: usize) -> usize {
    let mut used = 0;
    for (i, e) in rpc.entries.iter().enumerate() {
        used += <PostcardCodec as Codec>::encode(e)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if used > budget {
            return i.max(1);
        }
    }
    rpc.entries.len()
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let action = RPCTypes::AppendEntries;
        let mut rpc = rpc;
        // The common case: the batch fits. Only a batch the transport refuses as too large
        // (locally, before sending) is measured and cut.
        let whole = rpc.clone();
        let limit = match self.send_append(whole, &option).await {
            Err(Failure::TooLarge { message, limit }) if rpc.entries.len() > 1 => {
                tracing::debug!(target = self.target, error = %message, "cutting an AppendEntries batch");
                limit
            }
            other => return other.map_err(|f| f.rpc(self, action, &option)),
        };
        // Half the limit leaves room for the envelope and JSON's escaping.
        let n = prefix_that_fits(&rpc, limit.min(MAX_MESSAGE_BYTES) / 2);
        rpc.entries.truncate(n);
        let last = rpc.entries.last().map(|e| e.log_id);
        match self.send_append(rpc, &option).await {
            Ok(AppendEntriesResponse::Success) => Ok(AppendEntriesResponse::PartialSuccess(last)),
            other => other.map_err(|f| f.rpc(self, action, &option)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(RaftResponse::Vote(r)) => Ok(r),
            Ok(other) => Err(unexpected(&other, "Vote").rpc(self, RPCTypes::Vote, &option)),
            Err(f) => Err(f.rpc(self, RPCTypes::Vote, &option)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::PreVote(rpc), option.hard_ttl())
            .await
        {
            Ok(RaftResponse::Vote(r)) => Ok(r),
            Ok(other) => Err(unexpected(&other, "PreVote").rpc(self, RPCTypes::Vote, &option)),
            Err(f) => Err(f.rpc(self, RPCTypes::Vote, &option)),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let action = RPCTypes::TransferLeader;
        match self
            .call(RaftRequest::TransferLeader(req), option.hard_ttl())
            .await
        {
            Ok(RaftResponse::TransferLeader(r)) => Ok(r),
            Ok(other) => Err(unexpected(&other, "TransferLeader").rpc(self, action, &option)),
            Err(f) => Err(f.rpc(self, action, &option)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let text = std::str::from_utf8(&snapshot.snapshot).map_err(|e| {
            StreamingError::Network(NetworkError::from_string(format!(
                "snapshot is not UTF-8 JSON: {e}"
            )))
        })?;
        let chunks = split(text, SNAPSHOT_CHUNK_BYTES);
        let total = chunks.len();
        let send = async {
            let mut offset = 0u64;
            for (i, data) in chunks.into_iter().enumerate() {
                let len = data.len() as u64;
                let chunk = SnapshotChunk {
                    vote,
                    meta: snapshot.meta.clone(),
                    offset,
                    data: data.to_string(),
                    done: i + 1 == total,
                };
                match self
                    .call(
                        RaftRequest::SnapshotChunk(Box::new(chunk)),
                        option.hard_ttl().max(MIN_TRANSFER_TIMEOUT),
                    )
                    .await
                {
                    Ok(RaftResponse::ChunkStored) if i + 1 < total => {}
                    // After the last chunk; or early, from a peer with a newer vote.
                    Ok(RaftResponse::Snapshot(r)) => return Ok(r),
                    Ok(other) => return Err(unexpected(&other, "SnapshotChunk")),
                    Err(f) => return Err(f),
                }
                offset += len;
            }
            Err(Failure::Network("empty snapshot transfer".to_string()))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = send => r.map_err(|f| f.streaming(self, &option)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_map_to_what_openraft_should_do() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let kind = |e: RpcError| match Failure::from_rpc(e) {
            Failure::Unreachable(_) => "back off",
            Failure::TooLarge { .. } => "cut the batch",
            Failure::Timeout => "timeout",
            Failure::Network(_) => "retry",
        };
        let too_large = |direction| RpcError::TooLarge {
            direction,
            len: 10,
            limit: 5,
        };
        assert_eq!(kind(too_large(Direction::Request)), "cut the batch");
        assert_eq!(kind(too_large(Direction::Response)), "back off");
        assert_eq!(
            kind(RpcError::Unreachable {
                addr: peer,
                reason: "partitioned".into()
            }),
            "back off"
        );
        assert_eq!(
            kind(RpcError::Remote(cairn_rpc::Status::unimplemented(
                "no raft here"
            ))),
            "back off"
        );
        assert_eq!(
            kind(RpcError::ConnectionLost {
                addr: peer,
                reason: "reset".into()
            }),
            "retry"
        );
        assert_eq!(kind(RpcError::Timeout { request_sent: true }), "timeout");
    }

    async fn vote_error(mut factory: NetworkFactory, addr: &str) -> String {
        let mut peer = factory.new_client(2, &BasicNode::new(addr)).await;
        let req = VoteRequest::new(openraft::alias::VoteOf::<TypeConfig>::new(1, 1), None);
        let option = RPCOption::new(Duration::from_millis(200));
        match peer.vote(req, option).await {
            Err(RPCError::Unreachable(e)) => e.to_string(),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn peers_that_cannot_be_called_are_unreachable() {
        let net = cairn_rpc::Network::new(1);
        let client = Client::new(net.client::<RaftRpc>(
            "127.0.0.1:8300".parse().unwrap(),
            cairn_rpc::ClientConfig::default(),
        ));
        let with_client = NetworkFactory::new(1, client);
        let e = vote_error(with_client.clone(), "server-2.internal:8300").await;
        assert!(e.contains("invalid RPC address"), "{e}");
        let e = vote_error(with_client, "127.0.0.2:8300").await;
        assert!(e.contains("no server at this address"), "{e}");
        let e = vote_error(NetworkFactory::default(), "127.0.0.2:8300").await;
        assert!(e.contains("no server-to-server transport"), "{e}");
    }
}
