//! The `/v1/agent/*` endpoints the tools use: the agent's own record, the pool's members,
//! and registering, deregistering and listing the agent's local services.

use std::collections::BTreeMap;

use reqwest::Method;

use crate::client::{Body, Client};
use crate::encode::{encode_component, Query};
use crate::error::ApiError;
use crate::types::{AgentService, Member, ServiceDefinition};

impl Client {
    /// `GET /v1/agent/self`: the agent's configuration and member record.
    pub async fn agent_self(&self) -> Result<serde_json::Value, ApiError> {
        self.get_json("/v1/agent/self").await
    }

    /// `GET /v1/agent/members`: the LAN gossip members.
    pub async fn agent_members(&self) -> Result<Vec<Member>, ApiError> {
        self.agent_members_opts(false).await
    }

    /// `GET /v1/agent/members[?wan]`.
    pub async fn agent_members_opts(&self, wan: bool) -> Result<Vec<Member>, ApiError> {
        let path = Query::new()
            .flag_if("wan", wan)
            .to_path("/v1/agent/members");
        self.get_json(&path).await
    }

    /// `PUT /v1/agent/service/register`.
    pub async fn agent_service_register(&self, def: &ServiceDefinition) -> Result<(), ApiError> {
        self.send_ok(
            Method::PUT,
            "/v1/agent/service/register",
            Self::json_body(def)?,
        )
        .await
        .map(drop)
    }

    /// `PUT /v1/agent/service/deregister/:id` (a no-op for unknown IDs on Consul).
    pub async fn agent_service_deregister(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/v1/agent/service/deregister/{}", encode_component(id));
        self.send_ok(Method::PUT, &path, Body::None).await.map(drop)
    }

    /// `GET /v1/agent/services`: service ID → service, for this agent only.
    pub async fn agent_services(&self) -> Result<BTreeMap<String, AgentService>, ApiError> {
        self.get_json("/v1/agent/services").await
    }
}
