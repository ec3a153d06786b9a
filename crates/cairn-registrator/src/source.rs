//! The seam between "what runs" and the registrator: Docker containers ([`crate::docker`])
//! and task processes ([`crate::tasks`]) both answer with [`Container`]s. Events are only
//! hints that something changed; the runtime always reconciles against a fresh [`Source::list`].

use crate::container::Container;
use crate::error::SourceError;
use std::future::Future;

/// A source of running units.
pub trait Source: Send {
    /// Everything that exists now (running or not); the full truth the runtime reconciles.
    fn list(&mut self) -> impl Future<Output = Result<Vec<Container>, SourceError>> + Send;

    /// Waits until something may have changed. Never returns an error: a broken event stream
    /// is the source's to log and reconnect, and it returns (a hint) once reconnected so the
    /// runtime re-lists what may have been missed.
    fn changed(&mut self) -> impl Future<Output = ()> + Send;

    /// A short name for log lines (`docker unix:///var/run/docker.sock`, `tasks stock-price`).
    fn describe(&self) -> String;
}
