//! The `weir` binary: parses the command line, sets up logging, and hands off to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir::cli::reset_offsets::{ResetOptions, ResetTo};
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
    /// Topics: create, list, describe, alter configs, add partitions, delete, trim.
    Topic {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(subcommand)]
        command: cli::topic::TopicCommand,
    },
    /// Produce lines from stdin as records.
    Produce {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(flatten)]
        args: cli::produce::ProduceArgs,
    },
    /// Consume records and print them (JSON lines, or a format string).
    Consume {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(flatten)]
        args: cli::consume::ConsumeArgs,
    },
    /// Consumer groups: list, describe, reset offsets, delete.
    Group {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// The cluster: brokers and controller (info), and whether it is healthy (health).
    Cluster {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(subcommand)]
        command: cli::health::ClusterCommand,
    },
    /// A topic's offsets by time: latest (-1), earliest (-2) or a timestamp in ms.
    Offsets {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(flatten)]
        args: cli::offsets::OffsetsArgs,
    },
    /// Load generators: produce or consume as fast as possible and report throughput and
    /// latency.
    Bench {
        #[command(flatten)]
        bootstrap: Bootstrap,
        #[command(subcommand)]
        command: cli::bench::BenchCommand,
    },
    /// Print a shell completion script, e.g. `weir completions bash > /etc/bash_completion.d/weir`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the commands that talk to a broker connect (Kafka protocol: they work against
/// Apache Kafka too).
#[derive(clap::Args, Debug)]
struct Bootstrap {
    /// A broker to ask first, HOST:PORT.
    #[arg(long, env = "WEIR_BOOTSTRAP", default_value = "127.0.0.1:9092", global = true)]
    bootstrap: String,
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
    /// RESP (Redis protocol) listener, HOST:PORT (default 127.0.0.1:6379).
    #[arg(long)]
    resp_addr: Option<String>,
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
        ("resp.addr", args.resp_addr),
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

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// List groups with their state and protocol type.
    List {
        /// Only groups in this state, e.g. Stable or Empty (repeatable; any case).
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show a group's members and, per partition, committed offset, log end offset and lag.
    Describe {
        group: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Move an inactive group's committed offsets. Prints the plan; commits only with
    /// --execute. The group must have no members (Empty).
    ResetOffsets(ResetOffsetsArgs),
    /// Delete groups that have no members, with their committed offsets. Exits 1 if any
    /// group was not deleted.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(clap::Args, Debug)]
struct ResetOffsetsArgs {
    group: String,
    #[command(flatten)]
    to: ResetTarget,
    /// TOPIC or TOPIC:P,P,... (repeatable). Without it: every partition the group has
    /// committed offsets for.
    #[arg(long = "topic", value_name = "TOPIC[:P,P...]", conflicts_with = "all_topics")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for (the default without --topic).
    #[arg(long)]
    all_topics: bool,
    /// Commit the new offsets (otherwise a dry run).
    #[arg(long)]
    execute: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Exactly one of the reset targets.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct ResetTarget {
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// This offset (clamped to the log's range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// The first offset at or after this time, e.g. 2026-11-21T10:00:00Z or
    /// 2026-11-21T10:00:00+02:00 (the log end if none).
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// The committed offset plus N (negative: back), clamped to the log's range.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
}

impl ResetTarget {
    fn into_reset_to(self) -> ResetTo {
        match self {
            ResetTarget { to_offset: Some(offset), .. } => ResetTo::Offset(offset),
            ResetTarget { to_datetime: Some(text), .. } => ResetTo::Datetime(text),
            ResetTarget { shift_by: Some(delta), .. } => ResetTo::ShiftBy(delta),
            ResetTarget { to_latest: true, .. } => ResetTo::Latest,
            // clap requires exactly one target: the remaining one is --to-earliest.
            ResetTarget { .. } => ResetTo::Earliest,
        }
    }
}

fn group(bootstrap: &str, command: GroupCommand) -> anyhow::Result<i32> {
    match command {
        GroupCommand::List { states, format } => cli::group::list(bootstrap, &states, format),
        GroupCommand::Describe { group, format } => cli::group::describe(bootstrap, &group, format),
        GroupCommand::ResetOffsets(ResetOffsetsArgs { group, to, topics, all_topics: _, execute, format }) => {
            let options = ResetOptions { group, to: to.into_reset_to(), topics, execute, format };
            cli::reset_offsets::reset_offsets(bootstrap, &options)
        }
        GroupCommand::Delete { groups, format } => cli::group::delete(bootstrap, &groups, format),
    }
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
        Command::Topic { bootstrap, command } => cli::topic::run(&bootstrap.bootstrap, command),
        Command::Produce { bootstrap, args } => cli::produce::run(&bootstrap.bootstrap, args),
        Command::Consume { bootstrap, args } => cli::consume::run(&bootstrap.bootstrap, args),
        Command::Group { bootstrap, command } => group(&bootstrap.bootstrap, command),
        Command::Cluster { bootstrap, command } => cli::health::run(&bootstrap.bootstrap, command),
        Command::Offsets { bootstrap, args } => cli::offsets::run(&bootstrap.bootstrap, args),
        Command::Bench { bootstrap, command } => cli::bench::run(&bootstrap.bootstrap, command),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "weir",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
