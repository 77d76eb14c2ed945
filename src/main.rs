//! The `weir` binary: parses the command line, sets up logging, and hands off to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir::cli::{self, Format};

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "A Kafka-compatible streaming platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Offline tools over segment files (no broker needed).
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Print every batch of .log files and every entry of .index/.timeindex files.
    Dump {
        /// Segment files: <20-digit base offset>.log, .index or .timeindex.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the CRC of every batch and the consistency of every index under a partition
    /// directory or a whole data directory. Exits 1 when anything is damaged.
    Verify {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(LogCommand::Dump { files, format }) => cli::log::dump(&files, format),
        Command::Log(LogCommand::Verify { dir, format }) => cli::log::verify(&dir, format),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
