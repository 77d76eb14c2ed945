//! `weir produce <topic>`: every line of stdin becomes one record, like `kcat -P` and
//! `rpk topic produce`.
//!
//! This module owns the producing side of the command line: splitting stdin into records
//! (`--key-delimiter`, `--header`), choosing each record's partition, batching, compressing,
//! sending each batch to its partition's leader, and the summary. It also holds the topic
//! lookup that `weir consume` shares (`topic_partitions`). It never retries a refused
//! batch: there is no idempotent producer here, so a retry could write a record twice. It
//! reports the refusal and exits 1 instead.
//!
//! # Records
//! A record is the bytes of a line without its `\n` (an empty line is an empty value; a last
//! line without `\n` counts too). With `-k SEP`, a line is split at the first SEP into key and
//! value; a line without SEP has a null key. Every record carries the `-H` headers and the
//! time it was read (CreateTime).
//!
//! # Partitions
//! `-p P` sends everything to P. Otherwise a keyed record goes where Kafka's Java producer
//! (and librdkafka's `murmur2_random`) puts it: `murmur2(key) & 0x7fffffff % partitions`.
//! Keyless records fill one partition's batch, then move round-robin to the next partition
//! (Kafka's "sticky" partitioning, without the randomness).
//!
//! # Batching and ordering
//! A reader thread hands stdin over in large chunks that end at a line boundary. Each
//! partition has one open batch; it is sealed when it reaches `--batch-records` records or
//! `--batch-bytes` bytes, or — once its leader's connection is idle — when its first record
//! is `--linger-ms` old (so a pause in stdin sends what was typed), or at end of input.
//! Sealed batches queue per leader. Each leader gets one connection with one Produce request
//! in flight; a request carries at most one batch per partition (Kafka allows no more), taken
//! in queue order, so records of a partition are written in stdin order. Requests to
//! different leaders, and reading and batching stdin, overlap with the request in flight.
//! Reading stops while more than `MAX_QUEUED_BYTES` wait to be sent.
//!
//! # Output
//! A summary always goes to stderr: records produced, per partition with the offset range,
//! and every refusal with Kafka's error name and a hint. With `--format json` the same
//! summary is printed to stdout as one JSON object at the end (see `Summary`); nothing is
//! printed per batch.
//!
//! Reading stdin lives in `input`, the summary in `summary`.
//!
//! # Exit codes
//! 0: every record was acknowledged (with `--acks 0`: sent). 1: the broker refused some
//! records, or the topic or partition does not exist. 2: usage errors, stdin errors, and a
//! broker that cannot be reached or drops the connection.

mod input;
pub(crate) mod summary;

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::input::{lines, spawn_stdin_reader, split_key};
use self::summary::{PartitionStats, Refusals, Summary, Totals};
use super::cluster::{Cluster, Topology};
use super::{describe_error, run_async, Format, Refused, EXIT_REFUSED};
use crate::client::{Client, CLIENT_ID};
use crate::kv::views::partition_for_key;
use crate::log::batch::{with_records, BatchBuilder, Compression, HEADER_SIZE};
use crate::log::codec;

/// Produce v9: flexible, topic names (v13 switched to topic ids); Kafka 3.x/4.x and weir
/// serve it.
const PRODUCE_VERSION: i16 = 9;

/// How long the broker may wait for replicas with `--acks -1`. Below the client's 30 s
/// request timeout, so the broker's answer (REQUEST_TIMED_OUT) arrives before the client
/// gives up.
const PRODUCE_TIMEOUT_MS: i32 = 25_000;

/// Chunks the reader thread may read ahead of batching.
const STDIN_CHUNKS_AHEAD: usize = 8;

/// Reading stdin pauses while this many bytes of sealed batches wait for their leader, so a
/// slow broker bounds memory instead of the whole input landing in queues.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// A request stops taking batches at this size (a single larger batch still goes alone); far
/// below the broker's `socket.request.max.bytes` (100 MiB by default).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// How long to wait for a TCP connection (the `--acks 0` connections; [`Client`] has its own).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Byte offset of the attributes field in a batch header (see [`crate::log::batch`]); its
/// low three bits name the codec.
const ATTRIBUTES_AT: usize = 21;

