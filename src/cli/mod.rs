//! Operator subcommands. Each returns an exit code; output goes to stdout, diagnostics to
//! stderr. Uses `anyhow` for context, as a command-line front end.

pub mod log;

/// Output format shared by every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned, human-readable text.
    Text,
    /// JSON for scripts.
    Json,
}
