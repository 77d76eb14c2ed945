//! `weir bench consume <topic>`: reads through `weir consume`'s fetching and decoding as
//! fast as the broker serves, counting instead of printing.
//!
//! This module owns when the bench stops and what it counts. Start positions (`-o`), Fetch
//! requests (one long-poll per leader, all leaders at once, Kafka's consumer size limits),
//! recovery from out-of-range positions and moved leaders are [`Consumer`]'s; a round of
//! responses is walked by [`walk_round`] (partition errors, high watermarks) and batches are
//! decoded (decompressed, control batches skipped) by [`for_each_record`], as `weir consume`
//! does.
//!
//! # When it stops
//! Without `-n` and `-d`: once every partition is read up to its high watermark at start
//! (with `-o end` that is nothing). With `-n N`: after N records, waiting for new ones if
//! needed. With `-d SECS`: after SECS, reading new records as they come. With both, whichever
//! comes first; Ctrl-C or SIGTERM stops it too, and the summary covers what was read.
//!
//! # Latency
//! Fetch latency is one round trip: a round sends one Fetch per leader at once and waits for
//! all of them (one request with a single broker), and each request of the round counts with
//! the round's time. A fetch that has records waiting returns at once; one at the end of the
//! log waits up to 500 ms for new records (librdkafka's `fetch.wait.max.ms`), which shows in
//! the percentiles of a run that catches up with a producer. End-to-end latency is the time
//! the fetch response was taken in minus each record's timestamp: the CreateTime its producer
//! gave it (or the broker's append time on a `LogAppendTime` topic), so it means something
//! when `weir bench produce` runs at the same time on a clock this machine shares; for old
//! records it is their age. Millisecond precision, as timestamps have.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::FetchResponse;
use serde::Serialize;
use tokio::sync::watch;

use super::histogram::Histogram;
use super::report::{print_json, write_fields, write_latencies, Latency, Progress, Throughput};
use super::{micros, now_ms, sleep_until, RunArgs};
use crate::cli::cluster::{Cluster, LATEST_TIMESTAMP};
use crate::cli::consume::output::Output;
use crate::cli::consume::records::{for_each_record, DecodeError};
use crate::cli::consume::{fetch_all, walk_round, Consumer, Position, Round, StartAt, MAX_WAIT};
use crate::cli::produce::topic_partitions;
use crate::cli::Format;
use crate::client::Client;
use crate::log::TopicPartition;

