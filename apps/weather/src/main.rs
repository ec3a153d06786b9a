//! The `weather` binary: reads the environment, binds, serves.

use std::process::ExitCode;

use sample_common::serve::{announce_and_serve, bind, or_usage_exit};

const NAME: &str = "weather";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) | Err(code) => code,
    }
}

async fn run() -> Result<ExitCode, ExitCode> {
    let config = or_usage_exit(NAME, weather::Config::from_env(|k| std::env::var(k).ok()))?;
    let state = or_usage_exit(NAME, weather::state_from(&config))?;
    let listener = bind(NAME, config.listen).await?;
    Ok(announce_and_serve(NAME, listener, weather::router(state)).await)
}
