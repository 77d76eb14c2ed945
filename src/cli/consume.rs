//! `weir consume <topic>`: prints records, like `kcat -C` and `rpk topic consume`.
//!
//! This module owns the reading side of the command line: where each partition starts
//! (`-o`), fetching (long-polling Fetch to each partition's leader, all leaders at once),
//! positions, and when to stop (`-n`, `-e`, Ctrl-C / SIGTERM). Group membership (`-g`:
//! KIP-848 heartbeats, committed offsets) lives in `member`: the consumer only asks it for
//! partitions and hands it positions. Decoding batches lives in `records`, printing in
//! `output`. Nothing here writes to a topic.
//!
//! # Where partitions start
//! `-o start` (the default) is the log start offset, `end` the log end offset (only new
//! records), `OFFSET` that offset, `@TIMESTAMP_MS` the first record stamped at or after it
//! (the log end when there is none), `-N` the last N records. With `-g`, a partition starts at
//! the group's committed offset and only falls back to `-o` when there is none. When a
//! fetch position is out of range (retention deleted the records, or `OFFSET` is past the
//! end), the partition starts over per `-o`; for `-o OFFSET` that is the log start when the
//! offset was below it and the log end otherwise.
//!
//! # Output
//! Without `-f`, one JSON object per record and line:
//! `{"topic","partition","offset","timestamp","key","value","headers":[{"key","value"}]}`.
//! Keys, values and header parts are JSON strings when they are valid UTF-8, `null` when
//! null, and `{"base64": "..."}` (standard alphabet, padded) when they are not UTF-8, so no
//! byte is lost. `timestamp` is the record's time in ms (the batch's LogAppendTime when the
//! topic uses it). With `-f FMT`, FMT is printed per record with `%t` topic, `%p` partition,
//! `%o` offset, `%k` key, `%v` value, `%h` headers (`k=v,k2=v2`; a null value prints as the
//! bare key), `%T` timestamp, `%%` a percent sign and the escapes `\n`, `\t`, `\r`, `\\`;
//! keys and values are written as raw bytes and nulls as nothing. At exit one line on stderr
//! says how many records were printed.
//!
//! Records are read uncommitted (isolation level 0, as Kafka's Java consumer by default):
//! records of aborted transactions are printed too; transaction markers are not.
//!
//! # Exit codes
//! 0: stopped by `-n`, `-e`, a signal, or a closed stdout. 1: the broker refused (an
//! unknown topic or partition, a group error, a commit that failed at exit). 2: usage errors
//! and a broker that cannot be reached.

mod member;
pub(crate) mod output;
pub(crate) mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::member::{Change, Member};
use self::output::{parse_format, Output, Piece};
use self::records::{for_each_record, DecodeError};
use super::cluster::{Cluster, Topology, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::produce::{check_partition, topic_partitions};
use super::{run_async, Refused};
use crate::client::Client;
use crate::log::TopicPartition;

/// Fetch v12: flexible, topic names (v13 switched to topic ids), served by Kafka 3.x/4.x
/// and weir.
const FETCH_VERSION: i16 = 12;

/// Longest a fetch waits for new records: librdkafka's `fetch.wait.max.ms`. A fetch also
/// ends in time for the next heartbeat or commit; a signal interrupts it at once.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(500);

/// Fetch size limits, Kafka's consumer defaults (`fetch.max.bytes`,
/// `max.partition.fetch.bytes`). A batch larger than the partition limit still arrives
/// whole (KIP-74).
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;

/// Pause before retrying after a partition had no leader or its leader moved.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// How long a partition may keep failing with retriable errors before the command gives up.
const RETRY_LIMIT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,
    /// Where to start: start, end, OFFSET, @TIMESTAMP_MS or -N (the last N records). With
    /// -g only for partitions without a committed offset.
    #[arg(short, long, value_name = "WHERE", default_value = "start", allow_hyphen_values = true)]
    pub offset: StartAt,
    /// Read only this partition (repeatable; default: all).
    #[arg(short, long = "partition", value_name = "P", conflicts_with = "group")]
    pub partitions: Vec<i32>,
    /// Exit after printing N records.
    #[arg(short = 'n', long = "num", value_name = "N")]
    pub num: Option<u64>,
    /// Exit once every partition is read up to its high watermark (kcat -e). With -g: every
    /// partition the member owns, once it owns at least one.
    #[arg(short, long)]
    pub exit_at_end: bool,
    /// Consume as a member of this consumer group (KIP-848): the broker assigns partitions,
    /// positions are committed every 5 s, on revocation and at exit.
    #[arg(short, long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Print each record with this format (%t %p %o %k %v %h %T %%, \n \t \r \\) instead of
    /// a JSON line.
    #[arg(short = 'f', long = "format-string", value_name = "FMT")]
    pub format_string: Option<String>,
}