/// Bytes a record adds to a batch beyond its key, value and headers (length, attributes,
/// timestamp and offset deltas, lengths: varints), for the `--batch-bytes` estimate.
const RECORD_OVERHEAD: usize = 16;

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// The topic to write to (it must exist; see `weir topic create`).
    pub topic: String,
    /// Split each line at the first SEP into key and value (kcat's -K). Lines without SEP
    /// have a null key.
    #[arg(short = 'k', long, value_name = "SEP")]
    pub key_delimiter: Option<String>,
    /// Add this header to every record, KEY=VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition. Otherwise keyed records go to Kafka's default
    /// partition for their key (murmur2) and keyless records round-robin per batch.
    #[arg(short, long, value_name = "P")]
    pub partition: Option<i32>,
    #[command(flatten)]
    pub batching: BatchArgs,
    /// Text: the summary on stderr only. JSON: also one summary object on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How records are batched and sent: the options `weir produce` and `weir bench produce`
/// share.
#[derive(clap::Args, Debug, Clone)]
pub struct BatchArgs {
    /// Compression codec of the batches.
    #[arg(short = 'z', long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// Acknowledgements to wait for: 0 (none: fire and forget), 1 (the leader), -1 or all
    /// (all in-sync replicas).
    #[arg(long, default_value = "-1", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,
    /// Send a batch once it holds this many records.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_records: u32,
    /// Send a batch once it holds about this many bytes (before compression). Keep it below
    /// the topic's max.message.bytes (1048588 by default).
    #[arg(long, value_name = "BYTES", default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_bytes: u32,
    /// Send a partly filled batch once its first record waited this long and its leader is
    /// idle (so pauses in the input send what was there).
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub linger_ms: u64,
}

/// `-z` values, Kafka's codec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some(("", _)) => Err("the header key is empty".to_owned()),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "-1" | "all" => Ok(-1),
        other => Err(format!("expected 0, 1, -1 or all, got {other:?}")),
    }
}

/// `weir produce <topic>`: see the module docs.
///
/// # Errors
/// Connection and stdin errors (exit 2); refusals exit 1 through [`run_async`] or the
/// summary.
pub fn run(bootstrap: &str, args: ProduceArgs) -> anyhow::Result<i32> {
    run_async(produce(bootstrap, args))
}

/// The partitions of `topic` with their leaders. A topic Metadata does not know is
/// [`Refused`] with a hint to create it.
///
/// # Errors
/// Connection errors; Metadata refusals and a missing topic are [`Refused`].
pub(crate) async fn topic_partitions(cluster: &mut Cluster, topic: &str) -> anyhow::Result<Topology> {
    let topology = cluster.metadata(Some(&[topic.to_owned()])).await?;
    if let Some(&code) = topology.topic_errors.get(topic) {
        let create = if code == ResponseError::UnknownTopicOrPartition.code() {
            format!(" (create it with `weir topic create {topic}`)")
        } else {
            String::new()
        };
        return Err(Refused::State(format!("topic {topic}: {}{create}", describe_error(code))).into());
    }
    if topology.partitions_of(topic).next().is_none() {
        return Err(Refused::State(format!("topic {topic} has no partitions")).into());
    }
    Ok(topology)
}

/// Refused unless `partition` is one of `topic`'s partitions.
pub(crate) fn check_partition(topology: &Topology, topic: &str, partition: i32) -> anyhow::Result<()> {
    if topology.partitions_of(topic).any(|p| p == partition) {
        return Ok(());
    }
    let count = topology.partitions_of(topic).count();
    Err(Refused::State(format!(
        "topic {topic} has no partition {partition} (it has {count}: 0..{}): {}",
        count - 1,
        describe_error(ResponseError::UnknownTopicOrPartition.code())
    ))
    .into())
}

async fn produce(bootstrap: &str, args: ProduceArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut cluster = Cluster::connect(bootstrap).await?;
    let topology = topic_partitions(&mut cluster, &args.topic).await?;
    if let Some(p) = args.partition {
        check_partition(&topology, &args.topic, p)?;
    }
    let mut producer = Producer::new(&cluster, &topology, &args);
    let (tx, mut chunks) = mpsc::channel(STDIN_CHUNKS_AHEAD);
    spawn_stdin_reader(tx)?;
    let mut in_flight: JoinSet<Flight> = JoinSet::new();
    let mut input_open = true;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut failure: Option<anyhow::Error> = None;
    loop {
        producer.dispatch(&mut in_flight, input_open);
        if !input_open && producer.is_drained() && in_flight.is_empty() {
            break;
        }
        let linger = producer.next_linger_deadline();
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let flight = joined.context("a produce request task failed")?;
                if let Err(e) = producer.complete(flight) {
                    failure = Some(e);
                    break;
                }
            }
            chunk = chunks.recv(), if input_open && producer.queued_bytes < MAX_QUEUED_BYTES => match chunk {
                Some(Ok(chunk)) => producer.add_lines(&chunk),
                Some(Err(e)) => {
                    failure = Some(anyhow::Error::new(e).context("cannot read stdin"));
                    break;
                }
                None => input_open = false,
            },
            () = sleep_until(linger), if linger.is_some() => {}
            _ = &mut interrupt, if input_open => {
                eprintln!("interrupted: sending what was read, then stopping (Ctrl-C again to quit now)");
                input_open = false;
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                });
            }
        }
    }
    let summary = producer.summary(started.elapsed());
    summary.print_text(&mut std::io::stderr().lock())?;
    if args.format == Format::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(if summary.refused > 0 { EXIT_REFUSED } else { 0 })
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// Where records without a fixed partition go.
#[derive(Debug)]
struct Partitioner {
    fixed: Option<i32>,
    count: i32,
    /// The partition keyless records fill now; moves on when its batch is sealed.
    sticky: i32,
}

