//! `cairn version`: prints the version, as `consul version` does.

use crate::error::CliError;
use crate::output::say;

const HELP: &str = "Usage: cairn version\n\n  Prints the Cairn version.";

/// Runs `cairn version`.
pub fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, &[], false, &args)?;
    super::no_args(&flags, HELP)?;
    say(&format!("Cairn v{}", env!("CARGO_PKG_VERSION")))?;
    say("Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)")
}
