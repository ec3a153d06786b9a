//! The agent's gossip keyring: which keys the LAN pool starts with (the keyring file kept
//! in the data directory wins over `encrypt`, as in Consul, so keys rotated while the agent
//! ran survive a restart), and `/v1/operator/keyring` carried out over the pool.

use std::path::PathBuf;

use cairn_gossip::{Gossip, GossipError, KeyError, KeyOp};
use cairn_http::{HttpError, KeyringOp, KeyringPool};
use cairn_types::KeyringResponse;

use crate::config::Config;

/// The keys the LAN pool starts with and where changes to them are persisted.
pub(crate) fn start_keys(cfg: &Config) -> anyhow::Result<(Vec<String>, Option<PathBuf>)> {
    let configured: Vec<String> = cfg.encrypt.iter().cloned().collect();
    let Some(dir) = &cfg.data_dir else {
        return Ok((configured, None));
    };
    let path = cairn_gossip::keyfile::keyring_path(dir);
    match cairn_gossip::keyfile::load(&path)? {
        Some(keys) => {
            if cfg.encrypt.is_some() {
                tracing::info!(
                    "loaded the gossip keyring from {} ({} keys); the encrypt setting is ignored \
                     while that file exists",
                    path.display(),
                    keys.len()
                );
            }
            Ok((keys, Some(path)))
        }
        None => Ok((configured, Some(path))),
    }
}

/// Runs a keyring operation over the LAN pool.
pub(crate) async fn operate(
    gossip: Option<&Gossip>,
    datacenter: &str,
    op: KeyringOp,
    relay: u8,
) -> Result<Vec<KeyringPool>, HttpError> {
    let Some(g) = gossip else {
        return Err(HttpError::internal(
            "gossip is disabled on this agent (ports.serf_lan = -1): there is no keyring",
        ));
    };
    let op = match op {
        KeyringOp::List => KeyOp::List,
        KeyringOp::Install(k) => KeyOp::Install(k),
        KeyringOp::Use(k) => KeyOp::Use(k),
        KeyringOp::Remove(k) => KeyOp::Remove(k),
    };
    let report = g.keyring(op, relay).await.map_err(|e| match e {
        GossipError::Key(KeyError::Base64 | KeyError::Length(_)) => {
            HttpError::bad_request(format!("Invalid key: {e}"))
        }
        GossipError::RelayFactor(_) => HttpError::bad_request(e.to_string()),
        other => HttpError::internal(other.to_string()),
    })?;
    Ok(vec![KeyringPool {
        error: report.error(),
        answer: KeyringResponse {
            wan: false,
            datacenter: datacenter.to_string(),
            segment: String::new(),
            messages: report.messages(),
            keys: report.keys,
            primary_keys: report.primary_keys,
            num_nodes: report.num_nodes,
        },
    }])
}