impl Partitioner {
    fn partition(&self, key: Option<&[u8]>) -> i32 {
        match (self.fixed, key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.count),
            (None, None) => self.sticky,
        }
    }
}

/// A partition's batch being filled.
#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    records: u32,
    bytes: usize,
    since: Instant,
}

/// Where [`Producer::add`] put a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Added {
    pub(crate) partition: i32,
    /// When the batch this record started was opened; `None` when it joined an open batch.
    pub(crate) started: Option<Instant>,
}

/// A finished batch waiting for (or in) a request.
#[derive(Debug)]
pub(crate) struct SealedBatch {
    pub(crate) partition: i32,
    pub(crate) records: u32,
    batch: Bytes,
}

/// One leader: its queue and its connection (`None` while a request is in flight).
#[derive(Debug)]
pub(crate) struct Leader {
    pub(crate) addr: String,
    queue: VecDeque<SealedBatch>,
    pub(crate) connection: Option<Connection>,
}

#[derive(Debug)]
pub(crate) enum Connection {
    /// Not yet connected.
    Pending,
    Acked(Client),
    /// `--acks 0`: the broker answers nothing, so requests are written and never read.
    Unacked(TcpStream),
}

/// A finished request: the connection comes back with the result.
#[derive(Debug)]
pub(crate) struct Flight {
    leader: usize,
    connection: Connection,
    pub(crate) batches: Vec<SealedBatch>,
    result: anyhow::Result<Option<ProduceResponse>>,
}

#[derive(Debug)]
pub(crate) struct Producer {
    topic: String,
    acks: i16,
    compression: Compression,
    headers: Vec<(String, Vec<u8>)>,
    key_delimiter: Option<Vec<u8>>,
    batch_records: u32,
    batch_bytes: usize,
    linger: Duration,
    partitioner: Partitioner,
    /// Index into `leaders` per partition, `None` for a partition without a leader.
    leader_of: Vec<Option<usize>>,
    pub(crate) leaders: Vec<Leader>,
    open: Vec<Option<OpenBatch>>,
    pub(crate) queued_bytes: usize,
    pub(crate) stats: Vec<PartitionStats>,
    pub(crate) records_read: u64,
    pub(crate) bytes_sent: u64,
}

impl Producer {
    pub(crate) fn new(cluster: &Cluster, topology: &Topology, args: &ProduceArgs) -> Producer {
        let count = topology.partitions_of(&args.topic).max().map_or(0, |p| p + 1);
        let mut leaders: Vec<Leader> = Vec::new();
        let mut leader_of = vec![None; count as usize];
        for p in topology.partitions_of(&args.topic) {
            let leader = topology.leaders.get(&crate::log::TopicPartition::new(args.topic.as_str(), p)).copied();
            let Some(addr) = leader.flatten().and_then(|id| cluster.addr_of(id)) else { continue };
            let index = match leaders.iter().position(|l| l.addr == addr) {
                Some(i) => i,
                None => {
                    leaders.push(Leader { addr, queue: VecDeque::new(), connection: Some(Connection::Pending) });
                    leaders.len() - 1
                }
            };
            leader_of[p as usize] = Some(index);
        }
        let sticky = (0..count).find(|&p| leader_of[p as usize].is_some()).unwrap_or(0);
        Producer {
            topic: args.topic.clone(),
            acks: args.batching.acks,
            compression: args.batching.compression.into(),
            headers: args.headers.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect(),
            key_delimiter: args.key_delimiter.as_ref().map(|d| d.as_bytes().to_vec()),
            batch_records: args.batching.batch_records,
            batch_bytes: args.batching.batch_bytes as usize,
            linger: Duration::from_millis(args.batching.linger_ms),
            partitioner: Partitioner { fixed: args.partition, count, sticky },
            leader_of,
            leaders,
            open: (0..count).map(|_| None).collect(),
            queued_bytes: 0,
            stats: (0..count).map(|_| PartitionStats::default()).collect(),
            records_read: 0,
            bytes_sent: 0,
        }
    }

