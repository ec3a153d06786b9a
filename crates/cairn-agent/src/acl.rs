//! The agent's side of ACLs: its `acl { ... }` block turned into the HTTP layer's
//! enforcement runtime (with its tokens saved in the data directory under
//! `enable_token_persistence`), and the command that installs `tokens.initial_management`.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

use cairn_acl::DefaultPolicy;
use cairn_http::{AclRuntime, AgentTokens};
use cairn_state::{AclBootstrap, AclToken, Command};

use crate::config::{AclPolicy, Config};

/// Enforcement for this agent (`None` when `acl.enabled` is false).
pub(crate) fn runtime(cfg: &Config, tokens_changed: Arc<Notify>) -> Option<AclRuntime> {
    if !cfg.acl.enabled {
        return None;
    }
    let default = match cfg.acl.default_policy {
        AclPolicy::Allow => DefaultPolicy::Allow,
        AclPolicy::Deny => DefaultPolicy::Deny,
    };
    let t = &cfg.acl.tokens;
    let mut tokens = AgentTokens {
        default: t.default.clone(),
        agent: t.agent.clone(),
        agent_recovery: t.agent_recovery.clone(),
        dns: t.dns.clone(),
        ..Default::default()
    };
    let dir = cfg
        .data_dir
        .clone()
        .filter(|_| cfg.acl.enable_token_persistence);
    if let Some(dir) = &dir {
        overlay(&mut tokens, load_tokens(dir));
    }
    let rt = AclRuntime::new(default, &cfg.datacenter, tokens)
        .with_node(&cfg.node_name)
        .with_expiration_ttl_bounds(
            cfg.acl.token_min_expiration_ttl,
            cfg.acl.token_max_expiration_ttl,
        )
        .with_down_policy(cfg.acl.down_policy, cfg.acl.token_ttl)
        .on_token_change(Box::new(move |_| tokens_changed.notify_one()));
    Some(match dir {
        None => rt,
        Some(dir) => rt.with_persistence(Box::new(move |t| save_tokens(&dir, t))),
    })
}

/// Where `enable_token_persistence` keeps the tokens set through the API.
const TOKENS_FILE: &str = "acl-tokens.json";

/// The tokens saved by an earlier run (none when the file is missing or unreadable).
fn load_tokens(dir: &Path) -> AgentTokens {
    let path = dir.join(TOKENS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), "ignoring saved ACL tokens: {e}");
            AgentTokens::default()
        }),
        Err(_) => AgentTokens::default(),
    }
}

/// Saved tokens win over configured ones, as in Consul.
fn overlay(tokens: &mut AgentTokens, saved: AgentTokens) {
    for (slot, value) in [
        (&mut tokens.default, saved.default),
        (&mut tokens.agent, saved.agent),
        (&mut tokens.agent_recovery, saved.agent_recovery),
        (&mut tokens.replication, saved.replication),
        (
            &mut tokens.config_file_service_registration,
            saved.config_file_service_registration,
        ),
        (&mut tokens.dns, saved.dns),
    ] {
        if value.is_some() {
            *slot = value;
        }
    }
}

/// Writes the tokens durably, readable by the agent's user only (they are secrets).
fn save_tokens(dir: &Path, tokens: &AgentTokens) -> Result<(), String> {
    let bytes = serde_json::to_vec(tokens).map_err(|e| e.to_string())?;
    cairn_fs::write_private_file_durably(dir, TOKENS_FILE, &bytes)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The command a leading server proposes to install `acl.tokens.initial_management`
/// (`None` on clients, without ACLs or without the token).
pub(crate) fn initial_management_command(cfg: &Config, now_ms: u64) -> Option<Command> {
    let secret = cfg.acl.tokens.initial_management.as_ref()?;
    if !cfg.acl.enabled || !cfg.server || secret.is_empty() {
        return None;
    }
    let mut token = AclToken {
        accessor_id: cairn_http::new_uuid(),
        secret_id: secret.clone(),
        description: "Initial Management Token".into(),
        create_time_ms: now_ms,
        ..Default::default()
    };
    token.hash = cairn_http::acl_token_hash(&token);
    Some(Command::AclBootstrap(AclBootstrap {
        token,
        initial: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_tokens_survive_and_win_over_configured_ones() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_tokens(dir.path()),
            AgentTokens::default(),
            "no file yet"
        );
        let saved = AgentTokens {
            default: Some("from-api".into()),
            ..Default::default()
        };
        save_tokens(dir.path(), &saved).unwrap();
        let mut configured = AgentTokens {
            default: Some("from-config".into()),
            agent: Some("agent".into()),
            ..Default::default()
        };
        overlay(&mut configured, load_tokens(dir.path()));
        assert_eq!(configured.default.as_deref(), Some("from-api"));
        assert_eq!(
            configured.agent.as_deref(),
            Some("agent"),
            "unsaved ones stay"
        );
        std::fs::write(dir.path().join(TOKENS_FILE), b"{not json").unwrap();
        assert_eq!(load_tokens(dir.path()), AgentTokens::default());
    }
}
