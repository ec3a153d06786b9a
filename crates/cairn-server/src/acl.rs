//! The leader's ACL duties: installing `acl.tokens.initial_management` and reaping
//! expired tokens.
//!
//! The initial management token's command is prepared by the agent (its AccessorID
//! chosen there) and proposed on every new term of leadership until it is applied: the
//! state machine makes it a no-op once a token with that secret exists, so a new leader
//! repeating it changes nothing. Expired tokens already stop working on every agent when
//! their time passes; the reaper only removes them from the tables.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_state::{Command, Outcome};

use crate::leader::Duties;

/// How often the reaper looks for expired tokens.
const REAP_EVERY: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Proposes the initial management token until it is applied.
pub(crate) async fn initial_management(duties: Duties) {
    let Some(cmd) = duties.acl_initial.clone() else {
        return;
    };
    let mut delay = Duration::from_millis(100);
    loop {
        match duties.write(cmd.clone()).await {
            Ok((_, Outcome::Error(e))) => {
                tracing::error!("initial management token refused: {e}");
                return;
            }
            Ok(_) => {
                tracing::info!("ACL initial management token installed");
                return;
            }
            Err(e) => {
                tracing::warn!("could not install the initial management token yet: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Removes expired tokens from the tables, while this server leads.
pub(crate) async fn reap_loop(duties: Duties) {
    if !duties.acl_enabled {
        return;
    }
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_ms();
        let any = duties
            .state
            .read()
            .acl_tokens()
            .0
            .iter()
            .any(|t| t.expired_at(now));
        if any {
            if let Err(e) = duties.write(Command::AclTokenReap { now_ms: now }).await {
                tracing::warn!("could not reap expired ACL tokens: {e}");
            }
        }
    }
}
