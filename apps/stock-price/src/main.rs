//! The `stock-price` binary: reads the environment, binds, serves.

use std::process::ExitCode;

use sample_common::serve::{announce_and_serve, bind, or_usage_exit};

const NAME: &str = "stock-price";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) | Err(code) => code,
    }
}

async fn run() -> Result<ExitCode, ExitCode> {
    let config = or_usage_exit(
        NAME,
        stock_price::Config::from_env(|k| std::env::var(k).ok()),
    )?;
    let state = or_usage_exit(NAME, stock_price::state_from(&config))?;
    let listener = bind(NAME, config.listen).await?;
    Ok(announce_and_serve(NAME, listener, stock_price::router(state)).await)
}