#[derive(clap::Args, Debug)]
pub struct ConsumeBenchArgs {
    /// The topic to read.
    pub topic: String,
    /// Records to read [default: every record below the high watermarks at start].
    #[arg(short = 'n', long, value_name = "N")]
    pub records: Option<u64>,
    /// Where to start: start, end, OFFSET, @TIMESTAMP_MS or -N (the last N records).
    #[arg(short = 'o', long, value_name = "WHERE", default_value = "start", allow_hyphen_values = true)]
    pub offset: StartAt,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `weir bench consume`: see the module docs.
///
/// # Errors
/// Connection errors and damaged batches (exit 2); an unknown topic and Fetch or
/// ListOffsets error codes are [`crate::cli::Refused`] (exit 1).
pub(crate) async fn run(
    mut cluster: Cluster,
    mut shutdown: watch::Receiver<bool>,
    args: ConsumeBenchArgs,
) -> anyhow::Result<i32> {
    let topology = topic_partitions(&mut cluster, &args.topic).await?;
    let all: Vec<i32> = topology.partitions_of(&args.topic).collect();
    // `weir consume` prints through the output; the bench never writes a record to it.
    let output = Output { out: BufWriter::with_capacity(0, std::io::stdout().lock()), format: None };
    let mut consumer = Consumer::new(cluster, topology, &args.topic, args.offset, output);
    let starts = consumer.resolve(&all, args.offset).await?;
    // Without -n and -d the run ends at the high watermarks at start.
    let ends = if args.records.is_none() && args.run.duration.is_none() {
        let tps: Vec<TopicPartition> = all.iter().map(|&p| TopicPartition::new(args.topic.as_str(), p)).collect();
        let found = consumer.list_offsets(&tps, LATEST_TIMESTAMP).await?;
        Some(found.into_iter().map(|(p, end)| (p, end.unwrap_or(0))).collect::<BTreeMap<i32, i64>>())
    } else {
        None
    };
    let mut total = args.records;
    for (p, start) in starts {
        if let Some(end) = ends.as_ref().map(|e| e.get(&p).copied().unwrap_or(0)) {
            if start >= end {
                continue;
            }
            *total.get_or_insert(0) += (end - start) as u64;
        }
        consumer.partitions.insert(p, Position::new(start));
    }
    if ends.is_some() && consumer.partitions.is_empty() {
        eprintln!("note: nothing to read below the high watermarks; for new records give -n or -d");
    }
    connect_leaders(&mut consumer).await?;

    let mut bench = Bench { ends, limit: args.records, ..Bench::default() };
    let progress = Progress::new(total);
    let started = Instant::now();
    let deadline = args.run.duration.map(|d| started + d);
    loop {
        let finished = *shutdown.borrow()
            || args.records.is_some_and(|n| bench.records >= n)
            || (bench.ends.is_some() && consumer.partitions.is_empty())
            || deadline.is_some_and(|d| Instant::now() >= d);
        if finished {
            break;
        }
        let wake = deadline.map_or(Instant::now() + MAX_WAIT, |d| d.min(Instant::now() + MAX_WAIT));
        let requests = consumer.fetch_requests(wake.into());
        let sent = Instant::now();
        let round = if requests.is_empty() {
            // Every partition lacks a leader: recover() waits, then asks Metadata again.
            Round { stale: leaderless(&consumer), ..Round::default() }
        } else {
            let count = requests.len() as u64;
            let responses = tokio::select! {
                responses = fetch_all(&mut consumer.fetchers, requests) => responses?,
                _ = shutdown.changed() => break,
                () = sleep_until(deadline) => break,
            };
            bench.fetch_latency.record_n(micros(sent.elapsed()), count);
            bench.fetches += count;
            let mut round = bench.count(&mut consumer, &responses)?;
            round.stale.extend(leaderless(&consumer));
            round
        };
        progress.set(bench.records);
        consumer.recover(round, &mut shutdown).await?;
    }
    let elapsed = started.elapsed();
    progress.finish();
    drop(consumer);
    let summary = Summary::new(&args.topic, &bench, elapsed);
    match args.run.format {
        Format::Text => summary.print_text(&mut std::io::stdout().lock())?,
        Format::Json => print_json(&summary)?,
    }
    Ok(0)
}

/// Opens the fetch connections before the clock starts, so that no fetch round trip
/// includes a TCP and ApiVersions handshake.
async fn connect_leaders(consumer: &mut Consumer) -> anyhow::Result<()> {
    let leaders: BTreeSet<String> = consumer
        .partitions
        .keys()
        .filter_map(|&p| {
            let tp = TopicPartition::new(consumer.topic.as_str(), p);
            consumer.topology.leaders.get(&tp).copied().flatten().and_then(|id| consumer.cluster.addr_of(id))
        })
        .collect();
    for addr in leaders {
        let client = Client::connect(&addr).await?;
        consumer.fetchers.insert(addr, client);
    }
    Ok(())
}

/// The partitions read now that have no known leader, so no fetch: [`Consumer::recover`]
/// retries them with fresh Metadata (and gives up after a while).
fn leaderless(consumer: &Consumer) -> Vec<(i32, i16)> {
    let led = |p: i32| {
        let tp = TopicPartition::new(consumer.topic.as_str(), p);
        consumer.topology.leaders.get(&tp).copied().flatten().and_then(|id| consumer.cluster.addr_of(id)).is_some()
    };
    let code = ResponseError::LeaderNotAvailable.code();
    consumer.partitions.keys().copied().filter(|&p| !led(p)).map(|p| (p, code)).collect()
}

/// What the bench read, and where it stops.
#[derive(Debug, Default)]
struct Bench {
    /// Per partition, the offset to stop at (the high watermark at start); `None` with -n or
    /// -d.
    ends: Option<BTreeMap<i32, i64>>,
    limit: Option<u64>,
    records: u64,
    /// Key and value bytes of the records read.
    bytes: u64,
    /// Bytes of record batches in Fetch responses, as sent (compressed).
    fetched_bytes: u64,
    fetches: u64,
    /// Microseconds per Fetch round trip.
    fetch_latency: Histogram,
    /// Milliseconds from a record's timestamp to its arrival.
    end_to_end: Histogram,
}

impl Bench {
    /// Counts the records of `responses` and moves positions past them, as `weir consume`
    /// prints them; partitions read up to their end are dropped.
    ///
    /// # Errors
    /// A batch that cannot be decoded.
    fn count(&mut self, consumer: &mut Consumer, responses: &[FetchResponse]) -> anyhow::Result<Round> {
        let mut finished = Vec::new();
        let arrived = now_ms();
        let topic = consumer.topic.as_str();
        let round = walk_round(topic, &mut consumer.partitions, responses, |p, position, records| {
            self.fetched_bytes += records.len() as u64;
            let end = self.ends.as_ref().and_then(|e| e.get(&p).copied());
            let (limit, mut read, mut bytes) = (self.limit, self.records, 0u64);
            let end_to_end = &mut self.end_to_end;
            let next = for_each_record(records, position.offset, |r| {
                if end.is_some_and(|e| r.offset >= e) || limit.is_some_and(|n| read >= n) {
                    return Ok(ControlFlow::Break(()));
                }
                read += 1;
                bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
                if r.timestamp >= 0 {
                    end_to_end.record((arrived - r.timestamp).max(0) as u64);
                }
                Ok(ControlFlow::Continue(()))
            });
            self.records = read;
            self.bytes += bytes;
            match next {
                Ok(next) => position.offset = next,
                Err(DecodeError::Batch(message)) => anyhow::bail!("cannot decode {topic}-{p}: {message}"),
                Err(DecodeError::Io(e)) => return Err(e.into()), // counting writes nothing
            }
            if end.is_some_and(|e| position.offset >= e) {
                finished.push(p);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        for p in finished {
            consumer.partitions.remove(&p);
        }
        Ok(round)
    }
}

/// What `weir bench consume` prints: see the [`super`] docs for the JSON shape.
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(flatten)]
    throughput: Throughput,
    /// Fetch round trips.
    latency_ms: Latency,
    /// `None` when no record had a timestamp.
    end_to_end_latency_ms: Option<Latency>,
    fetches: u64,
    fetched_bytes: u64,
}

impl Summary {
    fn new(topic: &str, bench: &Bench, elapsed: Duration) -> Summary {
        Summary {
            throughput: Throughput::new(topic, bench.records, bench.bytes, elapsed),
            latency_ms: Latency::from_micros(&bench.fetch_latency),
            end_to_end_latency_ms: (bench.end_to_end.count() > 0).then(|| Latency::from_millis(&bench.end_to_end)),
            fetches: bench.fetches,
            fetched_bytes: bench.fetched_bytes,
        }
    }

    fn print_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let t = &self.throughput;
        let mut fields = t.fields(t.records.to_string(), t.bytes.to_string());
        fields.extend([("FETCHES", self.fetches.to_string()), ("FETCHED-BYTES", self.fetched_bytes.to_string())]);
        write_fields(out, &fields)?;
        let mut rows = vec![("fetch", self.latency_ms)];
        rows.extend(self.end_to_end_latency_ms.map(|l| ("end-to-end", l)));
        write_latencies(out, &rows)
    }
}
