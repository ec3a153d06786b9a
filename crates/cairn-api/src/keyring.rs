//! `/v1/operator/keyring`: the gossip encryption keyring of every member of the pool —
//! list, install, use (make primary) and remove, as Consul's `keyring` command uses it.

use cairn_types::KeyringResponse;
use serde_json::json;

use crate::client::Client;
use crate::encode::Query;
use crate::error::ApiError;

fn path(relay_factor: u8, local_only: bool) -> String {
    Query::new()
        .opt("relay-factor", (relay_factor > 0).then_some(relay_factor))
        .flag_if("local-only", local_only)
        .to_path("/v1/operator/keyring")
}

impl Client {
    /// `GET /v1/operator/keyring`: every pool's keys and how many members hold each.
    pub async fn keyring_list(
        &self,
        relay_factor: u8,
        local_only: bool,
    ) -> Result<Vec<KeyringResponse>, ApiError> {
        self.get_json(&path(relay_factor, local_only)).await
    }

    /// `POST /v1/operator/keyring`: installs `key` on every member.
    pub async fn keyring_install(&self, key: &str, relay_factor: u8) -> Result<(), ApiError> {
        self.post_json(&path(relay_factor, false), &json!({ "Key": key }))
            .await
    }

    /// `PUT /v1/operator/keyring`: makes the installed `key` the primary on every member.
    pub async fn keyring_use(&self, key: &str, relay_factor: u8) -> Result<(), ApiError> {
        self.put_json(&path(relay_factor, false), &json!({ "Key": key }))
            .await
    }

    /// `DELETE /v1/operator/keyring`: removes `key` (not the primary) from every member.
    pub async fn keyring_remove(&self, key: &str, relay_factor: u8) -> Result<(), ApiError> {
        self.delete_with_json(&path(relay_factor, false), &json!({ "Key": key }))
            .await
    }
}
