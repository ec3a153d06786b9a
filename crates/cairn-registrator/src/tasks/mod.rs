//! ECS task definitions without Docker: `cairn tasks run` reads the article's task
//! definition JSON ([`taskdef`]), runs each container definition as a local process with a
//! host port of its own ([`runner`]), and feeds those processes to the same
//! metadata → service → reconcile pipeline as Docker containers.

pub mod command;
pub mod runner;
pub mod taskdef;

pub use runner::{RunnerConfig, TaskRunner};
pub use taskdef::{ContainerDefinition, PortMapping, TaskDefinition};
