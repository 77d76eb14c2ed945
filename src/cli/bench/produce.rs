//! `weir bench produce <topic>`: generated records through `weir produce`'s producer, as
//! fast as it sends them, with the latency of every record.
//!
//! This module owns the records (generated values and keys), the per-batch timing and the
//! produce summary. Partitioning, batching, compression, the one request in flight per
//! leader, acks and the accounting of refusals are [`Producer`]'s, unchanged: the bench adds
//! records where `weir produce` adds stdin lines, and drives the same dispatch / complete
//! loop. Like `weir produce`, it never retries a refused batch.
//!
//! # Records
//! A value is `--record-size` bytes cut at a pseudo-random offset from a 16 MiB pool of
//! random upper-case letters (what Kafka's `kafka-producer-perf-test` fills values with):
//! cheap to make, different from record to record, and compressible only as far as random
//! letters are (gzip and zstd to about 60 %, lz4 and snappy hardly), so codec figures are not
//! flattered by repeated values. With `-k K` record `i` has the key `key-(i mod K)`, placed by
//! Kafka's murmur2 partitioner; without, records are keyless and fill one partition's batch
//! at a time. Every record carries its CreateTime, so `weir bench consume` run alongside can
//! measure end-to-end latency.
//!
//! # Latency
//! A record's latency runs from when its batch was started (its first record added) to when
//! the batch's acknowledgement was taken in, so it includes lingering, waiting behind up to
//! 64 MiB of sealed batches (`weir produce`'s read-ahead bound, like Kafka's
//! `buffer.memory`), compression and the broker's append. Kafka's `kafka-producer-perf-test`
//! measures the same way. With `--acks 0` there is no acknowledgement: the latency ends when
//! the request was written to the socket. Connections are opened before the clock starts.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::histogram::Histogram;
use super::report::{print_json, write_fields, write_latencies, Latency, Progress, Throughput};
use super::{micros, now_ms, sleep_until, RunArgs};
use crate::cli::cluster::{Cluster, Topology};
use crate::cli::produce::summary::PartitionStats;
use crate::cli::produce::{connect, topic_partitions, BatchArgs, Flight, ProduceArgs, Producer, MAX_QUEUED_BYTES};
use crate::cli::{describe_error, error_name, Format, Refused, EXIT_REFUSED};
use crate::log::batch::Compression;

/// Records sent without `-n` or `-d`.
const DEFAULT_RECORDS: u64 = 1_000_000;

/// The largest `--record-size`: far above any topic's `max.message.bytes`, small enough
/// that the value pool stays a small part of memory.
const MAX_RECORD_SIZE: u32 = 64 * 1024 * 1024;

/// Bytes of random letters values are cut from: larger than a batch many times over, so a
/// codec rarely finds one record's bytes repeated in another of the same batch.
const POOL_BYTES: usize = 16 * 1024 * 1024;

/// Value bytes generated between two looks at the network: small enough that an
/// acknowledgement is taken in within about a millisecond of arriving (it ends a latency
/// sample), large enough that the look costs nothing.
const CHUNK_BYTES: usize = 64 * 1024;

/// CreateTopics v7, as `weir topic create` sends it; served by Kafka 2.4+ and weir.
const CREATE_TOPICS_VERSION: i16 = 7;
const CREATE_TOPICS_TIMEOUT_MS: i32 = 25_000;

/// How long a created topic may take to have a leader for every partition.
const LEADER_WAIT: Duration = Duration::from_secs(10);
const LEADER_POLL: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug)]
pub struct ProduceBenchArgs {
    /// The topic to write to. It must exist, unless -p says how to create it.
    pub topic: String,
    /// Records to send [default: 1000000; unlimited with -d].
    #[arg(short = 'n', long, value_name = "N")]
    pub records: Option<u64>,
    /// Bytes of each record's value.
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RECORD_SIZE)))]
    pub record_size: u32,
    /// Distinct keys: 0 sends keyless records; K gives record i the key `key-(i mod K)`,
    /// placed by Kafka's murmur2 partitioner.
    #[arg(short = 'k', long, value_name = "K", default_value_t = 0)]
    pub keys: u64,
    /// Create the topic with N partitions if it does not exist (an existing topic is used
    /// as it is).
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    #[command(flatten)]
    pub batching: BatchArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `weir bench produce`: see the module docs.
