//! `acl.down_policy`: what an agent does with tokens while it cannot reach the servers.
//!
//! Cairn resolves tokens from the agent's own replica of the state, so there is no
//! per-token server call to time out. "Down" means instead that this agent has not heard
//! from a server (its replica's last contact, the value of `X-Consul-LastContact`) for
//! longer than `acl.token_ttl`: the replica may then be missing deletions and changes.
//! The decision is a pure function of the policy, the last contact and the TTL.

use std::time::Duration;

/// Consul's `acl.down_policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownPolicy {
    /// Keep using what the replica holds (Consul's default).
    #[default]
    ExtendCache,
    /// The same as `extend-cache` in Cairn: the replica is refreshed by its stream, not
    /// by requests, so there is nothing to refresh in the background.
    AsyncCache,
    /// Allow every request (ACL management and snapshots excepted, as with
    /// `default_policy = "allow"`).
    Allow,
    /// Deny every request, except with the agent recovery token.
    Deny,
}

impl DownPolicy {
    /// Parses the configuration's spelling.
    pub fn parse(s: &str) -> Option<DownPolicy> {
        Some(match s {
            "extend-cache" => DownPolicy::ExtendCache,
            "async-cache" => DownPolicy::AsyncCache,
            "allow" => DownPolicy::Allow,
            "deny" => DownPolicy::Deny,
            _ => return None,
        })
    }
}

/// How tokens are resolved at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDown {
    /// From the replica, as usual.
    Replica,
    /// Every token may do everything (`allow`).
    AllowAll,
    /// Every token is denied everything (`deny`).
    DenyAll,
}

/// What `policy` says given that the last contact with a server was `last_contact_ms`
/// ago (`u64::MAX`: never), with `token_ttl` as the longest the replica is trusted.
pub fn decide(policy: DownPolicy, last_contact_ms: u64, token_ttl: Duration) -> WhenDown {
    let down = u128::from(last_contact_ms) > token_ttl.as_millis();
    match (down, policy) {
        (false, _) | (true, DownPolicy::ExtendCache | DownPolicy::AsyncCache) => WhenDown::Replica,
        (true, DownPolicy::Allow) => WhenDown::AllowAll,
        (true, DownPolicy::Deny) => WhenDown::DenyAll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn within_the_ttl_every_policy_uses_the_replica() {
        for p in [
            DownPolicy::ExtendCache,
            DownPolicy::AsyncCache,
            DownPolicy::Allow,
            DownPolicy::Deny,
        ] {
            assert_eq!(decide(p, 0, TTL), WhenDown::Replica, "{p:?}");
            assert_eq!(
                decide(p, 30_000, TTL),
                WhenDown::Replica,
                "{p:?} at the TTL"
            );
        }
    }

    #[test]
    fn past_the_ttl_the_policy_decides() {
        assert_eq!(
            decide(DownPolicy::ExtendCache, 30_001, TTL),
            WhenDown::Replica
        );
        assert_eq!(
            decide(DownPolicy::AsyncCache, 30_001, TTL),
            WhenDown::Replica
        );
        assert_eq!(decide(DownPolicy::Allow, 30_001, TTL), WhenDown::AllowAll);
        assert_eq!(decide(DownPolicy::Deny, 30_001, TTL), WhenDown::DenyAll);
        assert_eq!(
            decide(DownPolicy::Deny, u64::MAX, TTL),
            WhenDown::DenyAll,
            "never in contact"
        );
    }

    #[test]
    fn spellings_are_consuls() {
        assert_eq!(
            DownPolicy::parse("extend-cache"),
            Some(DownPolicy::ExtendCache)
        );
        assert_eq!(
            DownPolicy::parse("async-cache"),
            Some(DownPolicy::AsyncCache)
        );
        assert_eq!(DownPolicy::parse("allow"), Some(DownPolicy::Allow));
        assert_eq!(DownPolicy::parse("deny"), Some(DownPolicy::Deny));
        assert_eq!(DownPolicy::parse("extend_cache"), None);
    }
}