    /// Turns the lines of `chunk` into records in their partitions' open batches.
    fn add_lines(&mut self, chunk: &[u8]) {
        let timestamp = now_ms();
        // Taken out for the loop, which borrows `self` mutably to seal batches.
        let owned_headers = std::mem::take(&mut self.headers);
        let headers: Vec<(&str, &[u8])> = owned_headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let header_bytes: usize = owned_headers.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        for line in lines(chunk) {
            let (key, value) = split_key(line, self.key_delimiter.as_deref());
            self.add(timestamp, key, value, &headers, header_bytes);
        }
        drop(headers);
        self.headers = owned_headers;
    }

    /// Adds one record to its partition's open batch (starting one if needed), sealing the
    /// batch before the record when the record would overflow it, and after once it is full.
    /// `header_bytes` is the size of `headers`, for the `--batch-bytes` estimate. A record
    /// whose partition has no leader is counted as refused instead.
    ///
    /// Returns the record's partition and, when the record started a batch, when it did;
    /// `None` for a refused record.
    pub(crate) fn add(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&str, &[u8])],
        header_bytes: usize,
    ) -> Option<Added> {
        self.records_read += 1;
        let partition = self.partitioner.partition(key);
        if self.leader_of[partition as usize].is_none() {
            let code = ResponseError::LeaderNotAvailable.code();
            self.stats[partition as usize].refused.entry(code).or_default().records += 1;
            return None;
        }
        let size = RECORD_OVERHEAD + key.map_or(0, <[u8]>::len) + value.len() + header_bytes;
        // A record that would overflow the open batch starts a new one.
        if self.open[partition as usize].as_ref().is_some_and(|b| b.bytes + size > self.batch_bytes) {
            self.seal(partition);
        }
        let mut started = None;
        let open = self.open[partition as usize].get_or_insert_with(|| {
            let since = Instant::now();
            started = Some(since);
            OpenBatch { builder: BatchBuilder::new(), records: 0, bytes: 0, since }
        });
        open.builder.record(timestamp, key, Some(value), headers);
        open.records += 1;
        open.bytes += size;
        if open.records >= self.batch_records || open.bytes >= self.batch_bytes {
            self.seal(partition);
        }
        Some(Added { partition, started })
    }

    /// Closes `partition`'s open batch, compresses it and queues it at its leader.
    fn seal(&mut self, partition: i32) {
        let Some(open) = self.open[partition as usize].take() else { return };
        if self.partitioner.fixed.is_none() && partition == self.partitioner.sticky {
            self.advance_sticky();
        }
        let batch = encode_batch(&open.builder, open.records, self.compression);
        let leader = self.leader_of[partition as usize].expect("records are only added to partitions with a leader");
        self.queued_bytes += batch.len();
        self.leaders[leader].queue.push_back(SealedBatch { partition, records: open.records, batch });
    }

    /// The next partition with a leader after the sticky one.
    fn advance_sticky(&mut self) {
        let count = self.partitioner.count;
        for step in 1..=count {
            let p = (self.partitioner.sticky + step) % count;
            if self.leader_of[p as usize].is_some() {
                self.partitioner.sticky = p;
                return;
            }
        }
    }

    /// For every leader without a request in flight: seals its partitions' batches that
    /// lingered long enough (all of them once input ended), then sends one request with at
    /// most one batch per partition, oldest first.
    pub(crate) fn dispatch(&mut self, in_flight: &mut JoinSet<Flight>, input_open: bool) {
        let now = Instant::now();
        for leader in 0..self.leaders.len() {
            if self.leaders[leader].connection.is_none() {
                continue;
            }
            for p in 0..self.open.len() {
                let ready =
                    self.open[p].as_ref().is_some_and(|b| !input_open || now.duration_since(b.since) >= self.linger);
                if ready && self.leader_of[p] == Some(leader) {
                    self.seal(p as i32);
                }
            }
            let (batches, size) = take_batches(&mut self.leaders[leader].queue);
            if batches.is_empty() {
                continue;
            }
            self.queued_bytes -= size;
            let request = self.request(&batches);
            let l = &mut self.leaders[leader];
            let connection = l.connection.take().expect("checked above");
            let addr = l.addr.clone();
            let acks = self.acks;
            in_flight.spawn(async move {
                let (connection, result) = send(addr, connection, acks, request).await;
                Flight { leader, connection, batches, result }
            });
        }
    }

    fn request(&self, batches: &[SealedBatch]) -> ProduceRequest {
        let partitions = batches
            .iter()
            .map(|b| PartitionProduceData::default().with_index(b.partition).with_records(Some(b.batch.clone())))
            .collect();
        ProduceRequest::default().with_acks(self.acks).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_data(partitions),
        ])
    }

    /// Records the outcome of a request.
    ///
    /// # Errors
    /// The connection failed: the caller stops (exit 2).
    pub(crate) fn complete(&mut self, flight: Flight) -> anyhow::Result<()> {
        let Flight { leader, connection, batches, result } = flight;
        self.leaders[leader].connection = Some(connection);
        let response = result?;
        for b in &batches {
            self.bytes_sent += b.batch.len() as u64;
            let stats = &mut self.stats[b.partition as usize];
            stats.batches += 1;
            let Some(response) = &response else {
                stats.sent += u64::from(b.records);
                continue;
            };
            let answer = response
                .responses
                .iter()
                .filter(|t| t.name.as_str() == self.topic)
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == b.partition);
            match answer {
                Some(p) if p.error_code == 0 => {
                    stats.acknowledged += u64::from(b.records);
                    let last = p.base_offset + i64::from(b.records) - 1;
                    stats.first_offset = Some(stats.first_offset.map_or(p.base_offset, |f| f.min(p.base_offset)));
                    stats.last_offset = Some(stats.last_offset.map_or(last, |l| l.max(last)));
                }
                Some(p) => {
                    let message = p.error_message.as_ref().map(|m| m.to_string()).or_else(|| {
                        p.record_errors.iter().find_map(|e| e.batch_index_error_message.as_ref().map(|m| m.to_string()))
                    });
                    let refusals = stats.refused.entry(p.error_code).or_default();
                    refusals.records += u64::from(b.records);
                    refusals.batches += 1;
                    if refusals.message.is_none() {
                        refusals.message = message;
                    }
                }
                None => {
                    let refusals: &mut Refusals = stats.refused.entry(-1).or_default();
                    refusals.records += u64::from(b.records);
                    refusals.batches += 1;
                    refusals.message.get_or_insert_with(|| "the broker's response left this partition out".to_owned());
                }
            }
        }
        Ok(())
    }

    /// Nothing open or queued (requests may still be in flight).
    pub(crate) fn is_drained(&self) -> bool {
        self.open.iter().all(Option::is_none) && self.leaders.iter().all(|l| l.queue.is_empty())
    }

    /// When the oldest open batch of an idle leader should be sealed.
    pub(crate) fn next_linger_deadline(&self) -> Option<Instant> {
        self.open
            .iter()
            .enumerate()
            .filter_map(|(p, b)| Some((self.leader_of[p]?, b.as_ref()?)))
            .filter(|(leader, _)| self.leaders[*leader].connection.is_some())
            .map(|(_, b)| b.since + self.linger)
            .min()
    }

    fn summary(&self, elapsed: Duration) -> Summary {
        let totals = Totals {
            records: self.records_read,
            bytes: self.bytes_sent,
            acks: self.acks,
            compression: self.compression,
            elapsed,
        };
        Summary::new(&self.topic, &self.stats, totals)
    }
}

