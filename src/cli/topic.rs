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
//!
//! # Layout
//! This file holds the command line ([`TopicCommand`] and its arguments), [`run`], and what
//! the commands share: refusals with the broker's message and topic hints, the JSON error,
//! and output helpers. Each command lives in a submodule:
//! - `metadata`: Metadata v10 read into topics, and where admin requests go (the controller);
//! - `describe`: `list` and `describe` (and DescribeConfigs, which `alter-config` also uses);
//! - `admin`: `create`, `delete`, `add-partitions` and `alter-config`;
//! - `trim_prefix`: `trim-prefix`, its plan and DeleteRecords.

mod admin;
mod describe;
mod metadata;
mod trim_prefix;

use std::collections::BTreeSet;

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::{error_name, explain, hint, run_async, write_json, Format, Refused, Table};

/// How long the broker may take over an admin request: below the client's 30 s response
/// timeout, so that a slow controller answers REQUEST_TIMED_OUT rather than the tool giving up.
const ADMIN_TIMEOUT_MS: i32 = 25_000;

/// Kafka's config resource type for topics.
const TOPIC_RESOURCE: i8 = 2;

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
        TopicCommand::Create(args) => run_async(admin::create(bootstrap, args)),
        TopicCommand::List(args) => run_async(describe::list(bootstrap, args)),
        TopicCommand::Describe(args) => run_async(describe::describe(bootstrap, args)),
        TopicCommand::AlterConfig(args) => run_async(admin::alter_config(bootstrap, args)),
        TopicCommand::AddPartitions(args) => run_async(admin::add_partitions(bootstrap, args)),
        TopicCommand::Delete(args) => run_async(admin::delete(bootstrap, args)),
        TopicCommand::TrimPrefix(args) => run_async(trim_prefix::trim_prefix(bootstrap, args)),
    }
}

// ---------------------------------------------------------------------------------------
// Errors and output helpers
// ---------------------------------------------------------------------------------------

/// The broker refused `what` with `code`: [`Refused::Broker`] (exit 1), with the broker's
/// message and what to do about it in topic administration ([`topic_hint`]).
fn refused(what: impl std::fmt::Display, code: i16, message: Option<&str>) -> anyhow::Error {
    let message = message.map(str::to_owned);
    Refused::Broker { what: what.to_string(), code, message, hint: topic_hint(code) }.into()
}

/// `NAME (code): hint`, with the hints of topic administration: [`super::describe_error`]
/// for `weir topic`.
fn describe_topic_error(code: i16) -> String {
    explain(code, None, topic_hint(code))
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

/// A Kafka error in topic JSON output: [`super::ErrorJson`] plus the broker's message, which
/// the topic admin APIs return, and with topic administration's hints.
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
        explain(self.code, self.message.as_deref(), self.hint)
    }
}

/// `{"topics": [...]}`, the JSON of `list` and `delete`.
#[derive(Debug, Serialize)]
struct Topics<'a, T> {
    topics: &'a [T],
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    write_json(&mut std::io::stdout().lock(), value)?;
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

/// Names in the order given, each once.
fn unique(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let refused = refused("topic t", 40, Some("Invalid value x for configuration retention.ms."));
        assert_eq!(
            refused.to_string(),
            "topic t: INVALID_CONFIG (40): Invalid value x for configuration retention.ms; check the key and value \
             (`weir topic describe -c` lists the topic's configs)"
        );
        assert_eq!(describe_topic_error(87), "INVALID_RECORD (87)");
        assert_eq!(
            describe_topic_error(15),
            format!("COORDINATOR_NOT_AVAILABLE (15): {}", hint(15).unwrap_or_default())
        );
        let error = ErrorJson::new(3, Some("")).expect("an error");
        assert_eq!(error.text(), "UNKNOWN_TOPIC_OR_PARTITION (3): no such topic or partition (see `weir topic list`)");
    }
}
