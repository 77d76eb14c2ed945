//! `weir bench produce` and `weir bench consume`: load generators that report throughput and
//! latency percentiles, like Kafka's `kafka-producer-perf-test` and
//! `kafka-consumer-perf-test`. They speak only the Kafka protocol, so they measure Apache
//! Kafka as well as weir.
//!
//! This module owns the command line of both and what they share; the producing side lives in
//! `produce`, the reading side in `consume`, percentiles in `histogram` (log-linear buckets:
//! no sample is kept), the progress bar and the output forms in `report`. Neither bench has
//! its own protocol code: the produce bench drives `weir produce`'s producer (partitioning,
//! batching, compression, one request in flight per leader, acks), the consume bench `weir
//! consume`'s fetching and decoding. They write nothing but generated records, and the
//! produce bench creates its topic only when `-p` asks for it.
//!
//! # Syntax
//! ```text
//! weir bench [--bootstrap HOST:PORT] produce <topic> [-n N] [-s BYTES] [-k K] [-p PARTITIONS]
//!     [-z none|gzip|snappy|lz4|zstd] [--acks 0|1|-1|all] [--batch-records N]
//!     [--batch-bytes BYTES] [--linger-ms MS] [-d SECS] [--format text|json]
//! weir bench [--bootstrap HOST:PORT] consume <topic> [-n N] [-o start|end|OFFSET|@TS|-N]
//!     [-d SECS] [--format text|json]
//! ```
//! `produce` sends N records (1,000,000 by default; with `-d` and no `-n`, as many as fit in
//! SECS) of BYTES-byte values (100), keyless or cycling over K keys, and reports when all are
//! acknowledged. `consume` reads everything below the high watermarks at start, or N records,
//! or for SECS. Ctrl-C stops either early and still reports.
//!
//! # Output
//! While it runs, a progress bar (records done of the total, rate, ETA) on stderr — only when
//! stderr is a terminal; otherwise nothing until the end. Then the summary on stdout. Rates
//! count records and their key and value bytes (MB = 10^6 bytes); latencies are
//! milliseconds with microsecond resolution, percentiles by nearest rank within 1/128.
//!
//! Text: `KEY  value` lines (TOPIC, RECORDS, BYTES, ELAPSED, RECORDS/S, MB/S, then per bench
//! BATCHES, BATCH-BYTES, REFUSED or FETCHES, FETCHED-BYTES), a blank line, and a table
//! `LATENCY-MS  MEAN  P50  P95  P99  P99.9  MAX` with a row `produce` (`send` with `--acks
//! 0`), or rows `fetch` and `end-to-end`.
//!
//! `--format json`: one object on one line (runs append as JSON lines). Both benches:
//! `{"topic", "records", "bytes", "elapsed_ms", "records_per_sec", "mb_per_sec",
//! "latency_ms": {"mean", "p50", "p95", "p99", "p999", "max"}, ...}` (values are `null`
//! without samples). `produce` adds `"record_size", "batches", "requests", "batch_bytes"`
//! (batch bytes sent, after compression), `"compression", "acks", "refused"` (records),
//! `"partitions": [{"partition", "records"}]` (records acknowledged per partition) and
//! `"errors": [{"partition", "error", "code", "records", "message"}]`; its `records` are the
//! acknowledged ones (with `--acks 0`: sent). `consume`'s `latency_ms` is per Fetch round
//! trip; it adds `"end_to_end_latency_ms": {"mean", "p50", ...}` (`null` when no record had a
//! timestamp), `"fetches"` and `"fetched_bytes"` (record batch bytes as fetched).
//!
//! # Exit codes
//! 0: done. 1: the broker refused records (each error's name on stderr; the summary is still
//! printed), or the topic does not exist. 2: usage and connection errors.

mod consume;
mod histogram;
mod produce;
mod report;

use std::time::{Duration, Instant};

pub use self::consume::ConsumeBenchArgs;
pub use self::produce::ProduceBenchArgs;
use super::cluster::Cluster;
use super::consume::shutdown_signal;
use super::{run_async, Format};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Send generated records as fast as the producer allows; report throughput and produce
    /// latency (from a batch's first record to its acknowledgement).
    Produce(ProduceBenchArgs),
    /// Read records as fast as the broker serves them; report throughput, Fetch round-trip
    /// and end-to-end latency.
    Consume(ConsumeBenchArgs),
}

/// The options both benches share: how long they run and how they report.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Stop after this many seconds (with -n: whichever comes first).
    #[arg(short = 'd', long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Text: aligned lines. JSON: one object on one line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `weir bench <command>`: see the module docs.
///
/// Both benches start alike: Ctrl-C and SIGTERM are taken over (they stop a run early), and
/// the cluster is connected through `bootstrap`.
///
/// # Errors
/// Connection errors (exit 2); refusals exit 1 through [`run_async`] or the summary.
pub fn run(bootstrap: &str, command: BenchCommand) -> anyhow::Result<i32> {
    run_async(async {
        let shutdown = shutdown_signal()?;
        let cluster = Cluster::connect(bootstrap).await?;
        match command {
            BenchCommand::Produce(args) => produce::run(cluster, shutdown, bootstrap, args).await,
            BenchCommand::Consume(args) => consume::run(cluster, shutdown, args).await,
        }
    })
}

/// `-d SECS`: a positive number of seconds, fractions allowed.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("expected a number of seconds, got {text:?}"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("expected a positive number of seconds, got {text:?}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// A latency sample: whole microseconds (saturating, for a clock that never gets there).
fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Wall-clock milliseconds since the epoch: the CreateTime of records.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Sleeps until `deadline`; never returns without one (for an optional `select!` branch).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_positive_seconds() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        for bad in ["0", "-1", "NaN", "inf", "soon", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_parses_with_its_defaults() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(subcommand)]
            command: BenchCommand,
        }
        let cli = Cli::try_parse_from(["bench", "produce", "t", "-k", "8", "-z", "lz4", "--acks", "all", "-d", "2"])
            .expect("valid");
        let BenchCommand::Produce(args) = cli.command else { panic!("produce") };
        assert_eq!((args.records, args.record_size, args.keys, args.batching.acks), (None, 100, 8, -1));
        assert_eq!(args.run.duration, Some(Duration::from_secs(2)));
        let cli = Cli::try_parse_from(["bench", "consume", "t", "-o", "-5", "-n", "10"]).expect("valid");
        let BenchCommand::Consume(args) = cli.command else { panic!("consume") };
        assert_eq!((args.records, args.offset), (Some(10), crate::cli::consume::StartAt::FromEnd(5)));
        assert!(Cli::try_parse_from(["bench", "produce", "t", "-p", "0"]).is_err());
        assert!(Cli::try_parse_from(["bench", "produce", "t", "--acks", "2"]).is_err());
    }
}
