//! Server-to-server Raft RPC.
//!
//! Cairn currently runs a single server, so there is nobody to talk to: every RPC returns
//! [`Unreachable`]. The shape is already the one multi-server mode needs: [`NetworkFactory`]
//! creates one [`PeerClient`] per target from its membership [`BasicNode::addr`]; the HTTP/2 +
//! postcard transport (see DESIGN.md) will replace the bodies of the `RaftNetworkV2` methods
//! with POSTs to `https://<addr>/raft/{append,vote,snapshot}` without touching callers.

use std::future::Future;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};

use crate::types::{NodeId, SnapshotData, TypeConfig};

type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
type Vote = openraft::alias::VoteOf<TypeConfig>;

/// Creates RPC clients for peers.
#[derive(Debug, Clone, Default)]
pub struct NetworkFactory {}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            addr: node.addr.clone(),
        }
    }
}

/// An RPC client for one peer. Today it cannot reach anyone.
#[derive(Debug, Clone)]
pub struct PeerClient {
    target: NodeId,
    addr: String,
}

impl PeerClient {
    fn unreachable(&self) -> Unreachable<TypeConfig> {
        let err = std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "server-to-server RPC is not implemented yet (node {} at {})",
                self.target, self.addr
            ),
        );
        Unreachable::new(&err)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(self.unreachable()))
    }
}
