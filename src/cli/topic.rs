//! `weir topic create | list | describe | alter-config | add-partitions | delete |
//! trim-prefix`: topics managed over the Kafka protocol, the way `rpk topic` and
//! `kafka-topics.sh` manage them, against weir or Apache Kafka.
//!
//! This module owns the topic side of the operator tools: the request versions of the topic
//! admin APIs, where each request goes (admin requests to the controller Metadata names,
//! DeleteRecords and ListOffsets to each partition's leader, the rest to the bootstrap
//! broker), the dry-run plan of `trim-prefix`, and the text and JSON output. Connections and
//! leaders come from [`super::cluster`]. It never retries: it reports what the broker said.
//! Only `create`, `alter-config`, `add-partitions`, `delete` and `trim-prefix --execute`
//! change anything.
//!
//! # JSON output (`--format json`)
//! Field names are stable; absent values are `null`. An `error` is
//! `{"code", "name", "message", "hint"}` (Kafka's error code and name, the broker's message).
//! - `create`: `{"dry_run", "topics": [{"topic", "ok", "topic_id", "partition_count",
//!   "replication_factor", "error"}]}`
//! - `list`: `{"topics": [{"topic", "topic_id", "internal", "partition_count",
//!   "replication_factor"}]}`
//! - `describe`: `{"topic", "topic_id", "internal", "partition_count", "replication_factor",
//!   "configs": [{"key", "value", "source", "read_only", "sensitive"}],
//!   "partitions": [{"partition", "leader", "leader_epoch", "replicas", "isr",
//!   "log_start_offset", "high_watermark"}]}`; `configs` is `null` with `-p` alone,
//!   `partitions` with `-c` alone.
//! - `alter-config`: `{"topic", "changes": [{"key", "operation", "old_value", "new_value",
//!   "source"}]}` (`operation` is `set` or `delete`; values and source as described after).
//! - `add-partitions`: `{"topic", "added", "partition_count"}`
//! - `delete`: `{"topics": [{"topic", "deleted", "error"}]}`
//! - `trim-prefix`: `{"topic", "executed", "partitions": [{"partition", "log_start_offset",
//!   "high_watermark", "new_log_start_offset", "low_watermark", "error"}]}`
//!   (`low_watermark`: the broker's answer, `null` in a dry run).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::cluster::{Cluster, Topology, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::{cell, error_name, hint, run_async, Format, Refused, Table, EXIT_REFUSED};
use crate::client::Client;
use crate::log::TopicPartition;

/// Versions both Kafka 3.x/4.x and weir serve. Metadata v10 is the first with topic ids,
/// CreateTopics v7 the first that returns the new topic's id; DeleteTopics v5 returns error
/// messages and still names topics by name (v6 adds ids); CreatePartitions v2, DeleteRecords
/// v2, DescribeConfigs v4 and IncrementalAlterConfigs v1 are those APIs' flexible forms.
const METADATA_VERSION: i16 = 10;
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 5;
const CREATE_PARTITIONS_VERSION: i16 = 2;
const DELETE_RECORDS_VERSION: i16 = 2;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;

/// How long the broker may take over an admin request: below the client's 30 s response
/// timeout, so that a slow controller answers REQUEST_TIMED_OUT rather than the tool giving up.
const ADMIN_TIMEOUT_MS: i32 = 25_000;

/// Kafka's config resource type for topics.
const TOPIC_RESOURCE: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// The `weir topic` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create topics. Exits 1 if any topic was not created.
    Create(CreateArgs),
    /// List topics with their partition count and replication factor.
    List(ListArgs),
    /// Show a topic: summary, configs, and partitions with leaders and offsets.
    Describe(DescribeArgs),
    /// Set or delete a topic's config overrides and print what changed.
    AlterConfig(AlterConfigArgs),
    /// Add partitions to a topic (N more, not N in total).
    AddPartitions(AddPartitionsArgs),
    /// Delete topics with all their records. Exits 1 if any topic was not deleted.
    Delete(DeleteArgs),
    /// Delete the records below an offset (move the log start offset). Prints the plan;
    /// deletes only with --execute.
    TrimPrefix(TrimPrefixArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Topics to create.
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Partitions per topic (default: the broker's num.partitions).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replicas per partition (default: the broker's default.replication.factor).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: Option<i16>,
    /// A topic config, e.g. -c retention.ms=86400000 (repeatable).
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Only ask the broker whether the topics could be created; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Also list internal topics such as __consumer_offsets.
    #[arg(short, long)]
    pub internal: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The topic.
    pub topic: String,
    /// Print only the partitions: leader, epoch, replicas, ISR, log start offset, high watermark.
    #[arg(short = 'p', long)]
    pub print_partitions: bool,
    /// Print only the configs with their source.
    #[arg(short = 'c', long)]
    pub print_configs: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("changes").required(true).multiple(true).args(["set", "delete"])))]
