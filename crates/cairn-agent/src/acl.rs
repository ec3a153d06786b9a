//! The agent's side of ACLs: its `acl { ... }` block turned into the HTTP layer's
//! enforcement runtime, and the command that installs `tokens.initial_management`.

use cairn_acl::DefaultPolicy;
use cairn_http::{AclRuntime, AgentTokens};
use cairn_state::{AclBootstrap, AclToken, Command};

use crate::config::{AclPolicy, Config};

/// Enforcement for this agent (`None` when `acl.enabled` is false).
pub(crate) fn runtime(cfg: &Config) -> Option<AclRuntime> {
    if !cfg.acl.enabled {
        return None;
    }
    let default = match cfg.acl.default_policy {
        AclPolicy::Allow => DefaultPolicy::Allow,
        AclPolicy::Deny => DefaultPolicy::Deny,
    };
    let t = &cfg.acl.tokens;
    let tokens = AgentTokens {
        default: t.default.clone(),
        agent: t.agent.clone(),
        agent_recovery: t.agent_recovery.clone(),
        ..Default::default()
    };
    Some(AclRuntime::new(default, &cfg.datacenter, tokens).with_node(&cfg.node_name))
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
