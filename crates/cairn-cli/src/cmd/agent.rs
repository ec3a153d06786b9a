//! `cairn agent`: hands its arguments to `cairn_agent::run`, which owns the agent's flags
//! and configuration.

use crate::error::CliError;

/// Runs `cairn agent ARGS...` until the agent exits.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    cairn_agent::run(args)
        .await
        .map_err(|e| CliError::failed(format!("error: {e:#}")))
}
