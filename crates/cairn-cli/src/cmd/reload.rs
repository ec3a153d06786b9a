//! `cairn reload`: asks the agent to re-read its configuration files, as `consul reload`
//! does (the agent also reloads on SIGHUP).

use crate::error::CliError;
use crate::flags::Spec;
use crate::output::write_stdout;

const HELP: &str = "\
Usage: cairn reload [options]

  Causes the agent to reload its configuration files: service and check
  definitions that were added, changed or removed are applied; unchanged ones
  keep their health. Equivalent to sending the agent SIGHUP.";

const SPECS: &[Spec] = &[];

/// Runs `cairn reload`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, SPECS, true, &args)?;
    super::no_args(&flags, HELP)?;
    let client = super::client(&flags)?;
    let _: () = client
        .put_empty("/v1/agent/reload")
        .await
        .map_err(CliError::ctx("Error reloading"))?;
    write_stdout(b"Configuration reload triggered\n")
}
