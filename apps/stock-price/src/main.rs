//! The `stock-price` binary: reads the environment, binds, serves.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match stock_price::Config::from_env(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stock-price: {e}");
            return ExitCode::from(2);
        }
    };
    let state = match stock_price::state_from(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stock-price: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stock-price: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("stock-price listening on {addr}"),
        Err(e) => eprintln!("stock-price: {e}"),
    }
    if let Err(e) = axum::serve(listener, stock_price::router(state)).await {
        eprintln!("stock-price: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
