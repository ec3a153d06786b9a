//! `cairn-registrator`: keeps a node's agent catalog in step with the containers (or ECS-style
//! task processes) running on that node, the job gliderlabs/registrator did in the classic
//! "service discovery via Consul on Amazon ECS" setup, without its failure modes.
//!
//! The crate is split the house way: a pure core turns what runs into the services that
//! should exist ([`build`], [`metadata`], [`checks`]) and compares those with what the agent
//! holds for this owner ([`reconcile`]), returning a [`Plan`]; sources of truth sit behind
//! the [`Source`] trait (Docker through bollard in [`docker`], local processes in [`tasks`]);
//! the agent sits behind the [`Registry`] trait ([`registry`]); and [`runtime`] carries plans
//! out with retries and backoff.

pub mod backoff;
pub mod build;
pub mod checks;
pub mod container;
pub mod docker;
pub mod error;
pub mod log;
pub mod metadata;
pub mod reconcile;
pub mod registry;
pub mod runtime;
pub mod source;
pub mod tasks;

pub use build::{services_for, IpSource, Settings, Wanted};
pub use container::{Container, Health, PortBinding, Proto, RunState};
pub use error::{RegistryError, SourceError};
pub use reconcile::{reconcile, Op, Plan};
pub use registry::{AgentRegistry, Identity, MemoryRegistry, Registry};
pub use runtime::{DeregisterMode, Options, Runtime, Stats};
pub use source::Source;