///
/// # Errors
/// Connection errors (exit 2); a missing topic or a refused CreateTopics is [`Refused`].
pub(crate) async fn run(
    mut cluster: Cluster,
    mut shutdown: watch::Receiver<bool>,
    bootstrap: &str,
    args: ProduceBenchArgs,
) -> anyhow::Result<i32> {
    let topology = topic_with_leaders(&mut cluster, bootstrap, &args.topic, args.partitions).await?;
    let mut producer = Producer::new(&cluster, &topology, &producer_args(&args));
    for leader in &mut producer.leaders {
        leader.connection = Some(connect(&leader.addr, args.batching.acks).await?);
    }
    let limit = args.records.or(args.run.duration.is_none().then_some(DEFAULT_RECORDS));
    let mut bench = Bench {
        keys: Keys { count: args.keys, next: 0, text: Vec::new() },
        values: Values::new(args.record_size as usize),
        tracker: Tracker::new(producer.stats.len()),
    };
    let progress = Progress::new(limit);
    let started = Instant::now();
    let deadline = args.run.duration.map(|d| started + d);
    let mut in_flight: JoinSet<Flight> = JoinSet::new();
    let mut generating = limit != Some(0);
    loop {
        producer.dispatch(&mut in_flight, generating);
        if !generating && producer.is_drained() && in_flight.is_empty() {
            break;
        }
        if generating && producer.queued_bytes < MAX_QUEUED_BYTES {
            while let Some(joined) = in_flight.try_join_next() {
                bench.tracker.complete(&mut producer, joined.context("a produce request task failed")?)?;
            }
            let room = limit.map_or(u64::MAX, |n| n - producer.records_read);
            bench.generate(&mut producer, room);
            generating = limit.is_none_or(|n| producer.records_read < n)
                && deadline.is_none_or(|d| Instant::now() < d)
                && !*shutdown.borrow();
            progress.set(bench.tracker.done);
            // Lets the request tasks write and read; the runtime polls the sockets first.
            tokio::task::yield_now().await;
            continue;
        }
        let linger = producer.next_linger_deadline();
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                bench.tracker.complete(&mut producer, joined.context("a produce request task failed")?)?;
                progress.set(bench.tracker.done);
            }
            () = sleep_until(linger), if linger.is_some() => {}
            () = sleep_until(deadline), if generating && deadline.is_some() => generating = false,
            _ = shutdown.changed(), if generating => generating = false,
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    let summary = Summary::new(&args, &producer, &bench.tracker, elapsed);
    match args.run.format {
        Format::Text => summary.print_text(&mut std::io::stdout().lock())?,
        Format::Json => print_json(&summary)?,
    }
    for e in &summary.errors {
        let message = e.message.as_ref().map(|m| format!(" (broker: {m})")).unwrap_or_default();
        eprintln!(
            "error: partition {}: {} records refused: {}{message}",
            e.partition,
            e.records,
            describe_error(e.code)
        );
    }
    Ok(if summary.refused > 0 { EXIT_REFUSED } else { 0 })
}

/// The `weir produce` settings the bench's producer runs with.
fn producer_args(args: &ProduceBenchArgs) -> ProduceArgs {
    ProduceArgs {
        topic: args.topic.clone(),
        key_delimiter: None,
        headers: Vec::new(),
        partition: None,
        batching: args.batching.clone(),
        format: Format::Text,
    }
}

