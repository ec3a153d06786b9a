//! The client side of the catalog over the server RPC port: how an agent that holds no
//! Raft log (a client agent) reaches the catalog through the same [`crate::catalog`] seam
//! (the protocol and the server's handler are in `cairn-server`).
//!
//! A client agent keeps a full replica of the state, fed by the server's stream of
//! applied entries (a copy of the state, then every command as it is applied, in log
//! order), and applies them with the same pure state machine. Every read the agent serves
//! (HTTP, blocking queries, DNS) is then a local read that changes within milliseconds of
//! the catalog, with no server round trip per query. Writes go to the server; a write
//! returns only once the local replica has applied it (read-your-writes), and a
//! `?consistent` barrier waits until the replica holds the server's confirmed index.
//!
//! - [`remote`]: the client side, [`remote::RemoteCatalog`];
//! - [`servers`]: which server a client uses, from the LAN pool.

pub(crate) mod remote;
pub(crate) mod servers;
