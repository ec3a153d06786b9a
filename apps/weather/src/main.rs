//! The `weather` binary: reads the environment, binds, serves.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match weather::Config::from_env(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weather: {e}");
            return ExitCode::from(2);
        }
    };
    let state = match weather::state_from(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weather: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("weather: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("weather listening on {addr}"),
        Err(e) => eprintln!("weather: {e}"),
    }
    if let Err(e) = axum::serve(listener, weather::router(state)).await {
        eprintln!("weather: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