/// The partitions of `topic` and their leaders. With `partitions`, a topic that does not
/// exist is created with that many (the broker's default replication factor) and waited for
/// until every partition has a leader.
///
/// # Errors
/// Connection errors; a missing topic without `partitions`, a refused CreateTopics, and
/// partitions still without a leader after [`LEADER_WAIT`] are [`Refused`].
async fn topic_with_leaders(
    cluster: &mut Cluster,
    bootstrap: &str,
    topic: &str,
    partitions: Option<i32>,
) -> anyhow::Result<Topology> {
    let Some(count) = partitions else { return topic_partitions(cluster, topic).await };
    let known = cluster.metadata(Some(&[topic.to_owned()])).await?;
    if known.topic_errors.get(topic) != Some(&ResponseError::UnknownTopicOrPartition.code()) {
        let topology = topic_partitions(cluster, topic).await?;
        let have = topology.partitions_of(topic).count();
        if have != count as usize {
            eprintln!("note: topic {topic} exists with {have} partitions; -p {count} applies only to a new topic");
        }
        return Ok(topology);
    }
    create_topic(cluster, bootstrap, topic, count).await?;
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let topology = cluster.metadata(Some(&[topic.to_owned()])).await?;
        let led = topology.leaders.iter().filter(|(tp, leader)| tp.topic == topic && leader.is_some()).count();
        if !topology.topic_errors.contains_key(topic) && led == count as usize {
            return Ok(topology);
        }
        if Instant::now() >= deadline {
            let message = format!("topic {topic} was created, but {led} of {count} partitions have a leader");
            return Err(Refused::State(format!("{message} after {LEADER_WAIT:?}")).into());
        }
        tokio::time::sleep(LEADER_POLL).await;
    }
}

/// CreateTopics for one topic, sent to the bootstrap broker (Kafka's brokers forward it to
/// the controller). A topic created meanwhile by someone else is fine.
async fn create_topic(cluster: &mut Cluster, bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)]) // -1: the broker's default.replication.factor
        .with_timeout_ms(CREATE_TOPICS_TIMEOUT_MS);
    let response = cluster.client(bootstrap).await?.request(CREATE_TOPICS_VERSION, &request).await?;
    for r in &response.topics {
        if r.error_code != 0 && r.error_code != ResponseError::TopicAlreadyExists.code() {
            let message = r.error_message.as_ref().map(|m| format!(" (broker: {m})")).unwrap_or_default();
            return Err(
                Refused::State(format!("creating topic {topic}: {}{message}", describe_error(r.error_code))).into()
            );
        }
    }
    eprintln!("created topic {topic} with {partitions} partitions");
    Ok(())
}

/// The generated records and what became of them.
#[derive(Debug)]
struct Bench {
    keys: Keys,
    values: Values,
    tracker: Tracker,
}

impl Bench {
    /// Adds about [`CHUNK_BYTES`] of records, at most `room`, to the producer's batches.
    fn generate(&mut self, producer: &mut Producer, room: u64) {
        let per_record = self.values.size.max(1);
        let records = (CHUNK_BYTES / per_record).max(1) as u64;
        // One clock read per chunk, as `weir produce` stamps a chunk of stdin.
        let timestamp = now_ms();
        for _ in 0..records.min(room) {
            let key = self.keys.next();
            let value = self.values.next();
            self.tracker.add(producer, key, value, timestamp);
        }
    }
}

/// Record keys: `key-0` .. `key-(K-1)` in turn, or none.
#[derive(Debug)]
struct Keys {
    count: u64,
    next: u64,
    /// The key being handed out, reused so a key costs no allocation.
    text: Vec<u8>,
}

impl Keys {
    fn next(&mut self) -> Option<&[u8]> {
        if self.count == 0 {
            return None;
        }
        self.text.clear();
        write!(self.text, "key-{}", self.next).expect("writing to a Vec cannot fail");
        self.next = (self.next + 1) % self.count;
        Some(&self.text)
    }
}

