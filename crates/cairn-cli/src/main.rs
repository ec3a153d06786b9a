//! The `cairn` binary. `main` only collects the arguments and maps the outcome to an exit
//! code; everything else lives in one module per subcommand under `cmd/`.

mod cmd;
mod error;
mod flags;
mod output;
mod pki;
mod svcfile;

use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: with 10,000 HTTP checks, glibc's allocator
/// (`_int_malloc`, `malloc_consolidate`) was about a fifth of the agent's profile and
/// left the RSS high after bursts; see docs/PERFORMANCE.md for the measured choices.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (read once, before the first allocation): a background
/// thread returns freed pages to the kernel after one second instead of ten, so bursts
/// (a registration storm) do not leave the peak RSS behind.
// Safety of the unsafe attribute: jemalloc reads `_rjem_malloc_conf` once, at its
// initialisation, as a `const char *` (its own definition is weak, so this one wins).
// This static is exactly that: a thin pointer to a NUL-terminated, immutable 'static
// byte string, and no other item exports that name.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 53] = b"background_thread:true,dirty_decay_ms:1000,narenas:2\0";

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