/// Where a partition starts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record stamped at or after this time (ms).
    Timestamp(i64),
    /// This many records before the log end.
    FromEnd(i64),
}

impl FromStr for StartAt {
    type Err = String;

    fn from_str(text: &str) -> Result<StartAt, String> {
        let number = |t: &str| t.parse::<i64>().ok().filter(|n| *n >= 0);
        Ok(match text {
            "start" | "beginning" | "earliest" | "oldest" => StartAt::Earliest,
            "end" | "latest" | "newest" => StartAt::Latest,
            t if t.starts_with('@') => StartAt::Timestamp(number(&t[1..]).ok_or("expected @TIMESTAMP_MS")?),
            t if t.starts_with('-') => StartAt::FromEnd(number(&t[1..]).ok_or("expected -N")?),
            t => StartAt::Offset(
                number(t).ok_or_else(|| format!("expected start, end, OFFSET, @TIMESTAMP_MS or -N, got {t:?}"))?,
            ),
        })
    }
}

/// `weir consume <topic>`: see the module docs.
///
/// # Errors
/// A bad `-f`, connection errors (exit 2); refusals exit 1 through [`run_async`].
pub fn run(bootstrap: &str, args: ConsumeArgs) -> anyhow::Result<i32> {
    let format = args.format_string.as_deref().map(parse_format).transpose()?;
    run_async(consume(bootstrap, args, format))
}

async fn consume(bootstrap: &str, args: ConsumeArgs, format: Option<Vec<Piece>>) -> anyhow::Result<i32> {
    let mut shutdown = shutdown_signal()?;
    let mut cluster = Cluster::connect(bootstrap).await?;
    let topology = topic_partitions(&mut cluster, &args.topic).await?;
    for &p in &args.partitions {
        check_partition(&topology, &args.topic, p)?;
    }
    let output = Output { out: BufWriter::with_capacity(256 * 1024, std::io::stdout().lock()), format };
    let mut consumer = Consumer {
        limit: args.num,
        exit_at_end: args.exit_at_end,
        ..Consumer::new(cluster, topology, &args.topic, args.offset, output)
    };
    let mut member = match &args.group {
        Some(group) => Some(Member::join(&mut consumer.cluster, group, &args.topic).await?),
        None => {
            let all: Vec<i32> = consumer.topology.partitions_of(&args.topic).collect();
            let chosen = if args.partitions.is_empty() { all } else { args.partitions.clone() };
            let starts = consumer.resolve(&chosen, args.offset).await?;
            consumer.partitions = starts.into_iter().map(|(p, position)| (p, Position::new(position))).collect();
            None
        }
    };
    let result = consumer.run(member.as_mut(), &mut shutdown).await;
    let _ = consumer.output.out.flush();
    let mut code = 0;
    if let Some(m) = member.as_mut() {
        // Commit what was printed and leave, also after an error (best effort then).
        let positions = consumer.positions();
        match m.commit(&mut consumer.cluster, &positions).await {
            Ok(failures) if failures.is_empty() => {}
            Ok(failures) => {
                eprintln!("error: committing offsets at exit failed: {}", failures.join(", "));
                code = super::EXIT_REFUSED;
            }
            Err(e) => eprintln!("error: committing offsets at exit failed: {e:#}"),
        }
        if let Err(e) = m.leave(&mut consumer.cluster).await {
            eprintln!("warning: leaving group {}: {e:#}", m.group());
        }
    }
    let records = if consumer.printed == 1 { "record" } else { "records" };
    eprintln!("consumed {} {records} from {}", consumer.printed, consumer.topic);
    result.map(|()| code)
}

/// A receiver that turns true on SIGINT (Ctrl-C) or SIGTERM. A second signal exits at once
/// (130), for a broker that does not answer the goodbye.
pub(crate) fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let _ = tx.send(true);
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        std::process::exit(130);
    });
    Ok(rx)
}

