//! Blocking-query indexes.
//!
//! Each read returns the index that a client passes back as `?index=` to wait for a
//! change. Cairn keeps them fine-grained so a blocking query wakes only when what it
//! reads changed: per table (nodes, services, checks, sessions, kv), per service name,
//! and per KV key (its `ModifyIndex`, or the tombstone index of its deletion). Indexes
//! never go backwards and are always >= 1.

use serde::{Deserialize, Serialize};

/// Last index at which each table changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableIndexes {
    pub nodes: u64,
    pub services: u64,
    pub checks: u64,
    pub kv: u64,
    pub sessions: u64,
    #[serde(default)]
    pub acl_tokens: u64,
    #[serde(default)]
    pub acl_policies: u64,
    #[serde(default)]
    pub acl_roles: u64,
}

/// Clamp rule shared by every read: an index is never reported below 1.
pub fn at_least_one(i: u64) -> u64 {
    i.max(1)
}
