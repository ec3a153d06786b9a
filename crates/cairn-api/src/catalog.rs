//! The catalog and health endpoints: services, nodes and a service's instances, with
//! health filtering and blocking queries (`?index=`, `?wait=`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::Client;
use crate::encode::{encode_component, format_wait, Query};
use crate::error::ApiError;
use crate::types::{CatalogService, Node, ServiceEntry};

impl Client {
    /// `GET /v1/catalog/services`: service name → union of its tags.
    pub async fn catalog_services(&self) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let raw: BTreeMap<String, Option<Vec<String>>> =
            self.get_json("/v1/catalog/services").await?;
        Ok(raw
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// `GET /v1/catalog/nodes`.
    pub async fn catalog_nodes(&self) -> Result<Vec<Node>, ApiError> {
        self.get_json("/v1/catalog/nodes").await
    }

    /// `GET /v1/catalog/service/:name`: every registered instance, healthy or not.
    pub async fn catalog_service(&self, name: &str) -> Result<Vec<CatalogService>, ApiError> {
        let path = format!("/v1/catalog/service/{}", encode_component(name));
        self.get_json(&path).await
    }

    /// `GET /v1/health/service/:name[?passing]`.
    pub async fn health_service(
        &self,
        name: &str,
        passing: bool,
    ) -> Result<Vec<ServiceEntry>, ApiError> {
        Ok(self
            .health_service_query(name, passing, None, None)
            .await?
            .0)
    }

    /// A blocking `GET /v1/health/service/:name?index=&wait=`: returns when the result may
    /// have changed since `index` or after `wait`, with the new `X-Consul-Index`.
    ///
    /// An `index` of 0 means "don't block": the current result is returned immediately,
    /// with the index to pass on the next call.
    pub async fn health_service_blocking(
        &self,
        name: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<ServiceEntry>, u64), ApiError> {
        self.health_service_query(name, false, Some(index), Some(wait))
            .await
    }

    /// The general form of the health-service query: `passing`, and optional blocking
    /// `index`/`wait`. Returns the entries and `X-Consul-Index`.
    pub async fn health_service_query(
        &self,
        name: &str,
        passing: bool,
        index: Option<u64>,
        wait: Option<Duration>,
    ) -> Result<(Vec<ServiceEntry>, u64), ApiError> {
        let path = Query::new()
            .flag_if("passing", passing)
            .opt("index", index.filter(|i| *i > 0))
            .opt(
                "wait",
                wait.filter(|_| index.unwrap_or(0) > 0).map(format_wait),
            )
            .to_path(&format!("/v1/health/service/{}", encode_component(name)));
        self.get_json_with_index(&path).await
    }
}