/// Where one partition is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    /// The next offset to print.
    pub(crate) offset: i64,
    /// From the last fetch; `None` before the first.
    high_watermark: Option<i64>,
    /// Since when the partition keeps failing with retriable errors.
    failing_since: Option<Instant>,
}

impl Position {
    pub(crate) fn new(offset: i64) -> Position {
        Position { offset, high_watermark: None, failing_since: None }
    }

    fn at_end(&self) -> bool {
        self.high_watermark.is_some_and(|hw| self.offset >= hw)
    }
}

#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) topic: String,
    start: StartAt,
    pub(crate) cluster: Cluster,
    pub(crate) topology: Topology,
    /// Fetch connections by leader address, apart from the cluster's own connections so that
    /// an interrupted fetch never breaks a connection the group requests use.
    pub(crate) fetchers: HashMap<String, Client>,
    /// The partitions read now, with positions.
    pub(crate) partitions: BTreeMap<i32, Position>,
    output: Output,
    printed: u64,
    limit: Option<u64>,
    exit_at_end: bool,
}

/// What one fetch round found that needs the cluster.
#[derive(Debug, Default)]
pub(crate) struct Round {
    pub(crate) out_of_range: Vec<i32>,
    /// Partitions without a leader or whose leader moved: refresh Metadata.
    pub(crate) stale: Vec<(i32, i16)>,
}

impl Consumer {
    /// A consumer of `topic` that reads no partition yet, prints through `output` without
    /// `-n` or `-e`, and starts per `start` where a position is out of range.
    pub(crate) fn new(cluster: Cluster, topology: Topology, topic: &str, start: StartAt, output: Output) -> Consumer {
        Consumer {
            topic: topic.to_owned(),
            start,
            cluster,
            topology,
            fetchers: HashMap::new(),
            partitions: BTreeMap::new(),
            output,
            printed: 0,
            limit: None,
            exit_at_end: false,
        }
    }

