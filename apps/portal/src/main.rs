//! The `portal` binary: reads flags and the environment, binds, serves.

use std::process::ExitCode;

use portal::{Backend, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(
        &args,
        |k| std::env::var(k).ok(),
        portal::resolv_conf::system_nameserver,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portal: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("portal: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
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
    match listener.local_addr() {
        Ok(addr) => eprintln!("portal listening on {addr}"),
        Err(e) => eprintln!("portal: {e}"),
    }
    let state = portal::state_from(&config);
    if let Err(e) = axum::serve(listener, portal::router(state)).await {
        eprintln!("portal: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