pub struct AlterConfigArgs {
    /// The topic.
    pub topic: String,
    /// Set an override, e.g. --set retention.ms=86400000 (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove an override, back to the broker's value (repeatable).
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct AddPartitionsArgs {
    /// The topic.
    pub topic: String,
    /// How many partitions to add.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub num: i32,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Topics to delete.
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct TrimPrefixArgs {
    /// The topic.
    pub topic: String,
    /// A partition to trim (repeatable, or P,P,...; default: every partition).
    #[arg(short, long = "partition", value_name = "P", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// The new log start offset: records below it are deleted. `end` deletes every record
    /// (up to the high watermark).
    #[arg(short, long, value_name = "OFFSET|end", value_parser = parse_trim_to)]
    pub offset: TrimTo,
    /// Delete the records (otherwise only print the plan).
    #[arg(long)]
    pub execute: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where `trim-prefix` moves the log start offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimTo {
    Offset(i64),
    /// The high watermark: every record goes.
    End,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, e.g. retention.ms=86400000, not {text:?}")),
    }
}

fn parse_trim_to(text: &str) -> Result<TrimTo, String> {
    if text.eq_ignore_ascii_case("end") {
        return Ok(TrimTo::End);
    }
    match text.parse::<i64>() {
        Ok(offset) if offset >= 0 => Ok(TrimTo::Offset(offset)),
        _ => Err(format!("expected an offset (0 or more) or `end`, not {text:?}")),
    }
}

/// Runs a `weir topic` subcommand; the exit code (0, or 1 when the broker refused).
///
/// # Errors
/// Usage and connection errors (exit 2).
pub fn run(bootstrap: &str, command: TopicCommand) -> anyhow::Result<i32> {
    match command {
        TopicCommand::Create(args) => run_async(create(bootstrap, args)),
        TopicCommand::List(args) => run_async(list(bootstrap, args)),
        TopicCommand::Describe(args) => run_async(describe(bootstrap, args)),
        TopicCommand::AlterConfig(args) => run_async(alter_config(bootstrap, args)),
        TopicCommand::AddPartitions(args) => run_async(add_partitions(bootstrap, args)),
        TopicCommand::Delete(args) => run_async(delete(bootstrap, args)),
        TopicCommand::TrimPrefix(args) => run_async(trim_prefix(bootstrap, args)),
    }
}

// ---------------------------------------------------------------------------------------
// Cluster access
// ---------------------------------------------------------------------------------------

/// A topic as Metadata describes it.
#[derive(Debug)]
struct TopicInfo {
    name: String,
    /// Kafka's text form of the id, `None` when the broker has none (nil).
    topic_id: Option<String>,
    internal: bool,
    /// In partition order.
    partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The largest replica count among the partitions (they normally agree).
    fn replication_factor(&self) -> usize {
        self.partitions.iter().map(|p| p.replicas.len()).max().unwrap_or(0)
    }

    /// The leaders of its partitions, for [`Cluster::list_offsets`].
    fn topology(&self) -> Topology {
        let mut topology = Topology::default();
        for p in &self.partitions {
            topology.leaders.insert(self.partition(p.partition), p.leader);
        }
        topology
    }

    fn partition(&self, partition: i32) -> TopicPartition {
        TopicPartition::new(self.name.as_str(), partition)
    }
}

#[derive(Debug)]
struct PartitionInfo {
    partition: i32,
    leader: Option<i32>,
    leader_epoch: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

/// One Metadata answer: the topics it described and those it refused, by name.
#[derive(Debug, Default)]
struct Snapshot {
    topics: Vec<TopicInfo>,
    errors: BTreeMap<String, i16>,
}

/// A [`Cluster`] plus what topic administration needs: Metadata with topic ids and replicas,
/// and the controller, where admin requests go (a ZooKeeper-mode Kafka refuses them
/// elsewhere; KRaft brokers forward them, so any broker Metadata names as controller works).
#[derive(Debug)]
struct Admin {
    cluster: Cluster,
    bootstrap: String,
    /// The controller the last Metadata named, if it named one.
    controller: Option<i32>,
    /// Whether a Metadata response has been read (so `controller` is known).
    knows_controller: bool,
}

impl Admin {
    async fn connect(bootstrap: &str) -> anyhow::Result<Admin> {
        let cluster = Cluster::connect(bootstrap).await?;
        Ok(Admin { cluster, bootstrap: bootstrap.to_owned(), controller: None, knows_controller: false })
    }

    /// Metadata for `topics` (`None`: every topic), asked of the bootstrap broker. Never
    /// creates topics.
    ///
    /// # Errors
    /// Request errors; a cluster-level error code is [`Refused`].
    async fn metadata(&mut self, topics: Option<&[String]>) -> anyhow::Result<Snapshot> {
        let request =
            MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|t| {
                t.iter().map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name)))).collect()
            }));
        let bootstrap = self.bootstrap.clone();
        let response = self.cluster.client(&bootstrap).await?.request(METADATA_VERSION, &request).await?;
        if response.error_code != 0 {
            return Err(refused(format!("Metadata from {bootstrap}"), response.error_code, None));
        }
        self.controller = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        self.knows_controller = true;
        let mut snapshot = Snapshot::default();
        for t in response.topics {
            let Some(name) = t.name else { continue };
            let name = name.0.to_string();
            if t.error_code != 0 {
                snapshot.errors.insert(name, t.error_code);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic_id = topic_id_text(t.topic_id);
            snapshot.topics.push(TopicInfo { name, topic_id, internal: t.is_internal, partitions });
        }
        snapshot.topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(snapshot)
    }

    /// Metadata for one topic.
    ///
    /// # Errors
    /// Request errors; an unknown topic (or any topic error code) is [`Refused`].
    async fn topic(&mut self, topic: &str) -> anyhow::Result<TopicInfo> {
        let mut snapshot = self.metadata(Some(&[topic.to_owned()])).await?;
        if let Some(&code) = snapshot.errors.get(topic) {
            return Err(refused(format!("topic {topic}"), code, None));
        }
        let at = snapshot.topics.iter().position(|t| t.name == topic);
        let at =
            at.ok_or_else(|| anyhow::anyhow!("Metadata from {} did not describe topic {topic}", self.bootstrap))?;
        Ok(snapshot.topics.swap_remove(at))
    }

    /// The connection to the controller (the bootstrap broker when Metadata named none).
    async fn controller(&mut self) -> anyhow::Result<&mut Client> {
        if !self.knows_controller {
            self.metadata(Some(&[])).await?;
        }
        let addr = self.controller.and_then(|id| self.cluster.addr_of(id)).unwrap_or_else(|| self.bootstrap.clone());
        self.cluster.client(&addr).await
    }

    /// The connection to the bootstrap broker, for requests any broker answers.
    async fn any_broker(&mut self) -> anyhow::Result<&mut Client> {
        let addr = self.bootstrap.clone();
        self.cluster.client(&addr).await
    }
}

