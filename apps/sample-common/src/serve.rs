//! The sample binaries' start-up: give up with a `<name>: <error>` line and
//! exit code 2 on bad settings, bind (exit 1 if that fails), announce
//! `<name> listening on IP:PORT` (the line tests and operators read the
//! port from) and serve. One copy so the three binaries behave alike.

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use tokio::net::TcpListener;

/// `r`'s value, or (after printing `<name>: <error>`) exit code 2.
pub fn or_usage_exit<T, E: Display>(name: &str, r: Result<T, E>) -> Result<T, ExitCode> {
    r.map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })
}

/// Binds `listen`, or (after printing why) exit code 1.
pub async fn bind(name: &str, listen: SocketAddr) -> Result<TcpListener, ExitCode> {
    TcpListener::bind(listen).await.map_err(|e| {
        eprintln!("{name}: cannot listen on {listen}: {e}");
        ExitCode::from(1)
    })
}

/// Prints `<name> listening on IP:PORT` and serves `app` until it fails.
pub async fn announce_and_serve(name: &str, listener: TcpListener, app: Router) -> ExitCode {
    match listener.local_addr() {
        Ok(addr) => eprintln!("{name} listening on {addr}"),
        Err(e) => eprintln!("{name}: {e}"),
    }
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("{name}: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
