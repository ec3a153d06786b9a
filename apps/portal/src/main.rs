//! The `portal` binary: reads flags and the environment, binds, serves.

use std::process::ExitCode;

use portal::{Backend, Config};
use sample_common::serve::{announce_and_serve, bind, or_usage_exit};

const NAME: &str = "portal";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) | Err(code) => code,
    }
}

async fn run() -> Result<ExitCode, ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = or_usage_exit(
        NAME,
        Config::parse(
            &args,
            |k| std::env::var(k).ok(),
            portal::resolv_conf::system_nameserver,
        ),
    )?;
    let listener = bind(NAME, config.listen).await?;
    let show = |b: &Backend| match b {
        Backend::Srv(name) => format!("SRV {name}"),
        Backend::Fixed(list) => format!("fixed {list:?}"),
    };
    let dns = config
        .dns
        .map(|d| d.to_string())
        .unwrap_or_else(|| "none".into());
    eprintln!(
        "portal: stock-price by {}, weather by {}, DNS server {dns}",
        show(&config.stock),
        show(&config.weather)
    );
    let state = portal::state_from(&config);
    Ok(announce_and_serve(NAME, listener, portal::router(state)).await)
}