// ---------------------------------------------------------------------------------------
// Errors and output helpers
// ---------------------------------------------------------------------------------------

/// The broker refused `what` with `code`: [`Refused`] (exit 1), with the broker's message
/// and what to do. `Refused::State` carries the text because `Refused::Code` has no room
/// for the broker's message, which is often the most useful part ("Invalid value x for
/// configuration retention.ms").
fn refused(what: impl std::fmt::Display, code: i16, message: Option<&str>) -> anyhow::Error {
    Refused::State(format!("{what}: {}", explain(code, message))).into()
}

/// `NAME (code): broker message; hint`, with the parts that exist.
fn explain(code: i16, message: Option<&str>) -> String {
    let message = message.map(|m| m.trim().trim_end_matches('.')).filter(|m| !m.is_empty());
    let parts: Vec<&str> = message.into_iter().chain(topic_hint(code)).collect();
    if parts.is_empty() {
        format!("{} ({code})", error_name(code))
    } else {
        format!("{} ({code}): {}", error_name(code), parts.join("; "))
    }
}

/// What an operator can do about the errors topic administration meets, else the shared hint.
fn topic_hint(code: i16) -> Option<&'static str> {
    use ResponseError as E;
    Some(match code.err()? {
        E::TopicAlreadyExists => "choose another name, or see `weir topic describe`",
        E::UnknownTopicOrPartition => "no such topic or partition (see `weir topic list`)",
        E::InvalidConfig => "check the key and value (`weir topic describe -c` lists the topic's configs)",
        E::InvalidPartitions => "a topic has at least 1 partition; partitions can be added, never removed",
        E::InvalidReplicationFactor => "the replication factor must be between 1 and the number of brokers",
        E::InvalidTopicException => "topic names are 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
        E::OffsetOutOfRange => {
            "the offset must be at most the partition's high watermark (see `weir topic describe -p`)"
        }
        E::PolicyViolation => "a broker policy forbids this request",
        E::TopicDeletionDisabled => "the brokers run with delete.topic.enable=false",
        _ => return hint(code),
    })
}

/// A Kafka error in JSON output.
#[derive(Debug, Serialize)]
struct ErrorJson {
    code: i16,
    name: String,
    message: Option<String>,
    hint: Option<&'static str>,
}

impl ErrorJson {
    fn new(code: i16, message: Option<&str>) -> Option<ErrorJson> {
        (code != 0).then(|| ErrorJson {
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
            hint: topic_hint(code),
        })
    }

    fn text(&self) -> String {
        explain(self.code, self.message.as_deref())
    }
}

/// `{"topics": [...]}`, the JSON of `list` and `delete`.
#[derive(Debug, Serialize)]
struct Topics<'a, T> {
    topics: &'a [T],
}

#[derive(Debug, Serialize)]
struct CreateOutput<'a> {
    dry_run: bool,
    topics: &'a [Created],
}

#[derive(Debug, Serialize)]
struct AlterOutput<'a> {
    topic: &'a str,
    changes: &'a [Change],
}

#[derive(Debug, Serialize)]
struct Added<'a> {
    topic: &'a str,
    added: i32,
    partition_count: i32,
}

#[derive(Debug, Serialize)]
struct TrimOutput<'a> {
    topic: &'a str,
    executed: bool,
    partitions: &'a [Trim],
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn print_table(table: &Table) -> anyhow::Result<()> {
    table.write(&mut std::io::stdout().lock())?;
    Ok(())
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(s(name))
}

/// Kafka's text form of a topic id (URL-safe base64 of the 16 bytes, unpadded, as
/// `kafka-topics.sh` prints it and accepts it); `None` for the nil id, which means "none".
fn topic_id_text(id: uuid::Uuid) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if id.is_nil() {
        return None;
    }
    let mut text = String::with_capacity(22);
    for chunk in id.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..=chunk.len() {
            text.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]));
        }
    }
    Some(text)
}

/// Broker ids as `1,2,3`, `-` for none.
fn node_list(nodes: &[i32]) -> String {
    if nodes.is_empty() {
        return "-".to_owned();
    }
    nodes.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's name for a DescribeConfigs config source.
fn config_source_name(source: i8) -> String {
    match source {
        0 => "UNKNOWN",
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        other => return format!("UNKNOWN_CONFIG_SOURCE_{other}"),
    }
    .to_owned()
}

/// Names in the order given, each once.
fn unique(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect()
}

// ---------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Created {
    topic: String,
    ok: bool,
    topic_id: Option<String>,
    partition_count: Option<i32>,
    replication_factor: Option<i16>,
    error: Option<ErrorJson>,
}