/// Record values: see "Records" in the module docs.
#[derive(Debug)]
struct Values {
    /// [`POOL_BYTES`] + `size` random upper-case letters.
    pool: Vec<u8>,
    size: usize,
    state: u64,
}

impl Values {
    fn new(size: usize) -> Values {
        let mut state = 0x2545_f491_4f6c_dd1d;
        let mut pool = Vec::with_capacity(POOL_BYTES + size + 8);
        while pool.len() < POOL_BYTES + size {
            pool.extend(xorshift(&mut state).to_le_bytes().map(|b| b'A' + b % 26));
        }
        pool.truncate(POOL_BYTES + size);
        Values { pool, size, state }
    }

    fn next(&mut self) -> &[u8] {
        let at = (xorshift(&mut self.state) % (POOL_BYTES as u64 + 1)) as usize;
        &self.pool[at..at + self.size]
    }
}

/// Marsaglia's xorshift64: a few cycles per number, plenty for picking letters and offsets.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A batch the producer has open or in flight, as the bench knows it.
#[derive(Debug)]
struct BatchTiming {
    /// When its first record was added: where its records' latency starts.
    since: Instant,
    records: u32,
    /// Key and value bytes of its records.
    bytes: u64,
}

/// Per-batch timing and the totals of acknowledged records.
///
/// A partition's batches are sealed, sent and answered in the order they were started (one
/// batch per partition in a request, one request per leader in flight), so a queue per
/// partition pairs each answered batch with its start.
#[derive(Debug)]
struct Tracker {
    batches: Vec<VecDeque<BatchTiming>>,
    /// Microseconds from batch start to acknowledgement, one sample per record.
    latency: Histogram,
    /// Records acknowledged (with acks 0: sent), and their key and value bytes.
    done: u64,
    bytes: u64,
    requests: u64,
    batches_done: u64,
}

impl Tracker {
    fn new(partitions: usize) -> Tracker {
        Tracker {
            batches: (0..partitions).map(|_| VecDeque::new()).collect(),
            latency: Histogram::new(),
            done: 0,
            bytes: 0,
            requests: 0,
            batches_done: 0,
        }
    }

    /// Adds one record through the producer, as `weir produce` adds a line, noting when a
    /// batch starts and what it holds.
    fn add(&mut self, producer: &mut Producer, key: Option<&[u8]>, value: &[u8], timestamp: i64) {
        let Some(added) = producer.add(timestamp, key, value, &[], 0) else { return };
        let timings = &mut self.batches[added.partition as usize];
        if let Some(since) = added.started {
            timings.push_back(BatchTiming { since, records: 0, bytes: 0 });
        }
        let timing = timings.back_mut().expect("pushed when the open batch was started");
        timing.records += 1;
        timing.bytes += (key.map_or(0, <[u8]>::len) + value.len()) as u64;
    }

    /// Hands a finished request to the producer, then takes the latency of each of its
    /// batches that was acknowledged.
    ///
    /// # Errors
    /// The request failed (the connection broke): the run stops with exit 2.
    fn complete(&mut self, producer: &mut Producer, flight: Flight) -> anyhow::Result<()> {
        let batches: Vec<(usize, u32)> = flight.batches.iter().map(|b| (b.partition as usize, b.records)).collect();
        let before: Vec<u64> = batches.iter().map(|&(p, _)| done(&producer.stats[p])).collect();
        producer.complete(flight)?;
        let now = Instant::now();
        self.requests += 1;
        for (&(p, records), before) in batches.iter().zip(before) {
            let timing = self.batches[p].pop_front().expect("every sealed batch was started by `add`");
            debug_assert_eq!(timing.records, records, "batches of partition {p} answered out of order");
            self.batches_done += 1;
            if done(&producer.stats[p]) > before {
                self.latency.record_n(micros(now - timing.since), u64::from(records));
                self.done += u64::from(records);
                self.bytes += timing.bytes;
            }
        }
        Ok(())
    }
}

