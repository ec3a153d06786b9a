//! The `cairn` binary. `main` only collects the arguments and maps the outcome to an exit
//! code; everything else lives in one module per subcommand under `cmd/`.

mod cmd;
mod error;
mod flags;
mod output;
mod svcfile;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match cmd::dispatch(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(e.report()),
    }
}
