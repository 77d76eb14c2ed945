//! The `weir` binary: parses the command line, sets up logging, and hands off to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir::cli::{self, Format};
use weir::config::RawConfig;

/// Huge allocations become lazily committed mappings, so hostile array counts in requests
/// cannot abort the process (see `weir::alloc`).
#[global_allocator]
static ALLOC: weir::alloc::WeirAlloc = weir::alloc::WeirAlloc;

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "A Kafka-compatible streaming platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker: Kafka protocol on --kafka-addr, HTTP (/metrics, /health, /ready) on --http-addr.
    Serve(ServeArgs),
    /// Offline tools over segment files (no broker needed).
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Data directory (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Kafka listener, HOST:PORT (default 127.0.0.1:9092; port 0 picks a free port).
    #[arg(long)]
    kafka_addr: Option<String>,
    /// HTTP listener for /metrics, /health and /ready, HOST:PORT (default 127.0.0.1:9644).
    #[arg(long)]
    http_addr: Option<String>,
    /// HOST:PORT advertised to clients in Metadata (default: the bound Kafka address).
    #[arg(long)]
    advertised_addr: Option<String>,
    /// TOML file of broker settings (every key is documented in ops/weir.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Any broker setting by its Kafka name, e.g. --set num.partitions=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let mut raw = RawConfig::default();
    if let Some(path) = &args.config {
        raw.load_file(path)?;
    }
    for pair in &args.set {
        raw.set_pair(pair)?;
    }
    let flags = [
        ("data.dir", args.data_dir.map(|d| d.display().to_string())),
        ("kafka.addr", args.kafka_addr),
        ("http.addr", args.http_addr),
        ("advertised.addr", args.advertised_addr),
    ];
    for (key, value) in flags {
        if let Some(v) = value {
            raw.set(key, v)?;
        }
    }
    let config = raw.validate()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(weir::server::serve(config))?;
    Ok(0)
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
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
