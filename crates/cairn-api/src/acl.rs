//! The `/v1/acl/*` endpoints: bootstrap, tokens, policies and roles. Their bodies are
//! Consul's JSON objects, passed through as [`serde_json::Value`] so a caller sees every
//! field the agent sends (and can send back what it read, as an update does).

use serde_json::{json, Value};

use crate::client::Client;
use crate::encode::encode_component;
use crate::error::ApiError;

impl Client {
    /// `PUT /v1/acl/bootstrap`: creates the first management token (once per cluster).
    pub async fn acl_bootstrap(&self) -> Result<Value, ApiError> {
        self.put_empty("/v1/acl/bootstrap").await
    }

    /// `PUT /v1/acl/bootstrap` with a chosen secret (a UUID).
    pub async fn acl_bootstrap_with_secret(&self, secret: &str) -> Result<Value, ApiError> {
        self.put_json("/v1/acl/bootstrap", &json!({"BootstrapSecret": secret}))
            .await
    }

    /// `PUT /v1/acl/token`: creates a token from a Consul token object.
    pub async fn acl_token_create(&self, token: &Value) -> Result<Value, ApiError> {
        self.put_json("/v1/acl/token", token).await
    }

    /// `GET /v1/acl/token/<accessor>`.
    pub async fn acl_token_read(&self, accessor: &str) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/acl/token/{}", encode_component(accessor)))
            .await
    }

    /// `GET /v1/acl/token/self`: the token the client sends.
    pub async fn acl_token_read_self(&self) -> Result<Value, ApiError> {
        self.get_json("/v1/acl/token/self").await
    }

    /// `GET /v1/acl/tokens`.
    pub async fn acl_token_list(&self) -> Result<Vec<Value>, ApiError> {
        self.get_json("/v1/acl/tokens").await
    }

    /// `PUT /v1/acl/token/<accessor>`: replaces the token's grants with `token`'s.
    pub async fn acl_token_update(&self, accessor: &str, token: &Value) -> Result<Value, ApiError> {
        let path = format!("/v1/acl/token/{}", encode_component(accessor));
        self.put_json(&path, token).await
    }

    /// `PUT /v1/acl/token/<accessor>/clone`: a new token with the same grants.
    pub async fn acl_token_clone(
        &self,
        accessor: &str,
        description: &str,
    ) -> Result<Value, ApiError> {
        let path = format!("/v1/acl/token/{}/clone", encode_component(accessor));
        self.put_json(&path, &json!({"Description": description}))
            .await
    }

    /// `DELETE /v1/acl/token/<accessor>`.
    pub async fn acl_token_delete(&self, accessor: &str) -> Result<bool, ApiError> {
        let path = format!("/v1/acl/token/{}", encode_component(accessor));
        Ok(self.delete_json::<Value>(&path).await? == Value::Bool(true))
    }

    /// `PUT /v1/acl/policy`: creates a policy (`Name`, `Description`, `Rules`, ...).
    pub async fn acl_policy_create(&self, policy: &Value) -> Result<Value, ApiError> {
        self.put_json("/v1/acl/policy", policy).await
    }

    /// `GET /v1/acl/policy/<id>`.
    pub async fn acl_policy_read(&self, id: &str) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/acl/policy/{}", encode_component(id)))
            .await
    }

    /// `GET /v1/acl/policy/name/<name>`.
    pub async fn acl_policy_read_by_name(&self, name: &str) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/acl/policy/name/{}", encode_component(name)))
            .await
    }

    /// `GET /v1/acl/policies` (entries without their rules).
    pub async fn acl_policy_list(&self) -> Result<Vec<Value>, ApiError> {
        self.get_json("/v1/acl/policies").await
    }

    /// `PUT /v1/acl/policy/<id>`.
    pub async fn acl_policy_update(&self, id: &str, policy: &Value) -> Result<Value, ApiError> {
        let path = format!("/v1/acl/policy/{}", encode_component(id));
        self.put_json(&path, policy).await
    }

    /// `DELETE /v1/acl/policy/<id>`.
    pub async fn acl_policy_delete(&self, id: &str) -> Result<bool, ApiError> {
        let path = format!("/v1/acl/policy/{}", encode_component(id));
        Ok(self.delete_json::<Value>(&path).await? == Value::Bool(true))
    }

    /// `PUT /v1/acl/role`: creates a role (`Name`, `Policies`, `ServiceIdentities`, ...).
    pub async fn acl_role_create(&self, role: &Value) -> Result<Value, ApiError> {
        self.put_json("/v1/acl/role", role).await
    }

    /// `GET /v1/acl/role/<id>`.
    pub async fn acl_role_read(&self, id: &str) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/acl/role/{}", encode_component(id)))
            .await
    }

    /// `GET /v1/acl/role/name/<name>`.
    pub async fn acl_role_read_by_name(&self, name: &str) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/acl/role/name/{}", encode_component(name)))
            .await
    }

    /// `GET /v1/acl/roles`.
    pub async fn acl_role_list(&self) -> Result<Vec<Value>, ApiError> {
        self.get_json("/v1/acl/roles").await
    }

    /// `PUT /v1/acl/role/<id>`.
    pub async fn acl_role_update(&self, id: &str, role: &Value) -> Result<Value, ApiError> {
        let path = format!("/v1/acl/role/{}", encode_component(id));
        self.put_json(&path, role).await
    }

    /// `DELETE /v1/acl/role/<id>`.
    pub async fn acl_role_delete(&self, id: &str) -> Result<bool, ApiError> {
        let path = format!("/v1/acl/role/{}", encode_component(id));
        Ok(self.delete_json::<Value>(&path).await? == Value::Bool(true))
    }
}
