//! Wire and domain types of Cairn, with Consul's exact JSON field names.
//!
//! These types are shared by the state machine, the HTTP layer, the agent and the
//! client library. They carry no I/O and no async code, so every layer can use them
//! and tests can build them directly.

pub mod conn;
pub mod definition;
pub mod duration;
pub mod input;
pub mod model;
pub mod net;

pub use model::*;