    /// Fetches, prints and keeps the group membership alive until a stop condition.
    ///
    /// # Errors
    /// Connection errors, refusals, and stdout errors other than a closed pipe.
    async fn run(
        &mut self,
        mut member: Option<&mut Member>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut next_commit = Instant::now() + member::COMMIT_INTERVAL;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if let Some(m) = member.as_deref_mut() {
                if Instant::now() >= m.next_heartbeat() {
                    match m.heartbeat(&mut self.cluster).await? {
                        Change::None => {}
                        Change::Fenced => self.partitions.clear(),
                        Change::Assignment(assigned) => self.reconcile(m, assigned).await?,
                    }
                }
                if Instant::now() >= next_commit {
                    let positions = self.positions();
                    for failure in m.commit(&mut self.cluster, &positions).await? {
                        eprintln!("warning: commit failed: {failure}");
                    }
                    next_commit = Instant::now() + member::COMMIT_INTERVAL;
                }
            }
            if self.limit.is_some_and(|n| self.printed >= n) {
                return Ok(());
            }
            let owns_some = member.as_deref().is_none_or(|m| m.has_assignment()) && !self.partitions.is_empty();
            if self.exit_at_end && owns_some && self.partitions.values().all(Position::at_end) {
                return Ok(());
            }
            // Wake for the next heartbeat or commit; -e needs no waiting for new records.
            let mut wake = Instant::now() + MAX_WAIT;
            if let Some(m) = member.as_deref() {
                wake = wake.min(m.next_heartbeat()).min(next_commit);
            }
            let requests = self.fetch_requests(wake);
            if requests.is_empty() {
                if !self.partitions.is_empty() {
                    // Partitions without a leader: ask again after a pause.
                    self.refresh_metadata().await?;
                    wake = wake.min(Instant::now() + RETRY_BACKOFF);
                }
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => continue,
                    _ = shutdown.changed() => return Ok(()),
                }
            }
            let responses = tokio::select! {
                responses = fetch_all(&mut self.fetchers, requests) => responses?,
                _ = shutdown.changed() => return Ok(()),
            };
            let round = match self.print(&responses) {
                Ok(round) => round,
                Err(PrintError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(PrintError::Io(e)) => return Err(e).context("cannot write to stdout"),
                Err(PrintError::Batch(p, message)) => anyhow::bail!("cannot decode {}-{p}: {message}", self.topic),
            };
            self.recover(round, shutdown).await?;
        }
    }

    /// The next offset of every partition read, for commits.
    fn positions(&self) -> BTreeMap<i32, i64> {
        self.partitions.iter().map(|(&p, pos)| (p, pos.offset)).collect()
    }

    /// Takes a new assignment: commits and drops revoked partitions, starts added ones at
    /// the committed offset (or per `-o`), and has the member acknowledge it.
    async fn reconcile(&mut self, member: &mut Member, assigned: BTreeSet<i32>) -> anyhow::Result<()> {
        let revoked: BTreeMap<i32, i64> = self.positions().into_iter().filter(|(p, _)| !assigned.contains(p)).collect();
        if !revoked.is_empty() {
            for failure in member.commit(&mut self.cluster, &revoked).await? {
                eprintln!("warning: commit of a revoked partition failed: {failure}");
            }
            self.partitions.retain(|p, _| assigned.contains(p));
        }
        let added: Vec<i32> = assigned.iter().copied().filter(|p| !self.partitions.contains_key(p)).collect();
        if !added.is_empty() {
            self.refresh_metadata().await?;
            let committed = member.committed(&mut self.cluster, &added).await?;
            let rest: Vec<i32> = added.iter().copied().filter(|p| !committed.contains_key(p)).collect();
            let resolved = if rest.is_empty() { BTreeMap::new() } else { self.resolve(&rest, self.start).await? };
            for (p, offset) in committed.into_iter().chain(resolved) {
                self.partitions.insert(p, Position::new(offset));
            }
        }
        member.owned(assigned);
        Ok(())
    }

    /// Start offsets of `partitions` per `start`.
    ///
    /// # Errors
    /// Connection errors; ListOffsets error codes are [`Refused`].
    pub(crate) async fn resolve(&mut self, partitions: &[i32], start: StartAt) -> anyhow::Result<BTreeMap<i32, i64>> {
        let tps: Vec<TopicPartition> =
            partitions.iter().map(|&p| TopicPartition::new(self.topic.as_str(), p)).collect();
        let (first, second) = match start {
            StartAt::Offset(offset) => return Ok(partitions.iter().map(|&p| (p, offset)).collect()),
            StartAt::Earliest => (EARLIEST_TIMESTAMP, None),
            StartAt::Latest => (LATEST_TIMESTAMP, None),
            StartAt::Timestamp(ts) => (ts, Some(LATEST_TIMESTAMP)),
            StartAt::FromEnd(_) => (LATEST_TIMESTAMP, Some(EARLIEST_TIMESTAMP)),
        };
        let found = self.list_offsets(&tps, first).await?;
        let other = match second {
            Some(timestamp) => self.list_offsets(&tps, timestamp).await?,
            None => BTreeMap::new(),
        };
        let mut out = BTreeMap::new();
        for &p in partitions {
            let offset = match (start, found.get(&p).copied().flatten(), other.get(&p).copied().flatten()) {
                (StartAt::FromEnd(n), Some(end), start) => (end - n).max(start.unwrap_or(0)),
                (StartAt::Timestamp(_), Some(at), _) => at,
                (StartAt::Timestamp(_), None, Some(end)) => end,
                (_, Some(offset), _) => offset,
                _ => anyhow::bail!("ListOffsets gave no offset for {}-{p}", self.topic),
            };
            out.insert(p, offset);
        }
        Ok(out)
    }

    /// ListOffsets of `tps` at `timestamp`; `None` for a partition without such a record.
    pub(crate) async fn list_offsets(
        &mut self,
        tps: &[TopicPartition],
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
        let answers = self.cluster.list_offsets(&self.topology, tps, timestamp).await?;
        let mut out = BTreeMap::new();
        for (tp, answer) in answers {
            match answer {
                Ok(offset) => out.insert(tp.partition, offset),
                Err(code) => return Err(Refused::Code { what: format!("ListOffsets for {tp}"), code }.into()),
            };
        }
        Ok(out)
    }

    async fn refresh_metadata(&mut self) -> anyhow::Result<()> {
        self.topology = topic_partitions(&mut self.cluster, &self.topic).await?;
        Ok(())
    }

    /// One Fetch request per leader for the partitions read now, waiting until `wake` at
    /// most (not at all with `-e`, which only reads what is there).
    pub(crate) fn fetch_requests(&self, wake: Instant) -> Vec<(String, FetchRequest)> {
        let wait = if self.exit_at_end { Duration::ZERO } else { wake.saturating_duration_since(Instant::now()) };
        let mut by_leader: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for (&p, position) in &self.partitions {
            let tp = TopicPartition::new(self.topic.as_str(), p);
            let leader = self.topology.leaders.get(&tp).copied().flatten();
            let Some(addr) = leader.and_then(|id| self.cluster.addr_of(id)) else { continue };
            by_leader.entry(addr).or_default().push(
                FetchPartition::default()
                    .with_partition(p)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(position.offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(PARTITION_MAX_BYTES),
            );
        }
        by_leader
            .into_iter()
            .map(|(addr, partitions)| {
                let request = FetchRequest::default()
                    .with_replica_id(BrokerId(-1)) // a consumer, not a follower
                    .with_max_wait_ms(wait.as_millis() as i32)
                    .with_min_bytes(1)
                    .with_max_bytes(FETCH_MAX_BYTES)
                    .with_isolation_level(0) // read_uncommitted
                    .with_session_id(0) // no fetch session: every fetch is a full one
                    .with_session_epoch(-1)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(self.topic.clone())))
                        .with_partitions(partitions)]);
                (addr, request)
            })
            .collect()
    }

    /// Prints the records of `responses` and moves positions past them. Positions move only
    /// once the output is flushed, so a commit never covers records that were not written.
    ///
    /// # Errors
    /// Writing to stdout failed, or a batch could not be decoded.
    fn print(&mut self, responses: &[FetchResponse]) -> Result<Round, PrintError> {
        let mut moved: Vec<(i32, i64)> = Vec::new();
        let topic = self.topic.clone();
        let limit = self.limit;
        let (output, printed) = (&mut self.output, &mut self.printed);
        // Printing stops at -n, within a batch and across partitions.
        let flow = |printed: u64| {
            if limit.is_some_and(|n| printed >= n) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let round = walk_round(&topic, &mut self.partitions, responses, |p, position, records| {
            let decoded = for_each_record(records, position.offset, |record| {
                output.record(&topic, p, &record)?;
                *printed += 1;
                Ok(flow(*printed))
            });
            match decoded {
                Ok(next) => moved.push((p, next)),
                Err(DecodeError::Io(e)) => return Err(PrintError::Io(e)),
                Err(DecodeError::Batch(message)) => return Err(PrintError::Batch(p, message)),
            }
            Ok(flow(*printed))
        })?;
        self.output.out.flush().map_err(PrintError::Io)?;
        for (p, next) in moved {
            if let Some(position) = self.partitions.get_mut(&p) {
                position.offset = next;
            }
        }
        Ok(round)
    }

    /// Handles what a round could not: out-of-range positions start over per `-o`, and
    /// partitions whose leader is unknown or moved get fresh Metadata after a pause.
    ///
    /// # Errors
    /// A partition failing for longer than [`RETRY_LIMIT`], or with a non-retriable error,
    /// is [`Refused`]; connection errors.
    pub(crate) async fn recover(&mut self, round: Round, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        for p in round.out_of_range {
            let was = self.partitions.get(&p).map_or(0, |pos| pos.offset);
            let start = match self.start {
                StartAt::Offset(_) => {
                    let tp = [TopicPartition::new(self.topic.as_str(), p)];
                    let log_start = self.list_offsets(&tp, EARLIEST_TIMESTAMP).await?.get(&p).copied().flatten();
                    if log_start.is_some_and(|s| was < s) {
                        StartAt::Earliest
                    } else {
                        StartAt::Latest
                    }
                }
                other => other,
            };
            let now = self.resolve(&[p], start).await?.get(&p).copied().unwrap_or(was);
            eprintln!("warning: offset {was} of {}-{p} is out of range; continuing at {now}", self.topic);
            self.partitions.insert(p, Position::new(now));
        }
        if round.stale.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        for &(p, code) in &round.stale {
            let retriable = matches!(
                code.err(),
                Some(
                    ResponseError::NotLeaderOrFollower
                        | ResponseError::LeaderNotAvailable
                        | ResponseError::UnknownLeaderEpoch
                        | ResponseError::FencedLeaderEpoch
                        | ResponseError::ReplicaNotAvailable
                        | ResponseError::UnknownTopicOrPartition
                        | ResponseError::KafkaStorageError
                        | ResponseError::NotCoordinator
                )
            );
            let Some(position) = self.partitions.get_mut(&p) else { continue };
            let since = *position.failing_since.get_or_insert(now);
            if !retriable || now.duration_since(since) > RETRY_LIMIT {
                let what = format!("Fetch from {}-{p}", self.topic);
                return Err(Refused::Code { what, code }.into());
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_BACKOFF) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        self.fetchers.clear();
        self.refresh_metadata().await
    }
}

/// Walks a round of Fetch `responses` for `topic`'s `partitions`, as `weir consume` and
/// `weir bench consume` both read them: a request-level error makes every partition stale,
/// and an out-of-range position or another partition error goes into the returned [`Round`].
/// A partition fetched without error stops failing and takes its high watermark, then is
/// handed to `each` with its position and its record batches (as fetched); `each` moves the
/// position or not. `each` returning `Break` ends the walk.
///
/// # Errors
/// The first error of `each`, which ends the walk.
pub(crate) fn walk_round<E>(
    topic: &str,
    partitions: &mut BTreeMap<i32, Position>,
    responses: &[FetchResponse],
    mut each: impl FnMut(i32, &mut Position, &[u8]) -> Result<ControlFlow<()>, E>,
) -> Result<Round, E> {
    let mut round = Round::default();
    for response in responses {
        if response.error_code != 0 {
            // A request-level error (no partition data): treat every partition as stale.
            round.stale.extend(partitions.keys().map(|&p| (p, response.error_code)));
            continue;
        }
        for data in response.responses.iter().filter(|t| t.topic.as_str() == topic).flat_map(|t| &t.partitions) {
            let p = data.partition_index;
            let Some(position) = partitions.get_mut(&p) else { continue };
            match data.error_code.err() {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
                    round.out_of_range.push(p);
                    continue;
                }
                Some(_) => {
                    round.stale.push((p, data.error_code));
                    continue;
                }
            }
            position.failing_since = None;
            position.high_watermark = Some(data.high_watermark);
            let records = data.records.as_deref().unwrap_or_default();
            if each(p, position, records)?.is_break() {
                return Ok(round);
            }
        }
    }
    Ok(round)
}

