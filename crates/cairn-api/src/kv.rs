//! The `/v1/kv/*` endpoints: reads (with `X-Consul-Index`, raw values, listings and key
//! listings), writes with check-and-set and flags, and deletes. Keys are percent-encoded
//! path segment by path segment; values travel base64-encoded in JSON and raw in bodies.

use reqwest::{Method, StatusCode};

use crate::client::{
    check_status, decode, index_of, read_limited, Body, Client, MAX_RESPONSE_BYTES,
};
use crate::encode::{encode_key_path, Query};
use crate::error::ApiError;
use crate::types::KvPair;

impl Client {
    fn kv_path(key: &str) -> String {
        format!("/v1/kv/{}", encode_key_path(key))
    }

    /// `GET /v1/kv/:key`; `None` when the key does not exist.
    pub async fn kv_get(&self, key: &str) -> Result<Option<KvPair>, ApiError> {
        Ok(self.kv_get_with_index(key).await?.0)
    }

    /// `GET /v1/kv/:key` returning `X-Consul-Index` too (present on 404 as well).
    pub async fn kv_get_with_index(&self, key: &str) -> Result<(Option<KvPair>, u64), ApiError> {
        let resp = self
            .send(Method::GET, &Self::kv_path(key), Body::None)
            .await?;
        let index = index_of(&resp);
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok((None, index));
        }
        let pairs: Vec<KvPair> = decode(check_status(resp).await?).await?;
        // A plain GET returns exactly the key; guard against servers answering a prefix.
        let want = key.strip_prefix('/').unwrap_or(key);
        let pair = pairs
            .iter()
            .position(|p| p.key == want)
            .map(|i| pairs[i].clone())
            .or_else(|| pairs.into_iter().next());
        Ok((pair, index))
    }

    /// `GET /v1/kv/:key?raw`: just the value bytes; `None` when the key does not exist.
    pub async fn kv_get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let path = Query::new().flag("raw").to_path(&Self::kv_path(key));
        match self.send_optional(&path).await? {
            None => Ok(None),
            Some(resp) => Ok(Some(read_limited(resp, MAX_RESPONSE_BYTES).await?)),
        }
    }

    /// `GET /v1/kv/:prefix?recurse`: every pair under `prefix` (empty when none).
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<KvPair>, ApiError> {
        let path = Query::new().flag("recurse").to_path(&Self::kv_path(prefix));
        match self.send_optional(&path).await? {
            None => Ok(Vec::new()),
            Some(resp) => decode(resp).await,
        }
    }

    /// `GET /v1/kv/:prefix?keys[&separator=]`: the key names under `prefix`, rolled up at
    /// `separator` when given (empty when none).
    pub async fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        let path = Query::new()
            .flag("keys")
            .opt("separator", separator.filter(|s| !s.is_empty()))
            .to_path(&Self::kv_path(prefix));
        match self.send_optional(&path).await? {
            None => Ok(Vec::new()),
            Some(resp) => decode::<Option<Vec<String>>>(resp)
                .await
                .map(Option::unwrap_or_default),
        }
    }

    /// `PUT /v1/kv/:key[?flags=][&cas=]` with the raw value. Returns the server's verdict:
    /// `false` when a check-and-set did not apply.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        flags: Option<u64>,
        cas: Option<u64>,
    ) -> Result<bool, ApiError> {
        let path = Query::new()
            .opt("flags", flags)
            .opt("cas", cas)
            .to_path(&Self::kv_path(key));
        let resp = self
            .send_ok(Method::PUT, &path, Body::Raw(value.to_vec()))
            .await?;
        decode(resp).await
    }

    /// `DELETE /v1/kv/:key[?recurse]`.
    pub async fn kv_delete(&self, key: &str, recurse: bool) -> Result<bool, ApiError> {
        let path = Query::new()
            .flag_if("recurse", recurse)
            .to_path(&Self::kv_path(key));
        self.kv_delete_path(&path).await
    }

    /// `DELETE /v1/kv/:key?cas=index`: deletes only if `ModifyIndex` still equals `index`.
    pub async fn kv_delete_cas(&self, key: &str, index: u64) -> Result<bool, ApiError> {
        let path = Query::new()
            .pair("cas", index.to_string())
            .to_path(&Self::kv_path(key));
        self.kv_delete_path(&path).await
    }

    async fn kv_delete_path(&self, path: &str) -> Result<bool, ApiError> {
        let resp = self.send_ok(Method::DELETE, path, Body::None).await?;
        // Older servers answer an empty body; treat that as success.
        Ok(decode::<Option<bool>>(resp).await?.unwrap_or(true))
    }
}
