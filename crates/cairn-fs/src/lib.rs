//! The small-file work every Cairn crate shares, done one way:
//! - [`durable`]: writing a file so that a crash leaves the old one or the new one
//!   (snapshots, the node ID, saved tokens and services, the gossip keyring);
//! - [`read`]: reading a file a user named (a certificate, a key, a token, a directory of
//!   CAs) only when it is a regular file, and never past a size limit, so a device, a FIFO
//!   or a huge file named by mistake is an error instead of a hang or an exhausted memory.

pub mod durable;
pub mod read;

pub use durable::{sync_dir, write_file_durably, write_private_file_durably};
pub use read::{files_under, read_regular, ReadError};
