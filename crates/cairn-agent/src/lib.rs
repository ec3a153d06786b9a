//! The agent: wiring of config, raft, state and the HTTP API.
pub mod config;

/// Runs `cairn agent ARGS...` until a shutdown signal.
pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let _ = args;
    Ok(())
}
