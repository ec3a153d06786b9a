//! How a subcommand fails. Keeping the three outcomes (help requested, usage error,
//! operational failure) apart lets `main` apply Consul's conventions in one place: help goes
//! to stdout with exit 0, usage errors exit 2, everything else prints to stderr and exits 1.

use std::fmt;

/// A non-successful outcome of a subcommand.
#[derive(Debug)]
pub enum CliError {
    /// `-h`/`-help`: print the text to stdout, exit 0.
    Help(String),
    /// Bad flags or arguments: print the message and the usage to stderr, exit 2.
    Usage { msg: String, usage: String },
    /// The command ran and failed: print the message to stderr as-is, exit 1.
    Failed(String),
}

impl CliError {
    /// A usage error for a command whose help text is `usage`.
    pub fn usage(msg: impl Into<String>, usage: &str) -> Self {
        CliError::Usage {
            msg: msg.into(),
            usage: usage.to_string(),
        }
    }

    /// An operational failure with this exact message.
    pub fn failed(msg: impl fmt::Display) -> Self {
        CliError::Failed(msg.to_string())
    }

    /// Builds a mapper adding `context` in Consul's `Error ...: cause` style.
    pub fn ctx<E: fmt::Display>(context: &str) -> impl FnOnce(E) -> CliError + '_ {
        move |e| CliError::Failed(format!("{context}: {e}"))
    }

    /// Prints the outcome where it belongs and returns the exit code.
    pub fn report(&self) -> u8 {
        match self {
            CliError::Help(text) => {
                println_safe(text);
                0
            }
            CliError::Usage { msg, usage } => {
                eprintln!("{msg}\n\n{usage}");
                2
            }
            CliError::Failed(msg) => {
                eprintln!("{msg}");
                1
            }
        }
    }
}

/// Prints to stdout, ignoring a closed pipe instead of panicking like `println!`.
fn println_safe(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
}