/// Records of a partition acknowledged, or with acks 0 sent.
fn done(stats: &PartitionStats) -> u64 {
    stats.acknowledged + stats.sent
}

/// What `weir bench produce` prints: see the [`super`] docs for the JSON shape.
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(flatten)]
    throughput: Throughput,
    latency_ms: Latency,
    record_size: u32,
    batches: u64,
    requests: u64,
    batch_bytes: u64,
    compression: &'static str,
    acks: i16,
    refused: u64,
    partitions: Vec<PartitionRecords>,
    errors: Vec<Refusal>,
}

#[derive(Debug, Serialize)]
struct PartitionRecords {
    partition: i32,
    records: u64,
}

#[derive(Debug, Serialize)]
struct Refusal {
    partition: i32,
    error: String,
    code: i16,
    records: u64,
    message: Option<String>,
}

impl Summary {
    fn new(args: &ProduceBenchArgs, producer: &Producer, tracker: &Tracker, elapsed: Duration) -> Summary {
        let mut partitions = Vec::new();
        let mut errors = Vec::new();
        for (p, stats) in producer.stats.iter().enumerate() {
            if done(stats) > 0 {
                partitions.push(PartitionRecords { partition: p as i32, records: done(stats) });
            }
            for (&code, refusals) in &stats.refused {
                errors.push(Refusal {
                    partition: p as i32,
                    error: error_name(code),
                    code,
                    records: refusals.records,
                    message: refusals.message.clone(),
                });
            }
        }
        Summary {
            throughput: Throughput::new(&args.topic, tracker.done, tracker.bytes, elapsed),
            latency_ms: Latency::from_micros(&tracker.latency),
            record_size: args.record_size,
            batches: tracker.batches_done,
            requests: tracker.requests,
            batch_bytes: producer.bytes_sent,
            compression: Compression::from(args.batching.compression).name(),
            acks: args.batching.acks,
            refused: errors.iter().map(|e| e.records).sum(),
            partitions,
            errors,
        }
    }

    fn print_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let t = &self.throughput;
        let records = if self.acks == 0 {
            format!("{} (acks=0: sent, not acknowledged)", t.records)
        } else {
            t.records.to_string()
        };
        let mut fields = t.fields(records, format!("{} ({} per value)", t.bytes, self.record_size));
        fields.extend([
            ("BATCHES", format!("{} in {} requests", self.batches, self.requests)),
            ("BATCH-BYTES", format!("{} ({}, acks={})", self.batch_bytes, self.compression, self.acks)),
        ]);
        if self.refused > 0 {
            fields.push(("REFUSED", self.refused.to_string()));
        }
        write_fields(out, &fields)?;
        let name = if self.acks == 0 { "send" } else { "produce" };
        write_latencies(out, &[(name, self.latency_ms)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_letters_of_the_record_size_and_differ() {
        let mut values = Values::new(100);
        let a = values.next().to_vec();
        let b = values.next().to_vec();
        assert_eq!((a.len(), b.len()), (100, 100));
        assert_ne!(a, b);
        assert!(a.iter().all(u8::is_ascii_uppercase), "{a:?}");
        assert_eq!(Values::new(0).next(), b"");
    }

    #[test]
    fn keys_cycle_over_k_and_none_without_k() {
        let mut keys = Keys { count: 3, next: 0, text: Vec::new() };
        let seen: Vec<Vec<u8>> = (0..4).map(|_| keys.next().expect("a key").to_vec()).collect();
        assert_eq!(seen, [b"key-0".to_vec(), b"key-1".to_vec(), b"key-2".to_vec(), b"key-0".to_vec()]);
        assert_eq!(Keys { count: 0, next: 0, text: Vec::new() }.next(), None);
    }
}