/// Sends each leader its Fetch request, all at once (one task per leader, each owning its
/// connection), and waits for every response.
///
/// # Cancel safety
/// Cancelling drops the connections of unfinished requests (their responses may still
/// arrive); nothing else is touched, so the caller may fetch again.
pub(crate) async fn fetch_all(
    fetchers: &mut HashMap<String, Client>,
    requests: Vec<(String, FetchRequest)>,
) -> anyhow::Result<Vec<FetchResponse>> {
    let mut tasks = JoinSet::new();
    for (addr, request) in requests {
        let client = fetchers.remove(&addr);
        tasks.spawn(async move {
            let mut client = match client {
                Some(client) => client,
                None => Client::connect(&addr).await?,
            };
            let response = client.request(FETCH_VERSION, &request).await?;
            Ok::<_, anyhow::Error>((addr, client, response))
        });
    }
    let mut responses = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (addr, client, response) = joined.context("a fetch task failed")??;
        fetchers.insert(addr, client);
        responses.push(response);
    }
    Ok(responses)
}

/// Why a round could not be printed: stdout failed, or a partition's batch is damaged.
#[derive(Debug)]
enum PrintError {
    Io(std::io::Error),
    Batch(i32, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse_like_kcat() {
        assert_eq!("start".parse(), Ok(StartAt::Earliest));
        assert_eq!("beginning".parse(), Ok(StartAt::Earliest));
        assert_eq!("end".parse(), Ok(StartAt::Latest));
        assert_eq!("42".parse(), Ok(StartAt::Offset(42)));
        assert_eq!("@1700000000000".parse(), Ok(StartAt::Timestamp(1_700_000_000_000)));
        assert_eq!("-10".parse(), Ok(StartAt::FromEnd(10)));
        assert!("@".parse::<StartAt>().is_err());
        assert!("--3".parse::<StartAt>().is_err());
        assert!("later".parse::<StartAt>().is_err());
    }
}