/// Takes the batches of one request from a leader's queue: the oldest batch of each
/// partition, in queue order, up to [`MAX_REQUEST_BYTES`] (at least one). Returns them with
/// their total size.
fn take_batches(queue: &mut VecDeque<SealedBatch>) -> (Vec<SealedBatch>, usize) {
    let mut batches: Vec<SealedBatch> = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while i < queue.len() {
        let b = &queue[i];
        let taken = batches.iter().any(|t| t.partition == b.partition);
        if !taken && (batches.is_empty() || size + b.batch.len() <= MAX_REQUEST_BYTES) {
            size += b.batch.len();
            batches.push(queue.remove(i).expect("index checked by the loop"));
        } else {
            i += 1;
        }
    }
    (batches, size)
}

/// The finished batch of `builder`, its records section compressed with `codec`.
fn encode_batch(builder: &BatchBuilder, records: u32, codec: Compression) -> Bytes {
    let batch = builder.build();
    if codec == Compression::None {
        return Bytes::from(batch);
    }
    let compressed = codec::compress(codec, &batch[HEADER_SIZE..])
        .expect("compressing bytes in memory cannot fail for Kafka's codecs");
    let mut head = batch[..HEADER_SIZE].to_vec();
    let attributes = i16::from_be_bytes([head[ATTRIBUTES_AT], head[ATTRIBUTES_AT + 1]]) & !0x07 | codec as i16;
    head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    Bytes::from(with_records(&head, records as i32, &compressed))
}

