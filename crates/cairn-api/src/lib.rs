//! `cairn-api`: a typed async client for the Consul-compatible HTTP API that Cairn serves.
//!
//! It exists so the CLI, the registrator, the sample apps and the integration tests all talk
//! to an agent through one well-tested implementation of Consul's wire conventions (JSON field
//! names, base64 KV values, `X-Consul-Token`, `X-Consul-Index`, percent-encoded keys) instead of
//! each hand-rolling HTTP calls. It works against a real Consul agent as well.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cairn_api::ApiError> {
//! let client = cairn_api::Client::from_env()?;
//! client.kv_put("app/config", b"hello", None, None).await?;
//! let pair = client.kv_get("app/config").await?;
//! assert_eq!(pair.map(|p| p.value), Some(b"hello".to_vec()));
//! # Ok(()) }
//! ```

mod acl;
mod agent;
mod catalog;
mod client;
mod encode;
mod env;
mod error;
mod keyring;
mod kv;
mod status;
pub mod types;

pub use cairn_types::KeyringResponse;
pub use client::{Client, TlsOptions, DEFAULT_HTTP_ADDR};
pub use encode::{encode_component, encode_key_path, format_wait};
pub use error::ApiError;
pub use types::*;
