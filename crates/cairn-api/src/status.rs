//! The cluster's status (`/v1/status/leader`, `/v1/status/peers`) and snapshots
//! (`/v1/snapshot`: save an archive and restore one).

use reqwest::Method;

use crate::client::{index_of, Body, Client};
use crate::encode::Query;
use crate::error::ApiError;

impl Client {
    /// `GET /v1/status/leader`: the leader's RPC address, empty when there is none.
    pub async fn status_leader(&self) -> Result<String, ApiError> {
        Ok(self
            .get_json::<Option<String>>("/v1/status/leader")
            .await?
            .unwrap_or_default())
    }

    /// `GET /v1/status/peers`: the Raft peers' RPC addresses.
    pub async fn status_peers(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .get_json::<Option<Vec<String>>>("/v1/status/peers")
            .await?
            .unwrap_or_default())
    }

    /// `GET /v1/snapshot[?stale]`: the archive's bytes and `X-Consul-Index`.
    pub async fn snapshot_save(&self, stale: bool) -> Result<(Vec<u8>, u64), ApiError> {
        let path = Query::new().flag_if("stale", stale).to_path("/v1/snapshot");
        let resp = self.send_ok(Method::GET, &path, Body::None).await?;
        let index = index_of(&resp);
        let url = self.url(&path);
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ApiError::Transport { url, source })?;
        Ok((bytes.to_vec(), index))
    }

    /// `PUT /v1/snapshot` with an archive from [`Client::snapshot_save`].
    pub async fn snapshot_restore(&self, archive: Vec<u8>) -> Result<(), ApiError> {
        self.send_ok(Method::PUT, "/v1/snapshot", Body::Raw(archive))
            .await
            .map(|_| ())
    }
}