async fn create(bootstrap: &str, args: CreateArgs) -> anyhow::Result<i32> {
    let topics = unique(&args.topics);
    let configs: Vec<CreatableTopicConfig> = args
        .configs
        .iter()
        .map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(topic_name(t))
                        // -1: the broker's default (num.partitions, default.replication.factor).
                        .with_num_partitions(args.partitions.unwrap_or(-1))
                        .with_replication_factor(args.replication_factor.unwrap_or(-1))
                        .with_configs(configs.clone())
                })
                .collect(),
        )
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_validate_only(args.dry_run);
    let mut admin = Admin::connect(bootstrap).await?;
    let response = admin.controller().await?.request(CREATE_TOPICS_VERSION, &request).await?;
    let results: Vec<Created> = topics
        .iter()
        .map(|topic| match response.topics.iter().find(|r| r.name.as_str() == topic.as_str()) {
            Some(r) if r.error_code == 0 => Created {
                topic: topic.clone(),
                ok: true,
                topic_id: topic_id_text(r.topic_id),
                partition_count: (r.num_partitions > 0).then_some(r.num_partitions),
                replication_factor: (r.replication_factor > 0).then_some(r.replication_factor),
                error: None,
            },
            Some(r) => failed_creation(topic, r.error_code, r.error_message.as_deref()),
            None => failed_creation(topic, ResponseError::UnknownServerError.code(), Some("the broker did not answer")),
        })
        .collect();
    match args.format {
        Format::Json => print_json(&CreateOutput { dry_run: args.dry_run, topics: &results })?,
        Format::Text => {
            let mut table = Table::new(&["TOPIC", "STATUS"]);
            for r in &results {
                let status = r.error.as_ref().map_or_else(|| "OK".to_owned(), ErrorJson::text);
                table.row(vec![r.topic.clone(), status]);
            }
            print_table(&table)?;
        }
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} topics not created", results.len());
    } else if args.dry_run {
        eprintln!("dry run: the broker accepted the request; nothing was created (run again without --dry-run)");
    }
    Ok(if failed == 0 { 0 } else { EXIT_REFUSED })
}

fn failed_creation(topic: &str, code: i16, message: Option<&str>) -> Created {
    Created {
        topic: topic.to_owned(),
        ok: false,
        topic_id: None,
        partition_count: None,
        replication_factor: None,
        error: ErrorJson::new(code, message),
    }
}

// ---------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Listed {
    topic: String,
    topic_id: Option<String>,
    internal: bool,
    partition_count: usize,
    replication_factor: usize,
}

impl Listed {
    fn new(t: &TopicInfo) -> Listed {
        Listed {
            topic: t.name.clone(),
            topic_id: t.topic_id.clone(),
            internal: t.internal,
            partition_count: t.partitions.len(),
            replication_factor: t.replication_factor(),
        }
    }
}