/// Sends one request on `connection` (connecting first if needed) and hands the connection
/// back with the result; `Ok(None)` for `--acks 0`, which has no response.
async fn send(
    addr: String,
    connection: Connection,
    acks: i16,
    request: ProduceRequest,
) -> (Connection, anyhow::Result<Option<ProduceResponse>>) {
    let connection = match connection {
        Connection::Pending => match connect(&addr, acks).await {
            Ok(connection) => connection,
            Err(e) => return (Connection::Pending, Err(e)),
        },
        connected => connected,
    };
    match connection {
        Connection::Acked(mut client) => {
            let result = client.request(PRODUCE_VERSION, &request).await.map(Some).map_err(anyhow::Error::from);
            (Connection::Acked(client), result)
        }
        Connection::Unacked(mut stream) => {
            let result = match encode_unacked(&request) {
                Ok(frame) => stream
                    .write_all(&frame)
                    .await
                    .map(|()| None)
                    .with_context(|| format!("Produce v{PRODUCE_VERSION} to {addr} failed")),
                Err(e) => Err(e),
            };
            (Connection::Unacked(stream), result)
        }
        Connection::Pending => (Connection::Pending, Err(anyhow::anyhow!("no connection to {addr}"))),
    }
}

/// A connection to `addr`: a [`Client`] (which checks API versions), or for `--acks 0` a
/// bare socket, since [`Client`] waits for a response the broker never sends.
pub(crate) async fn connect(addr: &str, acks: i16) -> anyhow::Result<Connection> {
    if acks != 0 {
        return Ok(Connection::Acked(Client::connect(addr).await?));
    }
    Ok(Connection::Unacked(connect_unacked(addr).await?))
}

async fn connect_unacked(addr: &str) -> anyhow::Result<TcpStream> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(e).with_context(|| format!("cannot reach {addr} — is `weir serve` running there?")),
        Err(_elapsed) => anyhow::bail!("cannot reach {addr}: no connection within {CONNECT_TIMEOUT:?}"),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A size-prefixed Produce frame. With acks=0 the correlation id is never echoed, so it
/// stays 0.
fn encode_unacked(request: &ProduceRequest) -> anyhow::Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, ApiKey::Produce.request_header_version(PRODUCE_VERSION))?;
    request.encode(&mut frame, PRODUCE_VERSION)?;
    let size = i32::try_from(frame.len() - 4).context("a Produce request above 2 GiB")?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::records_in;

    #[test]
    fn headers_and_acks_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_header("a="), Ok(("a".into(), String::new())));
        assert!(parse_header("=b").is_err());
        assert!(parse_header("ab").is_err());
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn compressed_batches_keep_their_records() {
        let mut b = BatchBuilder::new();
        b.record(7, Some(b"k"), Some(b"v1"), &[("h", b"x")]);
        b.record(8, None, Some(b"v2"), &[]);
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let batch = encode_batch(&b, 2, codec);
            let header = crate::log::batch::validate(&batch).expect("a valid batch");
            assert_eq!(header.compression(), Ok(codec));
            let section = codec::decompress(codec, &batch[HEADER_SIZE..]).expect("decompress");
            let values: Vec<_> = records_in(&section, &header).map(|r| r.value.map(<[u8]>::to_vec)).collect();
            assert_eq!(values, [Some(b"v1".to_vec()), Some(b"v2".to_vec())], "{codec:?}");
        }
    }

    #[test]
    fn keyed_records_use_murmur2_and_keyless_ones_the_sticky_partition() {
        let p = Partitioner { fixed: None, count: 3, sticky: 2 };
        assert_eq!(p.partition(Some(b"key-1")), partition_for_key(b"key-1", 3));
        assert_eq!(p.partition(None), 2);
        let fixed = Partitioner { fixed: Some(1), count: 3, sticky: 2 };
        assert_eq!(fixed.partition(Some(b"key-1")), 1);
    }
}