async fn list(bootstrap: &str, args: ListArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let snapshot = admin.metadata(None).await?;
    for (topic, code) in &snapshot.errors {
        eprintln!("warning: topic {topic}: {}", explain(*code, None));
    }
    let topics: Vec<Listed> =
        snapshot.topics.iter().filter(|t| args.internal || !t.internal).map(Listed::new).collect();
    match args.format {
        Format::Json => print_json(&Topics { topics: &topics })?,
        Format::Text => {
            let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
            for t in topics {
                table.row(vec![t.topic, t.partition_count.to_string(), t.replication_factor.to_string()]);
            }
            print_table(&table)?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// describe
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct ConfigEntry {
    key: String,
    value: Option<String>,
    source: String,
    read_only: bool,
    sensitive: bool,
}

#[derive(Debug, Serialize)]
struct PartitionRow {
    partition: i32,
    leader: Option<i32>,
    leader_epoch: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Description {
    #[serde(flatten)]
    summary: Listed,
    configs: Option<Vec<ConfigEntry>>,
    partitions: Option<Vec<PartitionRow>>,
}

async fn describe(bootstrap: &str, args: DescribeArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    // No flag: everything, as rpk does.
    let everything = !args.print_partitions && !args.print_configs;
    let configs = match everything || args.print_configs {
        true => Some(describe_configs(&mut admin, &info.name, None).await?),
        false => None,
    };
    let partitions = match everything || args.print_partitions {
        true => Some(partition_rows(&mut admin.cluster, &info).await?),
        false => None,
    };
    let description = Description { summary: Listed::new(&info), configs, partitions };
    match args.format {
        Format::Json => print_json(&description)?,
        Format::Text => print_description(&mut std::io::stdout().lock(), &description, everything)?,
    }
    Ok(0)
}

/// The topic's configs (only `keys`, when given), by key.
///
/// # Errors
/// Request errors; an error code for the topic is [`Refused`].
async fn describe_configs(
    admin: &mut Admin,
    topic: &str,
    keys: Option<Vec<String>>,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(topic))
        .with_configuration_keys(keys.map(|keys| keys.into_iter().map(StrBytes::from_string).collect()));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = admin.any_broker().await?.request(DESCRIBE_CONFIGS_VERSION, &request).await?;
    let result = response
        .results
        .into_iter()
        .find(|r| r.resource_type == TOPIC_RESOURCE && r.resource_name.as_str() == topic)
        .with_context(|| format!("DescribeConfigs from {} did not describe topic {topic}", admin.bootstrap))?;
    if result.error_code != 0 {
        let message = result.error_message.as_deref();
        return Err(refused(format!("DescribeConfigs for topic {topic}"), result.error_code, message));
    }
    let mut configs: Vec<ConfigEntry> = result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            key: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source_name(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    configs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(configs)
}

/// Leaders, replicas and the log start offset and high watermark of every partition
/// (ListOffsets earliest and latest, read_uncommitted, at each leader). Offsets a leader
/// could not give are `None`, with a warning on stderr.
///
/// # Errors
/// Request errors.
async fn partition_rows(cluster: &mut Cluster, info: &TopicInfo) -> anyhow::Result<Vec<PartitionRow>> {
    let topology = info.topology();
    let partitions: Vec<TopicPartition> = info.partitions.iter().map(|p| info.partition(p.partition)).collect();
    let starts = cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let offset =
        |offsets: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, tp: &TopicPartition, what: &str| match offsets
            .get(tp)
        {
            Some(Ok(offset)) => *offset,
            Some(Err(code)) => {
                eprintln!("warning: {what} of {tp}: {}", explain(*code, None));
                None
            }
            None => None,
        };
    Ok(info
        .partitions
        .iter()
        .zip(&partitions)
        .map(|(p, tp)| PartitionRow {
            partition: p.partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            log_start_offset: offset(&starts, tp, "log start offset"),
            high_watermark: offset(&ends, tp, "high watermark"),
        })
        .collect())
}

/// rpk's layout: with `sections`, a titled SUMMARY, CONFIGS and PARTITIONS; otherwise the
/// one table asked for (both tables, titled, when both were asked for).
fn print_description(out: &mut impl Write, d: &Description, sections: bool) -> std::io::Result<()> {
    let titled = sections || (d.configs.is_some() && d.partitions.is_some());
    let title = |out: &mut dyn Write, title: &str, first: bool| -> std::io::Result<()> {
        if !titled {
            return Ok(());
        }
        if !first {
            writeln!(out)?;
        }
        writeln!(out, "{title}\n{}", "=".repeat(title.len()))
    };
    if sections {
        title(out, "SUMMARY", true)?;
        let s = &d.summary;
        let fields = [
            ("NAME", s.topic.clone()),
            ("INTERNAL", s.internal.to_string()),
            ("PARTITIONS", s.partition_count.to_string()),
            ("REPLICAS", s.replication_factor.to_string()),
            ("TOPIC-ID", cell(s.topic_id.as_deref())),
        ];
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in fields {
            writeln!(out, "{key:width$}  {value}")?;
        }
    }
    if let Some(configs) = &d.configs {
        title(out, "CONFIGS", !sections)?;
        let mut table = Table::new(&["KEY", "VALUE", "SOURCE"]);
        for c in configs {
            table.row(vec![c.key.clone(), cell(c.value.as_deref()), c.source.clone()]);
        }
        table.write(out)?;
    }
    if let Some(partitions) = &d.partitions {
        title(out, "PARTITIONS", !sections && d.configs.is_none())?;
        let mut table =
            Table::new(&["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"]);
        for p in partitions {
            table.row(vec![
                p.partition.to_string(),
                cell(p.leader),
                cell(p.leader_epoch),
                node_list(&p.replicas),
                node_list(&p.isr),
                cell(p.log_start_offset),
                cell(p.high_watermark),
            ]);
        }
        table.write(out)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// alter-config
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Change {
    key: String,
    operation: &'static str,
    old_value: Option<String>,
    new_value: Option<String>,
    source: Option<String>,
}

async fn alter_config(bootstrap: &str, args: AlterConfigArgs) -> anyhow::Result<i32> {
    let mut operations: Vec<(String, i8, Option<String>)> = Vec::new();
    for (key, value) in &args.set {
        operations.push((key.clone(), OP_SET, Some(value.clone())));
    }
    for key in &args.delete {
        operations.push((key.clone(), OP_DELETE, None));
    }
    let mut keys = BTreeSet::new();
    if let Some((key, ..)) = operations.iter().find(|(key, ..)| !keys.insert(key.as_str())) {
        anyhow::bail!("{key} is named more than once in --set/--delete; name each key once");
    }
    let keys: Vec<String> = operations.iter().map(|(key, ..)| key.clone()).collect();
    let mut admin = Admin::connect(bootstrap).await?;
    // Refuses an unknown topic before anything is sent.
    let before = describe_configs(&mut admin, &args.topic, Some(keys.clone())).await?;
    let configs = operations
        .iter()
        .map(|(key, op, value)| {
            AlterableConfig::default().with_name(s(key)).with_config_operation(*op).with_value(value.as_deref().map(s))
        })
        .collect();
    let resource = AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(&args.topic))
        .with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response = admin.controller().await?.request(INCREMENTAL_ALTER_CONFIGS_VERSION, &request).await?;
    let result = response
        .responses
        .iter()
        .find(|r| r.resource_type == TOPIC_RESOURCE && r.resource_name.as_str() == args.topic)
        .with_context(|| format!("IncrementalAlterConfigs did not answer for topic {}", args.topic))?;
    if result.error_code != 0 {
        let what = format!("cannot alter the configs of topic {}", args.topic);
        return Err(refused(what, result.error_code, result.error_message.as_deref()));
    }
    // What the topic has now (on Apache Kafka in KRaft mode, the broker asked may lag the
    // controller by a moment; its answer is still what clients of that broker see).
    let after = describe_configs(&mut admin, &args.topic, Some(keys)).await?;
    let find = |configs: &[ConfigEntry], key: &str| {
        configs.iter().find(|c| c.key == key).map(|c| (c.value.clone(), c.source.clone()))
    };
    let changes: Vec<Change> = operations
        .iter()
        .map(|(key, op, _)| {
            let (new_value, source) = find(&after, key).map_or((None, None), |(v, s)| (v, Some(s)));
            Change {
                key: key.clone(),
                operation: if *op == OP_SET { "set" } else { "delete" },
                old_value: find(&before, key).and_then(|(v, _)| v),
                new_value,
                source,
            }
        })
        .collect();
    match args.format {
        Format::Json => print_json(&AlterOutput { topic: &args.topic, changes: &changes })?,
        Format::Text => {
            let mut table = Table::new(&["KEY", "OPERATION", "OLD-VALUE", "NEW-VALUE", "SOURCE"]);
            for c in changes {
                table.row(vec![c.key, c.operation.to_owned(), cell(c.old_value), cell(c.new_value), cell(c.source)]);
            }
            print_table(&table)?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// add-partitions
// ---------------------------------------------------------------------------------------

async fn add_partitions(bootstrap: &str, args: AddPartitionsArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    let current = i32::try_from(info.partitions.len()).context("more than 2^31 partitions")?;
    let total = current
        .checked_add(args.num)
        .with_context(|| format!("{current} + {} partitions is more than a topic can have", args.num))?;
    // CreatePartitions takes the new total; -n is how many to add, as in rpk.
    let topic = CreatePartitionsTopic::default().with_name(topic_name(&args.topic)).with_count(total);
    let request = CreatePartitionsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = admin.controller().await?.request(CREATE_PARTITIONS_VERSION, &request).await?;
    let result = response
        .results
        .iter()
        .find(|r| r.name.as_str() == args.topic)
        .with_context(|| format!("CreatePartitions did not answer for topic {}", args.topic))?;
    if result.error_code != 0 {
        let what = format!("cannot grow topic {} from {current} to {total} partitions", args.topic);
        return Err(refused(what, result.error_code, result.error_message.as_deref()));
    }
    match args.format {
        Format::Json => print_json(&Added { topic: &args.topic, added: args.num, partition_count: total })?,
        Format::Text => {
            let mut table = Table::new(&["TOPIC", "ADDED", "PARTITIONS"]);
            table.row(vec![args.topic.clone(), args.num.to_string(), total.to_string()]);
            print_table(&table)?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Deleted {
    topic: String,
    deleted: bool,
    error: Option<ErrorJson>,
}

async fn delete(bootstrap: &str, args: DeleteArgs) -> anyhow::Result<i32> {
    let topics = unique(&args.topics);
    let request = DeleteTopicsRequest::default()
        .with_topic_names(topics.iter().map(|t| topic_name(t)).collect())
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let mut admin = Admin::connect(bootstrap).await?;
    let response = admin.controller().await?.request(DELETE_TOPICS_VERSION, &request).await?;
    let results: Vec<Deleted> = topics
        .iter()
        .map(|topic| {
            let result = response.responses.iter().find(|r| r.name.as_ref().is_some_and(|n| n.as_str() == topic));
            let (code, message) = match result {
                Some(r) => (r.error_code, r.error_message.as_deref()),
                None => (ResponseError::UnknownServerError.code(), Some("the broker did not answer")),
            };
            Deleted { topic: topic.clone(), deleted: code == 0, error: ErrorJson::new(code, message) }
        })
        .collect();
    match args.format {
        Format::Json => print_json(&Topics { topics: &results })?,
        Format::Text => {
            let mut table = Table::new(&["TOPIC", "STATUS"]);
            for r in &results {
                table.row(vec![r.topic.clone(), r.error.as_ref().map_or_else(|| "OK".to_owned(), ErrorJson::text)]);
            }
            print_table(&table)?;
        }
    }
    let failed = results.iter().filter(|r| !r.deleted).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} topics not deleted", results.len());
    }
    Ok(if failed == 0 { 0 } else { EXIT_REFUSED })
}

// ---------------------------------------------------------------------------------------
// trim-prefix
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Trim {
    partition: i32,
    log_start_offset: i64,
    high_watermark: i64,
    new_log_start_offset: i64,
    low_watermark: Option<i64>,
    error: Option<ErrorJson>,
}

/// The log start offset after trimming to `to`: DeleteRecords never moves it back, so an
/// offset below the current log start changes nothing. `None` when `to` is above the high
/// watermark, which the broker refuses (OFFSET_OUT_OF_RANGE).
fn new_log_start(to: TrimTo, log_start_offset: i64, high_watermark: i64) -> Option<i64> {
    match to {
        TrimTo::End => Some(high_watermark.max(log_start_offset)),
        TrimTo::Offset(offset) if offset > high_watermark => None,
        TrimTo::Offset(offset) => Some(offset.max(log_start_offset)),
    }
}

async fn trim_prefix(bootstrap: &str, args: TrimPrefixArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    let chosen: BTreeSet<i32> = if args.partitions.is_empty() {
        info.partitions.iter().map(|p| p.partition).collect()
    } else {
        args.partitions.iter().copied().collect()
    };
    if let Some(p) = chosen.iter().find(|&&p| !info.partitions.iter().any(|q| q.partition == p)) {
        let n = info.partitions.len();
        let text = format!("topic {} has no partition {p} (it has {n}: 0 to {})", info.name, n.saturating_sub(1));
        return Err(Refused::State(text).into());
    }
    // The current offsets: the plan, and a check that every leader answers before anything
    // is deleted.
    let topology = info.topology();
    let partitions: Vec<TopicPartition> = chosen.iter().map(|&p| info.partition(p)).collect();
    let starts = admin.cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = admin.cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let mut plan = Vec::new();
    let mut above = Vec::new();
    for tp in &partitions {
        let offset = |offsets: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, what: &str| match offsets.get(tp) {
            Some(Ok(Some(offset))) => Ok(*offset),
            Some(Err(code)) => Err(refused(format!("cannot read the {what} of {tp}"), *code, None)),
            _ => Err(anyhow::anyhow!("the leader of {tp} did not return its {what}")),
        };
        let (log_start_offset, high_watermark) =
            (offset(&starts, "log start offset")?, offset(&ends, "high watermark")?);
        let new_log_start_offset = new_log_start(args.offset, log_start_offset, high_watermark).unwrap_or_else(|| {
            above.push((tp.clone(), high_watermark));
            match args.offset {
                TrimTo::Offset(offset) => offset,
                TrimTo::End => high_watermark,
            }
        });
        plan.push(Trim {
            partition: tp.partition,
            log_start_offset,
            high_watermark,
            new_log_start_offset,
            low_watermark: None,
            error: None,
        });
    }
    if args.execute {
        delete_records(&mut admin.cluster, &info, &topology, args.offset, &mut plan).await?;
    }
    match args.format {
        Format::Json => print_json(&TrimOutput { topic: &info.name, executed: args.execute, partitions: &plan })?,
        Format::Text => {
            let mut headers = vec!["TOPIC", "PARTITION", "LOG-START-OFFSET", "NEW-LOG-START-OFFSET"];
            if args.execute {
                headers.push("LOW-WATERMARK");
            }
            let mut table = Table::new(&headers);
            for t in &plan {
                let mut row = vec![
                    info.name.clone(),
                    t.partition.to_string(),
                    t.log_start_offset.to_string(),
                    t.new_log_start_offset.to_string(),
                ];
                if args.execute {
                    let error = t.error.as_ref().map(|e| e.name.clone());
                    row.push(error.unwrap_or_else(|| cell(t.low_watermark)));
                }
                table.row(row);
            }
            print_table(&table)?;
        }
    }
    if args.execute {
        let failed: Vec<&Trim> = plan.iter().filter(|t| t.error.is_some()).collect();
        for t in &failed {
            let error = t.error.as_ref().map(ErrorJson::text).unwrap_or_default();
            let tp = info.partition(t.partition);
            let (offset, high_watermark) = (t.new_log_start_offset, t.high_watermark);
            eprintln!(
                "error: deleting the records of {tp} below offset {offset} (high watermark {high_watermark}): {error}"
            );
        }
        return Ok(if failed.is_empty() { 0 } else { EXIT_REFUSED });
    }
    if !above.is_empty() {
        for (tp, high_watermark) in &above {
            eprintln!(
                "error: the offset is above the high watermark of {tp} ({high_watermark}): --execute would be \
                 refused with OFFSET_OUT_OF_RANGE; choose an offset of at most {high_watermark}"
            );
        }
        return Ok(EXIT_REFUSED);
    }
    eprintln!("dry run: nothing was deleted; add --execute to delete the records below NEW-LOG-START-OFFSET");
    Ok(0)
}

/// DeleteRecords for every partition of `plan`, one request per leader; fills in each
/// partition's low watermark or error.
///
/// # Errors
/// Request errors (partitions answered before the failure may already be trimmed).
async fn delete_records(
    cluster: &mut Cluster,
    info: &TopicInfo,
    topology: &Topology,
    to: TrimTo,
    plan: &mut [Trim],
) -> anyhow::Result<()> {
    // Kafka's -1: the high watermark when the leader handles the request.
    let offset = match to {
        TrimTo::Offset(offset) => offset,
        TrimTo::End => -1,
    };
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for t in plan.iter_mut() {
        let leader = topology.leaders.get(&info.partition(t.partition)).copied().flatten();
        match leader.filter(|&l| cluster.addr_of(l).is_some()) {
            Some(leader) => by_leader.entry(leader).or_default().push(t.partition),
            None => t.error = ErrorJson::new(ResponseError::LeaderNotAvailable.code(), None),
        }
    }
    for (leader, partitions) in by_leader {
        let topic = DeleteRecordsTopic::default().with_name(topic_name(&info.name)).with_partitions(
            partitions
                .iter()
                .map(|&p| DeleteRecordsPartition::default().with_partition_index(p).with_offset(offset))
                .collect(),
        );
        let request = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
        let addr = cluster.addr_of(leader).expect("leaders without an address were set aside above");
        let response = cluster.client(&addr).await?.request(DELETE_RECORDS_VERSION, &request).await?;
        let answers = response.topics.iter().filter(|t| t.name.as_str() == info.name).flat_map(|t| &t.partitions);
        let answers: BTreeMap<i32, _> = answers.map(|p| (p.partition_index, p)).collect();
        for t in plan.iter_mut().filter(|t| partitions.contains(&t.partition)) {
            match answers.get(&t.partition) {
                Some(p) if p.error_code == 0 => t.low_watermark = (p.low_watermark >= 0).then_some(p.low_watermark),
                Some(p) => t.error = ErrorJson::new(p.error_code, None),
                None => t.error = ErrorJson::new(ResponseError::UnknownServerError.code(), Some("no answer")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_as_kafka_prints_them() {
        let id = uuid::Uuid::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(topic_id_text(id).as_deref(), Some("AAECAwQFBgcICQoLDA0ODw"));
        // URL-safe: '-' and '_' where standard base64 has '+' and '/'.
        let id = uuid::Uuid::from_bytes([0xfb, 0xff, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(topic_id_text(id).as_deref(), Some("-_-_AAAAAAAAAAAAAAAAAA"));
        assert_eq!(topic_id_text(uuid::Uuid::nil()), None);
    }

    #[test]
    fn trimming_never_moves_the_log_start_back_and_stops_at_the_high_watermark() {
        assert_eq!(new_log_start(TrimTo::Offset(4), 0, 10), Some(4));
        assert_eq!(new_log_start(TrimTo::Offset(10), 0, 10), Some(10));
        assert_eq!(new_log_start(TrimTo::Offset(2), 5, 10), Some(5));
        assert_eq!(new_log_start(TrimTo::Offset(11), 0, 10), None);
        assert_eq!(new_log_start(TrimTo::End, 3, 10), Some(10));
    }

    #[test]
    fn key_values_and_trim_offsets_parse_or_say_what_was_expected() {
        assert_eq!(parse_key_value("retention.ms=1000"), Ok(("retention.ms".into(), "1000".into())));
        assert_eq!(
            parse_key_value("cleanup.policy=compact,delete"),
            Ok(("cleanup.policy".into(), "compact,delete".into()))
        );
        assert_eq!(parse_key_value("k="), Ok(("k".into(), String::new())));
        assert!(parse_key_value("retention.ms").expect_err("no =").contains("KEY=VALUE"));
        assert!(parse_key_value("=1").is_err());
        assert_eq!(parse_trim_to("42"), Ok(TrimTo::Offset(42)));
        assert_eq!(parse_trim_to("END"), Ok(TrimTo::End));
        assert!(parse_trim_to("-1").is_err());
    }

    #[test]
    fn refusals_name_the_error_the_broker_message_and_what_to_do() {
        assert_eq!(
            explain(40, Some("Invalid value x for configuration retention.ms.")),
            "INVALID_CONFIG (40): Invalid value x for configuration retention.ms; check the key and value \
             (`weir topic describe -c` lists the topic's configs)"
        );
        assert_eq!(explain(87, None), "INVALID_RECORD (87)");
        assert_eq!(explain(15, Some("")), format!("COORDINATOR_NOT_AVAILABLE (15): {}", hint(15).unwrap_or_default()));
        assert_eq!(config_source_name(1), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(config_source_name(5), "DEFAULT_CONFIG");
        assert_eq!(config_source_name(42), "UNKNOWN_CONFIG_SOURCE_42");
    }

    fn description() -> Description {
        Description {
            summary: Listed {
                topic: "t".into(),
                topic_id: Some("AAECAwQFBgcICQoLDA0ODw".into()),
                internal: false,
                partition_count: 1,
                replication_factor: 1,
            },
            configs: Some(vec![ConfigEntry {
                key: "retention.ms".into(),
                value: Some("1000".into()),
                source: "DYNAMIC_TOPIC_CONFIG".into(),
                read_only: false,
                sensitive: false,
            }]),
            partitions: Some(vec![PartitionRow {
                partition: 0,
                leader: Some(1),
                leader_epoch: Some(0),
                replicas: vec![1, 2],
                isr: vec![1],
                log_start_offset: Some(3),
                high_watermark: None,
            }]),
        }
    }

    fn render(d: &Description, sections: bool) -> String {
        let mut out = Vec::new();
        print_description(&mut out, d, sections).expect("print");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn describe_prints_titled_sections_by_default_and_one_bare_table_when_asked() {
        let d = description();
        assert_eq!(
            render(&d, true),
            "SUMMARY\n=======\n\
             NAME        t\n\
             INTERNAL    false\n\
             PARTITIONS  1\n\
             REPLICAS    1\n\
             TOPIC-ID    AAECAwQFBgcICQoLDA0ODw\n\
             \n\
             CONFIGS\n=======\n\
             KEY           VALUE  SOURCE\n\
             retention.ms  1000   DYNAMIC_TOPIC_CONFIG\n\
             \n\
             PARTITIONS\n==========\n\
             PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK\n\
             0          1       0      1,2       1    3                 -\n"
        );
        let partitions_only = Description { configs: None, ..description() };
        assert!(
            render(&partitions_only, false).starts_with("PARTITION  LEADER"),
            "{}",
            render(&partitions_only, false)
        );
        let configs_only = Description { partitions: None, ..description() };
        assert!(render(&configs_only, false).starts_with("KEY "));
        // Both flags: both tables, titled.
        assert!(render(&description(), false).starts_with("CONFIGS\n=======\nKEY"));
    }
}
